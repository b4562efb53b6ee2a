"""Static types: sums over text and comparisons Trino refuses (see genesis.validate.typecheck)."""

from __future__ import annotations

from collections.abc import Iterable

from ...compiler import CompiledQuery
from ...errors import GenesisError
from ...project.model import DataSource, Input, Project
from ..registry import Rule
from ..typecheck import input_type_problems, measure_problems


def measures_sum_numbers(project: Project, ds: DataSource) -> Iterable[GenesisError]:
    """A `sum` / `avg` measure adds up numbers, not text, dates or booleans."""
    return measure_problems(ds)


def input_types_agree(project: Project, inp: Input, compiled: CompiledQuery) -> Iterable[GenesisError]:
    """An input that compiled sums numbers only and compares values of one kind."""
    return input_type_problems(project, inp)


RULES = (
    Rule("types.measures", datasource=measures_sum_numbers),
    Rule("types.inputs", compiled_input=input_types_agree),
)
