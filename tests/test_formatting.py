import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genesis.destinations.formatting import (
    excel_number_format,
    format_value,
    raw_text,
    spreadsheet_number_format,
    strftime_to_spreadsheet,
    validate_format,
)

# ----------------------------------------------------------------------------- validate


@pytest.mark.parametrize("fmt, column_type", [
    ({"date": "%b %d, %Y"}, "date"),
    ({"date": "%Y-%m-%d %H:%M"}, "timestamp with time zone"),
    ({"number": "#,##0", "prefix": "$"}, "decimal(18,2)"),
    ({"number": "#,##0.00"}, "double"),
    ({"number": "0.0", "suffix": " min"}, "integer"),
    ({"percent": 1}, "double"),
    ({"bool": ["Yes", "No"]}, "boolean"),
    ({"bool": [True, False]}, "boolean"),  # unquoted Yes/No as YAML 1.1 reads them
    ({"link": "https://studio.example/movies/{value}"}, "bigint"),
    ({"prefix": "#"}, "varchar"),
    ({"number": "#,##0"}, "array(bigint)"),
])
def test_valid_formats(fmt, column_type):
    assert validate_format(fmt, column_type) == []


@pytest.mark.parametrize("fmt, column_type, needle", [
    ({"date": "%Y"}, "varchar", "needs a date or timestamp column, not varchar"),
    ({"date": "%Q"}, "date", "unsupported directive %Q"),
    ({"date": "no directive"}, "date", "has no % directive"),
    ({"date": "%Y %"}, "date", "lone %"),
    ({"date": 5}, "date", "strftime string"),
    ({"numbr": "#,##0"}, "double", "did you mean 'number'"),
    ({"number": "#.##"}, "double", "must be a pattern"),
    ({"number": "#,##0"}, "varchar", "needs a numeric column"),
    ({"percent": "2"}, "double", "number of decimal digits"),
    ({"percent": 2}, "date", "needs a numeric column"),
    ({"bool": ["Yes"]}, "boolean", "two texts"),
    ({"bool": ["Yes", "No", "Maybe"]}, "boolean", "two texts"),
    ({"bool": ["Yes", "No"]}, "integer", "needs a boolean column"),
    ({"link": "https://x/"}, "bigint", "{value}"),
    ({"link": "https://x/{value}", "prefix": "$"}, "bigint", "cannot be combined"),
    ({"number": "0", "percent": 1}, "double", "cannot be combined"),
    ({"prefix": 3}, "double", "must be a text"),
    ({}, "double", "format is empty"),
    ("%Y", "date", "must be a mapping"),
])
def test_invalid_formats(fmt, column_type, needle):
    problems = validate_format(fmt, column_type)
    assert any(needle in p for p in problems), problems


# ----------------------------------------------------------------------------- format_value


@pytest.mark.parametrize("value, column_type, fmt, expected", [
    (None, "double", {"number": "#,##0"}, ""),
    (1234567.891, "double", {"number": "#,##0.00", "prefix": "$"}, "$1,234,567.89"),
    (-1234567, "bigint", {"number": "#,##0", "prefix": "$"}, "-$1,234,567"),
    (999, "bigint", {"number": "#,##0"}, "999"),
    (1000, "bigint", {"number": "#,##0"}, "1,000"),
    (2.5, "double", {"number": "0"}, "3"),  # half away from zero, as spreadsheets round
    (2.675, "double", {"number": "0.00"}, "2.68"),  # the float's shortest text, not its binary value
    (-0.001, "double", {"number": "0.00"}, "0.00"),
    (Decimal("12.5"), "decimal(10,1)", {"number": "0.0", "suffix": " min"}, "12.5 min"),
    (0.25, "double", {"percent": 0}, "25%"),
    (Decimal("0.12345"), "decimal(10,5)", {"percent": 2}, "12.35%"),
    (dt.date(2024, 3, 5), "date", {"date": "%b %d, %Y"}, "Mar 05, 2024"),
    (dt.date(2024, 3, 5), "date", {"date": "%A %-d %B %y"}, "Tuesday 5 March 24"),
    (dt.datetime(2024, 3, 5, 15, 4, 5), "timestamp", {"date": "%-I:%M %p"}, "3:04 PM"),
    (dt.datetime(2024, 3, 5, 0, 4, 5), "timestamp", {"date": "%I %p, 100%%"}, "12 AM, 100%"),
    (True, "boolean", {"bool": ["Yes", "No"]}, "Yes"),
    (False, "boolean", {"bool": ["Shooting", "Idle"]}, "Idle"),
    (False, "boolean", {"bool": [True, False]}, "No"),
    ("a b/c&d", "varchar", {"link": "https://x.example/m/{value}"}, "https://x.example/m/a%20b%2Fc%26d"),
    (42, "bigint", {"link": "https://x.example/m/{value}?v=1"}, "https://x.example/m/42?v=1"),
    (["b", "a"], "array(varchar)", None, "b, a"),
    ([1000, 2000], "array(bigint)", {"number": "#,##0"}, "1,000, 2,000"),
    ("=1+1", "varchar", None, "=1+1"),
    ("-1 take", "varchar", {"prefix": "#"}, "#-1 take"),
])
def test_format_value(value, column_type, fmt, expected):
    assert format_value(value, column_type, fmt) == expected


@pytest.mark.parametrize("value, column_type, expected", [
    (dt.date(2024, 1, 2), "date", "2024-01-02"),
    (dt.datetime(2024, 1, 2, 3, 4, 5), "timestamp", "2024-01-02 03:04:05"),
    (dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC), "timestamp with time zone",
     "2024-01-02 03:04:05+00:00"),
    (1.5, "double", "1.5"),
    (1e-05, "double", "0.00001"),  # plain numbers: no exponent
    (1e20, "double", "100000000000000000000"),
    (float("nan"), "double", "NaN"),
    (float("-inf"), "double", "-Infinity"),
    (Decimal("1.5"), "decimal(10,3)", "1.500"),  # decimals keep their scale
    (Decimal("0E-8"), "decimal(18,8)", "0.00000000"),
    (True, "boolean", "true"),
    (12, "integer", "12"),
])
def test_unformatted(value, column_type, expected):
    assert format_value(value, column_type, None) == expected


def test_format_that_does_not_fit_falls_back_to_raw_text():
    assert format_value("abc", "varchar", {"number": "#,##0"}) == "abc"
    assert format_value(3, "bigint", {"date": "%Y"}) == "3"
    assert format_value(3, "bigint", {"number": "bad"}) == "3"


def test_raw_text_iso_separator():
    value = dt.datetime(2024, 1, 2, 3, 4, 5)
    assert raw_text(value, "timestamp", sep="T") == "2024-01-02T03:04:05"


# ----------------------------------------------------------------------------- spreadsheets


@pytest.mark.parametrize("column_type, fmt, expected", [
    ("date", None, {"type": "DATE", "pattern": "yyyy-mm-dd"}),
    ("timestamp", None, {"type": "DATE_TIME", "pattern": "yyyy-mm-dd hh:mm:ss"}),
    ("date", {"date": "%b %d, %Y"}, {"type": "DATE", "pattern": 'mmm dd", "yyyy'}),
    ("timestamp", {"date": "%d/%m/%Y"}, {"type": "DATE", "pattern": "dd/mm/yyyy"}),
    ("timestamp", {"date": "%Y-%m-%d %H:%M:%S"}, {"type": "DATE_TIME", "pattern": "yyyy-mm-dd hh:mm:ss"}),
    ("timestamp", {"date": "%-I:%M %p"}, {"type": "DATE_TIME", "pattern": "h:mm AM/PM"}),
    ("date", {"date": "%a %-d %B"}, {"type": "DATE", "pattern": 'ddd d mmmm'}),
    ("decimal(18,2)", {"number": "#,##0", "prefix": "$"}, {"type": "CURRENCY", "pattern": '"$"#,##0'}),
    ("double", {"number": "0.0", "suffix": " min"}, {"type": "NUMBER", "pattern": '0.0" min"'}),
    ("double", {"percent": 2}, {"type": "PERCENT", "pattern": "0.00%"}),
    ("double", {"percent": 0}, {"type": "PERCENT", "pattern": "0%"}),
    ("decimal(18,2)", None, {"type": "NUMBER", "pattern": "0.00"}),
    ("decimal(18,0)", None, {"type": "NUMBER", "pattern": "0"}),
    ("integer", {"suffix": " kg"}, {"type": "NUMBER", "pattern": '0" kg"'}),
    ("varchar", {"prefix": "#"}, {"type": "TEXT", "pattern": '"#"@'}),
    ("integer", None, None),
    ("double", None, None),
    ("varchar", None, None),
    ("boolean", {"bool": ["Yes", "No"]}, None),
    ("bigint", {"link": "https://x/{value}"}, None),
    ("array(bigint)", {"number": "#,##0"}, None),
])
def test_spreadsheet_number_format(column_type, fmt, expected):
    assert spreadsheet_number_format(column_type, fmt) == expected
    assert excel_number_format(column_type, fmt) == (expected["pattern"] if expected else None)


def test_strftime_literals_are_quoted():
    assert strftime_to_spreadsheet("Week of %d %b") == '"Week of "dd mmm'
    assert strftime_to_spreadsheet('%Y "q"') == 'yyyy" "\\""q"\\"'
    assert strftime_to_spreadsheet("%H:%M h") == 'hh:mm" h"'


# ----------------------------------------------------------------------------- properties

NUMBER_PATTERNS = ["0", "0.0", "0.00", "#,##0", "#,##0.00", "#,##0.000", "000"]
FORMATS = st.one_of(
    st.none(),
    st.fixed_dictionaries({"number": st.sampled_from(NUMBER_PATTERNS)},
                          optional={"prefix": st.text(max_size=3), "suffix": st.text(max_size=3)}),
    st.fixed_dictionaries({"percent": st.integers(0, 10)}),
    st.fixed_dictionaries({"date": st.sampled_from(["%Y-%m-%d", "%b %d, %Y", "%-I:%M %p %%", "%A %B %y"])}),
    st.fixed_dictionaries({"bool": st.tuples(st.text(), st.text()).map(list)}),
    st.fixed_dictionaries({"link": st.text().map(lambda t: t + "{value}")}),
    st.fixed_dictionaries({"prefix": st.text(max_size=3)}),
)
TYPED_VALUES = st.one_of(
    st.tuples(st.just("bigint"), st.integers(-(2**63), 2**63 - 1)),
    st.tuples(st.just("double"), st.floats(allow_nan=True, allow_infinity=True)),
    st.tuples(st.just("decimal(38,6)"), st.decimals(places=6, allow_nan=False, allow_infinity=False,
                                                     min_value=-(10**31), max_value=10**31)),
    st.tuples(st.just("date"), st.dates()),
    st.tuples(st.just("timestamp"), st.datetimes()),
    st.tuples(st.just("timestamp with time zone"), st.datetimes(timezones=st.just(dt.UTC))),
    st.tuples(st.just("boolean"), st.booleans()),
    st.tuples(st.just("varchar"), st.text()),
    st.tuples(st.just("array(varchar)"), st.lists(st.one_of(st.none(), st.text()), max_size=3)),
    st.tuples(st.just("array(bigint)"), st.lists(st.integers(), max_size=3)),
)


@settings(max_examples=300, deadline=None)
@given(TYPED_VALUES, FORMATS)
def test_format_value_never_raises(typed, fmt):
    column_type, value = typed
    text = format_value(value, column_type, fmt)
    assert isinstance(text, str)
    spreadsheet_number_format(column_type, fmt)


def _parse(text: str, prefix: str) -> Decimal:
    negative = text.startswith("-")
    body = text[1:] if negative else text
    assert body.startswith(prefix)
    number = Decimal(body[len(prefix):].replace(",", ""))
    return -number if negative else number


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.integers(-(10**20), 10**20),
        st.decimals(places=4, min_value=-(10**12), max_value=10**12, allow_nan=False),
        st.floats(min_value=-1e12, max_value=1e12, allow_nan=False),
    ),
    st.sampled_from(NUMBER_PATTERNS),
    st.sampled_from(["", "$", "EUR "]),
)
def test_number_pattern_round_trips(value, pattern, prefix):
    text = format_value(value, "double", {"number": pattern, "prefix": prefix})
    decimals = len(pattern.partition(".")[2])
    exact = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    expected = exact.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    assert _parse(text, prefix) == expected
    whole = text.lstrip("-")[len(prefix):].partition(".")[0]
    if "#,##" in pattern:
        assert all(len(g) == 3 for g in whole.split(",")[1:])
    else:
        assert "," not in whole


# ----------------------------------------------------------------------------- preview

def _result(rows):
    import pyarrow as pa

    from genesis.project.types import arrow_type
    from genesis.result import OutputColumn, QueryResult

    columns = (
        OutputColumn("id", "bigint"),
        OutputColumn("Title", "varchar"),
        OutputColumn("Budget", "decimal(18,2)", {"number": "#,##0", "prefix": "$"}),
        OutputColumn("Shoot", "date", {"date": "%b %d, %Y"}),
    )
    data = {"id": [1, 22, 333], "Title": ["Alpha\nBeta", "東京", None],
            "Budget": [Decimal("1234567.50"), None, Decimal("-5")],
            "Shoot": [dt.date(2024, 1, 2), None, None]}
    table = pa.table({c.name: pa.array(data[c.name], arrow_type(c.type)) for c in columns})
    return QueryResult(columns, table.slice(0, rows))


def test_render_table():
    from genesis.commands.preview import render_table

    assert render_table(_result(3)) == (
        " id | Title      |     Budget | Shoot\n"
        "----+------------+------------+-------------\n"
        "  1 | Alpha Beta | $1,234,568 | Jan 02, 2024\n"
        " 22 | 東京       |            |\n"
        "333 |            |        -$5 |\n"
        "3 rows\n"
    )


def test_render_table_footer():
    from genesis.commands.preview import render_table

    assert render_table(_result(3), max_rows=2).endswith("\n3 rows (showing first 2)\n")
    assert render_table(_result(1)).endswith("\n1 row\n")
    assert render_table(_result(0)).endswith("------\n0 rows\n")
