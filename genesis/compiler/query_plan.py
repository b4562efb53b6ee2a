"""The query plan: what an input selects, joins, filters and groups, and the passes' decisions.

`build_plan` (plan.py) resolves an input into a `QueryPlan`; each pass (passes/) returns a
new plan with one more decision recorded; `build_query` (render.py) turns the final plan
into SQL. The plan is frozen and holds no finished SQL of its own making: a pass records
*what* it decided (this filter becomes a semi-join over that branch, that branch is
aggregated first, ...) and the render step builds the SQL for it.

The expressions a plan holds (columns, filters) are the resolved user definitions over
instance aliases; several decisions point at their aggregate calls by identity, so they are
shared between plans, never copied or changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple

from sqlglot import exp

from ..errors import Location
from ..project.model import Input, InputField
from ..result import OutputColumn
from .join_graph import Instance
from .members import field_expr

Path = tuple[str, ...]


@dataclass(frozen=True)
class PlannedColumn:
    """One output column: its resolved expression (over instance aliases) and where it came from."""

    output: OutputColumn
    expr: exp.Expr  # may contain aggregate calls
    aggregate: bool
    labels: Mapping[str, str] | None = None
    label_type: str | None = None  # the stored type the labels' codes compare to
    source: InputField | None = None
    member_key: tuple | None = None  # (instance path, member name) of a plain field or measure


@dataclass(frozen=True)
class Grain:
    """The rows an aggregate call sees (docs/semantics.md, "Which rows an aggregate sees").

    `identity`: the instances whose rows, taken together, are one row of the aggregate
    (their primary keys tell the rows apart when the joins repeat them); `scope`: the
    paths whose columns it may read; `must_exist`: the instance whose row must be there,
    not NULL-extended by a left join (None: every row of the scope is one).
    """

    identity: tuple[Instance, ...]
    scope: frozenset[Path]
    must_exist: Instance | None
    measure: bool


@dataclass(frozen=True)
class AggregateCall:
    """An aggregate call inside a column or HAVING expression, and how it is computed.

    `keyed` (decided by the grouping pass): computed in a key sub-query, because the joins
    repeat the rows it aggregates and it is not idempotent."""

    node: exp.Expr
    grain: Grain
    alias: str  # the column that carries its value
    grain_alias: str  # names its key sub-query
    loc: Location | None  # the column or filter it is in, for errors
    what: str
    keyed: bool = False

    @property
    def identity(self) -> tuple[Instance, ...]:
        """The instances whose primary keys tell apart the rows it aggregates."""
        return self.grain.identity


@dataclass(frozen=True)
class SortKey:
    """A sort item: an output column by `name`, or a resolved expression `expr`."""

    name: str | None
    expr: exp.Expr | None
    descending: bool


@dataclass(frozen=True)
class SemiJoin:
    """A decision: keep the rows for which the `filters` hold on some row of the branch at
    `head` (EXISTS), instead of joining the branch (`members`, head first by path length)."""

    parent: Instance
    head: Instance
    members: tuple[Instance, ...]
    filters: tuple[Filter, ...]


Filter = exp.Expr | SemiJoin


@dataclass(frozen=True)
class PreAggregation:
    """A decision: aggregate the one_to_many branch at `head` per join key in a sub-query and
    join that; `calls` read only that branch, `having` moved into the sub-query."""

    parent: Instance
    head: Instance
    members: tuple[Instance, ...]
    calls: tuple[AggregateCall, ...]
    having: tuple[exp.Expr, ...]


@dataclass(frozen=True)
class CteSource:
    """A decision for one CTE of the keyed query: the instances it joins (root included), its
    filters (some semi-joins in place of joins) and whether it needs DISTINCT."""

    paths: tuple[Path, ...]
    where: tuple[Filter, ...]
    distinct: bool


@dataclass(frozen=True)
class TieBreaker:
    """A decision: order by this output `column`, or by the root's key field `root_key`."""

    column: str | None = None
    root_key: str | None = None


class ReferenceUse(NamedTuple):
    """One reference read by one part of the input: `part` is ("fields" | "filters" | "sort",
    index in that list); `via_join` marks a join (or a join key) on the path to what the
    part names rather than the reference it names. `genesis impact` says "where" from these."""

    reference: str
    part: tuple[str, int]
    via_join: bool = False


@dataclass(frozen=True)
class QueryPlan:
    """An input resolved over its join instances, and what the passes decided about it.

    `resolved`: every instance a reference reached (insertion order), `instances`: those
    the main query joins (the passes take branches out), `aliases`: every instance's alias.
    """

    input: Input
    root: Instance
    resolved: Mapping[Path, Instance]
    instances: Mapping[Path, Instance]
    aliases: Mapping[Path, str]
    by_alias: Mapping[str, Instance]
    columns: tuple[PlannedColumn, ...]
    where: tuple[Filter, ...]
    having: tuple[exp.Expr, ...]
    calls: tuple[AggregateCall, ...]
    metric_mode: bool  # a measure or an aggregate computed column: rows are groups of the other fields
    sort: tuple[SortKey, ...]
    limit: int | None
    references: frozenset[str]
    origins: tuple = ()  # (expression, YAML location) of the input's columns and filters
    uses: tuple[ReferenceUse, ...] = ()  # which input part reads which reference (for impact)
    grouped: bool = False  # decided by the grouping pass
    pre_aggregations: tuple[PreAggregation, ...] = ()
    cte_sources: Mapping[str, CteSource] = field(default_factory=lambda: MappingProxyType({}))
    tie_breakers: tuple[TieBreaker, ...] = ()

    def alias(self, instance: Instance) -> str:
        """The SQL alias of an instance."""
        return self.aliases[instance.path]

    @property
    def dims(self) -> tuple[exp.Expr, ...]:
        """Group-by expressions of the output's non-aggregate columns."""
        return tuple(c.expr for c in self.columns if not c.aggregate)

    @property
    def hidden_keys(self) -> tuple[exp.Expr, ...]:
        """What a grouped listing also groups by: the root's primary key (one group per root
        row) and the sort expressions that are not output columns (one value per group)."""
        if not self.grouped or self.metric_mode:
            return ()
        root = self.root.datasource
        keys = [field_expr(root, root.fields[k], self.aliases[()]) for k in root.primary_key]
        return tuple(keys + [s.expr for s in self.sort if s.expr is not None])


def frozen(mapping: Mapping) -> Mapping:
    """A read-only copy of `mapping`, for a plan's fields."""
    return MappingProxyType(dict(mapping))


def instances_in(plan: QueryPlan, tree: Filter) -> list[Instance]:
    """The instances whose columns `tree` reads (a semi-join: those of its EXISTS), by path."""
    if not isinstance(tree, SemiJoin):
        return instances_reading(plan.by_alias, tree)
    found = {instance.path: instance for instance in (tree.parent, *tree.members)}
    for sub in tree.filters:
        found.update((i.path, i) for i in instances_in(plan, sub))
    return sorted(found.values(), key=lambda i: (len(i.path), i.path))


def instances_reading(by_alias: Mapping[str, Instance], tree: exp.Expr) -> list[Instance]:
    """The instances (of `by_alias`: SQL alias -> instance) whose columns `tree` reads, by path."""
    found: dict[Path, Instance] = {}
    for column in tree.find_all(exp.Column):
        instance = by_alias.get(column.table)
        if instance is not None:
            found[instance.path] = instance
    return sorted(found.values(), key=lambda i: (len(i.path), i.path))


def branch_of(instance: Instance) -> Path:
    """The path of the instance where the first one_to_many join on its path lands."""
    for index, join in enumerate(instance.joins):
        if join.relationship == "one_to_many":
            return instance.path[:index + 1]
    return instance.path


def always_joined(instance: Instance) -> bool:
    """Is every join on the way to `instance` an inner join (its row is never NULL-extended)?"""
    return all(j.type == "inner" for j in instance.joins)


def meets_several(source: Instance, target: Instance) -> bool:
    """Can one row of `source` meet several rows of `target` in a query joining both?"""
    common = 0
    while common < min(len(source.path), len(target.path)) and source.path[common] == target.path[common]:
        common += 1
    going_up = source.joins[common:]  # traversed child -> parent
    going_down = target.joins[common:]  # traversed parent -> child
    return (any(j.relationship == "many_to_one" for j in going_up)
            or any(j.relationship == "one_to_many" for j in going_down))


def joins_repeat(plan: QueryPlan, grain: Grain, paths=None) -> bool:
    """Would the joins of this query (or only those to `paths`) repeat the rows this aggregate sees?"""
    joined = {p: plan.instances[p] for p in (plan.instances if paths is None else paths)}
    if grain.measure:
        (instance,) = grain.identity
        return any(meets_several(instance, other) for other in joined.values() if other is not instance)
    for path, other in joined.items():
        if path in grain.scope:
            continue
        attach = max(n for n in range(len(path)) if path[:n] in grain.scope)
        if any(j.relationship == "one_to_many" for j in other.joins[attach:]):
            return True
    return False


def missing_aliases(plan: QueryPlan, instance: Instance) -> set[str]:
    """Aliases (of the joined instances) whose columns are all NULL when `instance` is NULL-extended."""
    n = len(instance.path)
    return {plan.aliases[p] for p in plan.instances if p[:n] == instance.path}
