"""The example project on the real Trino: every input and tracker gives DuckDB's typed result,
and a refresh writes byte-identical files (CSV, and .xlsx with the trackers' formats)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from genesis.authoring import demo
from genesis.monitoring import history
from tests.trino_real.conftest import assert_same_table, make_project, run_both

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_INPUTS = sorted(p.stem for p in (REPO / "inputs").glob("*.yaml"))
EXAMPLE_TRACKERS = sorted(p.stem for p in (REPO / "trackers").glob("*.yaml"))

# The run history the `tracker-health` example reads: an ok run, then a failed one and a late one
# (the health board lists the last two), so that input has rows on both engines.
_AT = dt.datetime(2026, 1, 5, 6, 0, tzinfo=dt.UTC)
RUNS = history.to_table([
    {"run_id": "r1", "tracker": "late-purchase-orders", "target": "local", "owner": "finance-ap", "status": "ok",
     "started_at": _AT, "ended_at": _AT + dt.timedelta(seconds=2), "seconds": 2.0, "rows": 30},
    {"run_id": "r2", "tracker": "late-purchase-orders", "target": "local", "owner": "finance-ap",
     "status": "failed", "stage": "checks", "error": "checks failed, nothing written: min_rows",
     "error_location": "trackers/late-purchase-orders.yaml:9:3",
     "started_at": _AT + dt.timedelta(hours=1), "ended_at": _AT + dt.timedelta(hours=1, seconds=2), "seconds": 2.0},
    {"run_id": "r2", "tracker": "upcoming-launches", "target": "local", "owner": "marketing-ops", "status": "late",
     "started_at": _AT + dt.timedelta(hours=1), "ended_at": _AT + dt.timedelta(hours=1)},
])



@pytest.fixture(scope="module")
def example(trino_server, tmp_path_factory):
    def tables():
        generated = demo.generate()  # relative to today, as CURRENT_DATE in the inputs
        schema = demo.NAMESPACE.split(".", 1)[1]
        return {f"{schema}.{name}": data for name, data in generated.items()} | {"genesis.runs": RUNS}

    made = make_project(trino_server, REPO, "example", tmp_path_factory.mktemp("example-trino"), tables)
    return made, made.load()


@pytest.mark.parametrize("name", EXAMPLE_INPUTS)
def test_every_example_input_is_identical_on_trino(example, name):
    _, project = example
    duck, trino = run_both(project, name)
    assert [c.type for c in duck.columns] == [c.type for c in trino.columns]
    assert duck.table.num_rows > 0, f"{name} returns no rows on the demo data: the comparison would be empty"
    assert_same_table(duck.table, trino.table, name)


@pytest.mark.parametrize("name", EXAMPLE_TRACKERS)
def test_every_example_tracker_is_identical_on_trino(example, name):
    _, project = example
    duck, trino = run_both(project, name)
    assert_same_table(duck.table, trino.table, name)


def test_refresh_writes_the_same_files_from_both_engines(example):
    from genesis.run.refresh import refresh

    made, project = example
    trackers = list(project.trackers.values())

    def written(target: str) -> dict[str, bytes]:
        report = refresh(project, trackers, target=target)
        failed = [f"{r.tracker}: {r.error}" for r in report.trackers if r.status == "failed"]
        assert not failed, failed
        # one file a tracker, and one a part of a for_each tracker (`tracker[value]`)
        expected.append(len([t for t in trackers if t.for_each is None])
                        + len([r for r in report.trackers if "[" in r.tracker]))
        files = {}
        for path in sorted(made.root.glob("out*/**/*")):
            if path.is_file() and not path.name.endswith(".genesis-stamp.json"):  # --due's sidecars
                files[str(path.relative_to(made.root)).split("/", 1)[1]] = path.read_bytes()
                path.unlink()  # the other engine must write it again, not find it unchanged
        return files

    expected: list[int] = []
    duck, trino = written("local"), written("trino")
    assert any(t.for_each is not None for t in trackers)  # the example has a for_each tracker
    assert len(duck) == expected[0] > len(trackers)
    assert duck.keys() == trino.keys()
    for name in duck:
        assert duck[name] == trino[name], f"{name} differs between DuckDB and Trino"
