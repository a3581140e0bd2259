"""Indicator updates for the sink's property tests: text with the characters line protocol
escapes, instants with offsets, values of every kind (ties of the shortest float repr too)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import strategies as st

from schemas.indicator import IndicatorUpdate

TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
# Tag text with the characters line protocol escapes, so escaping is exercised often.
TAG_TEXT = st.one_of(TEXT, st.text(st.sampled_from('ab ,=\n"\\é1_'), max_size=8))
# Floats of 15 or 16 integer digits and a few sixteenths: where the two shortest digit strings
# that read back can be equally near the float, and repr takes the even one (...312.25 -> ...312.2).
TIE_FLOATS = st.builds(
    lambda sign, whole, sixteenths: sign * (whole + sixteenths / 16),
    st.sampled_from([1, -1]), st.integers(2**46, 2**51), st.integers(1, 15),
)  # fmt: skip
INSTANTS = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(-timedelta(hours=9, minutes=30))]),
)  # fmt: skip


@st.composite
def updates(
    draw: st.DrawFn, text: st.SearchStrategy[str] = TEXT, tag_text: st.SearchStrategy[str] = TAG_TEXT
) -> IndicatorUpdate:
    start = draw(INSTANTS)
    return IndicatorUpdate(
        indicator=draw(tag_text.filter(bool)),
        unit=draw(text),
        window=draw(st.sampled_from(["1m", "15m", "1h", "1d", "ytd"]) | tag_text),
        window_start=start,
        window_end=start + timedelta(hours=1),
        dimensions=draw(st.dictionaries(tag_text.filter(bool), tag_text, max_size=4)),
        value=draw(
            st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(10**6), 10**6) | TIE_FLOATS
        ),
        final=draw(st.booleans()),
        revision=draw(st.integers(0, 10**12)),
        updated_at=draw(INSTANTS),
    )
