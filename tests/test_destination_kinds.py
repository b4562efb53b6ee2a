"""Typed destinations: built once when the project loads, described once, one registry;
and the one retry loop the live destinations share."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

from genesis.destinations.kinds import (
    DESTINATIONS,
    AirtableDestination,
    FileDestination,
    SheetsDestination,
    describe_destination,
    destination_of,
)
from genesis.destinations.retry import Deadline, retrying
from genesis.errors import GenesisError
from genesis.project.load import load_project
from genesis.project.model import Tracker

ROOT = Path(__file__).resolve().parents[1]


def test_the_example_trackers_get_typed_destinations_when_the_project_loads():
    project = load_project(ROOT)
    kinds = {}
    for tracker in project.trackers.values():
        destination = tracker.destination
        assert isinstance(destination, DESTINATIONS[destination.kind])
        assert dataclasses.is_dataclass(destination)
        with pytest.raises(dataclasses.FrozenInstanceError):
            destination.kind_of_nothing = 1  # type: ignore[union-attr]
        kinds[destination.kind] = destination
    assert set(kinds) == {"file", "google_sheets", "airtable"}
    assert kinds["file"].live is False and kinds["google_sheets"].live and kinds["airtable"].live


def test_one_description_of_where_a_destination_writes():
    sheet = SheetsDestination("1AbC", "Late shoots")
    table = AirtableDestination("appX", "Budgets")
    file = FileDestination("out/cast.csv")
    assert sheet.describe() == "Google Sheets 1AbC / Late shoots"
    assert table.describe() == "Airtable appX / Budgets"
    assert file.describe() == "file out/cast.csv"
    # the function review, listing and docs import gives the same text, typed or as YAML
    assert describe_destination(sheet.to_mapping()) == sheet.describe()
    assert describe_destination({"type": "ftp"}) == "ftp"


def test_the_yaml_mapping_round_trips_and_old_style_reads_still_work():
    doc = {"type": "file", "path": "/srv/x.csv", "allow_outside_project": True}
    typed = destination_of(doc)
    assert typed == FileDestination("/srv/x.csv", True)
    assert typed.to_mapping() == doc
    assert typed["type"] == "file" and typed.get("path") == "/srv/x.csv" and typed.get("nope", 7) == 7
    assert destination_of({"type": "file", "path": "a.csv"}).to_mapping() == {"type": "file", "path": "a.csv"}
    with pytest.raises(GenesisError, match="unknown destination type 'google_sheet'.*google_sheets"):
        destination_of({"type": "google_sheet"})


def test_a_tracker_built_from_a_mapping_gets_the_typed_destination():
    tracker = Tracker("t", "i", {"type": "airtable", "base_id": "appX", "table": "T"})
    assert tracker.destination == AirtableDestination("appX", "T")
    assert tracker.destination.group == "appX" and tracker.destination.name_in_group == "T"


def test_the_retry_loop_retries_transient_failures_and_never_waits_past_the_deadline():
    answers = iter([(None, ConnectionError("lost")), (None, ConnectionError("lost")), ("ok", None)])
    retried = []
    result = retrying(lambda: next(answers), lambda a, e, n: None if e is None else 0.01, Deadline(5, "x.deadline"),
                      lambda e: GenesisError("gave up"), lambda e, w: retried.append(w))
    assert result == "ok" and retried == [0.01, 0.01]

    started = time.monotonic()
    with pytest.raises(GenesisError, match="gave up"):
        retrying(lambda: (None, ConnectionError("lost")), lambda a, e, n: 10.0, Deadline(1, "x.deadline"),
                 lambda e: GenesisError("gave up"), lambda e, w: None)
    assert time.monotonic() - started < 1  # the 10 s wait was never started

    with pytest.raises(ConnectionError):  # a final error is raised as it is
        retrying(lambda: (None, ConnectionError("refused")), lambda a, e, n: None, Deadline(1, "x"),
                 lambda e: GenesisError("gave up"), lambda e, w: None)
