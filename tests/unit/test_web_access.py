"""The service's HTTP pages are never open by accident (issue 18, item 8): on loopback they need
no token; anywhere else they refuse to start without one, and with one they answer 401 to a
request that does not show it. The operators' page trades ``?token=`` for an HttpOnly cookie,
and its own calls to the worker's /counters show the worker's token."""

from __future__ import annotations

import io
import json
from collections import Counter
from contextlib import redirect_stdout
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from config.kafka_access import KafkaAccess
from config.settings import Settings
from config.web_access import (
    WebAccessRefused,
    bearer_token,
    is_loopback,
    require_token_beyond_loopback,
    same_secret,
)
from operators_view.health_sources import read_worker_counters
from operators_view.page_access import COOKIE
from operators_view.server import create_app as create_view
from streams.app import create_app as create_worker_app
from streams.indicators.flush_timings import FlushTimings
from streams.validation.stage import ValidationCounters
from streams.worker_health import WorkerHealth
from streams.worker_web import register_pages
from zerocarbon import cli
from zerocarbon.component_configs import view_config, worker_config

TOKEN = "a-long-random-token-for-the-tests"
OTHER = "another-long-random-token-not-it"
# The pages' configurations as an operator's settings give them, whether or not a local stack
# generated Kafka passwords on this machine; the pages themselves never reach Kafka.
VIEW_KAFKA, WORKER_KAFKA = SecretStr("unit-view-password"), SecretStr("unit-worker-password")
NO_KAFKA = KafkaAccess("127.0.0.1:9092")


class NoSource:
    async def open(self) -> None: ...

    async def snapshot(self) -> dict[str, Any]:
        return {}

    async def close(self) -> None: ...


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True), ("127.8.9.1", True), ("::1", True), ("[::1]", True), ("localhost", True),
        ("0.0.0.0", False), ("::", False), ("", False), ("192.168.1.20", False), ("view.example.org", False),
    ],
)  # fmt: skip
def test_what_counts_as_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_bearer_tokens_and_constant_time_comparison() -> None:
    assert bearer_token(f"Bearer {TOKEN}") == TOKEN and bearer_token(f"bearer  {TOKEN} ") == TOKEN
    assert (
        bearer_token(f"Basic {TOKEN}") is None
        and bearer_token(None) is None
        and bearer_token("Bearer") is None
    )
    assert same_secret(TOKEN, TOKEN) and not same_secret(OTHER, TOKEN) and not same_secret(None, TOKEN)


def test_a_page_beyond_loopback_without_a_token_is_refused_naming_the_setting() -> None:
    require_token_beyond_loopback("127.0.0.1", None, page="p", setting="ZC_X")  # loopback: fine
    require_token_beyond_loopback("0.0.0.0", TOKEN, page="p", setting="ZC_X")  # a token: fine
    with pytest.raises(WebAccessRefused, match="ZC_X"):
        require_token_beyond_loopback("0.0.0.0", None, page="p", setting="ZC_X")


# The operators' page (aiohttp test client).


def _view(**settings: Any) -> web.Application:
    return create_view(view_config(Settings(**settings, kafka_view_password=VIEW_KAFKA)), NoSource())


async def test_the_view_on_loopback_needs_no_token() -> None:
    async with TestClient(TestServer(_view())) as client:
        for path in ("/", "/static/view.js", "/health"):
            assert (await client.get(path)).status == 200, path
        assert "watchers" in await (await client.get("/health")).json()


def test_the_view_refuses_to_start_beyond_loopback_without_a_token() -> None:
    with pytest.raises(WebAccessRefused, match="ZC_VIEW_TOKEN"):
        _view(view_host="0.0.0.0")


async def test_the_view_with_a_token_answers_401_without_it_or_with_a_wrong_one() -> None:
    async with TestClient(TestServer(_view(view_host="0.0.0.0", view_token=TOKEN))) as client:
        for path in ("/", "/events", "/static/view.js", "/static/view.css"):
            for headers in ({}, {"Authorization": f"Bearer {OTHER}"}, {"Authorization": f"Basic {TOKEN}"}):
                answer = await client.get(path, headers=headers)
                assert answer.status == 401, (path, headers)
                assert answer.headers["WWW-Authenticate"].startswith("Bearer")
                assert TOKEN not in await answer.text()
        assert (await client.get(f"/?token={OTHER}", allow_redirects=False)).status == 401
        for path in ("/", "/static/view.js"):
            assert (await client.get(path, headers={"Authorization": f"Bearer {TOKEN}"})).status == 200
        # Liveness stays open, and says no more than that.
        assert await (await client.get("/health")).json() == {"status": "pass"}


async def test_the_view_trades_the_token_in_the_address_for_an_httponly_cookie() -> None:
    async with TestClient(TestServer(_view(view_host="0.0.0.0", view_token=TOKEN))) as client:
        answer = await client.get(f"/?lang=fr&token={TOKEN}", allow_redirects=False)
        assert answer.status == 303 and answer.headers["Location"] == "/?lang=fr"
        cookie = answer.cookies[COOKIE]
        assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/"
        assert cookie.value != TOKEN and TOKEN not in cookie.value
        # The browser now rides on the cookie: the page, its assets, its event stream.
        page = await client.get("/?lang=fr")
        assert page.status == 200 and '<html lang="fr">' in await page.text()
        assert (await client.get("/static/view.js")).status == 200
        events = await client.get("/events")
        assert events.status == 200 and events.headers["Content-Type"].startswith("text/event-stream")
        events.close()
        client.session.cookie_jar.clear()
        client.session.cookie_jar.update_cookies({COOKIE: "0" * 64})  # a forged session
        assert (await client.get("/")).status == 401


async def test_a_new_token_ends_the_sessions_of_the_old_one() -> None:
    async with TestClient(TestServer(_view(view_host="0.0.0.0", view_token=TOKEN))) as old:
        await old.get(f"/?token={TOKEN}", allow_redirects=False)
        session = old.session.cookie_jar.filter_cookies(old.make_url("/"))[COOKIE].value
    async with TestClient(TestServer(_view(view_host="0.0.0.0", view_token=OTHER))) as new:
        new.session.cookie_jar.update_cookies({COOKIE: session})
        assert (await new.get("/")).status == 401


# The worker's page (faust's web server, its aiohttp application).


def _worker_web(
    tmp_path: Path, host: str = "127.0.0.1", token: str | None = None, health: WorkerHealth | None = None
) -> web.Application:
    config = replace(
        worker_config(Settings(kafka_worker_password=WORKER_KAFKA)),
        kafka=NO_KAFKA,
        data_dir=tmp_path / "faust",
        web_host=host,
        web_token=token,
    )
    app = create_worker_app(config)
    counters = ValidationCounters()
    counters.accepted["enedis"] = 3
    counters.received = 3
    timings = FlushTimings()
    timings.observe("compute", 0.02)
    timings.windows(open_now=12, closed_now=5)
    timings.windows(open_now=10, closed_now=2)
    register_pages(app, counters, Counter(counted=3), health or WorkerHealth(), timings, config.web_token)
    application: web.Application = app.web.web_app
    return application


async def test_the_workers_counters_on_loopback_need_no_token(tmp_path: Path) -> None:
    async with TestClient(TestServer(_worker_web(tmp_path))) as client:
        counters = await (await client.get("/counters")).json()
        assert counters["accepted"] == {"enedis": 3} and counters["balanced"] is True


async def test_the_workers_metrics_say_what_its_counters_say_and_need_its_token(tmp_path: Path) -> None:
    async with TestClient(TestServer(_worker_web(tmp_path))) as client:
        text = await (await client.get("/metrics")).text()
        assert 'zc_validation_accepted_readings_total{producer="enedis"} 3.0' in text
        assert "zc_validation_received_readings_total 3.0" in text
        assert 'zc_indicator_flush_seconds_count{phase="compute"} 1.0' in text
        assert "zc_indicator_windows_open 10.0" in text and "zc_indicator_windows_closed_total 7.0" in text
    health = WorkerHealth()
    health.loop_died("validation agent", RuntimeError("a bug"))
    async with TestClient(
        TestServer(_worker_web(tmp_path, host="0.0.0.0", token=TOKEN, health=health))
    ) as client:
        assert (await client.get("/metrics")).status == 401
        allowed = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert (
            allowed.status == 200 and 'zc_worker_loop_up{loop="validation agent"} 0.0' in await allowed.text()
        )


def test_the_worker_refuses_to_start_beyond_loopback_without_a_token(tmp_path: Path) -> None:
    with pytest.raises(WebAccessRefused, match="ZC_WORKER_WEB_TOKEN"):
        _worker_web(tmp_path, host="0.0.0.0")


async def test_the_workers_counters_with_a_token_answer_401_without_it_or_with_a_wrong_one(
    tmp_path: Path,
) -> None:
    async with TestClient(TestServer(_worker_web(tmp_path, "0.0.0.0", TOKEN))) as client:
        for headers in ({}, {"Authorization": f"Bearer {OTHER}"}, {"Authorization": TOKEN}):
            answer = await client.get("/counters", headers=headers)
            assert answer.status == 401 and "accepted" not in await answer.text(), headers
        allowed = await client.get("/counters", headers={"Authorization": f"Bearer {TOKEN}"})
        assert allowed.status == 200 and (await allowed.json())["accepted"] == {"enedis": 3}
        assert await (await client.get("/health")).json() == {"status": "pass", "checks": {}}


async def test_the_workers_health_fails_with_503_once_a_loop_died_and_names_it(tmp_path: Path) -> None:
    health = WorkerHealth()
    health.round_done("indicator flush")
    async with TestClient(TestServer(_worker_web(tmp_path, health=health))) as client:
        alive = await client.get("/health")
        assert alive.status == 200 and (await alive.json())["status"] == "pass"
        health.loop_died("validation agent", RecursionError("maximum recursion depth exceeded"))
        dead = await client.get("/health")
        report = await dead.json()
        assert dead.status == 503 and report["status"] == "fail"
        assert report["checks"]["validation agent"] == {
            "status": "fail",
            "error": "RecursionError: maximum recursion depth exceeded",
        }


async def test_the_view_shows_the_worker_its_token(tmp_path: Path) -> None:
    async with TestClient(TestServer(_worker_web(tmp_path, "0.0.0.0", TOKEN))) as worker:
        url = str(worker.make_url("/counters"))
        counters = await read_worker_counters(worker.session, url, TOKEN)
        assert counters["accepted"] == {"enedis": 3}
        with pytest.raises(Exception, match="ZC_WORKER_WEB_TOKEN"):
            await read_worker_counters(worker.session, url, None)
    config = view_config(Settings(worker_web_token=TOKEN, view_token=OTHER, kafka_view_password=VIEW_KAFKA))
    assert (config.worker_token, config.token) == (TOKEN, OTHER)


# The command line.


def test_config_show_masks_the_web_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZC_VIEW_TOKEN", TOKEN)
    monkeypatch.setenv("ZC_WORKER_WEB_TOKEN", OTHER)
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli.main(["config", "show"]) == 0
    printed = out.getvalue()
    assert TOKEN not in printed and OTHER not in printed
    shown = json.loads(printed[printed.index("{") :])
    assert shown["view_token"] == shown["worker_web_token"] == "********"


def test_a_short_web_token_is_refused() -> None:
    with pytest.raises(ValueError, match="16 characters"):
        Settings(view_token="short")
    with pytest.raises(ValueError, match="16 characters"):
        Settings(metrics_token="short")


@pytest.mark.parametrize("command", ["bridge", "sink"])
def test_the_bridge_and_the_sink_say_which_setting_their_metrics_need(
    command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("ZC_METRICS_HOST", "0.0.0.0")
    monkeypatch.setenv("ZC_STACK_HOME", str(tmp_path))
    monkeypatch.setenv("ZC_KAFKA_BRIDGE_PASSWORD", "unit-bridge-password")
    monkeypatch.setenv("ZC_KAFKA_SINK_PASSWORD", "unit-sink-password")
    monkeypatch.setenv("ZC_MQTT_BRIDGE_PASSWORD", "unit-mqtt-bridge-password")
    monkeypatch.setenv("ZC_INFLUX_SINK_TOKEN", "unit-influx-sink-token")
    assert cli.main([command]) == 2  # before it reaches for Kafka
    assert "set ZC_METRICS_TOKEN" in capsys.readouterr().err.replace("Set", "set")


def test_the_worker_command_says_which_setting_to_set(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("ZC_WORKER_WEB_HOST", "0.0.0.0")
    monkeypatch.setenv("ZC_STACK_HOME", str(tmp_path))
    monkeypatch.setenv("ZC_KAFKA_WORKER_PASSWORD", WORKER_KAFKA.get_secret_value())  # a complete config
    assert cli.main(["worker"]) == 2  # before it reaches for Kafka
    assert "set ZC_WORKER_WEB_TOKEN" in capsys.readouterr().err.replace("Set", "set")


async def test_the_workers_ready_page_names_what_keeps_it_from_serving(tmp_path: Path) -> None:
    """No consumer has partitions in a unit test: not ready, and it says why, without a token."""
    async with TestClient(TestServer(_worker_web(tmp_path, host="0.0.0.0", token=TOKEN))) as client:
        answer = await client.get("/ready")
        body = await answer.json()
        assert answer.status == 503 and body["status"] == "fail"
        assert body["failing"] == ["caught_up", "partitions_assigned"] and body["checks"]["loops"] is True
