"""Types of command-line options shared by several commands (argparse ``type=``)."""

from __future__ import annotations

import argparse
from datetime import datetime


def aware_instant(text: str) -> datetime:
    """An ISO 8601 time with its UTC offset; a time without one is refused, never guessed."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no UTC offset (add Z or +01:00)")
    return moment
