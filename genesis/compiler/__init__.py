"""Inputs and trackers to SQL: plan (plan.py), passes (passes/), build the AST (render.py), print.

    compiled = compile_input(project, "movies_in_photography", params={"countries": ["US"]})
    compiled.sql("trino")   # the reference dialect
    compiled.sql("duckdb")  # the embedded engine
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlglot import exp

from ..errors import GenesisError, Location, did_you_mean
from ..project.model import Input, Project, Tracker
from ..result import OutputColumn
from . import time
from .dialects import DIALECTS, dialect_named
from .expressions import parameter_values, sql_literal
from .join_graph import JoinGraph
from .join_types import tighten_joins
from .passes import run_passes
from .plan import build_plan, datasource_origins
from .query_plan import ReferenceUse
from .render import build_query

_CLAUSES = {"SELECT", "FROM", "WHERE", "GROUP BY", "ORDER BY", "HAVING", "LIMIT", "SELECT DISTINCT"}


@dataclass(frozen=True)
class CompiledQuery:
    """One input's (or tracker's) compiled query: its SQL tree, output columns and what it reads.

    `build` makes the query's sqlglot tree from the frozen plan; `tree()` hands one out.
    `references`: every `datasource.member` the query reads (impact and docs use them);
    `datasources`: the data sources the main query joins; `origins`: the YAML location of
    each column, filter and data source `sql:`, so an engine error points at a definition.
    """

    input: Input
    columns: tuple[OutputColumn, ...]
    build: Callable[[], exp.Select]
    parameters: Mapping[str, Any]
    datasources: frozenset[str]
    references: frozenset[str]
    tracker: Tracker | None = None
    origins: tuple[tuple[Any, Location], ...] = ()  # (expression, or a function making it; YAML location)
    uses: tuple[ReferenceUse, ...] = ()  # which part of the input reads which reference (for impact)
    # The printed SQL per (dialect, pretty): validate, compile and run all print the same query.
    _texts: dict[tuple[str, bool], str] = field(default_factory=dict, compare=False, repr=False)
    # The tree built when the query was compiled (building it is what finds a bad `latest:`),
    # until tree() hands it out. A tracker's query shares it with its input's.
    _spare: list[exp.Select] = field(default_factory=list, compare=False, repr=False)

    def tree(self) -> exp.Select:
        """A tree of the query that the caller owns and may change (the SQL generator does).

        The first call takes the tree built at compile time; later calls build a new one.
        Nobody else holds the tree given out, so printing it needs no copy, and a tree the
        generator rewrote for one dialect is never printed for another. Two threads of a
        refresh may ask at once: one gets the spare tree (list.pop is atomic), the other a new one.
        """
        try:
            return self._spare.pop()
        except IndexError:
            return self.build()

    def locate(self, dialect: str, line: int | None, col: int | None = None) -> Location | None:
        """The YAML location of the field, filter or column that produced SQL `line` (1-based)."""
        if not line:
            return None
        lines = self.sql(dialect).splitlines()
        if not 0 < line <= len(lines):
            return None
        text = lines[line - 1].strip().rstrip(",")
        if len(re.sub(r"[^A-Za-z0-9_]", "", text)) < 6 or text.upper() in _CLAUSES:
            return None  # punctuation or a bare keyword names no definition
        best = None
        for expr, loc in self.origins:
            rendered = (expr() if callable(expr) else expr).sql(dialect=dialect_named(dialect))
            if text and (text in rendered or rendered in text):
                # The closest in length is the most specific: a computed column's line also
                # holds the plain references inside it, and a reference is in many columns.
                # On a tie the later origin wins: a data source's `sql:` over an input
                # item that only names that field.
                overlap = min(len(text), len(rendered)) / max(len(text), len(rendered))
                if best is None or overlap >= best[0]:
                    best = (overlap, loc)
        return best[1] if best else None

    def sql(self, dialect: str = "trino", pretty: bool = True) -> str:
        """The query printed for `dialect` (printed once per dialect, then remembered)."""
        if dialect not in DIALECTS:
            raise GenesisError(f"unknown dialect '{dialect}'", hint=did_you_mean(dialect, DIALECTS))
        key = (dialect, pretty)
        if key not in self._texts:
            self._texts[key] = _render(self.tree(), dialect, pretty)
        return self._texts[key]

    def column_for(self, reference_or_name: str) -> OutputColumn | None:
        """The output column a tracker's key or check names, by reference or output name."""
        for column in self.columns:
            if column.reference == reference_or_name or column.name == reference_or_name:
                return column
        return None


def _render(tree: exp.Expr, dialect_name: str, pretty: bool) -> str:
    """Print a tree the caller gave away (CompiledQuery.tree): the generator rewrites it in
    place. No copy is made for it to rewrite: copying took about half of the printing time."""
    return dialect_named(dialect_name).generate(tree, copy=False, pretty=pretty)


def graph_of(project: Project) -> JoinGraph:
    """The project's join graph, built once per loaded project (its path search is cached)."""
    return project.derived("join_graph", lambda: JoinGraph(project.datasources))


def compile_input(project: Project, name: str, params: Mapping[str, Any] | None = None,
                  tracker: Tracker | None = None) -> CompiledQuery:
    """Compile one input; `params` (e.g. from --param) win over the tracker's own values.

    Results are remembered per project, so `validate` then `compile --all` compiles once.
    """
    cache = project.derived("compiled_inputs", dict)
    moment = time.moment_key(project)  # "today" and --as-of become literals of the query
    key = (name, tracker.name if tracker else None, repr(sorted((params or {}).items())), moment)
    if key not in cache:
        cache[key] = _compile_input(project, name, params, tracker, moment)
    return cache[key]


def _compile_input(project: Project, name: str, params: Mapping[str, Any] | None,
                   tracker: Tracker | None, moment: tuple) -> CompiledQuery:
    """Resolve the parameter values, then compile, or reuse the query compiled for the same
    input with the same values: a tracker that sets no parameter of its own runs its input's
    query, which `validate` and `compile --all` compile as an input already."""
    inp = project.inputs.get(name)
    if inp is None:
        raise GenesisError(f"no input named '{name}'", hint=did_you_mean(name, project.inputs)
                           or _listing(project.inputs))
    if inp.root not in project.datasources:
        raise GenesisError(f"input '{name}' reads from unknown data source '{inp.root}'",
                           inp.locs.get("from", inp.loc), did_you_mean(inp.root, project.datasources))
    # The command line wins over the tracker (as dbt's --vars do); see name_notes.
    sources: list[tuple[str, Mapping[str, Any], Location | None]] = [("--param", params or {}, None)]
    if tracker is not None:
        sources.append((f"tracker '{tracker.name}'", tracker.parameters, tracker.locs.get("parameters", tracker.loc)))
    values = parameter_values(inp.parameters, *sources)
    by_values = project.derived("compiled_by_values", dict)
    key = (name, repr(sorted(values.items())), moment)
    if key not in by_values:
        by_values[key] = _compile_values(project, inp, values, moment)
    return dataclasses.replace(by_values[key], tracker=tracker)


def _compile_values(project: Project, inp: Input, values: Mapping[str, Any], moment: tuple) -> CompiledQuery:
    literals = {n: sql_literal(v, inp.parameters[n].type) for n, v in values.items()}
    plan = run_passes(build_plan(graph_of(project), time.desugar(project, inp), literals))

    def build() -> exp.Select:  # the plan is frozen and the moment fixed: every build is the same tree
        return time.apply_as_of(tighten_joins(build_query(plan), plan), project, as_of)

    as_of: datetime | None = moment[0]
    tree = build()  # built now, so a problem in it is found by validate
    used = frozenset(i.datasource.name for i in plan.instances.values())
    # The data sources' own `sql:` fields, for locating engine errors: those of the joined
    # instances and of the pre-aggregated branches' (their SQL is in the query too).
    shown = set(plan.instances) | {i.path for d in plan.pre_aggregations for i in d.members}
    origins = tuple(plan.origins) + tuple(datasource_origins(plan, shown))
    return CompiledQuery(inp, tuple(c.output for c in plan.columns), build, values, used,
                         plan.references, None, origins, plan.uses, _spare=[tree])


def compile_tracker(project: Project, name: str, params: Mapping[str, Any] | None = None) -> CompiledQuery:
    """Compile a tracker's input with the tracker's parameter values (`params` win over them)."""
    tracker = project.trackers.get(name)
    if tracker is None:
        raise GenesisError(f"no tracker named '{name}'", hint=did_you_mean(name, project.trackers)
                           or _listing(project.trackers))
    if tracker.input not in project.inputs:
        raise GenesisError(f"tracker '{name}' uses unknown input '{tracker.input}'",
                           tracker.locs.get("input", tracker.loc), did_you_mean(tracker.input, project.inputs))
    return compile_input(project, tracker.input, params, tracker)


def name_notes(project: Project, name: str, params: Mapping[str, Any] | None = None) -> list[str]:
    """What the CLI says on stderr about NAME: which of a tracker and an input of that name
    it took, and every --param that replaces a value the tracker sets.

    The command line wins over the tracker (SPEC section 4: "overrides the tracker's value,
    as dbt's --vars do, and says so"), so nobody mistakes the output for the tracker's own.
    """
    import json

    kind, bare, note = resolve_name(project, name)
    notes = [note] if note else []
    if kind == "tracker":
        tracker = project.trackers[bare]
        notes += [f"note: --param {key} overrides the value tracker '{bare}' sets "
                  f"({key}: {json.dumps(tracker.parameters[key], default=str)})"
                  for key in params or {} if key in tracker.parameters]
    return notes


KINDS = ("tracker", "input")


def resolve_name(project: Project, name: str) -> tuple[str, str, str | None]:
    """(kind, name, note) for a NAME given to `run` or `compile`.

    `tracker:NAME` and `input:NAME` say which; a bare NAME is the tracker when there is one
    (trackers are what people refresh), else the input. When a tracker and an input share
    the name, `note` says which was taken and how to get the other.
    """
    kind, _, bare = name.partition(":") if name.split(":", 1)[0] in KINDS else ("", "", name)
    if kind == "tracker" or (not kind and bare in project.trackers):
        note = None
        if not kind and bare in project.inputs:
            note = (f"note: '{bare}' is a tracker and an input; this is the tracker "
                    f"(write input:{bare} for the input)")
        if bare not in project.trackers:
            raise GenesisError(f"no tracker named '{bare}'", hint=did_you_mean(bare, project.trackers)
                               or _listing(project.trackers))
        return "tracker", bare, note
    if kind == "input" or bare in project.inputs:
        if bare not in project.inputs:
            raise GenesisError(f"no input named '{bare}'", hint=did_you_mean(bare, project.inputs)
                               or _listing(project.inputs))
        return "input", bare, None
    raise GenesisError(f"no tracker or input named '{bare}'",
                       hint=did_you_mean(bare, list(project.trackers) + list(project.inputs)))


def compile_name(project: Project, name: str, params: Mapping[str, Any] | None = None) -> CompiledQuery:
    """A tracker or an input, by name, `tracker:NAME` or `input:NAME` (see resolve_name)."""
    kind, bare, _ = resolve_name(project, name)
    if kind == "tracker":
        return compile_tracker(project, bare, params)
    return compile_input(project, bare, params)


def _listing(names) -> str | None:
    names = sorted(names)
    return f"known: {', '.join(names[:10])}" if names else None
