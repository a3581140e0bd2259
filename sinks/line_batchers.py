"""A batch of records to lines at once: the Rust batcher when it is built, else Python.

Both take the records of a batch in order, put each point in the caller's ``key -> line``
dict and its key in a list, and stop at the first record they leave to the caller (a
tombstone, or a record only the model may judge), so the caller decides it where it stands
and the points keep their order. The Rust one (``sinks/native_lines``, built by ``make
install``) takes under half the Python one's CPU per record (bench/README.md, "Sink"); both
are held byte-identical to ``indicator_line`` by tests/unit/test_indicator_contract_agreement.py
(and, on records our stage does not write, test_native_lines.py and test_sink_fast_lines.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from pydantic_core import from_json

from sinks.line_protocol import IndicatorLineFormatter

log = logging.getLogger(__name__)


class LineBatcher(Protocol):
    def into(
        self, values: list[bytes | None], start: int, points: dict[str, str], keys: list[str | None]
    ) -> int:
        """Take ``values[start:]`` in order; return the index of the first one left to the caller
        (``len(values)``: all taken)."""
        ...


class PythonLineBatcher:
    """``IndicatorLineFormatter`` over ``from_json``, record by record."""

    def __init__(self, formatter: IndicatorLineFormatter) -> None:
        self._formatter = formatter

    def into(
        self, values: list[bytes | None], start: int, points: dict[str, str], keys: list[str | None]
    ) -> int:
        into = self._formatter.into
        for index in range(start, len(values)):
            raw = values[index]
            if raw is None:
                return index
            try:
                key = into(from_json(raw), points)
            except ValueError:  # not JSON
                return index
            if key is None:
                return index
            keys.append(key)
        return len(values)


def line_batcher(head: Callable[[str], str], formatter: IndicatorLineFormatter) -> LineBatcher:
    """The Rust batcher with ``head`` (the bucket before each key and line) if it is installed,
    else ``formatter`` (built with the same ``head``) record by record."""
    try:
        from zerocarbon_native_lines import IndicatorLineBatcher
    except ImportError:
        log.warning(
            "zerocarbon_native_lines is not installed (make install builds it from sinks/native_lines): "
            "the sink formats its lines in Python, about 1.4 µs more CPU per point"
        )
        return PythonLineBatcher(formatter)
    batcher: LineBatcher = IndicatorLineBatcher(head)
    return batcher
