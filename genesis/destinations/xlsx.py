"""The .xlsx writer: a SpreadsheetML package of one sheet, written directly.

openpyxl costs ~10 µs a cell; here each column's cell XML is built in bulk by Arrow
compute (numbers cast to text, dates turned into Excel serials, text escaped), the
columns are joined into rows the same way, and the rows are deflated into the zip as
they come: well under 1 µs a cell. Python runs per value only where Excel needs a value
in another shape than its type gives (arrays, numbers beyond 15 digits, dates before
1900, links).

What a cell holds (`_xlsx_value` is the rule, the bulk paths follow it):
- text is an inline string, always: never a formula or an error value, whatever it
  starts with; XML-escaped, control characters XML cannot carry removed;
- numbers as numbers (shortest text that reads back as the same double); what Excel
  cannot hold exactly (more than 15 significant digits, NaN, infinities) as text;
- booleans as booleans, unless `format: {bool: [...]}` relabels them: then the label;
- dates and timestamps as Excel serials under their date style (time zones as UTC wall
  time); before 1900 (outside Excel's calendar) as ISO text;
- arrays as their display text; a `link` column keeps its typed value and links it.
A value written as text instead of its type (a long number, NaN) gets no number format.

The bytes depend only on the input: fixed zip entry times, fixed part order.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..result import OutputColumn, QueryResult
from .formatting import excel_number_format, format_value, raw_text, result_type

EXCEL_DIGITS = 15  # Excel keeps 15 significant digits; longer numbers are written as text
_WIDTH_SAMPLE = 1000
# Fixed instants so identical input gives identical bytes.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_DOC_TIME = "2000-01-01T00:00:00Z"
# Deflate level 1: about 3x faster than the default for ~25% more bytes; the sheet
# XML is most of the write time otherwise.
_COMPRESS_LEVEL = 1
_BATCH_BYTES = 256 << 20  # bound on one batch's XML: Arrow string offsets are 32-bit
_BATCH_ROWS = 1 << 16

_DEFAULT_DATE = "yyyy-mm-dd"
_DEFAULT_TIMESTAMP = "yyyy-mm-dd hh:mm:ss"
_EXCEL_EPOCH = dt.datetime(1899, 12, 30)  # serial 0 of the 1900 date system
_UNIX_DAY = 25569  # the serial of 1970-01-01, where Arrow counts days from
_FIRST_DAY = -25567  # 1900-01-01 in days since 1970: before it dates are text
_US_PER_DAY = 86_400_000_000

# cellXfs: the defaults, then one per distinct number format
_XF_HEADER, _XF_LINK, _FIRST_FORMAT_XF = 1, 2, 3
_FIRST_CUSTOM_FORMAT = 164  # numFmtId of the first custom number format

# How a cell is written: index into a column's (open, close) tag pairs
_NUM, _BOOL, _TEXT, _TEXT_PLAIN, _BLANK = range(5)

# XML 1.0 cannot carry these; `_clean_text` drops them (not \t, \n, \r).
_ILLEGAL_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_ILLEGAL_RE2 = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x{FFFE}\x{FFFF}]"
_ILLEGAL_BYTES = np.zeros(256, dtype=bool)
_ILLEGAL_BYTES[[*range(0, 9), 11, 12, *range(14, 32)]] = True
# Text escapes; \r too, or XML parsers read it back as \n.
_ESCAPES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("\r", "&#13;"))
_ATTRIBUTE_ESCAPES = _ESCAPES + (('"', "&quot;"), ("\n", "&#10;"), ("\t", "&#9;"))

_MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'


def write_xlsx(result: QueryResult, handle: BinaryIO, title: str) -> None:
    """`result` as an .xlsx package of one sheet named `title`, written to `handle`."""
    styles = _Styles()
    plans = [_plan(i, c, t, styles) for i, (c, t) in
             enumerate(zip(result.columns, result.table.schema.types))]
    with zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as package:
        for name, text in _package_parts(title, len(plans), result.table.num_rows):
            _add(package, name, text)
        _add(package, "xl/styles.xml", styles.xml())
        info = _zip_info("xl/worksheets/sheet1.xml")
        with package.open(info, "w", force_zip64=_needs_zip64(result)) as sheet:
            links = _write_sheet(result, plans, sheet)
        if links:
            _add(package, "xl/worksheets/_rels/sheet1.xml.rels", _sheet_rels(links))


def sheet_title(path: Path) -> str:
    """The worksheet's name: the file name without its extension, made a valid Excel sheet name
    (no []:*?/\\, no leading or trailing quote, at most 31 characters; "Sheet1" if nothing is left)."""
    title = re.sub(r"[\[\]:*?/\\]", "_", path.stem).strip("'")[:31]
    return title or "Sheet1"


# --------------------------------------------------------------------------- zip package


def _zip_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info._compresslevel = _COMPRESS_LEVEL  # type: ignore[attr-defined]  # what ZipFile.open(name) would set
    info.create_system = 0
    info.external_attr = 0o644 << 16
    return info


def _add(package: zipfile.ZipFile, name: str, text: str) -> None:
    package.writestr(_zip_info(name), text.encode("utf-8"), compresslevel=_COMPRESS_LEVEL)


def _needs_zip64(result: QueryResult) -> bool:
    # An upper bound of the sheet XML: escaping grows text at most 5x, tags ~120 bytes a cell.
    table = result.table
    bound = 5 * table.nbytes + 120 * table.num_rows * max(table.num_columns, 1)
    return bound > zipfile.ZIP64_LIMIT / 1.1


def _package_parts(title: str, columns: int, rows: int) -> list[tuple[str, str]]:
    return [
        ("[Content_Types].xml", _CONTENT_TYPES),
        ("_rels/.rels", _ROOT_RELS),
        ("docProps/app.xml", _APP),
        ("docProps/core.xml", _CORE),
        ("xl/workbook.xml", _workbook(title, columns, rows)),
        ("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS),
    ]


_CONTENT_TYPES = _XML_DECLARATION + (
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/styles.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
    '<Override PartName="/docProps/core.xml" '
    'ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>'
    '<Override PartName="/docProps/app.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.extended-properties+xml"/>'
    '</Types>')

_ROOT_RELS = _XML_DECLARATION + (
    f'<Relationships xmlns="{_PKG_REL_NS}">'
    f'<Relationship Id="rId1" Type="{_REL_NS}/officeDocument" Target="xl/workbook.xml"/>'
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/'
    'metadata/core-properties" Target="docProps/core.xml"/>'
    f'<Relationship Id="rId3" Type="{_REL_NS}/extended-properties" Target="docProps/app.xml"/>'
    '</Relationships>')

_APP = _XML_DECLARATION + (
    '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties">'
    '<Application>Genesis</Application></Properties>')

_CORE = _XML_DECLARATION + (
    '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
    'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
    '<dc:creator>Genesis</dc:creator>'
    f'<dcterms:created xsi:type="dcterms:W3CDTF">{_DOC_TIME}</dcterms:created>'
    f'<dcterms:modified xsi:type="dcterms:W3CDTF">{_DOC_TIME}</dcterms:modified>'
    '</cp:coreProperties>')

_WORKBOOK_RELS = _XML_DECLARATION + (
    f'<Relationships xmlns="{_PKG_REL_NS}">'
    f'<Relationship Id="rId1" Type="{_REL_NS}/worksheet" Target="worksheets/sheet1.xml"/>'
    f'<Relationship Id="rId2" Type="{_REL_NS}/styles" Target="styles.xml"/>'
    '</Relationships>')


def _workbook(title: str, columns: int, rows: int) -> str:
    names = ""
    if columns:  # the autofilter's range, as Excel itself records it
        quoted = "'" + title.replace("'", "''") + "'"
        ref = f"{quoted}!$A$1:${column_letter(columns)}${rows + 1}"
        names = ('<definedNames><definedName name="_xlnm._FilterDatabase" localSheetId="0" '
                 f'hidden="1">{_escape(ref)}</definedName></definedNames>')
    return _XML_DECLARATION + (
        f'<workbook xmlns="{_MAIN_NS}" xmlns:r="{_REL_NS}">'
        '<bookViews><workbookView activeTab="0"/></bookViews>'
        f'<sheets><sheet name="{_escape_attribute(title)}" sheetId="1" r:id="rId1"/></sheets>'
        f'{names}</workbook>')


def _sheet_rels(links: list[tuple[int, int, str]]) -> str:
    entries = "".join(
        f'<Relationship Id="rId{i}" Type="{_REL_NS}/hyperlink" '
        f'Target="{_escape_attribute(_clean_text(target))}" TargetMode="External"/>'
        for i, (_, _, target) in enumerate(links, start=1))
    return _XML_DECLARATION + f'<Relationships xmlns="{_PKG_REL_NS}">{entries}</Relationships>'


# --------------------------------------------------------------------------- styles


class _Styles:
    """cellXfs: default, bold header, hyperlink, then one per distinct number format."""

    def __init__(self) -> None:
        self.formats: dict[str, int] = {}  # format code -> its cellXf index

    def xf(self, code: str | None) -> int:
        if not code or code == "General":
            return 0
        return self.formats.setdefault(code, _FIRST_FORMAT_XF + len(self.formats))

    def xml(self) -> str:
        codes = list(self.formats)  # in xf order: dicts keep insertion order
        num_fmts = "".join(f'<numFmt numFmtId="{_FIRST_CUSTOM_FORMAT + i}" '
                           f'formatCode="{_escape_attribute(code)}"/>' for i, code in enumerate(codes))
        xfs = "".join(f'<xf numFmtId="{_FIRST_CUSTOM_FORMAT + i}" fontId="0" fillId="0" borderId="0" '
                      'xfId="0" applyNumberFormat="1"/>' for i in range(len(codes)))
        return _XML_DECLARATION + (
            f'<styleSheet xmlns="{_MAIN_NS}">'
            + (f'<numFmts count="{len(codes)}">{num_fmts}</numFmts>' if codes else "")
            + '<fonts count="3">'
            '<font><sz val="11"/><name val="Calibri"/><family val="2"/></font>'
            '<font><b/><sz val="11"/><name val="Calibri"/><family val="2"/></font>'
            '<font><u/><sz val="11"/><color rgb="FF0563C1"/><name val="Calibri"/><family val="2"/></font>'
            '</fonts>'
            '<fills count="2"><fill><patternFill patternType="none"/></fill>'
            '<fill><patternFill patternType="gray125"/></fill></fills>'
            '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
            '<cellStyleXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/>'
            '<xf numFmtId="0" fontId="2" fillId="0" borderId="0"/></cellStyleXfs>'
            f'<cellXfs count="{_FIRST_FORMAT_XF + len(codes)}">'
            '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
            '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
            '<xf numFmtId="0" fontId="2" fillId="0" borderId="0" xfId="1" applyFont="1"/>'
            f'{xfs}</cellXfs>'
            '<cellStyles count="2"><cellStyle name="Normal" xfId="0" builtinId="0"/>'
            '<cellStyle name="Hyperlink" xfId="1" builtinId="8"/></cellStyles>'
            '<dxfs count="0"/><tableStyles count="0"/></styleSheet>')


# --------------------------------------------------------------------------- column plans


@dataclass(frozen=True)
class _Plan:
    """How one column's cells are written."""

    index: int
    column: OutputColumn
    letter: str
    start: str  # '<c r="B': a cell's opening up to its row number
    link: bool  # values get a hyperlink (a list is never linked)
    blank: bool  # a null is an empty cell keeping the column's number format
    opens: pa.Array  # per _NUM.._BLANK: the rest of the cell's opening tags
    closes: pa.Array


def _plan(index: int, column: OutputColumn, arrow_type: pa.DataType, styles: _Styles) -> _Plan:
    fmt = column.format or {}
    link = "link" in fmt and not pa.types.is_nested(arrow_type)
    code = excel_number_format(result_type(column), fmt)
    blank_xf = styles.xf(code)  # a null is an empty cell with the format: typed-in values show formatted
    if code is None and "link" not in fmt:
        code = _default_date_format(arrow_type)
    typed_xf = _XF_LINK if link else styles.xf(code)  # values written as their type
    text_xf = _XF_LINK if link else 0  # values written as text instead: no number format
    tags = [(f'"{_s(typed_xf)}><v>', "</v></c>"),
            (f'"{_s(typed_xf)} t="b"><v>', "</v></c>"),
            (f'"{_s(typed_xf)} t="inlineStr"><is><t xml:space="preserve">', "</t></is></c>"),
            (f'"{_s(text_xf)} t="inlineStr"><is><t xml:space="preserve">', "</t></is></c>"),
            (f'"{_s(blank_xf)}/>', "")]
    letter = column_letter(index + 1)
    return _Plan(index, column, letter, f'<c r="{letter}', link, blank_xf != 0,
                 pa.array([o for o, _ in tags]), pa.array([c for _, c in tags]))


def _s(xf: int) -> str:
    return f' s="{xf}"' if xf else ""


def _default_date_format(arrow_type: pa.DataType) -> str | None:
    if pa.types.is_date(arrow_type):
        return _DEFAULT_DATE
    if pa.types.is_timestamp(arrow_type):
        return _DEFAULT_TIMESTAMP
    return None


def column_letter(number: int) -> str:
    """1 -> A, 27 -> AA."""
    letters = ""
    while number:
        number, rest = divmod(number - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


# --------------------------------------------------------------------------- the sheet


def _write_sheet(result: QueryResult, plans: list[_Plan], out: IO[bytes]) -> list[tuple[int, int, str]]:
    """Stream sheet1.xml to `out`; returns the hyperlinks (row, column, target) in cell order."""
    rows = result.table.num_rows
    last = f"{column_letter(len(plans))}{rows + 1}" if plans else "A1"
    out.write(_sheet_head(result, plans, last).encode("utf-8"))
    links: list[tuple[int, int, str]] = []
    if plans:
        for first_row, batch in _batches(result.table):
            out.write(_rows_xml(plans, batch, first_row))
            links.extend(_links(plans, batch, first_row))
    links.sort(key=lambda link: link[:2])
    out.write(_sheet_tail(plans, last, links).encode("utf-8"))
    return links


def _sheet_head(result: QueryResult, plans: list[_Plan], last: str) -> str:
    widths = "".join(f'<col min="{i}" max="{i}" width="{w:g}" customWidth="1"/>'
                     for i, w in enumerate(_column_widths(result), start=1))
    header = "".join(_header_cell(p) for p in plans)
    return _XML_DECLARATION + (
        f'<worksheet xmlns="{_MAIN_NS}" xmlns:r="{_REL_NS}">'
        f'<dimension ref="A1:{last}"/>'
        '<sheetViews><sheetView tabSelected="1" workbookViewId="0">'
        '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
        '<selection pane="bottomLeft" activeCell="A2" sqref="A2"/></sheetView></sheetViews>'
        '<sheetFormatPr defaultRowHeight="15"/>'
        + (f"<cols>{widths}</cols>" if widths else "")
        + "<sheetData>" + (f'<row r="1">{header}</row>' if plans else ""))


def _header_cell(plan: _Plan) -> str:
    text = _escape(_clean_text(plan.column.name))
    if not text:
        return f'{plan.start}1" s="{_XF_HEADER}"/>'
    return f'{plan.start}1" s="{_XF_HEADER}" t="inlineStr"><is><t xml:space="preserve">{text}</t></is></c>'


def _sheet_tail(plans: list[_Plan], last: str, links: list[tuple[int, int, str]]) -> str:
    tail = "</sheetData>"
    if plans:
        tail += f'<autoFilter ref="A1:{last}"/>'
    if links:
        tail += "<hyperlinks>" + "".join(
            f'<hyperlink ref="{plans[column].letter}{row}" r:id="rId{i}"/>'
            for i, (row, column, _) in enumerate(links, start=1)) + "</hyperlinks>"
    return tail + ('<pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" '
                   'header="0.3" footer="0.3"/></worksheet>')


def _batches(table: pa.Table) -> Iterator[tuple[int, list[pa.Array]]]:
    """(first sheet row, one array per column) in slices whose XML stays well below 2 GiB."""
    rows = table.num_rows
    per_row = 5 * table.nbytes / max(rows, 1) + 120 * table.num_columns
    size = int(max(1, min(_BATCH_ROWS, _BATCH_BYTES // max(per_row, 1))))
    for offset in range(0, rows, size):
        batch = table.slice(offset, size).combine_chunks()
        yield offset + 2, [column.chunk(0) for column in batch.columns]


def _rows_xml(plans: list[_Plan], arrays: list[pa.Array], first_row: int) -> memoryview:
    """The <row> elements of one batch, as the bytes of one Arrow string buffer."""
    numbers = pc.cast(pa.array(np.arange(first_row, first_row + len(arrays[0]))), pa.string())
    cells = [_cells(plan, array, numbers) for plan, array in zip(plans, arrays)]
    rows = pc.binary_join_element_wise('<row r="', numbers, '">', *cells, "</row>", "")
    return _string_bytes(rows)


def _string_bytes(strings: pa.Array) -> memoryview:
    """The concatenated values of a string array without nulls, without copying them."""
    _, offsets, data = strings.buffers()
    bounds = np.frombuffer(offsets, dtype=np.int32)[strings.offset:strings.offset + len(strings) + 1]
    if data is None or len(bounds) == 0:
        return memoryview(b"")
    return memoryview(data)[int(bounds[0]):int(bounds[-1])]


def _cells(plan: _Plan, array: pa.Array, numbers: pa.Array) -> pa.Array:
    """One column's cell elements ("" where there is no cell)."""
    content, shape = _contents(plan, array)
    if plan.blank:  # a null keeps its column's number format as an empty cell
        missing = pc.is_null(content)
        if pc.any(missing).as_py():
            content = pc.fill_null(content, "")
            shape = pc.if_else(missing, _int8(_BLANK), _as_array(shape, len(content)))
    if isinstance(shape, int):
        opens, closes = plan.opens[shape], plan.closes[shape]
    else:
        opens, closes = plan.opens.take(shape), plan.closes.take(shape)
    cells = pc.binary_join_element_wise(plan.start, numbers, opens, content, closes, "")
    return pc.fill_null(cells, "")


def _int8(value: int) -> pa.Scalar:
    return pa.scalar(value, pa.int8())


def _as_array(shape: int | pa.Array, length: int) -> pa.Array:
    if isinstance(shape, int):
        return pa.repeat(_int8(shape), length)
    return shape


# --------------------------------------------------------------------------- cell contents
# Each returns (content, shape): the escaped text between a cell's tags (null: no value)
# and how the cell is written (_NUM, _TEXT, ...), one for the column or one per row.


def _contents(plan: _Plan, array: pa.Array) -> tuple[pa.Array, int | pa.Array]:
    kind = array.type
    if pa.types.is_dictionary(kind):
        array, kind = array.dictionary_decode(), kind.value_type
    if pa.types.is_integer(kind):
        return _integer_contents(plan, array)
    if pa.types.is_floating(kind):
        return _float_contents(array)
    if pa.types.is_decimal(kind):
        return _decimal_contents(plan, array)
    if pa.types.is_boolean(kind):
        return _boolean_contents(plan, array)
    if pa.types.is_date(kind):
        return _date_contents(plan, array)
    if pa.types.is_timestamp(kind):
        return _timestamp_contents(plan, array)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return _xml_text(pc.cast(array, pa.string())), _TEXT
    return _python_contents(plan, array)


def _integer_contents(plan: _Plan, array: pa.Array) -> tuple[pa.Array, int | pa.Array]:
    texts = pc.cast(array, pa.string())
    if array.type.bit_width < 64:
        return texts, _NUM
    limit = 10 ** EXCEL_DIGITS
    too_long = pc.greater_equal(array, pa.scalar(limit, array.type))
    if pa.types.is_signed_integer(array.type):
        too_long = pc.or_(too_long, pc.less_equal(array, -limit))
    return texts, _shapes(too_long, _TEXT_PLAIN, _NUM)  # digits: nothing to escape


def _float_contents(array: pa.Array) -> tuple[pa.Array, int | pa.Array]:
    # Arrow writes the shortest digits that read back as the same double (as repr does);
    # a float32 is widened first so the text is the double a reader sees.
    numbers = pc.cast(array, pa.float64())
    texts = pc.cast(numbers, pa.string())
    finite = pc.is_finite(numbers)
    if pc.all(finite).as_py() is not False:
        return texts, _NUM
    words = pc.if_else(pc.is_nan(numbers), "NaN",
                       pc.if_else(pc.greater(numbers, 0), "Infinity", "-Infinity"))
    return pc.if_else(finite, texts, words), _shapes(pc.invert(finite), _TEXT_PLAIN, _NUM)


def _decimal_contents(plan: _Plan, array: pa.Array) -> tuple[pa.Array, int | pa.Array]:
    exact = pc.cast(array, pa.string())
    # through the exact text, so the double is the correctly rounded one (as float(Decimal))
    texts = pc.cast(pc.cast(exact, pa.float64()), pa.string())
    if array.type.precision <= EXCEL_DIGITS:
        return texts, _NUM
    digits = pc.replace_substring_regex(exact, r"E.*$", "")  # "1.000E-7" -> "1.000"
    digits = pc.utf8_rtrim(pc.utf8_ltrim(pc.replace_substring(digits, ".", ""), "-0"), "0")
    too_long = pc.greater(pc.utf8_length(digits), EXCEL_DIGITS)
    return _python_patch(plan, array, too_long, texts, _NUM)


def _boolean_contents(plan: _Plan, array: pa.Array) -> tuple[pa.Array, int | pa.Array]:
    fmt = plan.column.format or {}
    if "bool" not in fmt:
        return pc.if_else(array, "1", "0"), _BOOL
    yes, no = (pa.scalar(_escape(_clean_text(format_value(v, result_type(plan.column), _without_link(fmt)))) or None,
                         pa.string()) for v in (True, False))
    return pc.if_else(array, yes, no), _TEXT_PLAIN


def _date_contents(plan: _Plan, array: pa.Array) -> tuple[pa.Array, int | pa.Array]:
    days = pc.cast(pc.cast(array, pa.date32()), pa.int32())
    serials = _serial_days(days)
    return _python_patch(plan, array, pc.less(days, _FIRST_DAY), pc.cast(serials, pa.string()), _NUM)


def _timestamp_contents(plan: _Plan, array: pa.Array) -> tuple[pa.Array, int | pa.Array]:
    # The stored instant is UTC whatever the zone: UTC wall time, as Excel has no zones.
    micros = pc.cast(pc.cast(array, pa.timestamp("us", array.type.tz), safe=False), pa.int64())
    us = pc.fill_null(micros, 0).to_numpy()
    days, in_day = np.divmod(us, _US_PER_DAY)
    seconds, micro = np.divmod(in_day, 1_000_000)
    serial_days = _serial_days(pa.array(days)).to_numpy()
    # the float steps of openpyxl's to_excel, so the serial is the same double
    serials = serial_days + (seconds + micro / 10**6) / 86400
    texts = pc.cast(pa.array(serials, mask=pc.is_null(array).to_numpy(zero_copy_only=False)), pa.string())
    before = pc.less(micros, _FIRST_DAY * _US_PER_DAY)
    return _python_patch(plan, array, before, texts, _NUM)


def _serial_days(days: pa.Array) -> pa.Array:
    """Days since 1970 as Excel day serials, with Excel's 1900-02-29 that never was."""
    serials = pc.add(pc.cast(days, pa.int64()), _UNIX_DAY)
    early = pc.and_(pc.greater(serials, 0), pc.less_equal(serials, 60))
    return pc.if_else(early, pc.subtract(serials, 1), serials)


def _shapes(mask: pa.Array, when: int, otherwise: int) -> int | pa.Array:
    if not pc.any(mask).as_py():
        return otherwise
    return pc.if_else(pc.fill_null(mask, False), _int8(when), _int8(otherwise))


def _python_patch(plan: _Plan, array: pa.Array, mask: pa.Array, contents: pa.Array,
                  shape: int) -> tuple[pa.Array, int | pa.Array]:
    """Contents with the rows under `mask` redone value by value (they are rare)."""
    mask = pc.fill_null(mask, False)
    if not pc.any(mask).as_py():
        return contents, shape
    patch, patch_shapes = _python_contents(plan, array.filter(mask))
    contents = pc.replace_with_mask(contents, mask, patch)
    shapes = pc.replace_with_mask(_as_array(shape, len(array)), mask, patch_shapes)
    return contents, shapes


def _python_contents(plan: _Plan, array: pa.Array) -> tuple[pa.Array, pa.Array]:
    cells = [_python_cell(value, plan.column) for value in array.to_pylist()]
    return (pa.array([c for c, _ in cells], pa.string()),
            pa.array([s for _, s in cells], pa.int8()))


def _python_cell(value: Any, column: OutputColumn) -> tuple[str | None, int]:
    """One value's content and shape, by `_xlsx_value`."""
    typed = _xlsx_value(value, column)
    if typed is None:
        return None, _NUM
    if isinstance(typed, str):
        return _escape(typed) or None, _TEXT if isinstance(value, str) else _TEXT_PLAIN
    if isinstance(typed, bool):
        return ("1" if typed else "0"), _BOOL
    if isinstance(typed, (dt.date, dt.datetime)):
        return _excel_serial(typed), _NUM
    return repr(typed) if isinstance(typed, float) else str(typed), _NUM


def _excel_serial(value: dt.date) -> str:
    """openpyxl's to_excel: days since 1899-12-30 (Excel's fake 1900-02-29 counted) + day fraction."""
    moment = value if isinstance(value, dt.datetime) else dt.datetime.combine(value, dt.time())
    days = (moment - _EXCEL_EPOCH).days
    if 0 < days <= 60:
        days -= 1
    if not isinstance(value, dt.datetime):
        return str(days)
    seconds = moment.hour * 3600 + moment.minute * 60 + moment.second + moment.microsecond / 10**6
    return repr(days + seconds / 86400)


def _xml_text(strings: pa.Array) -> pa.Array:
    """Strings as XML text: illegal characters dropped, escaped, "" as null (no cell)."""
    data = strings.buffers()[2]
    if data is None or not len(strings):
        return strings
    counts = np.bincount(np.frombuffer(data, dtype=np.uint8), minlength=256)
    if counts[_ILLEGAL_BYTES].any() or counts[0xEF]:  # U+FFFE/U+FFFF start with byte EF
        strings = pc.replace_substring_regex(strings, _ILLEGAL_RE2, "")
    for char, entity in _ESCAPES:
        if counts[ord(char)]:
            strings = pc.replace_substring(strings, char, entity)
    empty = pc.equal(pc.binary_length(strings), 0)
    if pc.any(empty).as_py():
        strings = pc.if_else(empty, pa.scalar(None, pa.string()), strings)
    return strings


# --------------------------------------------------------------------------- hyperlinks


def _links(plans: list[_Plan], arrays: list[pa.Array], first_row: int) -> list[tuple[int, int, str]]:
    links: list[tuple[int, int, str]] = []
    for plan, array in zip(plans, arrays):
        if plan.link:
            column, fmt = plan.column, plan.column.format or {}
            links.extend((first_row + i, plan.index, format_value(v, result_type(column), fmt))
                         for i, v in enumerate(array.to_pylist()) if v is not None)
    return links


# --------------------------------------------------------------------------- values


def _xlsx_value(value: Any, column: OutputColumn) -> Any:
    """The typed cell value: numbers, dates, booleans as such; what Excel cannot hold
    exactly (long numbers, NaN, time zones, arrays, relabelled booleans) as text/UTC."""
    fmt = column.format or {}
    if value is None:
        return None
    if isinstance(value, (list, tuple)) or (isinstance(value, bool) and "bool" in fmt):
        return _clean_text(format_value(value, result_type(column), _without_link(fmt)))
    if isinstance(value, bool):
        return value
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:  # Excel has no time zones: UTC wall time
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value if value.year >= 1900 else raw_text(value, sep=" ")
    if isinstance(value, dt.date):
        return value if value.year >= 1900 else raw_text(value)  # before Excel's calendar
    if isinstance(value, int):
        return value if abs(value) < 10**EXCEL_DIGITS else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else raw_text(value, result_type(column))
    if isinstance(value, Decimal):
        exact = value.is_finite() and len(value.normalize().as_tuple().digits) <= EXCEL_DIGITS
        return float(value) if exact else raw_text(value, result_type(column))
    return _clean_text(str(value))


def _without_link(fmt) -> dict:
    # the cell shows the value; the URL is the cell's hyperlink
    return {k: v for k, v in fmt.items() if k != "link"}


def _clean_text(text: str) -> str:
    # XML cannot carry control characters; dropping them beats failing the refresh.
    return _ILLEGAL_CHARACTERS.sub("", text)


def _escape(text: str) -> str:
    for char, entity in _ESCAPES:
        text = text.replace(char, entity)
    return text


def _escape_attribute(text: str) -> str:
    for char, entity in _ATTRIBUTE_ESCAPES:
        text = text.replace(char, entity)
    return text


# --------------------------------------------------------------------------- widths


def _column_widths(result: QueryResult) -> list[float]:
    """Widths from the header and the first rows' display text, within 8..60."""
    sample = result.table.slice(0, _WIDTH_SAMPLE)
    widths = []
    for column, values in zip(result.columns, sample.columns):
        fmt = _without_link(column.format or {})
        texts = [format_value(v, result_type(column), fmt) for v in _distinct(values)]
        longest = max([len(column.name)] + [len(t) for t in texts])
        widths.append(float(min(max(longest + 2, 8), 60)))
    return widths


def _distinct(values: pa.ChunkedArray) -> list[Any]:
    """The sample's values, each once: equal values show the same text."""
    if pa.types.is_floating(values.type):  # 0.0 == -0.0 yet their texts differ: key by repr
        return list({repr(v): v for v in values.to_pylist()}.values())
    try:
        return values.unique().to_pylist()
    except pa.ArrowException:  # no hash kernel for the type (lists, structs)
        return values.to_pylist()
