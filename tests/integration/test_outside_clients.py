"""Standard outside clients work against the local stack: kcat, mosquitto_pub/sub, curl."""

import asyncio
import os
import re
import stat
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from config.kafka_access import KafkaAccess
from config.settings import Settings
from schemas.mqtt_principals import SANDBOX_ROOT, MqttLogin
from sinks.influx_target import InfluxTarget
from stack.kcat_client import KcatClient
from stack.secret_files import write_secret
from streams.kafka_admin import create_topic, delete_topics
from zerocarbon.component_configs import mqtt_ca_file


def _run(*argv: str, stdin: str | None = None, timeout: float = 30, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout, env=env)
    # The client's own words on a failure (an option file's content is never printed).
    assert done.returncode == 0, f"{argv[0]} exited with {done.returncode}: {done.stderr[-2000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def kcat(settings: Settings) -> list[str]:
    """Debian 12's kcat with a librdkafka of 2.6.1 or later (stack/kcat_client.py): before, it
    appended its nonce twice in SCRAM's final message and Kafka 4.x refused the login
    (confluentinc/librdkafka#4895, edenhill/kcat#462)."""
    argv = KcatClient(settings.cache_dir).argv()
    version = re.search(r"librdkafka (\d+)\.(\d+)\.(\d+)", _run(*argv, "-V"))
    assert version and tuple(int(n) for n in version.groups()) >= (2, 6, 1), version
    return argv


@pytest.fixture
def kcat_admin(kcat: list[str], kafka_admin: KafkaAccess, tmp_path: Path) -> list[str]:
    """kcat with the admin's librdkafka properties, from a file only its owner may read (`-F`):
    the password never goes on a command line, which any user of the machine can read."""
    properties = tmp_path / "kcat" / "admin.properties"
    write_secret(properties, "".join(f"{k}={v}\n" for k, v in kafka_admin.librdkafka_properties().items()))
    assert stat.S_IMODE(properties.stat().st_mode) == 0o600
    return [*kcat, "-F", str(properties)]


def test_kcat_lists_the_broker(settings: Settings, kcat_admin: list[str]) -> None:
    out = _run(*kcat_admin, "-L")
    assert f"broker 1 at {settings.kafka_bootstrap}" in out


def test_kcat_produces_and_consumes(kafka_admin: KafkaAccess, kcat_admin: list[str]) -> None:
    topic = f"test.kcat.{uuid.uuid4().hex[:8]}"
    asyncio.run(create_topic(kafka_admin, topic, partitions=1))  # the broker creates none by itself
    try:
        _run(*kcat_admin, "-t", topic, "-P", "-K:", stdin="k1:hello\nk2:world\n")
        out = _run(
            *kcat_admin, "-t", topic, "-C", "-o", "beginning", "-e", "-q", "-c", "2", "-f", "%k=%s\n",
        )  # fmt: skip
    finally:
        asyncio.run(delete_topics(kafka_admin, [topic]))
    assert sorted(out.split()) == ["k1=hello", "k2=world"]


def _options_files(folder: Path, login: MqttLogin) -> dict[str, str]:
    """mosquitto_pub and mosquitto_sub read default options from $XDG_CONFIG_HOME/<name>: the
    credentials go there, never on a command line that any user of the machine can read."""
    folder.mkdir(mode=0o700, exist_ok=True)
    for name in ("mosquitto_pub", "mosquitto_sub"):
        (folder / name).write_text(f"-u {login.username}\n-P {login.password}\n")
        (folder / name).chmod(0o600)
    return {**os.environ, "XDG_CONFIG_HOME": str(folder)}


def _mqtt_tls(settings: Settings) -> list[str]:
    """Where mosquitto_pub and mosquitto_sub connect: the TLS listener, trusting the stack's CA."""
    where = ["-h", settings.mqtt_host, "-p", str(settings.mqtt_port)]
    ca_file = mqtt_ca_file(settings)
    return [*where, "--cafile", str(ca_file)] if ca_file is not None else where


def test_mosquitto_pub_and_sub_exchange_a_message(
    settings: Settings, gateway_login: MqttLogin, tmp_path: Path
) -> None:
    topic = f"{SANDBOX_ROOT}/clients/{uuid.uuid4().hex[:8]}"
    env = _options_files(tmp_path / "mosquitto-options", gateway_login)
    sub = subprocess.Popen(
        ["mosquitto_sub", *_mqtt_tls(settings), "-t", topic,
         "-C", "1", "-q", "1", "-W", "20"],
        stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    time.sleep(1.0)  # let the subscription reach the broker before publishing
    _run("mosquitto_pub", *_mqtt_tls(settings), "-t", topic,
         "-q", "1", "-m", "bonjour La Rochelle", env=env)  # fmt: skip
    out, _ = sub.communicate(timeout=25)
    assert out.strip() == "bonjour La Rochelle"


def test_mosquitto_pub_without_credentials_is_refused(settings: Settings) -> None:
    no_options = {**os.environ, "XDG_CONFIG_HOME": "/nonexistent"}  # no default options file
    done = subprocess.run(
        ["mosquitto_pub", *_mqtt_tls(settings), "-t",
         f"{SANDBOX_ROOT}/clients/anonymous", "-q", "1", "-m", "x"],
        capture_output=True, text=True, timeout=30, check=False, env=no_options,
    )  # fmt: skip
    assert done.returncode != 0
    assert "not authorised" in done.stderr


def test_curl_health_passes(settings: Settings) -> None:
    out = _run("curl", "-sf", f"{settings.influx_url}/health")
    assert '"status":"pass"' in out.replace(" ", "")


def test_curl_write_with_token_gets_204_and_without_token_401(
    settings: Settings, influx_write_target: InfluxTarget
) -> None:
    url = f"{settings.influx_url}/api/v2/write?org={settings.influx_org}&bucket={settings.influx_bucket}"
    code = _run(
        "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-XPOST", url,
        "-H", f"Authorization: Token {influx_write_target.token}",
        "--data-binary", "clients_check,source=curl value=1",
    )  # fmt: skip
    assert code == "204"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(urllib.request.Request(url, data=b"x value=1", method="POST"), timeout=5)
    assert refused.value.code == 401
