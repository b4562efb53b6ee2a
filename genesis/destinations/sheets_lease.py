"""One writer at a time per Google Sheets tab, across processes and machines.

Two refreshes of one tab may run at once: a slow scheduled run and the next one, a manual
run during a scheduled one, two CI runners. Sheets writes address rows by index, so a
write planned on a read that another writer has since changed lands on the wrong rows.
An in-process or file lock cannot see a writer on another machine, and Sheets has no
conditional write, but it gives two guarantees this module builds one from:

- a developer metadata `metadataId` is unique within a spreadsheet, so creating an entry
  whose ID exists fails;
- a `spreadsheets.batchUpdate` is atomic: all of its requests apply, or none.

Genesis keeps one developer metadata entry per tab (key `LEASE_KEY`, an ID derived from
the tab's title, located on the spreadsheet so that it exists before the tab does). Its
value names the write that last changed the tab. Every write batchUpdate starts with

    deleteDeveloperMetadata(that ID and the value this writer read)
    createDeveloperMetadata(that ID, a new value)

When another writer changed the value after our read, the delete matches nothing, the
create hits the existing ID, and the whole batch, data included, is rejected: a
compare-and-swap on the tab. The writer then reads again and re-plans (usually to
"unchanged": the other writer already did the work).

A refresh whose changes need several batchUpdates (bodies over 2 MB) marks the entry
*busy* from its first batch to its last, so no other writer plans on a half-written tab;
they wait for the mark to go (bounded by their deadline) and then fail with a message
saying another refresh holds the tab. A busy mark whose writer died expires at its
`until` time, after which the next writer takes it over by the same compare-and-swap.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .file import process_alive

LEASE_KEY = "genesis.tab-writer"
METADATA_FIELDS = "developerMetadata(metadataId,metadataKey,metadataValue)"
EXPIRY_MARGIN_SECONDS = 60  # a busy mark outlives its writer's deadline by this much


def lease_id(title: str) -> int:
    """The tab's metadata ID: stable for a title, positive, as the API requires."""
    return zlib.crc32(f"genesis-tab:{title}".encode()) % (2**31 - 2) + 1


@dataclass(frozen=True)
class Holder:
    """What a lease value says: which run wrote, and until when it holds the tab busy."""

    run: str
    until: float = 0.0  # epoch seconds; 0 when the write was complete
    host: str = ""
    pid: int = 0

    def busy_for(self, run: str, now: float | None = None) -> bool:
        """Does this mark keep `run` from writing now? A writer on this machine whose
        process is gone (killed, interrupted) holds nothing, whatever `until` says."""
        if not self.until or self.run == run or self.until <= (time.time() if now is None else now):
            return False
        return not (self.host == _HOST and self.pid and not process_alive(self.pid))


def parse(value: str | None) -> Holder | None:
    """The holder a tab's lease value names (None: no lease yet); a value Genesis cannot read never holds the tab."""
    if not value:
        return None
    try:
        data = json.loads(value)
        return Holder(str(data["run"]), float(data.get("until") or 0), str(data.get("host") or ""),
                      int(data.get("pid") or 0))
    except (ValueError, KeyError, TypeError):
        return Holder("unknown")  # not ours to interpret: treated as a completed write


_HOST = socket.gethostname()


def find(metadata: Iterable[dict] | None, title: str) -> str | None:
    """The lease value of tab `title` among a spreadsheet's developer metadata, if any."""
    wanted = lease_id(title)
    for entry in metadata or ():
        if entry.get("metadataId") == wanted and entry.get("metadataKey") == LEASE_KEY:
            return str(entry.get("metadataValue") or "")
    return None


def new_value(run: str, busy_until: float | None = None) -> str:
    """A value no other write will ever use (the `write` nonce), so a swap cannot succeed twice."""
    value: dict[str, Any] = {"run": run, "write": secrets.token_hex(6), "at": int(time.time())}
    if busy_until:
        value.update(until=int(busy_until) + 1, host=_HOST, pid=os.getpid())
    return json.dumps(value, separators=(",", ":"))


def fence(title: str, old: str | None, new: str) -> list[dict]:
    """The compare-and-swap requests that open every write batchUpdate of tab `title`."""
    requests: list[dict] = []
    if old is not None:
        requests.append({"deleteDeveloperMetadata": {"dataFilter": {"developerMetadataLookup": {
            "metadataId": lease_id(title), "metadataKey": LEASE_KEY, "metadataValue": old}}}})
    requests.append({"createDeveloperMetadata": {"developerMetadata": {
        "metadataId": lease_id(title), "metadataKey": LEASE_KEY, "metadataValue": new,
        "location": {"spreadsheet": True}, "visibility": "DOCUMENT"}}})
    return requests
