"""`zerocarbon`: the single entry point of the service (stack, bridge, worker, demo, config)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from pydantic import ValidationError

from config.kafka_access import MissingTopics
from config.log_repeats import thin_out_repeats
from config.settings import Settings, config_file_path
from config.web_access import WebAccessRefused
from sensors.device_side_config import DeviceSideConfig
from stack.errors import StackError
from zerocarbon import service_secrets

Handler = Callable[[argparse.Namespace, Settings], int]

DESCRIPTION = """\
Streaming ingestion for the zero-carbon territory platform: devices publish over MQTT,
partners over Kafka; faust agents validate, enrich and aggregate the readings and keep the
programme's indicators up to date in InfluxDB.

Configuration: defaults < TOML file ($ZC_CONFIG, else ./zerocarbon.toml) < ZC_* variables
(e.g. ZC_KAFKA_PORT=29092). `zerocarbon config show` prints the result, secrets masked.
"""


def _stack(args: argparse.Namespace, settings: Settings) -> int:
    from stack import control
    from zerocarbon.component_configs import stack_config
    from zerocarbon.kafka_catalogue import declare_catalogue

    config = stack_config(settings)
    if args.action == "up":
        report = control.up(config)
        healthy = all(s["healthy"] for s in report)
        if healthy:
            declare_catalogue(settings)
        print(json.dumps(report, indent=2))
        return 0 if healthy else 1
    if args.action == "down":
        stopped = control.down(config)
        print(f"[stack] stopped: {', '.join(stopped) if stopped else 'nothing was running'}")
        return 0
    if args.action == "install":
        control.install(config)
        return 0
    report = control.status(config)
    print(json.dumps(report, indent=2))
    return 0 if all(s["healthy"] for s in report) else 1


def _kafka(args: argparse.Namespace, settings: Settings) -> int:
    from zerocarbon import kafka_setup_command

    return kafka_setup_command.run(args, settings)


def _influx(args: argparse.Namespace, settings: Settings) -> int:
    from stack.influx_provisioning import provision
    from zerocarbon.component_configs import influx_setup_config

    config = influx_setup_config(settings)
    done = provision(config, rotate=args.rotate)
    print(json.dumps({"influxdb": config.url, "tokens_dir": str(config.tokens_dir), **done}, indent=2))
    return 0


def _config(args: argparse.Namespace, settings: Settings) -> int:
    print(f"# config file: {config_file_path()} ({'found' if config_file_path().exists() else 'absent'})")
    print(json.dumps(settings.masked, indent=2))
    return 0


async def _until_signalled(run: Callable[[asyncio.Event], Awaitable[object]]) -> None:
    """Run a long-lived service until SIGINT or SIGTERM asks it to stop cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await run(stop)


def _bridge(args: argparse.Namespace, settings: Settings) -> int:
    from bridge.mqtt_to_kafka import MqttToKafkaBridge
    from bridge.status import read_statuses
    from schemas import kafka_principals
    from schemas.catalogue import raw_topic
    from schemas.families import FAMILIES
    from streams.kafka_admin import require_topics
    from zerocarbon.component_configs import bridge_config, bridge_status_dir, missing_kafka_password

    status_dir = bridge_status_dir(settings)
    if args.forget_session:
        from bridge.mqtt_sessions import forget_session
        from schemas.mqtt_principals import BRIDGE
        from zerocarbon.component_configs import mqtt_ca_file, mqtt_login

        login = mqtt_login(settings, BRIDGE)
        done = forget_session(
            settings.mqtt_host, settings.mqtt_port, args.client_id, login, ca_file=mqtt_ca_file(settings)
        )
        print(f"[bridge] session {args.client_id!r} {'discarded' if done else 'NOT discarded (no answer)'}")
        return 0 if done else 1
    if args.status:
        statuses = read_statuses(status_dir)
        print(json.dumps(statuses, indent=2))
        if not statuses:
            print(f"zerocarbon: no bridge status in {status_dir}: is a bridge running?", file=sys.stderr)
        return 0 if statuses and all(s["ready"] for s in statuses) else 1
    if missing := missing_kafka_password(settings, kafka_principals.BRIDGE):
        raise StackError(missing)
    config = bridge_config(settings, args.client_id)
    config.metrics.require_access()  # before it reaches for Kafka
    bridge = MqttToKafkaBridge(config)
    asyncio.run(require_topics(config.kafka, [raw_topic(family) for family in FAMILIES]))
    asyncio.run(_until_signalled(bridge.run))
    return 0


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from schemas import kafka_principals
    from streams.app import create_app
    from streams.kafka_admin import catalogue, require_topics
    from streams.worker_process import run_worker
    from zerocarbon.component_configs import missing_kafka_password, worker_config

    config = worker_config(settings)
    app = create_app(config)  # first: it refuses a page beyond loopback with no token
    if missing := missing_kafka_password(settings, kafka_principals.WORKER):
        raise StackError(missing)
    topics = [spec.name for spec in catalogue(config.partitions, used_by="zerocarbon worker")]
    asyncio.run(require_topics(config.kafka, topics))
    return run_worker(app, config, args.log_level)


def _sink(args: argparse.Namespace, settings: Settings) -> int:
    from schemas import kafka_principals
    from schemas.catalogue import DEAD_LETTER_TOPIC, INDICATOR_TOPIC
    from schemas.local_calendar import ZoneCalendar
    from sinks.carbon_trajectory import trajectory_in
    from sinks.indicator_sink import IndicatorSink, read_sink_statuses
    from sinks.one_sink import another_sink
    from sinks.sink_loops import Loop, run_until_one_dies
    from sinks.territory_rollup import run_territory_rollup
    from stack import influx_provisioning
    from streams.kafka_admin import require_topics
    from zerocarbon.component_configs import (
        missing_influx_token,
        missing_kafka_password,
        reference_dir,
        sink_config,
    )

    config = sink_config(settings)
    if args.status:
        statuses = read_sink_statuses(config.status_dir)
        print(json.dumps(statuses, indent=2))
        if not statuses:
            print("zerocarbon: no sink status file: is a sink running?", file=sys.stderr)
        healthy = [s["fresh"] and s["kafka_ready"] and not s.get("failed") for s in statuses]
        return 0 if statuses and all(healthy) else 1
    for missing in (
        missing_influx_token(settings, influx_provisioning.SINK),
        missing_kafka_password(settings, kafka_principals.SINK),
    ):
        if missing:
            raise StackError(missing)
    config.metrics.require_access()  # before it reaches for Kafka
    asyncio.run(require_topics(config.kafka, [INDICATOR_TOPIC, DEAD_LETTER_TOPIC]))
    if held := asyncio.run(another_sink(config.kafka, config.group)):
        raise StackError(held)
    sink = IndicatorSink(config)
    # The one process that reads every partition of zc.indicators also sums the territory.
    trajectory = trajectory_in(reference_dir(settings))  # None, said in the log: no trajectory file

    async def both(stop: asyncio.Event) -> None:
        loops: dict[str, Loop] = {"sink": sink.run}
        if trajectory is not None:
            calendar = ZoneCalendar(settings.time_zone)  # the worker's years
            loops["territory rollup"] = lambda s: run_territory_rollup(config.kafka, s, trajectory, calendar)
        await run_until_one_dies(loops, stop, sink.loop_died)  # LoopDied: exit 1, restarted

    asyncio.run(_until_signalled(both))
    return 0


def _schemas(args: argparse.Namespace, settings: Settings) -> int:
    from schemas.export import export_contracts
    from zerocarbon import __version__
    from zerocarbon.component_configs import contract_servers

    for path in export_contracts(args.directory, contract_servers(settings), __version__):
        print(path)
    return 0


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from zerocarbon.demo import run_demo

    return run_demo(settings, readings=args.readings)


def _view(args: argparse.Namespace, settings: Settings) -> int:
    from operators_view.server import serve
    from stack import influx_provisioning
    from zerocarbon.component_configs import missing_influx_token, view_config

    if missing := missing_influx_token(settings, influx_provisioning.READ):
        raise StackError(missing)
    config = view_config(settings)
    asyncio.run(_until_signalled(lambda stop: serve(config, stop)))
    return 0


def _devices(args: argparse.Namespace, settings: Settings) -> int:
    from zerocarbon import devices_command
    from zerocarbon.component_configs import devices_config

    return devices_command.run(args, devices_config(settings))


def _collect(args: argparse.Namespace, settings: Settings) -> int:
    from collectors import collect_command
    from zerocarbon.component_configs import collect_config

    return collect_command.run(args, collect_config(settings, reaches_kafka=not (args.list or args.check)))


def _device_side(run: Callable[[argparse.Namespace, DeviceSideConfig], int]) -> Handler:
    """A `simulate` or `replay` command, given its own config rather than the settings."""

    def handler(args: argparse.Namespace, settings: Settings) -> int:
        from zerocarbon.component_configs import device_side_config

        return run(args, device_side_config(settings))

    return handler


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zerocarbon", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--log-level",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log verbosity (default: the log_level setting, ZC_LOG_LEVEL, itself INFO by default)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    stack = sub.add_parser(
        "stack",
        help="the embedded local stack: Kafka (KRaft), Mosquitto, InfluxDB 2",
        description="Install on first use (cached under ZC_CACHE_DIR, keyed by version) and run "
        "Kafka on 9092 (SASL_SSL), Mosquitto on 8883 (TLS; 1883 in clear on the loopback only) "
        "and InfluxDB on 8086 as local processes bound to 127.0.0.1 (ZC_BIND_HOST), with a CA "
        "of their own. Data, logs, secrets and pid files live under ZC_STACK_HOME.",
    )
    stack.add_argument(
        "action",
        choices=["up", "down", "status", "install"],
        help="up: install, start and wait until all serve (idempotent); down: stop all; "
        "status: health and version of each as JSON, exit 1 if one is down; "
        "install: only install (and kcat with a librdkafka that logs in to Kafka 4)",
    )
    stack.set_defaults(handler=_stack)

    from zerocarbon import kafka_setup_command, supervised_platform

    supervised_platform.add_commands(sub)

    kafka = sub.add_parser(
        "kafka", help=kafka_setup_command.HELP, description=kafka_setup_command.DESCRIPTION
    )
    kafka.add_argument("action", choices=["setup"])
    kafka.set_defaults(handler=_kafka)

    from zerocarbon import mqtt_setup_command, tls_command

    for name, one_shot in (("mqtt", mqtt_setup_command), ("tls", tls_command)):
        setup = sub.add_parser(name, help=one_shot.HELP, description=one_shot.DESCRIPTION)
        one_shot.add_arguments(setup)
        setup.set_defaults(handler=one_shot.run)

    influx = sub.add_parser(
        "influx",
        help="set up InfluxDB's indicator buckets and scoped tokens (with the operator token)",
        description="With the operator token (ZC_INFLUX_TOKEN), on the InfluxDB at ZC_INFLUX_HOST: "
        "create the indicator buckets or align their retention (ZC_INFLUX_*RETENTION_DAYS), and "
        "make sure the sink's token (write on the two buckets only) and the readers' token (read "
        "on them only) exist; each is written to ZC_INFLUX_TOKENS_DIR/<sink|read>/token (mode "
        "0600), where the sink and the operators' page read it unless ZC_INFLUX_SINK_TOKEN or "
        "ZC_INFLUX_READ_TOKEN is set. Idempotent; `zerocarbon stack up` does the same for the "
        "local stack. See docs/security.md.",
    )
    influx.add_argument("action", choices=["setup"])
    influx.add_argument(
        "--rotate",
        action="store_true",
        help="replace both tokens even if they are fine (the old ones stop working: restart the "
        "sink, the page and Grafana)",
    )
    influx.set_defaults(handler=_influx)

    config = sub.add_parser("config", help="show the effective configuration (secrets masked)")
    config.add_argument("action", choices=["show"])
    config.set_defaults(handler=_config)

    bridge = sub.add_parser(
        "bridge",
        help="forward MQTT readings to Kafka (QoS 1, persistent session, ack after Kafka)",
        description="Subscribe to zc/<commune>/<family>/<device_id> at QoS 1 "
        "on a persistent MQTT 5 session, pack the readings arriving within ZC_BRIDGE_LINGER_MS "
        "into one Kafka record per (family, partition) on zc.raw.<family>, and acknowledge each "
        "MQTT message only once Kafka has confirmed it. Topics outside the tree go to "
        "zc.deadletter. Start several with distinct --client-id and ZC_BRIDGE_SHARED_GROUP to "
        "share the load. It logs in as the bridge principal (ZC_MQTT_BRIDGE_USERNAME), which may "
        "subscribe to the device topics and publish nothing (docs/security.md).",
    )
    bridge.add_argument(
        "--status",
        action="store_true",
        help="print every running bridge's counters (received, forwarded, in flight per family) "
        "and exit 0 if all are connected and fresh, 1 otherwise",
    )
    bridge.add_argument(
        "--forget-session",
        action="store_true",
        help="retire a bridge for good: discard its persistent MQTT session (given by --client-id) "
        "so that Mosquitto stops queueing messages for it",
    )
    bridge.add_argument(
        "--client-id",
        help="MQTT client id; keep it stable so the persistent session survives restarts "
        "(default: the bridge_client_id setting, ZC_BRIDGE_CLIENT_ID, itself zerocarbon-bridge)",
    )
    bridge.set_defaults(handler=_bridge)

    worker = sub.add_parser("worker", help="run the faust worker (the stream processing agents)")
    worker.set_defaults(handler=_worker)

    sink = sub.add_parser(
        "sink",
        help="write indicator updates from Kafka to InfluxDB, buffering through outages",
        description="Read zc.indicators, write one point per series and window start to InfluxDB "
        "(1-minute windows to ZC_INFLUX_MINUTE_BUCKET, the rest to ZC_INFLUX_BUCKET, both "
        "created at setup) with its write-only token, and republish the newest window of each series as a "
        "retained MQTT message under ZC_SINK_MQTT_TOPIC_ROOT. While InfluxDB is away, points "
        "wait in memory up to ZC_SINK_MEMORY_LIMIT_BYTES, then on disk (ZC_SINK_SPOOL_DIR), and "
        "are written oldest first when it returns; Kafka offsets are committed only for points "
        "on disk or in InfluxDB. Points InfluxDB refuses (400/422) go to zc.deadletter with its "
        "message. Being the one reader of every partition, it also publishes the territory's "
        "year-to-date emissions against its trajectory (reference/data/trajectory.csv). "
        "Run one sink per deployment.",
    )
    sink.add_argument(
        "--status",
        action="store_true",
        help="print the sink's counters (points written, retried, buffered in memory and on disk, "
        "rejected, write latency) and exit 0 if it is running and connected to Kafka",
    )
    sink.set_defaults(handler=_sink)

    schemas = sub.add_parser(
        "schemas",
        help="export the event contracts: JSON Schema per event type and the AsyncAPI 3 document",
        description="Write <Type>.schema.json for every event type and asyncapi.json describing "
        "every MQTT and Kafka channel (payloads, keys, partitions, producers, consumers). "
        "Generated from the code: never edit the output by hand.",
    )
    schemas.add_argument("action", choices=["export"])
    schemas.add_argument("directory", type=Path, help="folder to write into (created if missing)")
    schemas.set_defaults(handler=_schemas)

    demo = sub.add_parser(
        "demo",
        help="bring the stack up and send readings end to end, MQTT to InfluxDB, then print them",
    )
    demo.add_argument("--readings", type=int, default=12, help="how many readings to send")
    demo.set_defaults(handler=_demo)

    view = sub.add_parser(
        "view",
        help="serve the operators' live web page (figures and platform health, read-only)",
        description="Serve the operators' page on http://ZC_VIEW_HOST:ZC_VIEW_PORT/ (default "
        "127.0.0.1:8088): emissions and energy now and today by commune and sector, the year to "
        "date against the -30 % trajectory, mobility by mode, air quality against the WHO "
        "guidelines, and the platform's health (readings/s per producer, dead-letter rate and "
        "latest reasons, consumer lag, freshness, the sink's buffer). Figures update live over "
        "server-sent events every ZC_VIEW_REFRESH_SECONDS, and the sources (InfluxDB, Kafka, the "
        "worker's /counters, the status files) are polled only while a browser is connected. "
        "French and English; no asset from the internet. Anywhere but loopback it requires "
        "ZC_VIEW_TOKEN (open /?token=<token> once). See docs/operators-view.md.",
    )
    view.set_defaults(handler=_view)

    from zerocarbon import devices_command

    devices = sub.add_parser(
        "devices",
        help=devices_command.HELP,
        description=devices_command.DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    devices_command.add_arguments(devices)
    devices.set_defaults(handler=_devices)

    from collectors import collect_command
    from sensors import replay_command, simulate_command
    from zerocarbon import agreements_command, analyse_command, principals_command, share_command

    for name, command, handler in (
        ("simulate", simulate_command, _device_side(simulate_command.run)),
        ("replay", replay_command, _device_side(replay_command.run)),
        ("collect", collect_command, _collect),
        ("principals", principals_command, principals_command.from_settings),
        ("share", share_command, share_command.from_settings),
        ("agreements", agreements_command, agreements_command.from_settings),
        ("analyse", analyse_command, analyse_command.from_settings),
    ):
        subcommand = sub.add_parser(
            name,
            help=command.HELP,
            description=command.DESCRIPTION,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.add_arguments(subcommand)
        subcommand.set_defaults(handler=handler)
    return parser


def with_setting_defaults(args: argparse.Namespace, settings: Settings) -> argparse.Namespace:
    """Options not given take the settings' values (environment, then the config file)."""
    args.log_level = args.log_level or settings.log_level
    if hasattr(args, "client_id"):
        args.client_id = args.client_id or settings.bridge_client_id
    return args


def started_command(args: argparse.Namespace) -> str:
    """The command as zerocarbon/service_secrets.py names it (``stack up``, ``sink``); a
    ``--status`` run is named apart: it starts nothing and holds no secret."""
    if getattr(args, "status", False):
        return f"{args.command} --status"
    action = getattr(args, "action", None)
    return f"{args.command} {action}" if action else str(args.command)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"zerocarbon: invalid configuration:\n{exc}", file=sys.stderr)
        return 2
    with_setting_defaults(args, settings)
    if refused := service_secrets.refusal(settings, started_command(args)):
        print(f"zerocarbon: {refused}", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    thin_out_repeats()  # aiokafka's reconnection errors: one line per 10 s, with a count
    if args.log_level != "DEBUG":  # one "Authenticated as ..." line per Kafka connection
        logging.getLogger("aiokafka.conn").setLevel(logging.WARNING)
    handler: Handler = args.handler
    try:
        return handler(args, settings)
    except (StackError, MissingTopics) as exc:
        print(f"zerocarbon: {exc}", file=sys.stderr)
        return 1
    except WebAccessRefused as exc:
        print(f"zerocarbon: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
