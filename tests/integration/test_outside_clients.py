"""Standard outside clients work against the local stack: kcat, mosquitto_pub/sub, curl."""

import subprocess
import time
import urllib.error
import urllib.request
import uuid

import pytest

from config.settings import Settings


def _run(*argv: str, stdin: str | None = None, timeout: float = 30) -> str:
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout, check=True)
    return done.stdout


def test_kcat_lists_the_broker(settings: Settings) -> None:
    out = _run("kcat", "-b", settings.kafka_bootstrap, "-L")
    assert f"broker 1 at {settings.kafka_bootstrap}" in out


def test_kcat_produces_and_consumes(settings: Settings) -> None:
    topic = f"test.kcat.{uuid.uuid4().hex[:8]}"
    _run("kcat", "-b", settings.kafka_bootstrap, "-t", topic, "-P", "-K:", stdin="k1:hello\nk2:world\n")
    out = _run(
        "kcat", "-b", settings.kafka_bootstrap, "-t", topic, "-C", "-o", "beginning", "-e", "-q",
        "-c", "2", "-f", "%k=%s\n",
    )  # fmt: skip
    assert sorted(out.split()) == ["k1=hello", "k2=world"]


def test_mosquitto_pub_and_sub_exchange_a_message(settings: Settings) -> None:
    topic = f"test/clients/{uuid.uuid4().hex[:8]}"
    sub = subprocess.Popen(
        ["mosquitto_sub", "-h", settings.mqtt_host, "-p", str(settings.mqtt_port), "-t", topic,
         "-C", "1", "-q", "1", "-W", "20"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(1.0)  # let the subscription reach the broker before publishing
    _run("mosquitto_pub", "-h", settings.mqtt_host, "-p", str(settings.mqtt_port), "-t", topic,
         "-q", "1", "-m", "bonjour La Rochelle")  # fmt: skip
    out, _ = sub.communicate(timeout=25)
    assert out.strip() == "bonjour La Rochelle"


def test_curl_health_passes(settings: Settings) -> None:
    out = _run("curl", "-sf", f"{settings.influx_url}/health")
    assert '"status":"pass"' in out.replace(" ", "")


def test_curl_write_with_token_gets_204_and_without_token_401(settings: Settings) -> None:
    url = f"{settings.influx_url}/api/v2/write?org={settings.influx_org}&bucket={settings.influx_bucket}"
    code = _run(
        "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-XPOST", url,
        "-H", f"Authorization: Token {settings.influx_token.get_secret_value()}",
        "--data-binary", "clients_check,source=curl value=1",
    )  # fmt: skip
    assert code == "204"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(urllib.request.Request(url, data=b"x value=1", method="POST"), timeout=5)
    assert refused.value.code == 401
