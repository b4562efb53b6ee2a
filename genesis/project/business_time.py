"""Business time: the project's time zone and week start, "now" (or --as-of), and date ranges.

Every relative date is evaluated here, in Python, from three things: the moment "now"
(`--as-of`, else the real clock of genesis.clock), the project's IANA time zone and its
week start. The compiler then writes the resulting bounds as typed SQL literals
(genesis/compiler/time.py), so DuckDB and Trino compare against the very same values and a
past day's tracker can be reproduced exactly.

A range is a half-open interval of calendar days in the project zone, [start, end): `start`
is the first day in it, `end` the first day after it (docs/inputs.md, "Relative date
ranges"). Month, quarter and year ranges are aligned to calendar periods, so no day-of-month
clamping ever happens (the month before 2028-03-31 is February, 2028-02-01..2028-02-29).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import re
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass

from .. import clock
from ..errors import GenesisError, Location, did_you_mean

DEFAULT_ZONE = "UTC"
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DEFAULT_WEEK_START = "monday"
UNITS = ("day", "week", "month", "quarter", "year")
MAX_COUNT = 10000  # `last N days`: bounded, so the bounds stay inside year 1..9999

_AS_OF: str | None = None  # `--as-of` of this command, as written (process-wide: threads run the queries)


# --------------------------------------------------------------------------- settings

@dataclass(frozen=True)
class TimeSettings:
    """genesis.yaml's `time_zone` and `week_start`, already validated."""

    zone: str = DEFAULT_ZONE
    week_start: str = DEFAULT_WEEK_START

    @property
    def tzinfo(self) -> zoneinfo.ZoneInfo:
        """The project zone, in which moments become calendar days and wall times."""
        return zoneinfo.ZoneInfo(self.zone)

    @property
    def week_start_index(self) -> int:
        """0 for Monday ... 6 for Sunday (Python's date.weekday())."""
        return WEEKDAYS.index(self.week_start)


@functools.lru_cache(maxsize=1)
def zone_names() -> frozenset[str]:
    """Every IANA zone name this machine knows (system tz database or the tzdata package)."""
    return frozenset(zoneinfo.available_timezones())


def check_zone(name: object, loc: Location | None) -> str:
    """`name` if it is an IANA time zone name; else a located error with a did-you-mean."""
    text = str(name)
    if text in zone_names() or text == "UTC":
        return text
    by_lower = {z.lower(): z for z in zone_names()}
    hint = did_you_mean(text, zone_names())
    if text.lower() in by_lower:
        hint = f"did you mean '{by_lower[text.lower()]}'? (zone names are case-sensitive)"
    raise GenesisError(f"unknown time zone '{text}'", loc,
                       hint or "use an IANA name such as UTC, Europe/Paris or America/New_York")


def settings_of(project) -> TimeSettings:
    """The project's time settings (defaults: UTC, Monday)."""
    config = project.config
    return TimeSettings(getattr(config, "time_zone", DEFAULT_ZONE) or DEFAULT_ZONE,
                        getattr(config, "week_start", DEFAULT_WEEK_START) or DEFAULT_WEEK_START)


# --------------------------------------------------------------------------- now and --as-of

def parse_as_of(text: str, zone: str = DEFAULT_ZONE) -> dt.datetime:
    """`--as-of` text as an aware UTC datetime.

    ISO 8601: `2026-03-08T09:30:00-05:00`, `2026-03-08 09:30Z`, or without offset (read in
    the project zone: `2026-03-08 09:30`), or a date alone (that day's first instant in the
    project zone).
    """
    raw = str(text).strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
            return start_of_day(dt.date.fromisoformat(raw), zone)
        value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise GenesisError(f"--as-of '{text}' is not an ISO 8601 date or time",
                           hint="e.g. --as-of 2026-03-08, --as-of '2026-03-08 09:30' (project time zone) "
                                "or --as-of 2026-03-08T14:30:00Z") from None
    if value.tzinfo is None:
        value = _localize(value, zoneinfo.ZoneInfo(zone))
    return value.astimezone(dt.UTC)


@contextlib.contextmanager
def as_of(text: str | None) -> Iterator[None]:
    """Fix "now" for relative dates and CDC `latest` views while the block runs (None: the clock).

    The text is checked here and read in the project zone where it is used (a time without
    offset is a wall-clock time there)."""
    global _AS_OF
    if text is not None:
        parse_as_of(text)
    previous, _AS_OF = _AS_OF, text
    try:
        yield
    finally:
        _AS_OF = previous


def as_of_moment(settings: TimeSettings) -> dt.datetime | None:
    """The `--as-of` moment of this command (UTC), or None when "now" is the real clock."""
    return parse_as_of(_AS_OF, settings.zone) if _AS_OF is not None else None


def current_moment(settings: TimeSettings) -> dt.datetime:
    """"Now" for business dates: the --as-of moment, else genesis.clock.now() (UTC)."""
    moment = as_of_moment(settings)
    return moment if moment is not None else clock.now()


def today(settings: TimeSettings, moment: dt.datetime | None = None) -> dt.date:
    """The calendar day of `moment` (default: current_moment) in the project zone."""
    return (moment or current_moment(settings)).astimezone(settings.tzinfo).date()


def _localize(wall: dt.datetime, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    """A wall-clock time in `zone`. One inside a DST gap is read with the offset before the gap
    (it moves forward by the gap's length, as most tools do: a midnight skipped by the gap
    becomes the gap's end, the day's first instant); an ambiguous time (the repeated hour in
    autumn) is its first occurrence (fold=0)."""
    return wall.replace(tzinfo=zone, fold=0).astimezone(dt.UTC).astimezone(zone)


def start_of_day(day: dt.date, zone: str) -> dt.datetime:
    """The first instant (UTC) of `day` in `zone`: local midnight, or the end of a DST gap that skips it."""
    return _localize(dt.datetime.combine(day, dt.time()), zoneinfo.ZoneInfo(zone)).astimezone(dt.UTC)


# --------------------------------------------------------------------------- ranges

@dataclass(frozen=True)
class DateRange:
    """Calendar days [start, end) in the project zone: `start` is in it, `end` is not."""

    start: dt.date
    end: dt.date
    text: str = ""

    @property
    def last(self) -> dt.date:
        """The last day in the range."""
        return self.end - dt.timedelta(days=1)


_COUNTED = re.compile(r"(last|next)\s+(\d+)\s+(day|week|month|quarter|year)s?")
_THIS = re.compile(r"this\s+(day|week|month|quarter|year)")
_TO_DATE = re.compile(r"(week|month|quarter|year)\s+to\s+date")
_EXPLICIT = re.compile(r"(\d{4}-\d{2}-\d{2})\s*\.\.\s*(\d{4}-\d{2}-\d{2})")
FORMS = ("today", "yesterday", "tomorrow", "last N days", "next N days", "last N weeks", "next N weeks",
         "last N months", "next N months", "last N quarters", "last N years", "this week", "this month",
         "this quarter", "this year", "week to date", "month to date", "quarter to date", "year to date",
         "2026-01-01..2026-03-31")


def parse_range(text: object, today_: dt.date, week_start: int, loc: Location | None = None) -> DateRange:
    """The days a range means on `today_` (its day in the project zone); a located error when
    the text is not one of FORMS."""
    raw = str(text)
    words = " ".join(raw.strip().lower().split())
    try:
        found = _range_days(words, today_, week_start)
    except OverflowError:
        raise GenesisError(f"range '{raw}' reaches outside the years 1..9999", loc) from None
    except ValueError as exc:
        raise GenesisError(f"range '{raw}': {exc}", loc,
                           "write two real dates, the first not after the second: 2026-01-01..2026-03-31") from None
    if found is None:
        raise GenesisError(f"range '{raw}' is not a date range Genesis knows", loc, _range_hint(words))
    return DateRange(found[0], found[1], raw)


def check_range(text: object, loc: Location | None = None) -> None:
    """Raise the located error parse_range would give, on any day (validation)."""
    parse_range(text, dt.date(2026, 1, 15), 0, loc)


def _range_days(words: str, today_: dt.date, week_start: int) -> tuple[dt.date, dt.date] | None:
    day = dt.timedelta(days=1)
    if words == "today":
        return today_, today_ + day
    if words == "yesterday":
        return today_ - day, today_
    if words == "tomorrow":
        return today_ + day, today_ + 2 * day
    if match := _COUNTED.fullmatch(words):
        direction, count, unit = match.group(1), int(match.group(2)), match.group(3)
        if not 1 <= count <= MAX_COUNT:
            raise ValueError(f"the count must be between 1 and {MAX_COUNT}, not {count}")
        if unit == "day":  # whole days before today / after today; today is in neither
            return (today_ - count * day, today_) if direction == "last" else (today_ + day, today_ + (count + 1) * day)
        current = period_start(today_, unit, week_start)
        if direction == "last":  # the complete periods before the current one
            return shift(current, unit, -count), current
        following = shift(current, unit, 1)  # the complete periods after the current one
        return following, shift(following, unit, count)
    if match := _THIS.fullmatch(words):
        start = period_start(today_, match.group(1), week_start)
        return start, shift(start, match.group(1), 1)
    if match := _TO_DATE.fullmatch(words):  # from the period's first day to today, today included
        return period_start(today_, match.group(1), week_start), today_ + day
    if match := _EXPLICIT.fullmatch(words):  # both days included, as people write them
        first, last = (dt.date.fromisoformat(match.group(i)) for i in (1, 2))
        if last < first:
            raise ValueError(f"{last} is before {first}")
        return first, last + day
    return None


def _range_hint(words: str) -> str:
    head = words.split(" ")[0] if words else ""
    known_heads = ["today", "yesterday", "tomorrow", "last", "next", "this", "week", "month", "quarter", "year"]
    close = did_you_mean(head, known_heads) if head not in known_heads else None
    unit = words.split(" ")[-1].rstrip("s") if words else ""
    close_unit = did_you_mean(unit, UNITS) if head in ("last", "next", "this") and unit not in UNITS else None
    forms = "today, yesterday, last N days|weeks|months, next N ..., this week|month|quarter|year, " \
            "month to date, year to date or 2026-01-01..2026-03-31"
    return "; ".join(h for h in (close, close_unit, f"write one of: {forms}") if h)


def period_start(day: dt.date, unit: str, week_start: int = 0) -> dt.date:
    """The first day of the day/week/month/quarter/year holding `day` (weeks start on `week_start`)."""
    if unit == "day":
        return day
    if unit == "week":
        return day - dt.timedelta(days=(day.weekday() - week_start) % 7)
    if unit == "month":
        return day.replace(day=1)
    if unit == "quarter":
        return dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    if unit == "year":
        return dt.date(day.year, 1, 1)
    raise ValueError(unit)


def shift(start: dt.date, unit: str, count: int) -> dt.date:
    """A period start moved by `count` periods (`start` must be a period start of `unit`)."""
    if unit == "day":
        return start + dt.timedelta(days=count)
    if unit == "week":
        return start + dt.timedelta(days=7 * count)
    months = {"month": 1, "quarter": 3, "year": 12}[unit] * count
    index = start.year * 12 + start.month - 1 + months
    if not 1 <= index // 12 <= 9999:
        raise OverflowError("date out of range")
    return dt.date(index // 12, index % 12 + 1, 1)
