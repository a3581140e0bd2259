"""The worker process: both agents on one faust app, its pages, and its exit status.

A loop that dies stops the worker as SIGTERM does (faust's own stop: the consumer stops, the
producer is flushed; the indicator state is not checkpointed), within a deadline
(streams/stop_deadline.py), and the exit status then says it died (``EXIT_LOOP_DIED``), so a
supervisor restarts it instead of trusting a clean exit.
"""

from __future__ import annotations

import gc
import logging
from collections import Counter

import faust

from config.log_repeats import thin_out_repeats
from config.metrics_targets import registered_target
from reference.loader import DEFAULT_DIR, ReferenceStore
from streams.indicators.agent import register_indicator_agent
from streams.indicators.flush_timings import FlushTimings
from streams.stop_deadline import STOP_DEADLINE_SECONDS, stop_within
from streams.validation.agent import register_validation_agent
from streams.validation.stage import ValidationCounters
from streams.worker_config import WorkerConfig
from streams.worker_health import EXIT_LOOP_DIED, WorkerHealth
from streams.worker_web import register_pages


class Worker(faust.Worker):
    """faust's worker, with aiokafka's repeated errors thinned out (config/log_repeats.py) on
    the handlers faust installs in place of the command line's. Named as faust's: its log lines
    (``[^Worker]: Ready``, which `zerocarbon.processes` waits for) carry the class name."""

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        super().on_setup_root_logger(logger, level)
        thin_out_repeats(logger)


def run_worker(app: faust.App, config: WorkerConfig, log_level: str) -> int:
    """Run ``app`` (streams/app.py create_app) until stopped; 0 after a requested stop,
    ``EXIT_LOOP_DIED`` after a loop died."""
    counters = ValidationCounters()
    store = ReferenceStore(config.reference_dir or DEFAULT_DIR)
    health = WorkerHealth(on_death=stop_within(STOP_DEADLINE_SECONDS, EXIT_LOOP_DIED))
    register_validation_agent(app, config, store, counters, health)
    indicator_counters: Counter[str] = Counter()
    timings = FlushTimings()
    register_indicator_agent(app, config, store, indicator_counters, health, timings)
    register_pages(app, counters, indicator_counters, health, timings, config.web_token)
    # Everything built so far (modules, reference data, the app) lives as long as the process:
    # out of the collector's way, it is not rescanned at every collection (+12 % measured on
    # the indicator benchmark).
    gc.freeze()
    try:
        with registered_target(config.metrics_targets, "worker", config.web_host, config.web_port):
            Worker(app, loglevel=log_level.lower()).execute_from_commandline()
    except SystemExit as stopped:
        if health.failed:
            return EXIT_LOOP_DIED
        return int(stopped.code or 0)
    return EXIT_LOOP_DIED if health.failed else 0
