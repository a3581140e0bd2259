"""The Rust batcher writes a float as CPython's ``repr`` does (``zerocarbon_native_lines.float_repr``):
the shortest digits that read back, the even one of two equally near, fixed or scientific
notation where CPython switches. A line must be byte-identical to the model's."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from zerocarbon_native_lines import float_repr

from tests.unit.indicator_update_samples import TIE_FLOATS


def float_of_bits(bits: int) -> float:
    value: float = struct.unpack("<d", struct.pack("<Q", bits))[0]
    return value


FINITE_FLOATS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(0, 2**64 - 1).map(float_of_bits).filter(math.isfinite),
    TIE_FLOATS,
)


@settings(max_examples=2000, deadline=None)
@given(FINITE_FLOATS)
def test_float_repr_is_pythons_repr(x: float) -> None:
    assert float_repr(x) == repr(x)


@pytest.mark.parametrize(
    "x",
    [
        5e-324, -5e-324, 2.2250738585072014e-308, 2.225073858507201e-308, 1.7976931348623157e308,
        -1.7976931348623157e308, 1e16, 1e15, 9999999999999998.0, 1e16 - 2, 0.0001, 0.00001, 0.000123,
        -0.0, 0.0, 0.1 + 0.2, 123456789012345680.0, 1e22, 1e23, 2.0**53, 2.0**53 + 2, 0.1, 1 / 3, 100.0, 1.5,
        562949953421312.25, -562949953421312.25, 8796093022208.0625, 70368744177664.125,
    ],
)  # fmt: skip
def test_float_repr_of_edge_cases_is_pythons_repr(x: float) -> None:
    assert float_repr(x) == repr(x)


def test_float_repr_around_every_power_of_ten_is_pythons_repr() -> None:
    """Where repr switches between fixed and scientific notation, and how many digits it needs."""
    edges = [float(f"1e{k}") for k in range(-324, 309)]
    edges += [math.nextafter(x, direction) for x in edges for direction in (0.0, math.inf)]
    edges = [s * x for x in edges if math.isfinite(x) for s in (1.0, -1.0)]
    assert [x for x in edges if float_repr(x) != repr(x)] == []
