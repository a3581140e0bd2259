"""`zerocarbon simulate`: its options and what it does with them (cli.py only mounts it)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from config.argument_types import aware_instant
from sensors.device_side_config import DeviceSideConfig, add_login_arguments, publishing_login

if TYPE_CHECKING:
    from sensors.simulation_run import SimulationPlan

HELP = "publish a simulated territory's readings over MQTT, with faults; print what was sent (JSON)"
DESCRIPTION = """\
Simulate the territory's devices (meters, PV, air and weather stations, CO2 sensors, bikes,
buses, sea buses, traffic counters, car parks, charging points, shared cars), placed in the
28 communes in proportion to their population, and publish their readings at QoS 1 on
<topic-root>/<commune>/<family>/<device_id>. The same --seed (and --start) gives the same
messages. At the end, print a JSON report: messages per family and per injected fault, and
what validation should accept, dead-letter and count as duplicates. --report-events FILE also
writes which messages carry which fault (event id, event time, topic, payload digest), to
reconcile each one with the typed and dead-letter topics (docs/devices.md).

Validation accepts only devices in the registry: write one for the fleet with
--write-registry DIR and start the worker with ZC_REFERENCE_DIR=DIR (docs/devices.md).

It publishes as the gateway principal, allowed on every device topic zc/+/+/+ (docs/security.md);
on the local stack the gateway may also use zc-sandbox/#, which no bridge reads: a load that
must not reach Kafka goes there (--topic-root zc-sandbox/<name>).

Examples:
  zerocarbon simulate --devices 2000 --rate 500 --duration 60
  zerocarbon simulate --devices 20000 --rate 50000 --count 1000000 --topic-root zc-sandbox/load
  zerocarbon simulate --devices 500 --speedup 60 --duration 600 --malformed 0.01 --late 0.02
  zerocarbon simulate --devices 300 --count 3000 --rate 2000 --late 0.03 --report-events faults.json
"""


def _iso_time(text: str) -> float:
    return aware_instant(text).timestamp()


def _rate(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not a rate between 0 and 1")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `zerocarbon simulate`."""
    what = parser.add_argument_group("what to simulate")
    what.add_argument("--devices", type=int, default=1000, help="number of devices (default 1000)")
    what.add_argument(
        "--mix",
        default="energy=0.55,environment=0.15,mobility=0.30",
        help="share of devices per family (default %(default)s)",
    )
    what.add_argument("--seed", type=int, default=1, help="the same seed gives the same readings (default 1)")
    what.add_argument(
        "--start",
        type=_iso_time,
        help="simulated time of the first reading, ISO 8601 with offset (default: chosen so "
        "that the run ends now, as validation refuses readings from the future)",
    )
    pace = parser.add_argument_group("how fast and how long")
    pace.add_argument(
        "--rate",
        type=float,
        default=100.0,
        help="at most this many readings per second, 1 to 50000+ (default 100; 0: no cap)",
    )
    pace.add_argument(
        "--speedup",
        type=float,
        help="simulated seconds per real second (1: real time; 3600: an hour a second); "
        "default: none, the rate alone sets the pace",
    )
    pace.add_argument("--duration", type=float, help="stop after this many seconds")
    pace.add_argument("--count", type=int, help="stop after this many messages (then send what devices hold)")
    where = parser.add_argument_group("where to publish")
    where.add_argument(
        "--topic-root",
        default="zc",
        help="what comes before <commune>/<family>/<device_id> (default zc; zc-sandbox/<name>: "
        "topics no bridge reads)",
    )
    where.add_argument(
        "--publisher",
        choices=["auto", "paho", "socket"],
        default="auto",
        help="paho: the embeddable device client (about 6 000/s); socket: raw QoS 1 socket, "
        "50 000+/s; auto: paho up to 2 000/s (default)",
    )
    add_login_arguments(where)
    where.add_argument(
        "--write-registry",
        type=Path,
        metavar="DIR",
        help="write a reference data folder with the fleet in its device registry to DIR and "
        "exit (start the worker with ZC_REFERENCE_DIR=DIR)",
    )
    reporting = parser.add_argument_group("what to report")
    reporting.add_argument(
        "--report-events",
        type=Path,
        metavar="FILE",
        help="also write to FILE (JSON) every message that carries a fault, listed per fault: "
        "event id, event time, topic, payload digest (the printed report keeps the counts)",
    )
    faults = parser.add_argument_group("faults, each a rate between 0 and 1 (default 0)")
    for name, text in (
        ("malformed", "share of readings sent as broken payloads (dead-lettered)"),
        ("duplicate", "share of readings sent twice with the same event id"),
        ("out-of-order", "share of readings sent after the device's next reading"),
        ("late", "share of readings sent 10 min to 3 h after their time"),
        ("clock-skew", "share of devices whose clock is 1-30 min behind or up to 4 min ahead"),
        ("offline", "chance per reading that the device goes offline 30 min-6 h, then flushes"),
        ("index-reset", "share of index readings whose counter falls back to zero"),
    ):
        faults.add_argument(f"--{name}", type=_rate, default=0.0, help=text)


def run(args: argparse.Namespace, config: DeviceSideConfig) -> int:
    """Run `zerocarbon simulate` with parsed ``args``; print the report; exit code."""
    from reference.loader import load_reference
    from sensors.fleet import build_fleet, parse_mix
    from sensors.fleet_registry import write_reference_dir
    from sensors.mqtt_publishers import MqttTarget
    from sensors.simulation_run import run_simulation

    reference_dir = config.reference_dir
    reference = load_reference(reference_dir)
    try:
        mix = parse_mix(args.mix)
        if args.write_registry:
            fleet = build_fleet(args.devices, list(reference.communes.values()), mix)
            out = write_reference_dir(fleet, reference_dir, args.write_registry)
            print(json.dumps({"reference_dir": str(out), "devices_added": len(fleet)}))
            return 0
        plan = _plan(args, mix)
        if args.report_events is not None and not args.report_events.parent.is_dir():
            # Said before publishing, not after a run whose details could not be kept.
            raise ValueError(f"--report-events: no folder {args.report_events.parent}")
        login = publishing_login(config, args.username, args.password_file)
    except ValueError as exc:
        print(f"zerocarbon simulate: {exc}", file=sys.stderr)
        return 2
    target = MqttTarget(
        config.mqtt_host, config.mqtt_port, login.username, login.password, ca_file=config.mqtt_ca_file
    )
    report = run_simulation(plan, reference, target, args.report_events)
    print(json.dumps(report, indent=2))
    return 0 if report["acknowledged"] == report["messages"] else 1


def _plan(args: argparse.Namespace, mix: dict[str, float]) -> SimulationPlan:
    from sensors.faults import FaultRates
    from sensors.simulation_run import SimulationPlan

    return SimulationPlan(
        devices=args.devices,
        mix=mix,
        seed=args.seed,
        rate=args.rate or None,
        speedup=args.speedup,
        duration=args.duration,
        count=args.count,
        start=args.start,
        topic_root=args.topic_root,
        faults=FaultRates(
            malformed=args.malformed,
            duplicate=args.duplicate,
            out_of_order=args.out_of_order,
            late=args.late,
            clock_skew=args.clock_skew,
            offline=args.offline,
            index_reset=args.index_reset,
        ),
        publisher=args.publisher,
    )
