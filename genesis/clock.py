"""The one clock Genesis reads for schedules and refresh stamps.

`GENESIS_NOW` (an ISO 8601 time, UTC when it has no offset) fixes "now" for a whole run:
tests use it to move the clock past missed schedules, and anyone can use it to reproduce
what a scheduler run at a given time would have picked. Unset, it is the system's UTC time.
"""

from __future__ import annotations

import datetime as dt
import os

from .errors import GenesisError

ENV = "GENESIS_NOW"


def now() -> dt.datetime:
    """The current time in UTC, or the one fixed by GENESIS_NOW."""
    fixed = os.environ.get(ENV)
    if not fixed:
        return dt.datetime.now(dt.UTC)
    try:
        value = dt.datetime.fromisoformat(fixed.strip().replace("Z", "+00:00"))
    except ValueError:
        raise GenesisError(f"{ENV}='{fixed}' is not an ISO 8601 time",
                           hint="e.g. GENESIS_NOW=2026-12-04T10:05:00Z") from None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def stamp_text(moment: dt.datetime) -> str:
    """How a stamp writes a time: UTC, to the second (what `parse_stamp_time` reads back)."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def parse_stamp_time(text: str) -> dt.datetime:
    """The UTC time of a stamp's text, as `stamp_text` wrote it."""
    return dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.UTC)
