"""Formats: each input field's `format:` fits the type of the column it formats.

The column's type is the compiled one (a reference's declared type, a computed column's
`type:` or inferred type), so this rule reads the compiled query rather than the YAML;
the compiler itself knows nothing of formats.
"""

from __future__ import annotations

from collections.abc import Iterator

from ...compiler import CompiledQuery
from ...destinations.formatting import validate_format
from ...errors import GenesisError
from ...project.model import Input, Project, Tracker
from ..registry import Rule


def format_fits_type(project: Project, definition: Input | Tracker,
                     compiled: CompiledQuery) -> Iterator[GenesisError]:
    """Each field's `format:` has known keys with valid values for its column's type
    (a date pattern on a date, digits on a number, ...)."""
    types = {column.name: column.type for column in compiled.columns}
    for item in compiled.input.fields:
        if not item.format:
            continue
        problems = validate_format(item.format, types.get(item.name) or "varchar")
        if problems:
            yield GenesisError(f"format of '{item.name}': {problems[0]}", item.loc)


RULES = (
    # An input's own query, and each tracker's (which --param values may change): a problem
    # they share is reported once, naming the trackers it breaks.
    Rule("format.fits_type", compiled_input=format_fits_type, compiled_tracker=format_fits_type),
)
