"""`genesis refresh` end to end on the embedded default (DuckDB over the local Iceberg
warehouse), through the CLI, on a temporary copy of the example project at the repo root.

One demo warehouse is built per module (`genesis demo` in a real subprocess), then
`genesis refresh --all` writes every tracker. Tests that need extra or broken definitions
work in "sibling" copies of the project whose default target points at that same
warehouse by absolute path, so each has its own `out/` and the base outputs stay as the
first refresh wrote them.

Expected rows come from SQL written by hand on the same warehouse: the Iceberg tables are
read with pyiceberg into a plain DuckDB connection (none of Genesis' compiler or engine),
with the CDC "latest row per key, drop deletes" rule spelled out in each query.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner

from genesis.cli import main
from genesis.destinations.file import TEMP_PREFIX
from genesis.project.load import load_project
from genesis.run.refresh import select_trackers

REPO = Path(__file__).resolve().parent.parent
PROJECT_PARTS = ("genesis.yaml", "datasources", "inputs", "trackers")
SENTINEL = b"previous good output - must survive\n"


# --------------------------------------------------------------------------- helpers


def copy_example(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for part in PROJECT_PARTS:
        src = REPO / part
        if src.is_dir():
            shutil.copytree(src, dest / part, dirs_exist_ok=True)
        else:
            shutil.copy2(src, dest / part)
    return dest


def genesis_process(*args: str, project: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    """`genesis ARGS --project DIR` as a real process (stdout and stderr kept apart)."""
    env = {k: v for k, v in os.environ.items() if k != "GENESIS_DEBUG"}
    return subprocess.run([sys.executable, "-m", "genesis.cli", *args, "--project", str(project)],
                          capture_output=True, text=True, timeout=timeout, cwd=project.parent, env=env)


def genesis_cli(*args: str, project: Path, env: dict | None = None):
    """The same through click's CliRunner, in-process (faster); stderr apart from stdout."""
    result = CliRunner().invoke(main, [*args, "--project", str(project)], env=env)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def config(project: Path) -> dict:
    return yaml.safe_load((project / "genesis.yaml").read_text())


def default_target(project: Path) -> dict:
    doc = config(project)
    return doc["targets"][doc.get("default_target") or next(iter(doc["targets"]))]


def warehouse_of(project: Path) -> Path:
    path = Path(default_target(project).get("warehouse", ".genesis/warehouse"))
    return path if path.is_absolute() else project / path


def tracker_docs(project: Path) -> dict[str, dict]:
    """Each tracker's document; a for_each tracker's parts each as a document of their own
    (`name[value]`, its destination rendered), as a refresh reports them."""
    docs = {}
    for path in sorted((project / "trackers").glob("*.y*ml")):
        doc = yaml.safe_load(path.read_text())
        if "for_each" in doc:
            docs.update(part_docs(project, doc))
        else:
            docs[doc["name"]] = doc
    return docs


def part_docs(project: Path, doc: dict) -> dict[str, dict]:
    from genesis.engines import open_engine
    from genesis.run.fan_out import part_values, parts_of

    loaded = load_project(project)
    tracker = loaded.trackers[doc["name"]]
    engine = open_engine(loaded)
    try:
        parts = parts_of(loaded, tracker, part_values(loaded, tracker, engine))
    finally:
        engine.close()
    assert parts, f"{doc['name']}: the example's for_each tracker should have parts"
    return {p.name: {**doc, "name": p.name, "destination": dict(p.destination)} for p in parts}


def expected_output(project: Path, doc: dict) -> Path:
    """Where a tracker writes on the local target: a file tracker its own path, the others
    (google_sheets, airtable) out/<tracker>.csv."""
    destination = doc["destination"]
    if destination["type"] == "file":
        path = Path(destination["path"])
        return path if path.is_absolute() else project / path
    out = Path(default_target(project).get("output_dir", "out"))
    return (out if out.is_absolute() else project / out) / f"{doc['name']}.csv"


def make_sibling(base: Path, dest: Path, files: dict[str, str] | None = None,
                 targets: dict[str, dict] | None = None) -> Path:
    """A copy of the example project whose default target reads `base`'s warehouse, with
    extra definition files (relative path -> YAML text) and extra targets."""
    copy_example(dest)
    doc = config(dest)
    name = doc.get("default_target") or next(iter(doc["targets"]))
    doc["targets"][name]["warehouse"] = str(warehouse_of(base))
    # Its runs stay out of base's run history, which base's tracker-health reads: the
    # failures siblings provoke on purpose would otherwise change base's results.
    doc["history"] = {"enabled": False}
    doc["targets"].update(targets or {})
    (dest / "genesis.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    for relative, text in (files or {}).items():
        (dest / relative).parent.mkdir(parents=True, exist_ok=True)
        (dest / relative).write_text(text)
    return dest


def stat_of(path: Path) -> tuple[bytes, int, int]:
    st = path.stat()
    return path.read_bytes(), st.st_mtime_ns, st.st_ino


def read_rows(path: Path) -> list[dict]:
    """A tracker's output read back: CSV as text, JSON/Parquet/xlsx typed."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))
    if suffix == ".json":
        return json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    if suffix == ".parquet":
        return pq.read_table(path).to_pylist()
    if suffix == ".xlsx":
        import openpyxl

        workbook = openpyxl.load_workbook(path, read_only=True)
        try:
            rows = list(workbook.worksheets[0].iter_rows(values_only=True))
        finally:
            workbook.close()
        return [dict(zip(rows[0], row)) for row in rows[1:]]
    raise AssertionError(f"unexpected output {path}")


def text(value) -> str:
    """A value as the CSV destination writes it: ISO dates, plain numbers, null empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value.isoformat()
    return str(value)


def hand_connection(warehouse: Path) -> duckdb.DuckDBPyConnection:
    """A plain DuckDB connection with every demo table loaded by pyiceberg, by bare name."""
    from genesis.engines import warehouse as wh

    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    for full in wh.list_tables(warehouse):
        arrow = wh.load_table(warehouse, full).scan().to_arrow()
        name = full.split(".")[-1]
        con.register(f"{name}_arrow", arrow)
        con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM "{name}_arrow"')
        con.unregister(f"{name}_arrow")
    return con


def rows_of(con, sql: str) -> list[dict]:
    cursor = con.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def one_line_error(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected exactly one line on stderr, got:\n{result.stderr}"
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    assert "error:" in lines[0]
    return lines[0]


# Latest row per key, keys whose newest change is a delete dropped: the CDC rule by hand.
LATEST = """
    {name} AS (
        SELECT * EXCLUDE (rn) FROM (
            SELECT *, row_number() OVER (PARTITION BY {key} ORDER BY op_ts DESC) AS rn FROM {table}
        ) WHERE rn = 1 AND op <> 'd'
    )"""


def latest(name: str, table: str, key: str) -> str:
    return LATEST.format(name=name, table=table, key=key)


# --------------------------------------------------------------------------- the base project


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """The example project in a temp dir: `genesis demo`, then `genesis refresh --all`,
    both as real processes. Returns (project dir, refresh JSON report, outputs' state)."""
    project = copy_example(tmp_path_factory.mktemp("e2e") / "example")
    demo = genesis_process("demo", project=project)
    assert demo.returncode == 0, demo.stderr
    assert "demo warehouse" in demo.stdout
    assert (warehouse_of(project) / "catalog.db").is_file()

    started = time.perf_counter()
    refreshed = genesis_process("refresh", "--all", "--format", "json", project=project)
    elapsed = time.perf_counter() - started
    assert refreshed.returncode == 0, refreshed.stdout + refreshed.stderr
    assert "Traceback" not in refreshed.stderr
    report = json.loads(refreshed.stdout)
    docs = tracker_docs(project)
    outputs = {name: expected_output(project, doc) for name, doc in docs.items()}
    state = {name: stat_of(path) for name, path in outputs.items() if path.exists()}
    return {"project": project, "report": report, "docs": docs, "outputs": outputs, "state": state,
            "seconds": elapsed}


@pytest.fixture(scope="module")
def hand(base):
    con = hand_connection(warehouse_of(base["project"]))
    yield con
    con.close()


def test_example_has_trackers_of_every_kind(base):
    docs = base["docs"]
    assert len(docs) >= 8, "the example project should have at least 8 trackers"
    kinds = {doc["destination"]["type"] for doc in docs.values()}
    assert "file" in kinds and kinds & {"google_sheets", "airtable"}


def test_refresh_all_writes_every_tracker(base):
    report, outputs = base["report"], base["outputs"]
    assert report["ok"] is True and report["dry_run"] is False
    assert [t["tracker"] for t in report["trackers"]] == sorted(base["docs"])
    for entry in report["trackers"]:
        name = entry["tracker"]
        assert entry["status"] == "ok", entry
        assert entry["error"] is None and entry["stage"] is None
        assert isinstance(entry["seconds"], (int, float)) and entry["seconds"] >= 0
        path = outputs[name]
        assert path.is_file(), f"{name}: {path} not written"
        assert Path(entry["details"]["path"]).resolve() == path.resolve()
        assert entry["details"]["bytes"] == path.stat().st_size
        rows = read_rows(path)
        assert len(rows) == entry["rows"], name
        doc = base["docs"][name]
        if doc.get("checks", {}).get("min_rows"):
            assert len(rows) >= doc["checks"]["min_rows"]
    # the atomic writer leaves no temp files behind
    leftovers = [p for p in base["project"].rglob(f"{TEMP_PREFIX}*")]
    assert leftovers == []


def test_local_target_paths(base):
    """google_sheets / airtable trackers -> out/<tracker>.csv; file trackers -> their path."""
    project = base["project"]
    for name, doc in base["docs"].items():
        path = base["outputs"][name]
        if doc["destination"]["type"] == "file":
            assert path == project / doc["destination"]["path"]
        else:
            assert path == project / "out" / f"{name}.csv"


# --------------------------------------------------------------------------- values vs hand SQL


def test_movies_in_photography_matches_hand_sql(base, hand):
    doc = base["docs"]["movies-in-photography"]
    countries = (doc.get("parameters") or {}).get("countries", ["US", "CA"])
    in_list = ", ".join(f"'{c}'" for c in countries)
    expected = rows_of(hand, f"""
        WITH {latest('m', 'movie_cdc', 'movie_id')}, {latest('p', 'production_cdc', 'production_id')}
        SELECT m.movie_id, m.title, p.shoot_start, p.budget_usd,
               (SELECT string_agg(name, ', ' ORDER BY name)
                  FROM (SELECT DISTINCT talent_name AS name FROM movie_talent c
                        WHERE c.movie_id = m.movie_id AND talent_name IS NOT NULL)) AS cast_list,
               m.launch_date - current_date AS days_to_launch
        FROM m LEFT JOIN p ON p.movie_id = m.movie_id
        WHERE m.status = 'PHOT' AND p.country IN ({in_list})
        ORDER BY p.shoot_start DESC, m.title, m.movie_id""")
    got = read_rows(base["outputs"]["movies-in-photography"])
    assert expected, "the demo should have titles in photography"
    assert len(got) == len(expected)
    # the sort: shoot start descending, then title
    assert [(r["Shoot start"], r["Title"]) for r in got] == \
        [(text(e["shoot_start"]), e["title"]) for e in expected]
    by_id = {r["movie_id"]: r for r in got}
    for e in expected:
        row = by_id[str(e["movie_id"])]
        assert row["Title"] == e["title"]
        assert row["Status"] == "In photography"  # the label, not the code
        assert row["Shoot start"] == text(e["shoot_start"])
        assert row["Cast"] == text(e["cast_list"])
        assert Decimal(row["Budget"]) == e["budget_usd"]
        assert int(row["days_to_launch"]) == e["days_to_launch"]


def test_late_po_escalations_matches_hand_sql(base, hand):
    doc = base["docs"]["late-po-escalations"]
    params = doc.get("parameters") or {}
    statuses = ", ".join(f"'{s}'" for s in params.get("statuses", ["APPROVED"]))
    grace = int(params.get("grace_days", 0))
    expected = rows_of(hand, f"""
        WITH {latest('po', 'purchase_order_cdc', 'po_id')}, {latest('m', 'movie_cdc', 'movie_id')},
             {latest('p', 'production_cdc', 'production_id')}
        SELECT po.po_id, po.po_number,
               CASE po.status WHEN 'DRAFT' THEN 'Draft' WHEN 'APPROVED' THEN 'Approved - awaiting payment'
                              WHEN 'PAID' THEN 'Paid' WHEN 'VOID' THEN 'Void' END AS status_label,
               m.title, p.city, v.name AS vendor, v.contact_email, po.category, po.amount_usd,
               po.issued_date, po.due_date,
               CASE WHEN po.status IN ('DRAFT', 'APPROVED') AND po.due_date < current_date
                    THEN current_date - po.due_date ELSE 0 END AS days_overdue,
               v.payment_terms_days
        FROM po
        LEFT JOIN m ON m.movie_id = po.movie_id
        LEFT JOIN p ON p.production_id = po.production_id
        LEFT JOIN vendor v ON v.vendor_id = po.vendor_id
        WHERE po.status IN ({statuses}) AND po.due_date < current_date - {grace}
        ORDER BY days_overdue DESC, po.po_number""")
    got = read_rows(base["outputs"]["late-po-escalations"])
    assert expected and len(got) == len(expected)
    for row, e in zip(got, expected):  # po_number is unique: the order is total
        assert row["po_id"] == str(e["po_id"])
        assert row["PO"] == e["po_number"]
        assert row["Status"] == e["status_label"]
        assert row["Title"] == text(e["title"])
        assert row["Shoot city"] == text(e["city"])
        assert row["Vendor"] == e["vendor"]
        assert row["AP contact"] == e["contact_email"]  # raw value: the mailto link is presentation
        assert row["Category"] == e["category"]
        assert row["Amount"] == text(e["amount_usd"])
        assert row["Issued"] == text(e["issued_date"])
        assert row["Due"] == text(e["due_date"])
        assert int(row["Days overdue"]) == e["days_overdue"] > grace
        assert int(row["Terms"]) == e["payment_terms_days"]


def test_open_pos_by_vendor_parquet_matches_hand_sql(base, hand):
    """Measures over a one_to_many join, a filter on the joined rows and a HAVING, typed
    values read back from Parquet."""
    expected = rows_of(hand, f"""
        WITH {latest('po', 'purchase_order_cdc', 'po_id')},
             open_po AS (SELECT * FROM po WHERE status IN ('DRAFT', 'APPROVED'))
        SELECT v.vendor_id, v.name, v.category, v.country, v.payment_terms_days, v.active,
               count(*) AS open_pos, sum(o.amount_usd) AS open_amount,
               count(*) FILTER (WHERE o.due_date < current_date) AS late_pos,
               min(o.due_date) AS oldest_due, count(DISTINCT o.movie_id) AS titles
        FROM vendor v JOIN open_po o ON o.vendor_id = v.vendor_id
        GROUP BY ALL
        HAVING sum(o.amount_usd) >= 250000
        ORDER BY open_amount DESC, v.vendor_id""")
    got = read_rows(base["outputs"]["open-pos-by-vendor"])
    assert expected and len(got) == len(expected)
    assert [r["Open amount"] for r in got] == [e["open_amount"] for e in expected]  # sorted DESC
    by_id = {r["vendor_id"]: r for r in got}
    for e in expected:
        row = by_id[e["vendor_id"]]
        assert (row["Vendor"], row["Category"], row["Country"]) == (e["name"], e["category"], e["country"])
        assert row["Terms (days)"] == e["payment_terms_days"]
        assert row["Active"] is e["active"]  # typed: a boolean, not the "Active"/"Inactive" label
        assert row["Open POs"] == e["open_pos"]
        assert row["Open amount"] == e["open_amount"]
        assert row["Late POs"] == e["late_pos"]
        assert row["Oldest due"] == e["oldest_due"]
        assert row["Titles"] == e["titles"]


def test_shoot_days_this_week_xlsx_matches_hand_sql(base, hand):
    expected = rows_of(hand, f"""
        WITH {latest('m', 'movie_cdc', 'movie_id')}, {latest('p', 'production_cdc', 'production_id')}
        SELECT s.shoot_day_id, s.shoot_date, m.title, s.unit, s.location, p.country, s.call_time,
               s.scheduled_hours, s.scheduled_hours > 12 AS overtime, s.status,
               s.shoot_date - p.shoot_start + 1 AS day_number
        FROM shoot_day s
        LEFT JOIN m ON m.movie_id = s.movie_id
        LEFT JOIN p ON p.production_id = s.production_id
        WHERE date_trunc('week', s.shoot_date) = date_trunc('week', current_date)
          AND s.status <> 'CANCELLED'
        ORDER BY s.shoot_date, m.title, s.unit, s.shoot_day_id""")
    got = read_rows(base["outputs"]["shoot-days-this-week"])
    assert expected and len(got) == len(expected)
    assert [(r["Date"].date(), r["Title"]) for r in got] == [(e["shoot_date"], e["title"]) for e in expected]
    units = {"Main": "Main unit", "Second": "Second unit"}
    statuses = {"SCHEDULED": "Scheduled", "WRAPPED": "Wrapped", "CANCELLED": "Cancelled"}
    by_id = {r["shoot_day_id"]: r for r in got}
    for e in expected:
        row = by_id[e["shoot_day_id"]]
        assert row["Unit"] == units[e["unit"]] and row["Status"] == statuses[e["status"]]
        assert row["Location"] == e["location"] and row["Country"] == e["country"]
        assert row["Call"] == e["call_time"]  # an Excel datetime cell
        assert row["Hours"] == pytest.approx(e["scheduled_hours"])
        assert row["Over 12 h"] == ("Yes" if e["overtime"] else "No")
        assert row["Day of shoot"] == e["day_number"]


def test_budget_by_genre_status_json_matches_hand_sql(base, hand):
    doc = base["docs"]["budget-by-genre-status"]
    min_titles = int((doc.get("parameters") or {}).get("min_titles", 5))
    expected = rows_of(hand, f"""
        WITH {latest('m', 'movie_cdc', 'movie_id')}
        SELECT genre, status, count(*) AS titles, sum(budget_usd) AS total_budget,
               min(launch_date) AS first_launch, max(launch_date) AS last_launch
        FROM m GROUP BY genre, status HAVING count(*) >= {min_titles}""")
    labels = {"DEV": "Development", "PRE": "Pre-production", "PHOT": "In photography",
              "POST": "Post-production", "REL": "Released"}
    got = read_rows(base["outputs"]["budget-by-genre-status"])
    assert expected and len(got) == len(expected)
    got_by_key = {(r["Genre"], r["Status"]): r for r in got}
    for e in expected:
        row = got_by_key[(e["genre"], labels[e["status"]])]
        assert row["Titles"] == e["titles"]
        assert Decimal(row["Total budget"]) == e["total_budget"]
        assert row["First launch"] == e["first_launch"].isoformat()
        assert row["Last launch"] == e["last_launch"].isoformat()
    # sorted by genre, then total budget descending
    assert [r["Genre"] for r in got] == sorted(r["Genre"] for r in got)
    for a, b in zip(got, got[1:]):
        if a["Genre"] == b["Genre"]:
            assert a["Total budget"] >= b["Total budget"]


# --------------------------------------------------------------------------- idempotence


def test_second_refresh_is_byte_identical_and_touches_nothing(base):
    project = base["project"]
    result = genesis_cli("refresh", "--all", "--format", "json", project=project)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert {t["tracker"]: t["status"] for t in report["trackers"]} == {n: "unchanged" for n in base["docs"]}
    for name, path in base["outputs"].items():
        assert stat_of(path) == base["state"][name], f"{name}: output rewritten by an unchanged refresh"


def test_text_summary_and_progress(base):
    """People see one progress line per tracker on stderr and the summary table on stdout."""
    result = genesis_cli("refresh", "--all", project=base["project"])
    assert result.exit_code == 0
    names = sorted(base["docs"])
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["tracker", "rows", "seconds", "result", "destination"]
    for name in names:
        row = next(line for line in lines if line.startswith(name + " "))
        assert row.split()[3] in ("ok", "unchanged")  # byte-identity: see the test above
        assert row.split()[4].startswith("out/")  # the local target writes every tracker under out/
    assert lines[-1].startswith(f"{len(names)} ok, 0 failed in ")
    progress = result.stderr.splitlines()
    assert len(progress) == len(names)
    # trackers run concurrently: lines come as they finish, counted in order
    finished = []
    for i, line in enumerate(progress, start=1):
        assert line.startswith(f"[{i}/{len(names)}] ") and " rows, " in line and "error" not in line
        finished.append(line.split("] ", 1)[1].split(": ", 1)[0])
    assert sorted(finished) == names
    sequential = genesis_cli("refresh", "--all", "--jobs", "1", project=base["project"])
    assert [line.split("] ", 1)[1].split(": ", 1)[0] for line in sequential.stderr.splitlines()] == names


# --------------------------------------------------------------------------- failures keep the old file


BROKEN_FILES = {
    # a data source that declares a column its table does not have: valid YAML, failing query
    "datasources/movie_broken.yaml": """
name: movie_broken
description: Declares a column movie_cdc does not have, so its query fails on the engine.
table: iceberg.studio.movie_cdc
primary_key: [movie_id]
fields:
  movie_id: {type: bigint}
  title: {type: varchar}
  no_such_column: {type: varchar}
""",
    "inputs/broken_filter.yaml": """
name: broken_filter
from: movie_broken
fields: [movie_broken.movie_id, movie_broken.title]
filters: ["movie_broken.no_such_column = 'x'"]
""",
    "trackers/zz-broken-query.yaml": """
name: zz-broken-query
input: broken_filter
destination: {type: file, path: out/zz-broken-query.csv}
""",
}


def strict_copy(project: Path) -> str:
    """movies-in-photography with an impossible min_rows."""
    doc = yaml.safe_load((project / "trackers" / "movies-in-photography.yaml").read_text())
    doc["name"] = "aa-strict-photography"
    doc["checks"] = {**(doc.get("checks") or {}), "min_rows": 10**9}
    doc["checks"].pop("max_rows", None)
    return yaml.safe_dump(doc, sort_keys=False)


def test_failed_check_and_failed_query_keep_previous_files(base, tmp_path):
    project = make_sibling(base["project"], tmp_path / "p", BROKEN_FILES)
    (project / "trackers" / "aa-strict-photography.yaml").write_text(strict_copy(base["project"]))
    out = project / "out"
    out.mkdir()
    strict, broken = out / "aa-strict-photography.csv", out / "zz-broken-query.csv"
    for path in (strict, broken):
        path.write_bytes(SENTINEL)
    before = {p: stat_of(p) for p in (strict, broken)}

    result = genesis_cli("refresh", "--all", "--format", "json", project=project)
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    by_name = {t["tracker"]: t for t in report["trackers"]}

    failed = {n for n, t in by_name.items() if t["status"] == "failed"}
    assert failed == {"aa-strict-photography", "zz-broken-query"}
    check = by_name["aa-strict-photography"]
    assert check["stage"] == "checks"
    assert "min_rows" in check["error"] and "nothing written" in check["error"]
    assert check["rows"] == base["report"]["trackers"][
        [t["tracker"] for t in base["report"]["trackers"]].index("movies-in-photography")]["rows"]
    query = by_name["zz-broken-query"]
    assert query["stage"] == "query" and query["rows"] is None
    assert "no_such_column" in query["error"]
    assert "Traceback" not in json.dumps(report)

    for path in (strict, broken):
        assert stat_of(path) == before[path], f"{path.name} was touched by a failed refresh"
    # every other tracker refreshed, including the ones after the failures
    for name in base["docs"]:
        assert by_name[name]["status"] == "ok", by_name[name]
        written = expected_output(project, base["docs"][name])
        assert len(read_rows(written)) == by_name[name]["rows"]
    assert list(project.rglob(f"{TEMP_PREFIX}*")) == []

    # the text summary says which failed and where; the progress line says why, on one line
    text_run = genesis_cli("refresh", "aa-strict-photography", "zz-broken-query", "movies-in-photography",
                           project=project)
    assert text_run.exit_code == 1
    assert "FAILED at checks" in text_run.stdout and "FAILED at query" in text_run.stdout
    assert "2 ok, 0 failed" not in text_run.stdout and "1 ok, 2 failed" in text_run.stdout
    stderr = text_run.stderr.splitlines()
    assert len(stderr) == 3  # one line per tracker, in the order they finished
    by_tracker = {line.split("] ", 1)[1].split(":", 1)[0]: line for line in stderr}
    assert "min_rows" in by_tracker["aa-strict-photography"]
    assert "no_such_column" in by_tracker["zz-broken-query"]
    # below the table, each error once with the tracker it stopped
    assert "2 errors:" in text_run.stdout
    assert "  zz-broken-query: " in text_run.stdout and "no_such_column" in text_run.stdout


def big_xlsx_files(max_id: int | None = None) -> dict[str, str]:
    parameters = f"parameters: {{max_id: {max_id}}}\n" if max_id is not None else ""
    return {
        "inputs/every_shoot_day.yaml": """
name: every_shoot_day
from: shoot_day
fields:
  - shoot_day.shoot_day_id
  - shoot_day.shoot_date
  - movie.title
  - shoot_day.unit
  - shoot_day.location
  - shoot_day.call_time
  - shoot_day.scheduled_hours
  - shoot_day.status
  - production.vendor.name
filters: ["shoot_day.shoot_day_id <= {{ max_id }}"]
parameters:
  max_id: {type: bigint, default: 999999999}
sort: [shoot_day.shoot_day_id]
""",
        "trackers/big-xlsx.yaml": f"""
name: big-xlsx
input: every_shoot_day
{parameters}destination: {{type: file, path: out/big.xlsx}}
""",
    }


def test_killed_during_write_leaves_previous_file(base, tmp_path):
    project = make_sibling(base["project"], tmp_path / "p", big_xlsx_files())
    target = project / "out" / "big.xlsx"
    target.parent.mkdir()
    target.write_bytes(SENTINEL)
    before = stat_of(target)
    prefix = f"{TEMP_PREFIX}{target.name}."

    env = {k: v for k, v in os.environ.items() if k != "GENESIS_DEBUG"}
    process = subprocess.Popen([sys.executable, "-m", "genesis.cli", "refresh", "big-xlsx", "--project",
                                str(project)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    temp = None
    deadline = time.monotonic() + 120
    try:
        while temp is None and process.poll() is None and time.monotonic() < deadline:
            temp = next((p for p in target.parent.iterdir() if p.name.startswith(prefix)), None)
            if temp is None:
                time.sleep(0.002)
        assert temp is not None, "the writer's temp file never appeared"
        # Killed as soon as the write has begun: the writer takes ~100 ms, polling is 2 ms.
        process.send_signal(signal.SIGKILL)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL, "the refresh finished before it could be killed"

    assert stat_of(target) == before, "a killed write damaged the previous file"
    leftovers = [p for p in target.parent.iterdir() if p.name.startswith(prefix)]
    assert leftovers == [temp]  # the partial write went to the temp file only

    # the next refresh succeeds and clears the dead writer's temp file (small this time)
    for relative, text_ in big_xlsx_files(max_id=100100).items():
        (project / relative).write_text(text_)
    result = genesis_cli("refresh", "big-xlsx", "--format", "json", project=project)
    assert result.exit_code == 0, result.output
    entry = json.loads(result.stdout)["trackers"][0]
    assert entry["status"] == "ok"
    assert [p.name for p in target.parent.iterdir()] == ["big.xlsx"]
    rows = read_rows(target)
    assert len(rows) == entry["rows"] > 0
    assert all(r["shoot_day_id"] <= 100100 for r in rows)


# --------------------------------------------------------------------------- --due, --dry-run


def brute_force_due(schedule: str, now: dt.datetime, window_minutes: float) -> bool:
    """Did the schedule fire at any whole minute in (now - window, now]? Minute by minute."""
    from croniter import croniter

    minute = now.replace(second=0, microsecond=0)
    while minute > now - dt.timedelta(minutes=window_minutes):
        if croniter.match(schedule, minute):
            return True
        minute -= dt.timedelta(minutes=1)
    return False


@pytest.mark.parametrize("now, window", [
    (dt.datetime(2026, 1, 5, 7, 0, tzinfo=dt.UTC), 15),    # a Monday, on the hour
    (dt.datetime(2026, 1, 5, 7, 14, 59, tzinfo=dt.UTC), 15),
    (dt.datetime(2026, 1, 5, 7, 15, tzinfo=dt.UTC), 15),   # 07:00 is 15 min ago: out
    (dt.datetime(2026, 1, 1, 4, 5, tzinfo=dt.UTC), 15),    # 1st of the month
    (dt.datetime(2026, 3, 10, 6, 40, tzinfo=dt.UTC), 15),  # a Tuesday, 06:30 + 10 min
    (dt.datetime(2026, 3, 10, 23, 59, tzinfo=dt.UTC), 15),
    (dt.datetime(2026, 3, 10, 14, 3, tzinfo=dt.UTC), 60),
    (dt.datetime(2026, 3, 14, 12, 30, tzinfo=dt.UTC), 15),  # a Saturday noon
])
def test_due_selects_exactly_the_example_trackers_that_fired(base, now, window):
    """Without refresh stamps (see test_refresh_concurrency.py for them), --window decides."""
    for stamp in (base["project"] / "out").glob(".*.genesis-stamp.json"):
        stamp.unlink()
    project = load_project(base["project"])
    chosen = select_trackers(project, [], all_=False, due=True, window_minutes=window, now=now)
    expected = sorted(name for name, t in project.trackers.items()
                      if t.schedule and brute_force_due(t.schedule, now, window))
    assert [t.name for t in chosen] == expected


def test_due_fixed_now_on_known_schedules(base, tmp_path):
    schedules = {"every-minute": "* * * * *", "hourly": "0 * * * *", "quarter-hourly": "*/15 * * * *",
                 "monday-7": "0 7 * * 1", "weekdays-0630": "30 6 * * 1-5", "monthly": "0 4 1 * *",
                 "leap-day": "0 0 29 2 *", "unscheduled": None}
    files = {}
    for name, schedule in schedules.items():
        line = f"schedule: \"{schedule}\"\n" if schedule else ""
        files[f"trackers/zz-{name}.yaml"] = (f"name: zz-{name}\ninput: movies_in_photography\n{line}"
                                              f"destination: {{type: file, path: out/zz-{name}.csv}}\n")
    project_dir = make_sibling(base["project"], tmp_path / "p", files)
    project = load_project(project_dir)
    utc = dt.UTC

    def due(now, window=15):
        names = [t.name for t in select_trackers(project, [], False, True, window, now=now)]
        return {n[3:] for n in names if n.startswith("zz-")}

    assert due(dt.datetime(2026, 1, 5, 7, 0, tzinfo=utc)) == {"every-minute", "hourly", "quarter-hourly",
                                                              "monday-7"}
    assert due(dt.datetime(2026, 1, 5, 7, 14, tzinfo=utc)) == {"every-minute", "hourly", "quarter-hourly",
                                                               "monday-7"}
    assert due(dt.datetime(2026, 1, 5, 7, 15, tzinfo=utc)) == {"every-minute", "quarter-hourly"}
    assert due(dt.datetime(2026, 1, 6, 6, 44, 59, tzinfo=utc)) == {"every-minute", "quarter-hourly",
                                                                   "weekdays-0630"}
    assert due(dt.datetime(2026, 1, 10, 6, 35, tzinfo=utc)) == {"every-minute", "quarter-hourly"}  # Saturday
    assert due(dt.datetime(2026, 1, 10, 6, 35, tzinfo=utc), window=4) == {"every-minute"}
    assert due(dt.datetime(2026, 2, 1, 4, 0, 30, tzinfo=utc)) == {"every-minute", "hourly", "quarter-hourly",
                                                                  "monthly"}
    assert due(dt.datetime(2028, 2, 29, 0, 10, tzinfo=utc)) >= {"leap-day"}
    assert due(dt.datetime(2026, 1, 5, 9, 50, tzinfo=utc), window=180) == {"every-minute", "hourly",
                                                                          "quarter-hourly", "monday-7"}
    # a `now` in another zone is the same instant: cron is UTC
    paris = dt.timezone(dt.timedelta(hours=1))
    assert due(dt.datetime(2026, 1, 5, 8, 5, tzinfo=paris)) == due(dt.datetime(2026, 1, 5, 7, 5, tzinfo=utc))
    # names and --due: only the named trackers that are due
    named = select_trackers(project, ["zz-monday-7", "zz-monthly"], False, True, 15,
                            now=dt.datetime(2026, 1, 5, 7, 5, tzinfo=utc))
    assert [t.name for t in named] == ["zz-monday-7"]


def test_due_through_the_cli(base, tmp_path):
    """`genesis refresh --due` at a fixed clock (GENESIS_NOW): an every-minute tracker is due
    once per minute, a leap-day-midnight one (practically) never; a tracker with a bad cron
    is reported as failed, not silently skipped, and the due tracker still refreshes."""
    files = {
        "trackers/due-always.yaml": "name: due-always\ninput: movies_in_photography\nschedule: \"* * * * *\"\n"
                                     "destination: {type: file, path: out/due-always.csv}\n",
        "trackers/due-never.yaml": "name: due-never\ninput: movies_in_photography\nschedule: \"0 0 29 2 *\"\n"
                                    "destination: {type: file, path: out/due-never.csv}\n",
    }
    project = make_sibling(base["project"], tmp_path / "p", files)
    for path in (project / "trackers").glob("*.yaml"):  # only our two trackers have schedules
        if not path.name.startswith("due-"):
            path.unlink()
    at = {"GENESIS_NOW": "2026-12-04T10:00:30Z"}
    result = genesis_cli("refresh", "--due", "--format", "json", project=project, env=at)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [(t["tracker"], t["status"]) for t in report["trackers"]] == [("due-always", "ok")]
    assert (project / "out" / "due-always.csv").is_file()
    assert not (project / "out" / "due-never.csv").exists()
    nothing = genesis_cli("refresh", "due-never", "--due", project=project, env=at)  # named, but not due
    assert nothing.exit_code == 0 and nothing.stderr.strip() == "no tracker is due"
    again = genesis_cli("refresh", "--due", project=project, env=at)  # refreshed since 10:00: not again
    assert again.exit_code == 0 and again.stderr.strip() == "no tracker is due"
    at = {"GENESIS_NOW": "2026-12-04T10:01:00Z"}

    (project / "trackers" / "due-bad.yaml").write_text(
        "name: due-bad\ninput: movies_in_photography\nschedule: \"61 * * * *\"\n"
        "destination: {type: file, path: out/due-bad.csv}\n")
    result = genesis_cli("refresh", "--due", "--format", "json", project=project, env=at)
    assert result.exit_code == 1
    by_name = {t["tracker"]: t for t in json.loads(result.stdout)["trackers"]}
    assert set(by_name) == {"due-always", "due-bad"}
    assert by_name["due-always"]["status"] == "unchanged"
    assert by_name["due-bad"]["status"] == "failed" and by_name["due-bad"]["stage"] == "compile"
    assert "cron" in by_name["due-bad"]["error"]


def test_dry_run_writes_nothing(base, tmp_path):
    project = make_sibling(base["project"], tmp_path / "p")
    before = sorted(p.relative_to(project) for p in project.rglob("*"))
    result = genesis_cli("refresh", "--all", "--dry-run", "--format", "json", project=project)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["dry_run"] is True and report["ok"] is True
    rows = {t["tracker"]: t["rows"] for t in base["report"]["trackers"]}
    for entry in report["trackers"]:
        assert entry["status"] == "checked" and entry["rows"] == rows[entry["tracker"]]
    assert sorted(p.relative_to(project) for p in project.rglob("*")) == before
    assert not (project / "out").exists()

    text_run = genesis_cli("refresh", "--all", "--dry-run", project=project)
    assert text_run.exit_code == 0
    assert "dry run: nothing written" in text_run.stdout.splitlines()[-1]
    assert not (project / "out").exists()

    # a dry run of checks that fail still fails, and still writes nothing
    (project / "trackers" / "aa-strict-photography.yaml").write_text(strict_copy(base["project"]))
    strict = genesis_cli("refresh", "aa-strict-photography", "--dry-run", "--format", "json", project=project)
    assert strict.exit_code == 1
    assert json.loads(strict.stdout)["trackers"][0]["stage"] == "checks"
    assert not (project / "out").exists()


# --------------------------------------------------------------------------- bad input: one line each


@pytest.fixture(scope="module")
def bad_project(base, tmp_path_factory):
    files = {
        "trackers/orphan.yaml": "name: orphan\ninput: no_such_input\n"
                                "destination: {type: file, path: out/orphan.csv}\n",
        "trackers/bad-cron.yaml": "name: bad-cron\ninput: movies_in_photography\nschedule: \"0 25 * * *\"\n"
                                  "destination: {type: file, path: out/bad-cron.csv}\n",
        "trackers/blocked.yaml": "name: blocked\ninput: movies_in_photography\n"
                                 "destination: {type: file, path: blocker/sub/blocked.csv}\n",
        "blocker": "a regular file where a directory should be\n",
    }
    targets = {"needs_env": {"engine": "duckdb", "warehouse": "{{ env.GENESIS_E2E_UNSET_VARIABLE }}",
                             "destinations": "local"}}
    return make_sibling(base["project"], tmp_path_factory.mktemp("bad") / "p", files, targets)


def test_unknown_tracker_is_one_line_with_did_you_mean(bad_project):
    result = genesis_process("refresh", "movies-in-photograhpy", project=bad_project)  # a real process
    assert result.returncode == 1
    line = one_line_error(result)
    assert "no tracker named 'movies-in-photograhpy'" in line
    assert "did you mean 'movies-in-photography'" in line
    assert result.stdout == ""
    assert not (bad_project / "out").exists()  # nothing ran


@pytest.mark.parametrize("args, words", [
    (["orphan"], ["orphan", "unknown input 'no_such_input'"]),
    (["bad-cron"], ["schedule '0 25 * * *'", "cron"]),
    (["blocked"], ["cannot write", "blocker", "is a file, not a directory"]),
    (["--all", "--target", "needs_env"], ["GENESIS_E2E_UNSET_VARIABLE", "not set"]),
    (["--all", "--target", "nope"], ["no target named 'nope'"]),
    (["--all", "--window", "15", "--due", "no-such"], ["no tracker named 'no-such'"]),
])
def test_bad_input_is_one_clear_line(bad_project, monkeypatch, args, words):
    monkeypatch.delenv("GENESIS_E2E_UNSET_VARIABLE", raising=False)
    monkeypatch.delenv("GENESIS_DEBUG", raising=False)
    result = genesis_cli("refresh", *args, project=bad_project)
    assert result.exit_code == 1
    line = one_line_error(result)
    for word in words:
        assert word in line, line
    for name in ("orphan", "bad-cron"):
        assert not (bad_project / "out" / f"{name}.csv").exists()


def test_bad_trackers_do_not_stop_the_others(bad_project):
    result = genesis_cli("refresh", "--all", "--format", "json", project=bad_project)
    assert result.exit_code == 1
    by_name = {t["tracker"]: t for t in json.loads(result.stdout)["trackers"]}
    failed = {n: t["stage"] for n, t in by_name.items() if t["status"] == "failed"}
    assert failed == {"orphan": "compile", "bad-cron": "compile", "blocked": "write"}
    assert all(t["status"] == "ok" for n, t in by_name.items() if n not in failed)
    assert (bad_project / "blocker").read_text().startswith("a regular file")
