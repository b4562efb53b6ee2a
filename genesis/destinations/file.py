"""The file destination: a query result as .csv, .json, .parquet or .xlsx.

Refresh guarantees (SPEC section 5) hold for files too:
- atomic: the new content goes to a hidden temp file next to the target, is fsynced and
  then renamed over it, so a crash never leaves a partial file;
- idempotent: when the new bytes equal the file's, the file is not touched (its mtime
  stays), and the report says changed=False; .xlsx output is byte-stable for that reason;
- data, never formulas: an .xlsx text cell starting with `=` stays a text cell.

CSV and JSON carry raw typed values (ISO dates, plain numbers, decimals at their scale);
`format` only shapes the .xlsx cells, which are for people.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import GenesisError
from ..project.types import array_element, is_array, is_decimal
from ..result import QueryResult
from .formatting import raw_text, result_type
from .xlsx import sheet_title, write_xlsx

TEMP_PREFIX = ".genesis-tmp-"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class FileWriteReport:
    """What `write_file` did: the file, its rows and size in bytes, and whether its content changed
    (False: identical bytes, the file was left untouched)."""

    path: Path
    rows: int
    bytes: int
    changed: bool


def write_file(result: QueryResult, path: Path | str) -> FileWriteReport:
    """Write `result` to `path` (format by extension) atomically; skip identical content."""
    path = Path(path)
    writer = _WRITERS.get(path.suffix.lower())
    if writer is None:
        raise GenesisError(
            f"cannot write {path}: unsupported file extension '{path.suffix}'; "
            f"supported: {', '.join(sorted(_WRITERS))}")
    try:
        _prepare_directory(path)
        _remove_stale_temps(path)
        return _write_atomically(result, path, writer)
    except OSError as err:
        raise GenesisError(f"cannot write {path}: {_reason(err)}") from err


def _reason(err: OSError) -> str:
    return (err.strerror or str(err)).lower()


def _prepare_directory(path: Path) -> None:
    if path.is_dir():
        raise GenesisError(f"cannot write {path}: it is a directory")
    for parent in reversed(path.parents):
        if parent.exists() and not parent.is_dir():
            raise GenesisError(f"cannot write {path}: {parent} is a file, not a directory")
    path.parent.mkdir(parents=True, exist_ok=True)


def _write_atomically(result: QueryResult, path: Path, writer: Callable) -> FileWriteReport:
    fd, temp = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            writer(result, handle, path)
            handle.flush()
            os.fsync(handle.fileno())  # the bytes are on disk before the name points at them
        size = os.path.getsize(temp)
        rows = result.table.num_rows
        if _same_content(temp, path):
            os.unlink(temp)
            return FileWriteReport(path, rows, size, changed=False)
        _keep_mode(path, temp)
        os.replace(temp, path)
        _fsync_directory(path.parent)
        return FileWriteReport(path, rows, size, changed=True)
    except BaseException:
        _unlink_quietly(temp)
        raise


def _create_temp(path: Path) -> tuple[int, str]:
    # Hidden, recognisable, never ending in the target's extension; the pid lets a later
    # write tell a crashed writer's leftovers from a live one's.
    name = f"{TEMP_PREFIX}{path.name}.{os.getpid()}.{secrets.token_hex(4)}"
    temp = str(path.parent / name)
    # 0o666 minus the umask, as a plain open() would create the file
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    return fd, temp


def _remove_stale_temps(path: Path) -> None:
    """Delete temp files of `path` left by writers that no longer run."""
    prefix = f"{TEMP_PREFIX}{path.name}."
    with os.scandir(path.parent) as entries:
        stale = [e.path for e in entries if e.name.startswith(prefix)
                 and not process_alive(_temp_pid(e.name[len(prefix):]))]
    for name in stale:
        _unlink_quietly(name)


def _temp_pid(rest: str) -> int:
    text = rest.split(".")[0]
    return int(text) if text.isdigit() else 0


def process_alive(pid: int) -> bool:
    """Is process `pid` running on this machine (a temp file's or a lease's writer)?"""
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def _same_content(new: str, old: Path) -> bool:
    try:
        if os.path.getsize(new) != os.path.getsize(old) or not old.is_file():
            return False
        with open(new, "rb") as a, open(old, "rb") as b:
            while True:
                chunk = a.read(_CHUNK)
                if chunk != b.read(_CHUNK):
                    return False
                if not chunk:
                    return True
    except FileNotFoundError:
        return False


def _keep_mode(path: Path, temp: str) -> None:
    try:
        os.chmod(temp, path.stat().st_mode & 0o7777)
    except FileNotFoundError:
        pass


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable; not possible on every platform.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _unlink_quietly(name: str) -> None:
    try:
        os.unlink(name)
    except OSError:
        pass


def _rows(result: QueryResult) -> Iterator[list[Any]]:
    """Rows as lists of Python values, one record batch in memory at a time."""
    for batch in result.table.to_batches(max_chunksize=10_000):
        columns = [column.to_pylist() for column in batch.columns]
        yield from (list(row) for row in zip(*columns))


# --------------------------------------------------------------------------- CSV / JSON


def write_csv_stream(result: QueryResult, stream: TextIO) -> None:
    """RFC 4180 CSV (CRLF) of raw values under the output names.

    Typed values are not quoted: numbers (plain, no exponent; decimals at their scale),
    booleans true/false, dates and timestamps ISO 8601 with a space before the time -- what
    spreadsheets, `csv` readers and SQL engines read as values. Text (and arrays, as JSON) is
    always quoted, so an empty text ("") differs from a null (an empty field). The header
    names are quoted as text. `stream` must use newline="".

    Each record batch becomes its lines in Arrow compute kernels (cast, quote, join), so the
    rows never pass through Python one by one except for the types Arrow would print
    differently (doubles, timestamps, arrays, see _typed_text).
    """
    stream.write(",".join(_csv_quote(name) for name in result.names) + "\r\n")
    for batch in result.table.to_batches(max_chunksize=10_000):  # streamed: memory stays flat
        if batch.num_rows:
            fields = [_csv_field(column, result_type(c)) for column, c in zip(batch.columns, result.columns)]
            stream.write(_joined_lines(fields))


# Types whose Arrow cast to string is exactly `raw_text`; text types are quoted.
_NATIVE_TEXT = ("boolean", "tinyint", "smallint", "integer", "bigint", "date")
_QUOTED = ("varchar",)


def _csv_quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _csv_field(column: pa.Array, column_type: str) -> pa.Array:
    """The column as CSV fields (null stays null: an empty field)."""
    if column_type in _QUOTED or is_array(column_type) or not column_type:
        native = column_type in _QUOTED and pa.types.is_string(column.type)
        text = column if native else _typed_text(column, column_type)
        return pc.binary_join_element_wise('"', pc.replace_substring(text, '"', '""'), '"', "")
    if column_type in _NATIVE_TEXT:
        return pc.cast(column, pa.string())
    return _typed_text(column, column_type)


def _joined_lines(fields: list[pa.Array]) -> str:
    """The CSV lines of one batch: fields joined by commas, each line ended by CRLF."""
    lines = pc.binary_join_element_wise(*fields, ",", null_handling="replace", null_replacement="")
    lines = pc.binary_join_element_wise(lines, "", "\r\n")
    if not pa.types.is_string(lines.type):
        lines = lines.cast(pa.string())
    # No nulls are left: the lines are the data buffer between the first and last offset.
    _, offsets, data = lines.buffers()
    bounds = memoryview(offsets).cast("i")
    return bytes(memoryview(data)[bounds[lines.offset]:bounds[lines.offset + len(lines)]]).decode("utf-8")


def _typed_text(column: pa.Array, column_type: str) -> pa.Array:
    """A column as the text `raw_text` gives (nulls stay null)."""
    if is_decimal(column_type) and pa.types.is_decimal(column.type):
        texts = pc.cast(column, pa.string())
        # Arrow writes a zero with a scale as "0E-2"; those few go the exact way.
        exponent = pc.match_substring(texts, "E")
        if not pc.any(exponent).as_py():
            return texts
        fixed = [csv_text(v, column_type) if e else t
                 for v, t, e in zip(column.to_pylist(), texts.to_pylist(), exponent.to_pylist())]
        return pa.array(fixed, pa.string())
    return pa.array([None if v is None else csv_text(v, column_type) for v in column.to_pylist()], pa.string())


def csv_text(value: Any, column_type: str) -> str:
    """One non-null value as CSV text, before quoting: raw_text with a space before the time; an array as JSON."""
    if isinstance(value, (list, tuple)):
        return json_text(value, column_type)
    return raw_text(value, column_type, sep=" ")


def write_json_stream(result: QueryResult, stream: TextIO) -> None:
    """A JSON array of objects, one per line, keys in column order.

    Decimals are JSON numbers written digit for digit (never through float), dates and
    timestamps ISO 8601 strings ('T' separator), NaN and infinities null (JSON has none).
    """
    names = [json.dumps(n, ensure_ascii=False) for n in result.names]
    types = [result_type(c) for c in result.columns]
    stream.write("[")
    first = True
    for row in _rows(result):
        fields = ", ".join(f"{n}: {json_text(v, t)}" for n, v, t in zip(names, row, types))
        stream.write(("\n" if first else ",\n") + "{" + fields + "}")
        first = False
    stream.write("]\n" if first else "\n]\n")


def json_text(value: Any, column_type: str) -> str:
    """One value as JSON text."""
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        element = array_element(column_type) if is_array(column_type) else "varchar"
        return "[" + ", ".join(json_text(v, element) for v in value) + "]"
    if isinstance(value, bool) or isinstance(value, int):
        return raw_text(value, column_type)
    if isinstance(value, (float, Decimal)):
        finite = math.isfinite(value) if isinstance(value, float) else value.is_finite()
        return raw_text(value, column_type) if finite else "null"
    if isinstance(value, (dt.date, dt.datetime)):
        return json.dumps(raw_text(value, column_type, sep="T"))
    return json.dumps(str(value), ensure_ascii=False)


def _write_csv(result: QueryResult, handle: BinaryIO, path: Path) -> None:
    _write_text(result, handle, write_csv_stream)


def _write_json(result: QueryResult, handle: BinaryIO, path: Path) -> None:
    _write_text(result, handle, write_json_stream)


def _write_text(result: QueryResult, handle: BinaryIO, write: Callable) -> None:
    text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
    write(result, text)
    text.flush()
    text.detach()  # leave `handle` open for the fsync


def _write_parquet(result: QueryResult, handle: BinaryIO, path: Path) -> None:
    pq.write_table(result.table, handle)


# --------------------------------------------------------------------------- XLSX


def _write_xlsx(result: QueryResult, handle: BinaryIO, path: Path) -> None:
    write_xlsx(result, handle, sheet_title(path))


_WRITERS: dict[str, Callable[[QueryResult, BinaryIO, Path], None]] = {
    ".csv": _write_csv,
    ".json": _write_json,
    ".parquet": _write_parquet,
    ".xlsx": _write_xlsx,
}


def file_bytes(result: QueryResult, path: Path | str) -> bytes:
    """The exact bytes `write_file` would write to `path` (for `genesis audit`)."""
    path = Path(path)
    writer = _WRITERS.get(path.suffix.lower())
    if writer is None:
        raise GenesisError(f"cannot render {path}: unsupported file extension '{path.suffix}'")
    buffer = io.BytesIO()
    writer(result, buffer, path)
    return buffer.getvalue()
