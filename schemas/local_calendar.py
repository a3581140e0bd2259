"""The territory's calendar: where its days and years begin and end, in epoch seconds. Pure.

Minute, quarter-hour and hour windows are the same everywhere (UTC-aligned, as the programme's
load curves are); days and years are cut where the territory lives: a Europe/Paris day is
23 hours on the last Sunday of March, 25 on the last Sunday of October, and a daily figure
then matches what a partner computes on local days. A zone's offsets are whole quarter-hours
(every zone of the IANA database since 1972), so a local day is a whole number of minute
and quarter-hour windows, and a partition's smallest windows nest in its days.

A state's calendar may change (``ZC_TIME_ZONE`` changed, or a checkpoint from before local
days, which counted UTC days): ``SwitchedCalendar`` keeps the days already counted as they
were, and begins the new calendar's days at a midnight after them (``switched``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAY = 86400
MONTH = 31 * DAY
"""The size that stands for a calendar month (28 to 31 local days): windows are keyed by size."""
QUARTER_HOUR = 900
DEFAULT_TIME_ZONE = "Europe/Paris"


class Calendar(Protocol):
    """Where days and years begin: the ``size`` 86400 windows and the year to date."""

    @property
    def name(self) -> str:
        """What a checkpoint records: a zone name, or the zones and the instants they began."""
        ...

    def day(self, ts: int) -> tuple[int, int]:
        """Start and end (exclusive) of the day holding ``ts``."""
        ...

    def month(self, ts: int) -> tuple[int, int]:
        """Start and end (exclusive) of the calendar month holding ``ts``."""
        ...

    def year_of(self, ts: int) -> int:
        """The calendar year holding ``ts``."""
        ...

    def year_start(self, year: int) -> int:
        """The instant ``year`` begins (its 1 January, 00:00)."""
        ...


class UnknownTimeZone(ValueError):
    """A time zone name the IANA database here does not know."""


class ZoneCalendar:
    """The days and years of one IANA time zone ("UTC" included)."""

    def __init__(self, zone: str) -> None:
        try:
            self._zone = UTC if zone == "UTC" else ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise UnknownTimeZone(
                f"time zone {zone!r} is not in the IANA database here (ZC_TIME_ZONE): give a name such "
                "as Europe/Paris or UTC; a machine without /usr/share/zoneinfo reads the tzdata package"
            ) from error
        self._name = zone
        self._utc = zone == "UTC"
        # A flush asks for the day of each summed minute: most are in the day asked last, the
        # others are looked up per quarter-hour of epoch time (a zone's days begin on one).
        self._last: tuple[int, int] = (0, 0)
        self._last_month: tuple[int, int] = (0, 0)
        self._days: dict[int, tuple[int, int]] = {}
        self._years: dict[int, int] = {}
        self._year_of_day: dict[int, int] = {}

    @property
    def name(self) -> str:
        return self._name

    def day(self, ts: int) -> tuple[int, int]:
        if self._utc:
            start = ts - ts % DAY
            return start, start + DAY
        last = self._last
        if last[0] <= ts < last[1]:
            return last
        quarter = ts // QUARTER_HOUR
        bounds = self._days.get(quarter)
        if bounds is None:
            if len(self._days) >= 4096:  # six weeks of quarter-hours: a worker's memory stays flat
                self._days.clear()
                self._year_of_day.clear()
            local = datetime.fromtimestamp(ts, self._zone).date()
            bounds = self._days[quarter] = (self._midnight(local), self._midnight(local + timedelta(days=1)))
        self._last = bounds
        return bounds

    def month(self, ts: int) -> tuple[int, int]:
        last = self._last_month
        if last[0] <= ts < last[1]:
            return last
        first = self.date_of(ts).replace(day=1)
        following = (first + timedelta(days=31)).replace(day=1)
        self._last_month = bounds = (self._midnight(first), self._midnight(following))
        return bounds

    def date_of(self, ts: int) -> date:
        """The local date of ``ts``."""
        return datetime.fromtimestamp(ts, self._zone).date()

    def bounds_of(self, day: date) -> tuple[int, int]:
        """Start and end of the local date ``day``."""
        return self._midnight(day), self._midnight(day + timedelta(days=1))

    def _midnight(self, day: date) -> int:
        # A midnight the clocks skip (some zones change at 00:00) maps, fold 0, to the instant
        # of the change: where that day's first existing minute begins.
        return int(datetime(day.year, day.month, day.day, tzinfo=self._zone).timestamp())

    def year_of(self, ts: int) -> int:
        start = self.day(ts)[0]
        year = self._year_of_day.get(start)
        if year is None:
            year = self._year_of_day[start] = datetime.fromtimestamp(start, self._zone).year
        return year

    def year_start(self, year: int) -> int:
        start = self._years.get(year)
        if start is None:
            start = self._years[year] = self._midnight(date(year, 1, 1))
        return start


UTC_CALENDAR = ZoneCalendar("UTC")


class SwitchedCalendar:
    """Days of ``before`` until ``since``, then of ``after``: a state that counted days on one
    calendar and goes on with another. The day that holds ``since`` under ``before`` ends at
    ``since`` (a short day, once); years are ``after``'s, whose 1 January is near enough to
    ``before``'s that a year to date already counted goes on under its number."""

    def __init__(self, before: Calendar, since: int, after: ZoneCalendar) -> None:
        self.before, self.since, self.after = before, since, after

    @property
    def name(self) -> str:
        return f"{self.before.name}|{self.since}|{self.after.name}"

    def day(self, ts: int) -> tuple[int, int]:
        if ts >= self.since:
            return self.after.day(ts)
        start, end = self.before.day(ts)
        return start, min(end, self.since)

    def month(self, ts: int) -> tuple[int, int]:
        # The month of the switch is two windows: the part each calendar counted.
        if ts >= self.since:
            start, end = self.after.month(ts)
            return max(start, self.since), end
        start, end = self.before.month(ts)
        return start, min(end, self.since)

    def year_of(self, ts: int) -> int:
        return self.after.year_of(ts)

    def year_start(self, year: int) -> int:
        return self.after.year_start(year)


def calendar_named(name: str) -> Calendar:
    """The calendar a checkpoint recorded (``Calendar.name``): a zone, or switches between zones."""
    parts = name.split("|")
    if len(parts) % 2 == 0:
        raise ValueError(f"calendar {name!r}: expected ZONE or ZONE|SINCE|ZONE...")
    calendar: Calendar = ZoneCalendar(parts[0])
    for i in range(1, len(parts), 2):
        calendar = SwitchedCalendar(calendar, int(parts[i]), ZoneCalendar(parts[i + 1]))
    return calendar


def zone_of(calendar: Calendar) -> str:
    """The zone whose days a calendar counts from now on."""
    return calendar.name.rsplit("|", 1)[-1]


def switched(calendar: Calendar, to: ZoneCalendar, after: int) -> Calendar:
    """``calendar``, going on with ``to``'s days from its first midnight at or after the end of
    ``calendar``'s day holding ``after`` (the latest instant it counted or may have opened a
    window for): no day already counted is cut. ``calendar`` itself if it already counts ``to``'s days."""
    if zone_of(calendar) == to.name:
        return calendar
    end = calendar.day(after)[1]
    start, next_start = to.day(end)
    return SwitchedCalendar(calendar, start if start == end else next_start, to)


def window_end(calendar: Calendar, size: int, start: int) -> int:
    """Where the window of ``size`` seconds beginning at ``start`` ends: a day (``DAY``) or a month
    (``MONTH``) where ``calendar``'s ends, any other size ``size`` seconds later."""
    if size == DAY:
        return calendar.day(start)[1]
    if size == MONTH:
        return calendar.month(start)[1]
    return start + size
