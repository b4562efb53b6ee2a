"""The refresh stamp of an Airtable table: one line in the table's description.

Airtable has no cell in which a stamp could live beside people's data, but every table
has a description (shown under its name). Genesis keeps one line there,
"Refreshed by Genesis at <UTC time> UTC.", and leaves the rest of the description, which
belongs to people, as it is. One schema read of the base gives the stamps of all its
tables; a stamp costs one schema read and one table update, through the same per-base
rate limiter as every other Airtable call of the process.
"""

from __future__ import annotations

import re
from datetime import datetime

import requests

from ..clock import now as clock_now
from ..clock import parse_stamp_time, stamp_text
from ..errors import GenesisError
from .airtable_client import DEFAULT_ENDPOINT, AirtableTable, DeadlineExceeded, Settings, api_error
from .retry import Deadline

STAMP_RE = re.compile(r"Refreshed by Genesis at (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC\.?")
MAX_DESCRIPTION = 20_000  # Airtable's limit for a table description


def _settings() -> Settings:
    """The pacing every Airtable call of the process uses (tests swap `airtable.SETTINGS`)."""
    from . import airtable

    return airtable.SETTINGS


def stamp_of_description(description: str | None) -> datetime | None:
    """The time of the Genesis stamp in a table's description, or None."""
    match = STAMP_RE.search(description or "")
    return parse_stamp_time(match.group(1)) if match else None


def read_stamps(base_id: str, tables: list[str], *, token: str, endpoint: str = DEFAULT_ENDPOINT,
                deadline_seconds: float = 120) -> dict[str, datetime | None]:
    """table name -> its stamp's time (None: no such table or no stamp); one schema read."""
    remote = AirtableTable(base_id, tables[0] if tables else "", token, endpoint.rstrip("/"),
                           Deadline(deadline_seconds, "airtable.deadline_seconds"), _settings())
    try:
        schema = remote.api.base(base_id).schema(force=True)
    except (requests.RequestException, DeadlineExceeded) as err:
        raise _error(err, token, base_id) from None
    found = {t.name: stamp_of_description(t.description) for t in schema.tables}
    return {name: found.get(name) for name in tables}


def write_stamp(base_id: str, table: str, *, token: str, endpoint: str = DEFAULT_ENDPOINT,
                touch_before: datetime | None = None, changed: bool = True,
                deadline_seconds: float = 60) -> bool:
    """Put the stamp in the table's description, keeping people's text: for a scheduled
    tracker (`touch_before`, its schedule's last firing, is set), when the data changed or
    the old stamp is older than `touch_before`. True when written."""
    if touch_before is None:
        return False
    remote = AirtableTable(base_id, table, token, endpoint.rstrip("/"),
                           Deadline(deadline_seconds, "airtable.deadline_seconds"), _settings())
    try:
        schema = remote.table.schema(force=True)
        old = stamp_of_description(schema.description)
        if not changed and old is not None and old >= touch_before:
            return False
        line = f"Refreshed by Genesis at {stamp_text(clock_now())} UTC."
        people = STAMP_RE.sub("", schema.description or "").strip()
        schema.description = (people[:MAX_DESCRIPTION - len(line) - 2] + "\n\n" + line) if people else line
        schema.save()
    except (requests.RequestException, DeadlineExceeded) as err:
        raise _error(err, token, base_id) from None
    return True


def _error(err: Exception, token: str, base_id: str) -> GenesisError:
    if isinstance(err, GenesisError):
        return GenesisError(f"Airtable base {base_id}: {err.message}")
    return api_error(err, token, f"Airtable base {base_id}")
