"""Two refreshes of one Google Sheets tab at once: a lease in developer metadata fences
every write (see genesis/destinations/sheets_lease.py), so a write planned on a read that
another writer has since changed is rejected whole and re-planned; a writer in the middle
of a multi-request write makes the others wait, and a loser never reports a write it did
not make."""

from __future__ import annotations

import json
import threading
import time

import pytest

from genesis.destinations import sheets_lease
from genesis.errors import GenesisError
from tests.test_sheets_destination import (  # noqa: F401 - fixtures
    BIG_CHANGE,
    TAB,
    clean_run,
    comparable,
    h,
    people_state,
    private_key,
    setup_annotated,
)


class Writer(threading.Thread):
    """A refresh in a thread; keeps its report or its error."""

    def __init__(self, h, **kw):
        super().__init__(daemon=True)
        self.h, self.kw = h, kw
        self.report = self.error = None

    def run(self):
        try:
            self.report = self.h.sync(BIG_CHANGE, **self.kw)
        except Exception as err:  # noqa: BLE001 - handed to the test
            self.error = err


def _changes(report) -> tuple:
    return report.inserted, report.updated, report.deleted, report.marked, report.unmarked


def test_a_write_planned_on_a_stale_read_is_rejected_whole_and_replanned(h):
    clean = clean_run(h)
    setup_annotated(h, h.sid)
    notes = people_state(h)
    hold = h.srv.hold_write(1)  # the first writer's batchUpdate waits at the door...
    first = Writer(h)
    first.start()
    assert hold.arrived.wait(30)
    second = h.sync(BIG_CHANGE)  # ...while a second refresh reads and writes the tab
    assert second.conflicts == 0 and _changes(second) != (0, 0, 0, 0, 0)
    hold.release(apply=True)  # now the first one's write, planned on the old read, arrives
    first.join(30)
    assert first.error is None, first.error
    assert first.report.conflicts == 1
    assert _changes(first.report) == (0, 0, 0, 0, 0)  # it re-planned: nothing left to do
    assert comparable(h, h.sid) == clean
    assert {k: v for k, v in people_state(h).items() if k[1] != 5.0} == notes
    rejected = [e for e in h.srv.calls(kind="write") if e.status == 400]
    assert len(rejected) == 1 and rejected[0].requests[:2] == ["deleteDeveloperMetadata", "createDeveloperMetadata"]


def test_a_writer_in_the_middle_of_a_split_write_makes_the_next_one_wait(h):
    clean = clean_run(h)
    setup_annotated(h, h.sid)
    hold = h.srv.hold_write(2)  # the first writer's second body: its lease is busy now
    first = Writer(h, max_request_bytes=4_000)
    first.start()
    assert hold.arrived.wait(30)
    second = Writer(h, deadline_seconds=60)
    second.start()
    time.sleep(0.5)
    assert second.is_alive()  # waiting for the first one
    hold.release(apply=True)
    first.join(30), second.join(60)
    assert first.error is None and second.error is None, (first.error, second.error)
    assert second.report.waited_seconds > 0
    assert _changes(second.report) == (0, 0, 0, 0, 0)
    assert comparable(h, h.sid) == clean


@pytest.mark.parametrize("read_delay", [0.0, 0.4], ids=["plain-reads", "slow-reads"])
def test_a_second_writer_fails_clearly_when_the_tab_stays_held_past_its_deadline(h, read_delay):
    """The deadline may end in the wait between two reads of the tab or inside a read (a
    slow answer is cut off, or no retry fits; usual on a loaded machine): either way it was
    the other refresh's hold that used the time, and the error says so."""
    setup_annotated(h, h.sid)
    hold = h.srv.hold_write(2)
    first = Writer(h, max_request_bytes=4_000)
    first.start()
    assert hold.arrived.wait(30)
    writes = len(h.srv.calls(kind="write"))
    if read_delay:
        h.srv.slow(read_delay, n=30, kind="read")  # more reads than fit in the deadline
    try:
        with pytest.raises(GenesisError, match=r"another refresh holds tab 'In photography' .*nothing was written"):
            h.sync(BIG_CHANGE, deadline_seconds=4)  # room for its own reads on a loaded machine
        assert len(h.srv.calls(kind="write")) == writes
    finally:
        hold.release(apply=True)
        first.join(30)
    assert first.error is None


def _lease(h, value: dict) -> None:
    lookup = {"metadataId": sheets_lease.lease_id(TAB)}
    h.person().batch_update({"requests": [
        {"deleteDeveloperMetadata": {"dataFilter": {"developerMetadataLookup": lookup}}},
        {"createDeveloperMetadata": {"developerMetadata": {
        "metadataId": sheets_lease.lease_id(TAB), "metadataKey": sheets_lease.LEASE_KEY,
        "metadataValue": json.dumps(value), "location": {"spreadsheet": True}, "visibility": "DOCUMENT"}}}]})  # as another machine's refresh left it


def test_an_expired_hold_of_a_writer_that_died_elsewhere_is_taken_over(h):
    setup_annotated(h, h.sid)
    _lease(h, {"run": "dead", "write": "x", "until": int(time.time()) - 5, "host": "runner-7", "pid": 1})
    report = h.sync(BIG_CHANGE)
    assert report.conflicts == 0 and report.deleted > 0
    (entry,) = [m for m in h.srv.developer_metadata(h.sid) if m["metadataKey"] == sheets_lease.LEASE_KEY]
    assert json.loads(entry["metadataValue"])["run"] != "dead"


def test_a_live_hold_from_another_machine_is_respected(h):
    setup_annotated(h, h.sid)
    _lease(h, {"run": "other", "write": "x", "until": int(time.time()) + 600, "host": "runner-7", "pid": 1})
    with pytest.raises(GenesisError, match="another refresh holds tab"):
        h.sync(BIG_CHANGE, deadline_seconds=3)  # room for its own reads on a loaded machine
