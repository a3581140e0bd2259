"""The soak's command line (bench/soak.py): its options, their defaults and their checks."""

from __future__ import annotations

import argparse
from pathlib import Path

from results_file import RESULTS


def parse_args(argv: list[str] | None = None, description: str | None = None) -> argparse.Namespace:
    """The soak's options; ``description``: the help's text (soak.py's docstring)."""
    parser = argparse.ArgumentParser(
        prog="bench/soak.py", description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=30, help="how long the load runs (default 30)")
    parser.add_argument("--rate", type=float, default=2000, help="readings/s published (default 2000)")
    parser.add_argument(
        "--devices", type=int, default=5000,
        help="simulated devices (default 5000: at 2 000 readings/s, simulated time runs about 13 "
        "days an hour, so daily windows keep closing and the worker's state can stay flat)",
    )  # fmt: skip
    parser.add_argument(
        "--warmup-minutes", type=float, default=5,
        help="the RSS and lag rules start at the first sample at or after this (default 5)",
    )  # fmt: skip
    parser.add_argument("--sample-seconds", type=float, default=60, help="between samples (default 60)")
    parser.add_argument(
        "--settle-seconds", type=float, default=300,
        help="how long every group may take to drain after the load (default 300)",
    )  # fmt: skip
    parser.add_argument(
        "--lag-tolerance-seconds", type=float, default=10,
        help="how far, in seconds of a group's traffic, its peak lag may rise from the first half "
        "after the warm-up to the second and still count as bounded (default 10)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=1, help="the simulator's seed (default 1)")
    parser.add_argument(
        "--backfill", type=int, default=0,
        help="readings of history a second simulator publishes during the load (default 0: none)",
    )  # fmt: skip
    parser.add_argument("--backfill-rate", type=float, default=5000, help="its readings/s (default 5000)")
    parser.add_argument(
        "--backfill-after-minutes", type=float, default=2, help="when it starts in the load (default 2)"
    )
    parser.add_argument(
        "--backfill-days", type=float, default=7, help="how long ago its history starts (default 7)"
    )
    parser.add_argument(
        "--probe-interval", type=float, default=1.0,
        help="seconds between two readings of the live probe, which measures how late live figures "
        "are on the wall clock (default 1; 0: no probe)",
    )  # fmt: skip
    parser.add_argument(
        "--publisher", choices=("socket", "paho"), default="socket",
        help="the simulator's MQTT publisher (default socket: the load's own CPU stays small)",
    )  # fmt: skip
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help="folder of the JSON (default bench/results)"
    )
    parser.add_argument(
        "--keep-logs", action="store_true",
        help="keep the run's folder (logs, registry, spool) even when it passed",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.warmup_minutes >= args.minutes:
        parser.error("--warmup-minutes must be shorter than --minutes")
    if args.sample_seconds * 4 > (args.minutes - args.warmup_minutes) * 60:
        parser.error("take at least 4 samples after the warm-up: a shorter --sample-seconds")
    return args
