"""Indicator updates for the property tests: text with the characters line protocol and JSON
escape, instants with offsets, values of every kind (extremes, and ties of the shortest float
repr), and the indicator stage's own window updates (every window, year to date included)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import strategies as st

from schemas.indicator import IndicatorUpdate
from streams.indicators.catalogue import INDICATORS
from streams.indicators.window_state import WindowUpdate

# What line protocol escapes (, = space newline), what a string field escapes (" \), what
# JSON escapes (" \ controls) and what a %-template must not read as a slot.
ESCAPED = 'ab ,=\n"\\%é1_\x00\x7f'
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
# Tag text with those characters, so that escaping is exercised often.
TAG_TEXT = st.one_of(TEXT, st.text(st.sampled_from(ESCAPED), max_size=8))
# Text JSON writes without an escape: what the Rust batcher reads in place (an escape is Python's).
PLAIN_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"], exclude_characters='"\\'), max_size=12
)
PLAIN_TAG_TEXT = st.one_of(PLAIN_TEXT, st.text(st.sampled_from("ab ,=%é1_\x7f"), max_size=8))
# Floats of 15 or 16 integer digits and a few sixteenths: where the two shortest digit strings
# that read back can be equally near the float, and repr takes the even one (...312.25 -> ...312.2).
TIE_FLOATS = st.builds(
    lambda sign, whole, sixteenths: sign * (whole + sixteenths / 16),
    st.sampled_from([1, -1]), st.integers(2**46, 2**51), st.integers(1, 15),
)  # fmt: skip
# Finite floats, often at the ends: the largest, the smallest normal and subnormal, zeros.
EXTREME_FLOATS = st.sampled_from(
    [1.7976931348623157e308, -1.7976931348623157e308, 2.2250738585072014e-308, 5e-324, -5e-324, 0.0, -0.0,
     1e16, 1e-5, 0.0001, 9007199254740993.0, 123456789012345680.0]
)  # fmt: skip
VALUES = st.floats(allow_nan=False, allow_infinity=False) | EXTREME_FLOATS | TIE_FLOATS
# Integers as InfluxDB (and the Rust batcher) hold them: beyond, a record is the model's to judge.
INT64 = st.integers(-(2**63), 2**63 - 1)
INSTANTS = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(-timedelta(hours=9, minutes=30))]),
)  # fmt: skip


@st.composite
def updates(
    draw: st.DrawFn, text: st.SearchStrategy[str] = TEXT, tag_text: st.SearchStrategy[str] = TAG_TEXT
) -> IndicatorUpdate:
    """Any update the model accepts, its text drawn from ``text`` and ``tag_text``."""
    start = draw(INSTANTS)
    return IndicatorUpdate(
        schema_version=draw(st.just(1) | INT64),
        indicator=draw(tag_text.filter(bool)),
        unit=draw(text),
        window=draw(st.sampled_from(["1m", "15m", "1h", "1d", "ytd"]) | tag_text),
        window_start=start,
        window_end=draw(st.just(start + timedelta(hours=1)) | INSTANTS),
        dimensions=draw(st.dictionaries(tag_text.filter(bool), tag_text, max_size=4)),
        value=draw(VALUES | st.integers(-(10**6), 10**6)),
        final=draw(st.booleans()),
        revision=draw(st.integers(0, 10**6) | INT64.filter(lambda n: n >= 0)),
        updated_at=draw(INSTANTS),
    )


# The indicator stage's updates: its catalogue's indicators, its windows (0: year to date).
DIMENSIONS = st.lists(st.tuples(TAG_TEXT.filter(bool), TAG_TEXT), max_size=4, unique_by=lambda kv: kv[0]).map(
    tuple
)
window_updates = st.builds(
    WindowUpdate,
    indicator=st.sampled_from(sorted(INDICATORS)),
    dimensions=DIMENSIONS,
    size=st.sampled_from([0, 60, 900, 3600, 86400]),
    start=st.integers(min_value=0, max_value=4_102_444_800),
    total=VALUES | st.integers(min_value=-(10**15), max_value=10**15),
    count=st.integers(min_value=0, max_value=10_000),
    final=st.booleans(),
    revision=st.integers(min_value=0, max_value=10**12),
)
# The flush's clock: in UTC as the agent's, sometimes with an offset (the model converts it).
NOW = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, UTC, UTC, timezone(timedelta(hours=1))]),
)  # fmt: skip


# Line heads as the sink prefixes points: none, or a bucket's.
Head = Callable[[str], str]
Point = tuple[str, str]  # (key, line), head included


def no_head(window: str) -> str:
    return ""


def bucket_head(window: str) -> str:
    return f"b-{window}\x1f"


HEADS = st.sampled_from([no_head, bucket_head])
