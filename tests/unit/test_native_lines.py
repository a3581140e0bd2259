"""The Rust batcher (``zerocarbon_native_lines``) on records the indicator stage does not
write, and on batches: for any record, either the batcher declines it (stops there, leaving
nothing behind), or the model accepts it and ``head(window)`` + the model's key and line are
byte-identical to the batcher's. A record the model refuses can never be written by the Rust
path, so it still reaches the dead letters with the model's reason, and the points keep the
model's order.

That it writes the model's line for every record the stage writes, and reads exactly the
contract's keys, is tests/unit/test_indicator_contract_agreement.py.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import AwareDatetime, ValidationError
from zerocarbon_native_lines import IndicatorLineBatcher

from schemas.indicator import INDICATOR_UPDATE_WIRE, IndicatorUpdate
from sinks.line_protocol import indicator_line
from tests.unit.indicator_update_samples import (
    HEADS,
    PLAIN_TAG_TEXT,
    PLAIN_TEXT,
    TAG_TEXT,
    TEXT,
    Head,
    Point,
    bucket_head,
    no_head,
    updates,
)

BUDGET = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FIELDS = list(INDICATOR_UPDATE_WIRE.json_keys)
INSTANT_FIELDS = [
    INDICATOR_UPDATE_WIRE.json_key[name]
    for name, info in IndicatorUpdate.model_fields.items()
    if info.annotation is AwareDatetime
]

# In points and keys before a record is given to the batcher: a declined record leaves them so.
SENTINEL: Point = ("\x00earlier key", "\x00earlier line")


def dumped(update: IndicatorUpdate) -> bytes:
    """The record as the indicator stage writes it."""
    return update.model_dump_json(by_alias=True).encode()


def with_fields(update: IndicatorUpdate, **changes: Any) -> bytes:
    """The written update with some fields' JSON values replaced."""
    return json.dumps({**json.loads(dumped(update)), **changes}, ensure_ascii=False).encode()


STARTS = [datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 1, tzinfo=UTC)]
ONE_UPDATE = IndicatorUpdate(
    indicator="energy_consumed_kwh", unit="kWh", window="1h", window_start=STARTS[0], window_end=STARTS[1],
    dimensions={"commune": "17300"}, value=1.5, updated_at=STARTS[1],
)  # fmt: skip


def model_point(raw: bytes | None, head: Head) -> Point | None:
    """The reference: ``indicator_line`` of the validated update; None: the model refuses it."""
    if raw is None:
        return None
    try:
        point = indicator_line(IndicatorUpdate.model_validate_json(raw))
    except ValidationError:
        return None
    prefix = head(point.window)
    return prefix + point.key, prefix + point.line


def native_point(batcher: IndicatorLineBatcher, raw: bytes) -> Point | None:
    """The batcher's point for ``raw`` (given after a tombstone it is told to skip); None: declined."""
    points = dict([SENTINEL])
    keys: list[str | None] = [SENTINEL[0]]
    stop = batcher.into([None, raw], 1, points, keys)
    if stop == 1:
        assert points == dict([SENTINEL])  # a declined record leaves nothing behind
        assert keys == [SENTINEL[0]]
        return None
    assert stop == 2
    assert len(keys) == 2
    key = keys[1]
    assert key is not None
    assert list(points) == [SENTINEL[0], key]
    return key, points[key]


# Values the batcher must judge, as JSON text: every JSON type, and what JSON writes in ways
# Python's json module does not (big and odd numbers, escapes, duplicate keys).
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)
NUMBER_LITERALS = [
    "0", "-0", "0.0", "-0.0", "0e0", "-0e-0", "1", "-1", "1.0", "1E2", "1e+2", "1.5e-3", "1e400", "-1e400",
    "1e-400", "5e-324", "2.4703282292062328e-324", "2.4703282292062327e-324", "1.7976931348623158e308",
    "9007199254740992", "-9007199254740992", "9007199254740993", "-9007199254740993",
    "9223372036854775807", "9223372036854775808", "-9223372036854775809", "18446744073709551615",
    "18446744073709551616", "1" * 40, "-" + "9" * 40, "1" * 40 + ".0", "0." + "0" * 30 + "1",
]  # fmt: skip
ODD_LITERALS = [
    "NaN", "-NaN", "Infinity", "-Infinity", "nan", "inf", "01", "-01", "1.", ".5", "+1", "0x10", "1e", "--1",
    '"NaN"', '"1.5"', '"12"', '"true"', "true", "false", "null", "[]", "{}", "[1]", '{"a":1}',
    '"k\\"Wh"', '"\\/"', '"\\u0041"', '"a\\nb"', '"\\ud800"', '"\\ud83d\\ude00"', '"\\u00e9"', '""',
    '"indicator.update"', '"indicator.update "', '"Indicator.update"', '"\\u0069ndicator.update"',
    '{"commune":"17300","commune":"17000"}', '{"commune":"","commune":"17300"}', '{"a":"1","b":"2"}',
    '{"\\u0061":"1"}', '{"a":"\\u0031"}', '{"a":null}', '{"a":1}', '{"":"x"}', '{"a":""}',
    '{"a b,=":"c d,="}',
]  # fmt: skip


@st.composite
def float_texts(draw: st.DrawFn) -> str:
    """A finite float written with more, fewer or exactly enough digits, or the exact midpoint
    between it and its neighbour (where only a correctly rounded parse gives the model's float)."""
    x = draw(st.floats(allow_nan=False, allow_infinity=False))
    form = draw(st.sampled_from(["repr", "digits", "exact", "midpoint"]))
    if form == "repr":
        return repr(x)
    if form == "digits":
        return f"{x:.{draw(st.integers(0, 25))}e}"
    if form == "exact":
        return str(Decimal(x))
    neighbour = math.nextafter(x, math.inf)
    if not math.isfinite(neighbour):
        return repr(x)
    return str((Decimal(x) + Decimal(neighbour)) / 2)


# Any day, and often the first and last ones, where an offset takes the instant out of the calendar.
CALENDAR_DAYS = st.dates() | st.sampled_from(
    [date(1, 1, 1), date(1, 1, 2), date(9999, 12, 30), date(9999, 12, 31)]
)


@st.composite
def instants(draw: st.DrawFn, days: st.SearchStrategy[date] = CALENDAR_DAYS) -> str:
    """A valid RFC 3339 instant with 0 to 6 fraction digits and an offset (Z or ±HH:MM)."""
    day = draw(days)
    clock = draw(st.times())
    fraction = draw(st.from_regex(r"\A(\.[0-9]{1,6})?\Z"))
    minutes = draw(
        st.integers(-(24 * 60 - 1), 24 * 60 - 1) | st.sampled_from([0, 1, -1, 60, -60, 1439, -1439])
    )
    if minutes == 0:
        offset = draw(st.sampled_from(["Z", "+00:00", "-00:00"]))
    else:
        offset = f"{'-' if minutes < 0 else '+'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    return f"{day.isoformat()}T{clock:%H:%M:%S}{fraction}{offset}"


@st.composite
def instant_like(draw: st.DrawFn) -> str:
    """Text shaped like an instant, in or out of range: Feb 29 of a non-leap year, year 0000,
    hour 24, second 60, offsets like +24:00 or +05:60, 7+ fraction digits, a space for T..."""
    year = draw(
        st.sampled_from([0, 1, 1600, 1900, 1969, 1970, 2000, 2023, 2024, 2100, 9999]) | st.integers(0, 9999)
    )
    month, day = draw(st.sampled_from([(2, 29), (2, 28), (2, 30), (4, 31), (12, 31), (1, 1)]) | st.tuples(
        st.integers(0, 13), st.integers(0, 32)
    ))  # fmt: skip
    hour, minute, second = draw(st.integers(0, 24)), draw(st.integers(0, 60)), draw(st.integers(0, 61))
    fraction = draw(st.from_regex(r"\A(\.[0-9]{0,9})?\Z"))
    offset = draw(
        st.sampled_from(["Z", "z", "+00:00", "-00:00", "+24:00", "-24:00", "+23:59", "-23:59", "+05:60",
                         "+0100", "+01", "", "+99:99", " Z", "Z "])
        | st.from_regex(r"\A[+-][0-9]{2}:[0-9]{2}\Z")
    )  # fmt: skip
    separator = draw(st.sampled_from(["T", "T", "T", "t", " ", "_"]))
    return (
        f"{year:04d}-{month:02d}-{day:02d}{separator}{hour:02d}:{minute:02d}:{second:02d}{fraction}{offset}"
    )


INSTANT_LIKE = st.from_regex(
    r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}"
    r"(\.[0-9]{1,8})?(Z|z|[+-][0-9]{2}:?[0-9]{2})?\Z"
)
VALUE_TEXTS = st.one_of(
    JSON_VALUES.map(lambda v: json.dumps(v, ensure_ascii=False)),
    JSON_VALUES.map(json.dumps),  # non-ASCII as \u escapes
    st.integers(-(2**70), 2**70).map(str),
    float_texts(),
    st.sampled_from(NUMBER_LITERALS + ODD_LITERALS),
    st.one_of(instant_like(), INSTANT_LIKE).map(lambda t: json.dumps(t)),
    TAG_TEXT.map(lambda t: json.dumps(t, ensure_ascii=False)),
)
INTEGER_TEXTS = st.one_of(st.integers(-(2**70), 2**70).map(str), st.sampled_from(NUMBER_LITERALS))
INSTANT_TEXTS = st.one_of(instants(), instant_like(), INSTANT_LIKE).map(json.dumps)
PLAIN_TAG_JSON = PLAIN_TAG_TEXT.map(lambda t: json.dumps(t, ensure_ascii=False))
# Values near what each field holds, so that many mutated records are still the batcher's to take.
FIELD_TEXTS: dict[str, st.SearchStrategy[str]] = {
    "schema": st.sampled_from(['"indicator.update"', '"indicator.update "', '"\\u0069ndicator.update"']),
    "schema_version": INTEGER_TEXTS,
    "indicator": PLAIN_TAG_JSON,
    "unit": PLAIN_TAG_JSON,
    "window": PLAIN_TAG_JSON,
    "window_start": INSTANT_TEXTS,
    "window_end": INSTANT_TEXTS,
    "dimensions": st.dictionaries(PLAIN_TAG_TEXT, PLAIN_TAG_TEXT, max_size=3).map(
        lambda d: json.dumps(d, ensure_ascii=False)
    ),
    "value": st.one_of(float_texts(), INTEGER_TEXTS),
    "final": st.sampled_from(["true", "false", "0", "1", '"true"', "null"]),
    "revision": INTEGER_TEXTS,
    "updated_at": INSTANT_TEXTS,
}
KEY_TEXTS = st.sampled_from(
    [json.dumps(f) for f in FIELDS]
    + ['"schema_name"', '"extra"', '"Schema"', '"window_start "', '""', '"\\u0069ndicator"', '"unit\\u0000"']
)


def record_text(fields: Sequence[tuple[str, str]], space: str) -> str:
    """A JSON object written from its (key text, value text) pairs, which may repeat a key."""
    items = [f"{key}{space}:{space}{value}" for key, value in fields]
    return "{" + space + f",{space}".join(items) + space + "}"


@st.composite
def mutated_records(draw: st.DrawFn) -> bytes:
    """A written update with one to three changes: a field's value replaced (often by one near what
    the field holds), a field removed, renamed, repeated or added, the fields reordered; whitespace
    between the tokens, sometimes bytes around the object."""
    record = json.loads(dumped(draw(updates(PLAIN_TEXT, PLAIN_TAG_TEXT) | updates())))
    fields = [(json.dumps(k), json.dumps(v, ensure_ascii=False)) for k, v in record.items()]
    for _ in range(draw(st.integers(1, 3))):
        change = draw(st.sampled_from(["replace", "replace", "remove", "rename", "repeat", "add", "reorder"]))
        at = draw(st.integers(0, len(fields) - 1)) if fields else 0
        if change == "replace" and fields:
            near = FIELD_TEXTS.get(json.loads(fields[at][0]), VALUE_TEXTS)
            fields[at] = (fields[at][0], draw(near | near | VALUE_TEXTS))
        elif change == "remove" and fields:
            del fields[at]
        elif change == "rename" and fields:
            fields[at] = (draw(KEY_TEXTS), fields[at][1])
        elif change == "repeat" and fields:
            fields.insert(draw(st.integers(0, len(fields))), (fields[at][0], draw(VALUE_TEXTS)))
        elif change == "add":
            fields.insert(draw(st.integers(0, len(fields))), (draw(KEY_TEXTS), draw(VALUE_TEXTS)))
        else:
            fields = draw(st.permutations(fields))
    text = record_text(fields, draw(st.sampled_from(["", "", " ", "\n", "\t", "\r\n "])))
    before = draw(st.sampled_from([b""] * 6 + [b" ", b"\n", b"\xef\xbb\xbf"]))
    after = draw(st.sampled_from([b""] * 8 + [b" ", b"\r\n", b"x", b",", b"}", b"\x00"]))
    return before + text.encode() + after


# Bytes no JSON text holds: each must stop the batcher however the rest reads.
BAD_BYTES = [b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xc0\xaf", b"\x00", b"\x1f", b"\n"]


@BUDGET
@given(mutated_records(), HEADS)
def test_a_mutated_record_is_either_declined_or_formatted_as_the_model_would(raw: bytes, head: Head) -> None:
    native = native_point(IndicatorLineBatcher(head), raw)
    if native is not None:  # never a line the model would refuse, never a different one
        assert native == model_point(raw, head)


@BUDGET
@given(
    updates(PLAIN_TEXT, PLAIN_TAG_TEXT),
    st.sampled_from(["indicator", "unit", "window"]),
    st.sampled_from(BAD_BYTES),
)
def test_a_string_with_a_byte_json_forbids_is_declined(
    update: IndicatorUpdate, field: str, bad: bytes
) -> None:
    text = json.dumps(getattr(update, field), ensure_ascii=False).encode()
    raw = dumped(update).replace(
        b'"' + field.encode() + b'":' + text, b'"' + field.encode() + b'":' + text[:-1] + bad + b'"', 1
    )
    assert raw != dumped(update)
    assert native_point(IndicatorLineBatcher(no_head), raw) is None
    assert model_point(raw, no_head) is None


@pytest.mark.parametrize("value", [562949953421312.25, -8796093022208.0625, 70368744177664.125])
def test_a_value_between_two_shortest_digit_strings_is_written_as_the_model_writes_it(value: float) -> None:
    """Two shortest strings read back, equally near: repr takes the even last digit (...312.2, not .3)."""
    raw = with_fields(ONE_UPDATE, value=value)
    native = native_point(IndicatorLineBatcher(no_head), raw)
    assert native is None or native == model_point(raw, no_head)


@st.composite
def small_updates(draw: st.DrawFn) -> IndicatorUpdate:
    """Updates of a small world, so that keys repeat within a batch with different lines."""
    start = draw(st.sampled_from(STARTS))
    return IndicatorUpdate(
        indicator=draw(st.sampled_from(["energy_consumed_kwh", "emissions kgco2e"])),
        unit=draw(st.sampled_from(["kWh", "kgCO2e"])),
        window=draw(st.sampled_from(["1h", "1d"])),
        window_start=start,
        window_end=start + timedelta(hours=1),
        dimensions=draw(
            st.sampled_from([{}, {"commune": "17300"}, {"commune": "17300", "sector": "résidentiel"}])
        ),
        value=draw(st.floats(allow_nan=False, allow_infinity=False)),
        final=draw(st.booleans()),
        revision=draw(st.integers(0, 3)),
        updated_at=start + timedelta(hours=2),
    )


BATCH_VALUES = st.one_of(
    small_updates().map(dumped),  # the batcher's
    small_updates().map(lambda u: dumped(u.model_copy(update={"unit": 'k"Wh'}))),  # an escape: the model's
    small_updates().map(lambda u: json.dumps(json.loads(dumped(u))).encode()),  # \u escapes: the model's
    small_updates().map(lambda u: with_fields(u, revision=-1)),  # refused
    small_updates().map(lambda u: with_fields(u, window_start="2026-01-01 00:00:00Z")),  # lax: the model's
    st.none(),  # a tombstone
    st.sampled_from([b"", b"not json", b"{", b"[]", b"null"]),  # refused
)


@BUDGET
@given(st.lists(BATCH_VALUES, max_size=12), HEADS)
def test_a_batch_gives_the_model_points_in_the_model_order(values: list[bytes | None], head: Head) -> None:
    points: dict[str, str] = {}
    keys: list[str | None] = []
    batcher = IndicatorLineBatcher(head)
    start = 0
    while start < len(values):
        stop = batcher.into(values, start, points, keys)
        assert start <= stop <= len(values)
        if stop == len(values):
            break
        point = model_point(values[stop], head)  # the caller decides where the batcher stopped
        if point is not None:
            points[point[0]] = point[1]
            keys.append(point[0])
        start = stop + 1

    expected_points: dict[str, str] = {}
    expected_keys: list[str] = []
    for raw in values:
        point = model_point(raw, head)
        if point is not None:
            expected_points[point[0]] = point[1]
            expected_keys.append(point[0])
    assert list(points.items()) == list(expected_points.items())  # same points, same order
    assert keys == expected_keys


def test_a_batch_stops_at_a_tombstone_and_at_what_only_the_model_may_judge() -> None:
    taken = dumped(ONE_UPDATE)
    values = [taken, None, taken, dumped(ONE_UPDATE.model_copy(update={"unit": 'k"Wh'})), taken, b"{"]
    points: dict[str, str] = {}
    keys: list[str | None] = []
    batcher = IndicatorLineBatcher(no_head)
    assert batcher.into(values, 0, points, keys) == 1
    assert batcher.into(values, 2, points, keys) == 3
    assert batcher.into(values, 4, points, keys) == 5
    assert batcher.into(values, 6, points, keys) == 6
    point = model_point(taken, no_head)
    assert point is not None
    assert points == dict([point])
    assert keys == [point[0]] * 3


@pytest.mark.parametrize(
    ("field", "number"),
    [
        ("schema_version", "9" * 4301),  # jiter refuses over 4 300 digits: "number out of range"
        ("schema_version", "-" + "9" * 4301),
        ("schema_version", "9" * 30),  # beyond i64: Python's to judge
        ("value", "1" + "0" * 4300 + ".5e-4300"),  # a finite float for serde, out of range for jiter
        ("value", "1" + "0" * 4400 + "e-4400"),
        ("value", "0." + "0" * 70 + "1"),  # a long number, fine for both: still Python's to judge
    ],
)
def test_a_long_number_is_left_to_python(field: str, number: str) -> None:
    raw = dumped(ONE_UPDATE).replace(b'"schema_version":1', b'"schema_version":' + number.encode())
    if field == "value":
        raw = dumped(ONE_UPDATE).replace(b'"value":1.5', b'"value":' + number.encode())
    assert number.encode() in raw
    assert native_point(IndicatorLineBatcher(no_head), raw) is None


def test_a_head_that_fails_leaves_the_record_to_python() -> None:
    def failing_head(window: str) -> str:
        raise KeyError(window)

    def not_text(window: str) -> str:
        return 42  # type: ignore[return-value]

    for head in (failing_head, not_text):
        assert native_point(IndicatorLineBatcher(head), dumped(ONE_UPDATE)) is None


def record_at(field: str, instant: str) -> bytes:
    return with_fields(ONE_UPDATE, **{field: instant})


@BUDGET
@given(st.sampled_from(INSTANT_FIELDS), instants() | instant_like(), HEADS)
def test_an_instant_gives_the_model_timestamp_or_is_declined(field: str, instant: str, head: Head) -> None:
    raw = record_at(field, instant)
    native = native_point(IndicatorLineBatcher(head), raw)
    if native is not None:
        assert native == model_point(raw, head)


@BUDGET
@given(st.sampled_from(INSTANT_FIELDS), instants(st.dates(date(1800, 1, 1), date(2200, 12, 31))))
def test_an_instant_of_the_common_subset_is_taken(field: str, instant: str) -> None:
    """Microseconds since 1970 are exact as floats from about 1685 to 2255: there, every instant of
    the RFC 3339 subset (0 to 6 fraction digits, Z or ±HH:MM) is the batcher's."""
    raw = record_at(field, instant)
    expected = model_point(raw, no_head)
    assert expected is not None
    assert native_point(IndicatorLineBatcher(no_head), raw) == expected


@pytest.mark.parametrize(
    "instant",
    [
        "0001-01-01T00:00:00Z", "0001-01-01T00:00:00-00:01", "9999-12-31T23:59:59Z",
        "9999-12-31T23:59:59+00:01", "1969-12-31T23:59:59.999999Z", "1969-12-31T23:59:59.5Z",
        "1970-01-01T00:00:00.000001Z", "1970-01-01T00:00:00.5-00:01", "2024-02-29T12:00:00Z",
        "2000-02-29T00:00:00Z", "2026-01-01T00:00:00+23:59", "2026-01-01T00:00:00-23:59",
        "2026-06-30T12:34:56.7+05:30", "2026-01-01T00:00:00-00:00",
    ],
)  # fmt: skip
def test_an_instant_at_the_edges_is_taken_with_the_model_timestamp(instant: str) -> None:
    raw = record_at("window_start", instant)
    expected = model_point(raw, bucket_head)
    assert expected is not None
    assert native_point(IndicatorLineBatcher(bucket_head), raw) == expected


@pytest.mark.parametrize(
    "instant",
    [
        "0001-01-01T00:00:00+00:01",  # before year 1 in UTC
        "9999-12-31T23:59:59-00:01",  # after year 9999 in UTC
        "2023-02-29T12:00:00Z", "2100-02-29T00:00:00Z", "0000-01-01T00:00:00Z", "2026-01-01T00:00:00+24:00",
        "2026-01-01T24:00:00Z", "2026-01-01T23:59:60Z", "2026-01-01T00:60:00Z", "2026-13-01T00:00:00Z",
        "2026-00-01T00:00:00Z", "2026-01-00T00:00:00Z", "2026-01-01T00:00:00+05:60", "2026-01-01T00:00:00",
        "2026-01-01T00:00:00.Z", "+2026-01-01T00:00:00Z", "2026-01-01T00:00:00+01",
    ],
)  # fmt: skip
@pytest.mark.parametrize("field", INSTANT_FIELDS)
def test_an_instant_the_model_refuses_is_declined(field: str, instant: str) -> None:
    raw = record_at(field, instant)
    assert model_point(raw, no_head) is None
    assert native_point(IndicatorLineBatcher(no_head), raw) is None
