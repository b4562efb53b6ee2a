import csv
import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from decimal import Decimal
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from genesis.destinations.file import TEMP_PREFIX, write_file
from genesis.errors import GenesisError
from genesis.project.types import arrow_type
from genesis.result import OutputColumn, QueryResult

REPO = Path(__file__).resolve().parents[1]
UTC = dt.UTC

COLUMNS = (
    OutputColumn("movie_id", "bigint"),
    OutputColumn("Title", "varchar"),
    OutputColumn("Budget", "decimal(18,2)", {"number": "#,##0", "prefix": "$"}),
    OutputColumn("Big", "decimal(38,10)"),
    OutputColumn("Shoot start", "date", {"date": "%b %d, %Y"}),
    OutputColumn("Updated", "timestamp"),
    OutputColumn("Updated UTC", "timestamp with time zone"),
    OutputColumn("Active", "boolean"),
    OutputColumn("Shooting", "boolean", {"bool": ["Yes", "No"]}),
    OutputColumn("Cast", "array(varchar)"),
    OutputColumn("Share", "double", {"percent": 1}),
    OutputColumn("Score", "double"),
    OutputColumn("Link", "bigint", {"link": "https://studio.example/movies/{value}"}),
)
DATA = {
    "movie_id": [1, 2, 9007199254740993],
    "Title": ["=SUM(A1:A2)", 'Quote "and", comma\nnew line', "-1 or @me +x"],
    "Budget": [Decimal("1234567.50"), None, Decimal("-0.01")],
    "Big": [Decimal("1234567890123456789012345678.0123456789"), Decimal("0E-10"), None],
    "Shoot start": [dt.date(2024, 3, 5), None, dt.date(1999, 12, 31)],
    "Updated": [dt.datetime(2024, 3, 5, 14, 30, 0), dt.datetime(2024, 3, 5, 14, 30, 0, 123456), None],
    "Updated UTC": [dt.datetime(2024, 3, 5, 14, 30, tzinfo=UTC), None, None],
    "Active": [True, False, None],
    "Shooting": [True, False, None],
    "Cast": [["Ana", "Bo"], [], None],
    "Share": [0.25, 1e-05, float("nan")],
    "Score": [1.5, 1e20, None],
    "Link": [10, None, 30],
}


def make_result(rows: int | None = None) -> QueryResult:
    table = pa.table({c.name: pa.array(DATA[c.name], arrow_type(c.type)) for c in COLUMNS})
    if rows is not None:
        table = pa.concat_tables([table] * (rows // 3 + 1)).slice(0, rows)
    return QueryResult(COLUMNS, table)


# ----------------------------------------------------------------------------- round trips


def test_csv_round_trip(tmp_path):
    path = tmp_path / "out.csv"
    report = write_file(make_result(), path)
    assert report.changed and report.rows == 3 and report.bytes == path.stat().st_size
    raw = path.read_bytes()
    assert b"\r\n" in raw and not raw.startswith(b"\xef\xbb\xbf")  # RFC 4180, UTF-8 without BOM
    with open(path, newline="", encoding="utf-8") as handle:
        header, *rows = list(csv.reader(handle))
    assert header == [c.name for c in COLUMNS]
    first, second, third = (dict(zip(header, r)) for r in rows)
    assert int(third["movie_id"]) == 9007199254740993
    assert first["Title"] == "=SUM(A1:A2)" and second["Title"] == DATA["Title"][1]
    assert first["Budget"] == "1234567.50" and second["Budget"] == ""  # raw, at scale
    assert Decimal(first["Big"]) == DATA["Big"][0] and second["Big"] == "0.0000000000"
    assert dt.date.fromisoformat(first["Shoot start"]) == dt.date(2024, 3, 5)
    assert first["Updated"] == "2024-03-05 14:30:00"
    assert dt.datetime.fromisoformat(second["Updated"]) == DATA["Updated"][1]
    assert dt.datetime.fromisoformat(first["Updated UTC"]) == DATA["Updated UTC"][0]
    assert (first["Active"], second["Active"], third["Active"]) == ("true", "false", "")
    assert first["Shooting"] == "true"  # format is presentation: never in CSV
    assert json.loads(first["Cast"]) == ["Ana", "Bo"] and json.loads(second["Cast"]) == []
    assert (first["Share"], second["Share"], third["Share"]) == ("0.25", "0.00001", "NaN")
    assert second["Score"] == "100000000000000000000"
    assert first["Link"] == "10"


def test_json_round_trip(tmp_path):
    path = tmp_path / "out.json"
    write_file(make_result(), path)
    rows = json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    assert [list(r) for r in rows] == [[c.name for c in COLUMNS]] * 3
    first, second, third = rows
    assert first["movie_id"] == 1 and third["movie_id"] == 9007199254740993
    assert first["Title"] == "=SUM(A1:A2)"
    assert first["Budget"] == Decimal("1234567.50") and second["Budget"] is None
    assert first["Big"] == DATA["Big"][0]  # exact: never through float
    assert '"Big": 1234567890123456789012345678.0123456789' in path.read_text()
    assert first["Shoot start"] == "2024-03-05"
    assert first["Updated"] == "2024-03-05T14:30:00"
    assert dt.datetime.fromisoformat(first["Updated UTC"]) == DATA["Updated UTC"][0]
    assert (first["Active"], second["Active"], third["Active"]) == (True, False, None)
    assert first["Cast"] == ["Ana", "Bo"] and third["Cast"] is None
    assert first["Share"] == Decimal("0.25") and third["Share"] is None  # NaN has no JSON
    assert first["Link"] == 10


def test_json_empty_result(tmp_path):
    path = tmp_path / "empty.json"
    write_file(make_result(0), path)
    assert json.loads(path.read_text()) == []


def test_parquet_round_trip(tmp_path):
    path = tmp_path / "out.parquet"
    result = make_result()
    write_file(result, path)
    read = pq.read_table(path)
    assert read.schema == result.table.schema  # the Arrow table as is, declared types kept
    assert read.drop_columns(["Share"]).equals(result.table.drop_columns(["Share"]))
    share = read["Share"].to_pylist()  # NaN never equals itself
    assert share[:2] == [0.25, 1e-05] and share[2] != share[2]


def _sheet(path):
    return openpyxl.load_workbook(path).active


def test_xlsx_types_and_layout(tmp_path):
    path = tmp_path / "movies.xlsx"
    write_file(make_result(), path)
    sheet = _sheet(path)
    assert sheet.title == "movies"
    assert sheet.freeze_panes == "A2"
    header = [cell for cell in sheet[1]]
    assert [c.value for c in header] == [c.name for c in COLUMNS]
    assert all(c.font.b for c in header)
    cells = {c.name: sheet.cell(row=2, column=i + 1) for i, c in enumerate(COLUMNS)}
    assert cells["movie_id"].value == 1 and cells["movie_id"].data_type == "n"
    assert sheet.cell(row=4, column=1).value == "9007199254740993"  # beyond Excel's 15 digits
    assert cells["Budget"].value == 1234567.5
    assert cells["Budget"].number_format == '"$"#,##0'
    assert cells["Big"].value == str(DATA["Big"][0])
    assert cells["Shoot start"].value.date() == dt.date(2024, 3, 5)
    assert cells["Shoot start"].number_format == 'mmm dd", "yyyy'
    assert cells["Updated"].value == dt.datetime(2024, 3, 5, 14, 30)
    assert cells["Updated"].number_format == "yyyy-mm-dd hh:mm:ss"
    assert cells["Updated UTC"].value == dt.datetime(2024, 3, 5, 14, 30)
    assert cells["Active"].value is True and cells["Active"].data_type == "b"
    assert cells["Shooting"].value == "Yes"  # relabelled booleans are text
    assert cells["Cast"].value == "Ana, Bo"
    assert cells["Share"].value == 0.25 and cells["Share"].number_format == "0.0%"
    assert sheet.cell(row=4, column=11).value == "NaN"
    assert cells["Link"].value == 10
    assert cells["Link"].hyperlink.target == "https://studio.example/movies/10"
    assert sheet.cell(row=3, column=3).value is None  # null stays an empty cell
    widths = [sheet.column_dimensions[chr(ord("A") + i)].width for i in range(len(COLUMNS))]
    assert all(8 <= w <= 60 for w in widths) and widths[1] > widths[0]


def test_xlsx_formula_looking_text_stays_text(tmp_path):
    path = tmp_path / "out.xlsx"
    write_file(make_result(), path)
    sheet = _sheet(path)
    for row, text in [(2, "=SUM(A1:A2)"), (4, "-1 or @me +x")]:
        cell = sheet.cell(row=row, column=2)
        assert cell.data_type == "s" and cell.value == text
    with zipfile.ZipFile(path) as package:
        assert b"<f>" not in package.read("xl/worksheets/sheet1.xml")


def test_xlsx_is_byte_stable(tmp_path):
    write_file(make_result(), tmp_path / "a.xlsx")
    write_file(make_result(), tmp_path / "b.xlsx")
    with zipfile.ZipFile(tmp_path / "a.xlsx") as package:
        assert {i.date_time for i in package.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        core = package.read("docProps/core.xml").decode()
    assert "2000-01-01T00:00:00Z</dcterms:created>" in core
    assert "2000-01-01T00:00:00Z</dcterms:modified>" in core
    # same sheet title (file stem) so the bytes must match
    (tmp_path / "c").mkdir()
    write_file(make_result(), tmp_path / "c" / "a.xlsx")
    assert (tmp_path / "a.xlsx").read_bytes() == (tmp_path / "c" / "a.xlsx").read_bytes()


# ----------------------------------------------------------------------------- guarantees


@pytest.mark.parametrize("name", ["out.csv", "out.json", "out.parquet", "out.xlsx"])
def test_unchanged_result_does_not_touch_the_file(tmp_path, name):
    path = tmp_path / "deep" / "dir" / name  # parents are created
    assert write_file(make_result(), path).changed
    past = 1_600_000_000_000_000_000
    os.utime(path, ns=(past, past))
    before = path.read_bytes()
    report = write_file(make_result(), path)
    assert not report.changed and report.bytes == len(before)
    assert path.read_bytes() == before and path.stat().st_mtime_ns == past
    assert write_file(make_result(2), path).changed
    assert path.stat().st_mtime_ns != past
    assert [p.name for p in path.parent.iterdir()] == [name]


def test_replacing_keeps_the_file_mode(tmp_path):
    path = tmp_path / "out.csv"
    write_file(make_result(1), path)
    path.chmod(0o640)
    write_file(make_result(2), path)
    assert path.stat().st_mode & 0o777 == 0o640


CRASH_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {repo!r})
    sys.path.insert(0, {tests!r})
    import genesis.destinations.file as target
    from test_file_destination import make_result

    where = sys.argv[2]
    if where == "mid-write":
        original, seen = target.csv_text, [0]
        def csv_text(value, column_type):
            seen[0] += 1
            if seen[0] == 20000:  # part of the rows are in the temp file
                os.kill(os.getpid(), signal.SIGKILL)
            return original(value, column_type)
        target.csv_text = csv_text
    else:
        def replace(src, dst):  # written and fsynced, not yet renamed
            os.kill(os.getpid(), signal.SIGKILL)
        target.os.replace = replace
    target.write_file(make_result(30000 if where == "mid-write" else 3000), sys.argv[1])
""")


@pytest.mark.parametrize("where", ["mid-write", "before-rename"])
def test_crash_leaves_the_old_file_intact(tmp_path, where):
    path = tmp_path / "out.csv"
    write_file(make_result(3), path)
    old = path.read_bytes()
    script = CRASH_SCRIPT.format(repo=str(REPO), tests=str(REPO / "tests"))
    proc = subprocess.run([sys.executable, "-c", script, str(path), where], capture_output=True)
    assert proc.returncode == -9, proc.stderr.decode()
    assert path.read_bytes() == old
    leftovers = [p for p in tmp_path.iterdir() if p != path]
    assert leftovers and all(p.name.startswith(TEMP_PREFIX + "out.csv.") for p in leftovers)
    assert not any(p.name.endswith(".csv") for p in leftovers)  # never mistaken for output
    assert leftovers[0].stat().st_size > 0
    report = write_file(make_result(4), path)  # the next write cleans the crashed temp file
    assert report.changed and list(tmp_path.iterdir()) == [path]


def test_live_writers_temp_files_are_kept(tmp_path):
    path = tmp_path / "out.csv"
    mine = tmp_path / f"{TEMP_PREFIX}out.csv.{os.getpid()}.abcd"
    other = tmp_path / f"{TEMP_PREFIX}other.csv.999999999.abcd"
    mine.write_text("x")
    other.write_text("x")
    write_file(make_result(1), path)
    assert mine.exists() and other.exists()


# ----------------------------------------------------------------------------- errors


def test_path_is_a_directory(tmp_path):
    (tmp_path / "out.csv").mkdir()
    with pytest.raises(GenesisError) as err:
        write_file(make_result(), tmp_path / "out.csv")
    assert str(tmp_path / "out.csv") in err.value.message
    assert "directory" in err.value.message and "\n" not in err.value.render()


def test_parent_is_a_file(tmp_path):
    (tmp_path / "out").write_text("x")
    with pytest.raises(GenesisError, match="is a file, not a directory"):
        write_file(make_result(), tmp_path / "out" / "x.csv")


def test_permission_denied(tmp_path):
    if os.geteuid() == 0:
        if not Path("/sys").is_dir():
            pytest.skip("root ignores file modes and there is no read-only sysfs")
        target = Path("/sys/genesis-out.csv")
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        target = locked / "out.csv"
    with pytest.raises(GenesisError) as err:
        write_file(make_result(), target)
    message = err.value.render()
    assert str(target) in message and "\n" not in message
    assert "permission denied" in message or "read-only" in message


def test_unknown_extension(tmp_path):
    with pytest.raises(GenesisError) as err:
        write_file(make_result(), tmp_path / "out.txt")
    assert "'.txt'" in err.value.message
    for ext in (".csv", ".json", ".parquet", ".xlsx"):
        assert ext in err.value.message


# ----------------------------------------------------------------------------- xlsx package

XLSX_ROWS = 20_000
MIXED = (
    OutputColumn("id", "bigint"),
    OutputColumn("name", "varchar"),
    OutputColumn("ratio", "double"),
    OutputColumn("amount", "decimal(18,2)", {"number": "#,##0.00", "prefix": "$"}),
    OutputColumn("precise", "decimal(38,10)"),
    OutputColumn("day", "date", {"date": "%d %b %Y"}),
    OutputColumn("at", "timestamp"),
    OutputColumn("at_utc", "timestamp with time zone"),
    OutputColumn("ok", "boolean"),
    OutputColumn("flag", "boolean", {"bool": ["Yes", "No"]}),
    OutputColumn("tags", "array(varchar)"),
    OutputColumn("share", "double", {"percent": 1}),
    OutputColumn("small", "integer", {"suffix": " h"}),
    OutputColumn("link", "bigint", {"link": "https://studio.example/m/{value}"}),
)
TRICKY_TEXTS = ["plain", "=1+1", "#N/A", "a & b <c> d", "  spaced  ", "line\nbreak", "cr\rlf\r\n",
                "tab\tx", "é 😀 中", "-3", "+x", "@home", "#DIV/0!", "]]>", "", None]


def mixed_data(rows: int) -> dict[str, list]:
    import random

    rng = random.Random(7)

    def maybe(value, p=0.05):
        return None if rng.random() < p else value

    def moment(start_year: int) -> dt.datetime:  # whole milliseconds: openpyxl reads times to the ms
        start = dt.datetime(start_year, 1, 1)
        return start + dt.timedelta(milliseconds=rng.randrange(200 * 365 * 86_400_000))

    def ratio() -> float:
        special = [0.1 + 0.2, float("nan"), float("inf"), -float("inf"), -0.0, 5e-324, 1e300]
        return rng.choice(special) if rng.random() < 0.02 else rng.uniform(-1, 1) * 10.0 ** rng.randint(-8, 14)

    def precise() -> Decimal:  # half beyond Excel's 15 digits (text), half within (numbers)
        if rng.random() < 0.5:
            return Decimal(rng.randint(-10**27, 10**27)).scaleb(-rng.choice([0, 10]))
        return Decimal(rng.randint(-10**6, 10**6)).scaleb(-3)

    # around the start of Excel's calendar and its 1900-02-29 that never was
    edge_days = [dt.date(1899, 12, 31), dt.date(1900, 1, 1), dt.date(1900, 2, 28), dt.date(1900, 3, 1)]
    return {
        "id": [i if i % 1000 else 10**15 + i for i in range(rows)],
        "name": [rng.choice(TRICKY_TEXTS) for _ in range(rows)],
        "ratio": [maybe(ratio()) for _ in range(rows)],
        "amount": [maybe(Decimal(rng.randint(-10**14, 10**14)).scaleb(-2)) for _ in range(rows)],
        "precise": [maybe(precise()) for _ in range(rows)],
        "day": (edge_days + [maybe(dt.date(1850, 1, 1) + dt.timedelta(days=rng.randrange(250 * 365)))
                             for _ in range(rows)])[:rows],
        "at": [maybe(moment(1890)) for _ in range(rows)],
        "at_utc": [maybe(moment(1950).replace(tzinfo=UTC)) for _ in range(rows)],
        "ok": [maybe(rng.random() < 0.5) for _ in range(rows)],
        "flag": [maybe(rng.random() < 0.5) for _ in range(rows)],
        "tags": [maybe([rng.choice(["x", "y & z", "<w>"]) for _ in range(rng.randrange(3))]) for _ in range(rows)],
        "share": [maybe(rng.random()) for _ in range(rows)],
        "small": [maybe(rng.randint(-2**31, 2**31 - 1)) for _ in range(rows)],
        # few links: openpyxl looks each one up in a list, reading is quadratic in them
        "link": [rng.randint(1, 10**6) if i % 20 == 0 else None for i in range(rows)],
    }


def mixed_result(rows: int = XLSX_ROWS) -> QueryResult:
    data = mixed_data(rows)
    return QueryResult(MIXED, pa.table({c.name: pa.array(data[c.name], arrow_type(c.type)) for c in MIXED}))


def expected_cell(value, column: OutputColumn):
    """(value, number format) openpyxl should read back, worked out without the writer."""
    from genesis.destinations.formatting import excel_number_format

    typed_format = excel_number_format(column.type, column.format)
    if value is None or value == "" or value == []:
        return None, None
    if column.name == "flag":
        return ("Yes" if value else "No"), "General"
    if isinstance(value, list):
        return ", ".join(value), "General"
    if isinstance(value, str):
        return value, typed_format or "General"
    if isinstance(value, bool):
        return value, "General"
    if isinstance(value, int):
        return (value, typed_format or "General") if abs(value) < 10**15 else (str(value), "General")
    if isinstance(value, float):
        if value != value:
            return "NaN", "General"
        if value in (float("inf"), -float("inf")):
            return ("Infinity" if value > 0 else "-Infinity"), "General"
        return value, typed_format or "General"
    if isinstance(value, Decimal):
        if len(value.normalize().as_tuple().digits) > 15:
            return format(value, "f"), "General"  # beyond Excel's 15 digits: exact text
        return float(value), typed_format
    if isinstance(value, dt.datetime):
        value = value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
        return (value, typed_format) if value.year >= 1900 else (value.isoformat(sep=" "), "General")
    if value.year < 1900:
        return value.isoformat(), "General"  # before Excel's calendar: ISO text
    return dt.datetime.combine(value, dt.time()), typed_format


def test_xlsx_large_mixed_table_round_trips_exactly(tmp_path):
    path = tmp_path / "mixed.xlsx"
    result = mixed_result()
    write_file(result, path)
    sheet = _sheet(path)
    assert sheet.max_row == XLSX_ROWS + 1 and sheet.max_column == len(MIXED)
    assert [c.value for c in sheet[1]] == [c.name for c in MIXED]
    data = {c.name: result.table.column(c.name).to_pylist() for c in MIXED}  # decimals at their scale
    mismatches = []
    for r, cells in enumerate(sheet.iter_rows(min_row=2), start=0):
        for column, cell in zip(MIXED, cells):
            value = data[column.name][r]
            want = expected_cell(value, column)
            got = (cell.value, cell.number_format if cell.value is not None else None)
            if got != want or type(got[0]) is not type(want[0]) and not isinstance(want[0], float):
                mismatches.append((cell.coordinate, value, want, got))
            if isinstance(cell.value, str):
                assert cell.data_type == "s", cell.coordinate  # never a formula or an error value
            link = cell.hyperlink.target if cell.hyperlink else None
            wanted_link = (f"https://studio.example/m/{value}"
                           if column.name == "link" and value is not None else None)
            if link != wanted_link:
                mismatches.append((cell.coordinate, value, wanted_link, link))
    assert not mismatches, mismatches[:10]


def test_xlsx_package_is_valid_and_opens_without_warnings(tmp_path):
    import warnings
    import xml.etree.ElementTree as etree  # well-formedness needs no third-party parser

    for name, result in [("movies.xlsx", make_result()), ("mixed.xlsx", mixed_result(2000)),
                         ("empty.xlsx", make_result(0))]:
        path = tmp_path / name
        write_file(result, path)
        with zipfile.ZipFile(path) as package:
            assert package.testzip() is None
            parts = {n: package.read(n) for n in package.namelist()}
        assert list(parts)[:1] == ["[Content_Types].xml"]
        trees = {n: etree.fromstring(data) for n, data in parts.items()}  # all well-formed XML
        types = trees.pop("[Content_Types].xml")
        overrides = {e.get("PartName") for e in types if e.tag.endswith("Override")}
        defaults = {e.get("Extension") for e in types if e.tag.endswith("Default")}
        for part in trees:
            assert f"/{part}" in overrides or part.rsplit(".", 1)[-1] in defaults, part
        for part in ("xl/workbook.xml", "xl/worksheets/sheet1.xml", "xl/styles.xml",
                     "docProps/core.xml", "docProps/app.xml"):
            assert f"/{part}" in overrides
        for rels_name, tree in trees.items():  # every internal relationship points at a part
            if rels_name.endswith(".rels"):
                for rel in tree:
                    if rel.get("TargetMode") != "External":
                        assert _rel_target(rels_name, rel.get("Target")) in parts, (rels_name, rel.get("Target"))
        ns = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
        workbook, sheet_xml = trees["xl/workbook.xml"], trees["xl/worksheets/sheet1.xml"]
        last = f"{chr(ord('A') + len(result.columns) - 1)}{result.table.num_rows + 1}"
        names = workbook.findall("m:definedNames/m:definedName", ns)
        assert [(n.get("name"), n.text) for n in names] == [
            ("_xlnm._FilterDatabase", f"'{path.stem}'!$A$1:${last[0]}${last[1:]}")]
        assert sheet_xml.find("m:autoFilter", ns).get("ref") == f"A1:{last}"
        pane = sheet_xml.find("m:sheetViews/m:sheetView/m:pane", ns)
        assert (pane.get("ySplit"), pane.get("topLeftCell"), pane.get("state")) == ("1", "A2", "frozen")
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # openpyxl warns about anything it had to repair or skip
            workbook = openpyxl.load_workbook(path)
            rows = list(workbook.active.iter_rows(values_only=True))
            streamed = openpyxl.load_workbook(path, read_only=True)
            assert list(streamed.active.iter_rows(values_only=True)) == rows
            streamed.close()
        assert len(rows) == result.table.num_rows + 1


def _rel_target(rels_name: str, target: str) -> str:
    """The package part a relationship points at (relative to the part owning the .rels)."""
    import posixpath

    if target.startswith("/"):
        return target[1:]
    owner = rels_name.replace("_rels/", "").removesuffix(".rels")
    return posixpath.normpath(posixpath.join(posixpath.dirname(owner), target))


def test_xlsx_error_and_formula_looking_text_stays_text(tmp_path):
    texts = ["#N/A", "#DIV/0!", "#REF!", "#VALUE!", "#NAME?", "#NULL!", "#NUM!", "=1+1", "+1", "-1",
             "@SUM(A1)", "TRUE", "1e5", "0012", "a & b", "<b>x</b>", "cr\r\nlf", " pad ", "ctl\x01\x1f!"]
    columns = (OutputColumn("Text", "varchar"),)
    path = tmp_path / "texts.xlsx"
    write_file(QueryResult(columns, pa.table({"Text": pa.array(texts, pa.string())})), path)
    sheet = _sheet(path)
    cells = [sheet.cell(row=i + 2, column=1) for i in range(len(texts))]
    assert [c.value for c in cells] == texts[:-1] + ["ctl!"]  # control characters XML cannot carry: dropped
    assert all(c.data_type == "s" for c in cells)
    with zipfile.ZipFile(path) as package:
        xml = package.read("xl/worksheets/sheet1.xml")
    assert b"<f>" not in xml and b't="e"' not in xml and b't="str"' not in xml
    assert b'<t xml:space="preserve"> pad </t>' in xml  # or Excel trims the spaces
    assert b"<t xml:space=\"preserve\">cr&#13;\nlf</t>" in xml  # a bare \r would read back as \n
