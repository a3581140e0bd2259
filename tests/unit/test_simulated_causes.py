"""The simulated territory was built with causes (sensors/load_shapes.py): heating follows the
cold, NO2 follows the traffic an hour later. Four winter weeks of a La Rochelle fleet, made
hourly as the indicator stage makes them (means of environment values, sums of counts, index
deltas spread over the interval they cover), then the causal analysis: it finds those two links
in their direction and sign, and none the simulator does not have (the reverse directions, and
pairs with no link between them)."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from analysis.evidence import analyse
from analysis.hypotheses import Hypothesis, Selector
from reference.loader import DEFAULT_DIR, load_reference
from sensors.fleet import DeviceSpec, build_fleet
from sensors.territory_stream import TerritoryStream

START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday in winter: homes are heated
END = START + timedelta(days=28)
COMMUNE = "17300"
KINDS = {"weather_station": 3, "gas_meter": 9, "traffic_counter": 8, "air_quality_station": 3}

TEMPERATURE = Selector("environment_value", (("quantity", "temperature"),))
NO2 = Selector("environment_value", (("quantity", "no2"),))
VEHICLES = Selector("traffic_vehicles")
GAS = Selector("energy_consumed_kwh", (("carrier", "natural_gas"), ("sector", "residential")))


def fleet() -> list[DeviceSpec]:
    chosen: list[DeviceSpec] = []
    counts: defaultdict[str, int] = defaultdict(int)
    for spec in build_fleet(300, list(load_reference(DEFAULT_DIR).communes.values())):
        kind = spec.kind.device_type
        wanted = kind in KINDS and counts[kind] < KINDS[kind] and spec.commune == COMMUNE
        if wanted and (kind != "gas_meter" or spec.sector == "residential"):
            chosen.append(spec)
            counts[kind] += 1
    assert counts == KINDS, counts
    return chosen


def hourly_series() -> dict[Selector, dict[str, dict[int, float]]]:
    values: defaultdict[Selector, defaultdict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    sums: defaultdict[Selector, defaultdict[int, float]] = defaultdict(lambda: defaultdict(float))
    last_index: dict[str, tuple[float, float]] = {}
    for emission in TerritoryStream(fleet(), START.timestamp(), 1):
        if emission.clock >= END.timestamp():
            break
        p = json.loads(emission.payload)
        t = datetime.fromisoformat(p["event_time"]).timestamp()
        hour = int(t // 3600) * 3600
        if p.get("quantity") in ("temperature", "no2"):
            values[TEMPERATURE if p["quantity"] == "temperature" else NO2][hour].append(p["value"])
        elif "intensity" in p:
            sums[VEHICLES][hour] += p["intensity"]
        elif p.get("carrier") == "natural_gas":
            meter = p["meter_id"]
            if meter in last_index:  # the delta spread over the interval it covers, as the stage does
                before, index = last_index[meter]
                first = int(before // 3600) * 3600
                share = (first + 3600 - before) / (t - before)
                sums[GAS][first] += (p["quantity"] - index) * share
                sums[GAS][first + 3600] += (p["quantity"] - index) * (1 - share)
            last_index[meter] = (t, p["quantity"])
    out = {s: {COMMUNE: {h: sum(v) / len(v) for h, v in hours.items()}} for s, hours in values.items()}
    return out | {s: {COMMUNE: dict(hours)} for s, hours in sums.items()}


def test_the_analysis_finds_the_simulators_causes_and_no_other_link() -> None:
    data = hourly_series()

    def hypothesis(name: str, cause: Selector, effect: Selector, *controls: Selector) -> Hypothesis:
        return Hypothesis(name, "", cause, effect, "commune", 6, 2, controls)

    hypotheses = [
        hypothesis("cold-drives-heating", TEMPERATURE, GAS),
        hypothesis("heating-drives-cold", GAS, TEMPERATURE),
        hypothesis("traffic-drives-no2", VEHICLES, NO2, TEMPERATURE),
        hypothesis("no2-drives-traffic", NO2, VEHICLES, TEMPERATURE),
        hypothesis("traffic-drives-heating", VEHICLES, GAS, TEMPERATURE),
        hypothesis("cold-drives-no2", TEMPERATURE, NO2),
    ]
    records = {r.hypothesis: r for r in analyse(hypotheses, lambda s: data.get(s, {}), START, END, END)}
    found = {name for name, r in records.items() if r.status == "evidence"}
    assert found == {"cold-drives-heating", "traffic-drives-no2"}, {n: r.p_value for n, r in records.items()}
    assert records["cold-drives-heating"].sign == -1  # colder, more gas
    assert records["traffic-drives-no2"].sign == 1
    assert all(r.n > 600 for r in records.values())
