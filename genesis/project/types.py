"""Trino types as Genesis declares them, and their Arrow equivalents.

Declared types are the contract of a column: whichever engine ran the query, the
rows reach checks and destinations as the Arrow type given here.
"""

from __future__ import annotations

import re
from functools import cache

SIMPLE_TYPES = ("varchar", "boolean", "tinyint", "smallint", "integer", "bigint", "real", "double", "date",
                "timestamp", "timestamp with time zone")
# The one rule (docs/types.md): a declared type is a Trino type, or one of these aliases,
# which are common names with one unambiguous Trino meaning. `int8` is not one: it is
# 8 bytes in PostgreSQL and 8 bits in Arrow.
ALIASES = {
    "int": "integer", "int16": "smallint", "int32": "integer", "int64": "bigint",
    "float": "double", "float32": "real", "float64": "double",
    "string": "varchar", "text": "varchar", "bool": "boolean",
}
TYPE_FORMS = ("decimal(p,s)", "varchar(n)", "timestamp(p)", "array(T)")
INTEGER_TYPES = {"tinyint", "smallint", "integer", "bigint"}
NUMERIC_TYPES = INTEGER_TYPES | {"real", "double"}

_DECIMAL = re.compile(r"^decimal\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)$")
_VARCHAR_N = re.compile(r"^varchar\s*\(\s*\d+\s*\)$")
_ARRAY = re.compile(r"^array\s*\((.*)\)$")
_TIMESTAMP_P = re.compile(r"^timestamp\s*\(\s*\d+\s*\)(\s+with time zone)?$")


def normalize_type(text: str) -> str | None:
    """The canonical spelling of a declared type, or None if it is not one we support."""
    t = " ".join(str(text).strip().lower().split())
    t = ALIASES.get(t, t)
    if t in SIMPLE_TYPES:
        return t
    if _VARCHAR_N.match(t):
        return "varchar"
    if m := _TIMESTAMP_P.match(t):
        return "timestamp with time zone" if m.group(1) else "timestamp"
    if m := _DECIMAL.match(t):
        precision, scale = int(m.group(1)), int(m.group(2))
        if 1 <= precision <= 38 and 0 <= scale <= precision:
            return f"decimal({precision},{scale})"
        return None
    if m := _ARRAY.match(t):
        inner = normalize_type(m.group(1))
        return f"array({inner})" if inner else None
    return None


def unknown_type_hint(text: str) -> str:
    """The hint of an unknown type: the closest name, then every type and alias accepted."""
    from ..errors import did_you_mean

    names = list(SIMPLE_TYPES) + list(ALIASES)
    guess = did_you_mean(" ".join(str(text).strip().lower().split()), names)
    listing = (f"types: {', '.join(SIMPLE_TYPES + TYPE_FORMS)}; "
               f"aliases: {', '.join(f'{a} = {t}' for a, t in ALIASES.items())}")
    return f"{guess} {listing[0].upper()}{listing[1:]}" if guess else listing


def is_decimal(t: str) -> bool:
    """True for a `decimal(p,s)` type."""
    return t.startswith("decimal(")


def is_numeric(t: str) -> bool:
    """True for an integer, floating-point or decimal type."""
    return t in NUMERIC_TYPES or is_decimal(t)


def is_array(t: str) -> bool:
    """True for an `array(T)` type."""
    return t.startswith("array(")


def array_element(t: str) -> str:
    """The element type T of `array(T)`."""
    return t[len("array("):-1]


def decimal_scale(t: str) -> int:
    """The scale s of `decimal(p,s)`; the caller has checked `is_decimal`."""
    match = _DECIMAL.match(t)
    assert match is not None, t  # callers check is_decimal first
    return int(match.group(2))


@cache
def _simple_arrow_types() -> dict:
    import pyarrow as pa  # imported here: compiling SQL needs no Arrow

    return {
        "varchar": pa.string(), "boolean": pa.bool_(), "tinyint": pa.int8(), "smallint": pa.int16(),
        "integer": pa.int32(), "bigint": pa.int64(), "real": pa.float32(), "double": pa.float64(),
        "date": pa.date32(), "timestamp": pa.timestamp("us"), "timestamp with time zone": pa.timestamp("us", tz="UTC"),
    }


def arrow_type(t: str):
    """The Arrow type that carries values of the canonical Trino type `t`."""
    import pyarrow as pa

    if t in SIMPLE_TYPES:
        return _simple_arrow_types()[t]
    if m := _DECIMAL.match(t):
        return pa.decimal128(int(m.group(1)), int(m.group(2)))
    if is_array(t):
        return pa.list_(arrow_type(array_element(t)))
    raise ValueError(f"unsupported type {t!r}")


def trino_type_of_arrow(dtype) -> str:
    """The Trino type a column of this Arrow type is reported as (for undeclared columns)."""
    import pyarrow as pa

    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return "varchar"
    if pa.types.is_boolean(dtype):
        return "boolean"
    if pa.types.is_int8(dtype):
        return "tinyint"
    if pa.types.is_int16(dtype):
        return "smallint"
    if pa.types.is_int32(dtype):
        return "integer"
    if pa.types.is_integer(dtype):
        return "bigint"
    if pa.types.is_float32(dtype):
        return "real"
    if pa.types.is_floating(dtype):
        return "double"
    if pa.types.is_decimal(dtype):
        return f"decimal({dtype.precision},{dtype.scale})"
    if pa.types.is_date(dtype):
        return "date"
    if pa.types.is_timestamp(dtype):
        return "timestamp with time zone" if dtype.tz else "timestamp"
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
        return f"array({trino_type_of_arrow(dtype.value_type)})"
    return "varchar"
