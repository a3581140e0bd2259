"""One refresh of the page: every figure and health source read once, as one JSON document.

Each source may be away (InfluxDB restarting, no worker running...): its part of the page is
then empty and ``sources`` says why, the rest still updates.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from analysis.hypotheses import HypothesisError, load_hypotheses
from operators_view import territory_figures
from operators_view.causal_evidence_rows import current_evidence
from operators_view.consumer_lag import ConsumerLagReader
from operators_view.dead_letter_tail import DeadLetterTail
from operators_view.health_sources import (
    read_bridges,
    read_sinks,
    read_worker_counters,
    sink_state,
    worker_counters_url,
)
from operators_view.indicator_reader import IndicatorReader, IndicatorRows, Instants
from operators_view.producer_rates import CounterSample, ValidationRates, validation_rates
from operators_view.view_config import ViewConfig
from reference.loader import load_reference
from schemas.environment import UNIT_OF
from schemas.local_calendar import ZoneCalendar
from streams.indicators.catalogue import INDICATORS

log = logging.getLogger("zerocarbon.view")


def hypothesis_questions(reference_dir: Path) -> dict[str, dict[str, str]]:
    """Each hypothesis's question in each of the page's languages, from the hypotheses file the
    analysis reads; none when it is refused (the page still shows the evidence, by name)."""
    try:
        hypotheses = load_hypotheses(reference_dir / "hypotheses.toml", frozenset(INDICATORS))
    except (OSError, HypothesisError) as exc:
        log.warning("the hypotheses' questions are not shown: %s", exc)
        return {}
    return {h.name: h.questions() for h in hypotheses}


def _failure(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__


class PageSnapshots:
    """The page's sources, opened when the first browser connects and closed after the last."""

    def __init__(self, config: ViewConfig) -> None:
        self.config = config
        reference = load_reference(config.reference_dir)
        self.commune_names = {code: commune.name for code, commune in reference.communes.items()}
        self.who_guidelines = dict(reference.who_daily_guidelines)
        self.units = {quantity.value: unit for quantity, unit in UNIT_OF.items()}
        self.groups = {config.worker_group: "worker", config.sink_group: "sink"}
        self.calendar = ZoneCalendar(config.time_zone)
        self.questions = hypothesis_questions(config.reference_dir)
        self._session: aiohttp.ClientSession | None = None
        self._reader: IndicatorReader | None = None
        self._lag: ConsumerLagReader | None = None
        self._tail: DeadLetterTail | None = None
        self._counters: CounterSample | None = None
        self._sinks: dict[str, dict[str, Any]] = {}  # name -> the last status with a write rate

    async def open(self) -> None:
        self._session = aiohttp.ClientSession()
        self._reader = IndicatorReader(self.config.influx, self.config.evidence_bucket)
        self._tail = DeadLetterTail(self.config.kafka, self.config.dead_letters_kept)
        self._tail.start()

    async def close(self) -> None:
        if self._tail is not None:
            await self._tail.close()
        if self._lag is not None:
            await self._lag.close()
        if self._session is not None:
            await self._session.close()
        if self._reader is not None:
            self._reader.close()
        self._session = self._reader = self._lag = self._tail = None
        self._counters = None
        self._sinks.clear()

    async def snapshot(self) -> dict[str, Any]:
        """Every figure of the page, now."""
        at = Instants.at(datetime.now(UTC), self.calendar)
        sources: dict[str, str] = {}
        indicators, counters, lag = await asyncio.gather(
            self._indicators(at, sources), self._validation(sources), self._consumer_lag(sources)
        )
        health: dict[str, Any] = {
            "validation": self._validation_part(counters),
            "producers": self._producers(counters, indicators, at),
            "dead_letters": [asdict(line) for line in self._tail.latest()] if self._tail else [],
            "lag": lag,
            "sink": self._sink(),
            "bridges": [asdict(bridge) for bridge in read_bridges(self.config.bridge_status_dir)],
        }
        if self._tail is not None and self._tail.error:
            sources["dead_letters"] = self._tail.error
        return {
            "generated_at": at.now.isoformat(),
            "day": at.day.isoformat(),
            "hour": at.hour.isoformat(),
            **self._territory(indicators, at),
            "health": health,
            "sources": sources,
        }

    async def _indicators(self, at: Instants, sources: dict[str, str]) -> IndicatorRows | None:
        if self._reader is None:
            return None
        try:
            return await asyncio.to_thread(self._reader.read, at)
        except Exception as exc:  # any failure of the source shows on the page
            sources["influxdb"] = _failure(exc)
            return None

    async def _validation(self, sources: dict[str, str]) -> ValidationRates | None:
        if self._session is None:
            return None
        try:
            counters = await read_worker_counters(
                self._session, worker_counters_url(self.config.worker_url), self.config.worker_token
            )
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            sources["worker"] = _failure(exc)
            return None
        sample = CounterSample(time.monotonic(), counters)
        rates = validation_rates(self._counters, sample)
        self._counters = sample
        return rates

    async def _consumer_lag(self, sources: dict[str, str]) -> list[dict[str, Any]]:
        try:
            if self._lag is None:
                reader = ConsumerLagReader(self.config.kafka)
                try:
                    await reader.start()
                except BaseException:
                    await reader.close()
                    raise
                self._lag = reader
            lags = await asyncio.wait_for(self._lag.lag(list(self.groups)), timeout=10)
        except Exception as exc:  # Kafka away: the rest of the page still updates
            sources["kafka"] = _failure(exc)
            if self._lag is not None:
                await self._lag.close()
                self._lag = None
            return []
        return [{**asdict(lag), "role": self.groups.get(lag.group, "")} for lag in lags]

    def _territory(self, rows: IndicatorRows | None, at: Instants) -> dict[str, Any]:
        if rows is None:
            return {
                "territory": None,
                "by_commune": [],
                "by_sector": [],
                "mobility": [],
                "air": [],
                "evidence": [],
            }
        energy = territory_figures.emissions_and_energy(
            rows.emissions_and_energy, at.day, at.hour, self.commune_names
        )
        air = territory_figures.air_quality(
            rows.air, rows.exceedances, self.who_guidelines, self.units, self.commune_names
        )
        return {
            "territory": {
                **asdict(energy.totals),
                "trajectory": asdict(territory_figures.trajectory(rows.territory)),
            },
            "by_commune": [asdict(row) for row in energy.by_commune],
            "by_sector": [asdict(row) for row in energy.by_sector],
            "mobility": [
                asdict(row) for row in territory_figures.mobility_by_mode(rows.mobility, at.day, at.hour)
            ],
            "air": [asdict(row) for row in air],
            "evidence": current_evidence(rows.evidence, self.questions, self.commune_names),
        }

    @staticmethod
    def _validation_part(rates: ValidationRates | None) -> dict[str, Any] | None:
        if rates is None:
            return None
        return {
            "received_per_second": rates.received_per_second,
            "dead_letters_per_second": rates.dead_letters_per_second,
            "dead_letter_share": rates.dead_letter_share,
            "dead_letter_share_since_start": rates.dead_letter_share_since_start,
            "balanced": rates.balanced,
            "reasons": dict(sorted(rates.reasons.items(), key=lambda kv: -kv[1])),
        }

    @staticmethod
    def _producers(
        rates: ValidationRates | None, rows: IndicatorRows | None, at: Instants
    ) -> list[dict[str, Any]]:
        freshness = (
            territory_figures.producer_freshness(
                rows.producer_last_events, rows.producer_completeness, at.now
            )
            if rows is not None
            else {}
        )
        out: dict[str, dict[str, Any]] = {}
        for rate in rates.producers if rates else []:
            out[rate.producer] = {**asdict(rate), "last_event_age_seconds": None, "completeness": None}
        for producer, fresh in freshness.items():
            row = out.setdefault(
                producer,
                {"producer": producer, "readings_per_second": None, "dead_letters_per_second": None,
                 "accepted": None, "duplicates": None, "dead_lettered": None},
            )  # fmt: skip
            row["last_event_age_seconds"] = fresh.last_event_age_seconds
            row["completeness"] = fresh.completeness
        return sorted(
            out.values(),
            key=lambda r: (
                -(r["readings_per_second"] or 0.0),
                r["last_event_age_seconds"] or 1e18,
                r["producer"],
            ),
        )

    def _sink(self) -> dict[str, Any] | None:
        statuses = read_sinks(self.config.sink_status_dir)
        if not statuses:
            return None
        status = statuses[0]
        name = str(status.get("name", "sink"))
        state = sink_state(status, self._sinks.get(name))
        if self._sinks.get(name, {}).get("updated_at") != status.get("updated_at"):
            self._sinks[name] = {**status, "points_written_per_second": state.points_written_per_second}
        return asdict(state)
