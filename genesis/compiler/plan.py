"""Resolve an input into a QueryPlan: what to select, join, filter and group.

Every reference becomes an expression over instance aliases (semantic.py finds the join
paths); then the aggregate calls are found and, for each, its grain (the instance whose
rows it aggregates). What to do about joins that repeat rows is for the passes (passes/):
the plan built here records no decision yet.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from sqlglot import exp

from ..errors import ErrorCollector, GenesisError, Location, did_you_mean
from ..project.model import Field, Input, InputField, Join, Measure, Segment
from ..result import OutputColumn
from . import expressions as ex
from .derived import derived_measure_expr
from .join_graph import Instance, JoinGraph, Resolved
from .members import (
    exists_condition,
    false_when_missing,
    field_agg_expr,
    field_agg_type,
    field_expr,
    labelled,
    measure_expr,
    member_type,
    null_when_missing,
    only_existing_rows,
)
from .names import output_name
from .query_plan import (
    AggregateCall,
    Grain,
    PlannedColumn,
    QueryPlan,
    ReferenceUse,
    SortKey,
    always_joined,
    frozen,
    instances_reading,
)
from .segments import segment_expr
from .typing import infer_type, portable_arithmetic, portable_average

__all__ = ["build_plan", "field_expr", "Resolver"]  # field_expr: validate.py reads fields with it


class Resolver:
    """Resolves an input's references into expressions over instance aliases.

    Registers every instance a reference reaches (with its ancestors: joins need their
    parents), remembers the types it learns and which aggregate calls are named measures.
    Only plan building uses it; the passes read the finished QueryPlan.
    """

    def __init__(self, graph: JoinGraph, inp: Input, literals: Mapping[str, str]):
        self.graph = graph
        self.input = inp
        self.literals = literals
        self.errors = ErrorCollector()
        self.instances: dict[tuple[str, ...], Instance] = {}
        self.aliases: dict[tuple[str, ...], str] = {}
        self.by_alias: dict[str, Instance] = {}
        self.references: set[str] = set()
        self.known_types: dict[int, str] = {}  # id(expression of a reference) -> its type
        self.measure_units: dict[int, Instance] = {}  # id(aggregate of a named measure) -> its instance
        self.part: tuple[str, int] | None = None  # the input part being resolved, for `uses`
        self.uses: list[ReferenceUse] = []
        root_ds = graph.datasources[inp.root]
        self.root = self._use(Instance((), root_ds, ()))

    # ------------------------------------------------------------ instances

    def _use(self, instance: Instance) -> Instance:
        """Register an instance and its ancestors (joins need their parents)."""
        if instance.path in self.instances:
            return self.instances[instance.path]
        if instance.path:
            self._use(self.graph.instance(self.input.root, instance.joins[:-1]))
            parent, join = self.instances[instance.parent_path].datasource, instance.joins[-1]
            self.references.update(join_reads(parent.name, join))
        alias = self.input.root if not instance.path else "__".join(instance.path)
        while alias in self.by_alias:
            alias += "_"
        self.instances[instance.path] = instance
        self.aliases[instance.path] = alias
        self.by_alias[alias] = instance
        return instance

    def alias(self, instance: Instance) -> str:
        """The SQL alias of a registered instance."""
        return self.aliases[instance.path]

    # ------------------------------------------------------------ expressions

    def member_expr(self, resolved: Resolved, loc: Location | None) -> exp.Expr:
        """The SQL of a field or measure at its instance's alias."""
        instance = self._use(resolved.instance)
        self.references.add(resolved.key)
        self.note_use(resolved)
        alias = self.alias(instance)
        member = resolved.member
        if isinstance(member, Field):
            expr = field_expr(instance.datasource, member, alias)
            if member.sql is not None and instance.path and not always_joined(instance) \
                    and not null_when_missing(expr, {alias}):
                # A derived field of a row a left join did not find is NULL, like its columns.
                expr = exp.Case(ifs=[exp.If(this=self.exists(instance), true=expr)])
        elif isinstance(member, Segment):
            expr = segment_expr(self, instance, member)
        elif member.derived:  # its measures register their own calls, each at its own grain
            expr = derived_measure_expr(self, instance, member)
        else:
            expr = measure_expr(instance, member, alias, not instance.path)
            if member.sql in instance.datasource.fields:
                self.references.add(f"{instance.datasource.name}.{member.sql}")
            for unit in ex.aggregate_units(expr):
                self.measure_units[id(unit)] = instance
        value_type = member_type(member, infer_type(expr, self.known_types))
        if value_type:
            self.known_types[id(expr)] = value_type
        return expr

    def note_use(self, resolved: Resolved) -> None:
        """Record that the current input part reads `resolved`, with the joins on its path
        and the fields those imply (a join's keys, a measure's field), as `references` has them."""
        if self.part is None:
            return
        self.uses.append(ReferenceUse(resolved.key, self.part))
        ds, member = resolved.instance.datasource, resolved.member
        if isinstance(member, Measure) and member.sql in ds.fields:
            self.uses.append(ReferenceUse(f"{ds.name}.{member.sql}", self.part))
        current = self.input.root
        for join in resolved.instance.joins:
            self.uses += [ReferenceUse(key, self.part, True) for key in join_reads(current, join)]
            current = join.datasource

    def parse_user_sql(self, text: str, loc: Location | None, what: str,
                       output_names: Mapping[str, exp.Expr] | None = None) -> exp.Expr:
        """Render parameters, parse, and replace references by their SQL."""
        rendered = ex.render_parameters(text, self.literals, loc, what)
        tree = ex.parse_expression(rendered, loc, what)

        def replace(node: exp.Expr) -> exp.Expr:
            ref = ex.reference_text(node)
            if ref is None:
                name = ex.bare_name(node) or node.sql(ex.DIALECT)
                if output_names and name in output_names:
                    return output_names[name].copy()
                hint = did_you_mean(name, list(output_names or {})) or f"write a reference such as {self.input.root}.{name}"
                raise GenesisError(f"{what} uses '{name}', which is not a reference", loc, hint)
            return self.member_expr(self.graph.resolve(self.input.root, ref, loc), loc)

        return portable_arithmetic(ex.replace_references(tree, replace), self.known_types)

    # ------------------------------------------------------------ grains

    def instances_in(self, tree: exp.Expr) -> list[Instance]:
        """The registered instances whose columns `tree` reads, by path."""
        return instances_reading(self.by_alias, tree)

    def grain_of(self, unit: exp.Expr, loc: Location | None, what: str) -> Grain:
        """Whose rows an aggregate call aggregates.

        A named measure is computed at its own instance's grain: each of its rows once.
        Any other aggregate aggregates the rows of the query's joins down to what it
        reads: the root's rows, or the rows of the one_to_many joins on its path (a
        line's part's price is read once per line, SQL's meaning of `sum(part.price)`
        over lines). Two one_to_many joins on different branches would pair every row of
        one with every row of the other: refused.
        """
        if id(unit) in self.measure_units:
            instance = self.measure_units[id(unit)]
            return Grain((instance,), frozenset({instance.path}), instance if instance.path else None, True)
        scope: set[tuple[str, ...]] = {()}
        for instance in self.instances_in(unit):
            scope.update(instance.path[:n] for n in range(len(instance.path) + 1))
        fan = sorted((p for p in scope if p and self.instances[p].joins[-1].relationship == "one_to_many"),
                     key=len)
        for shorter, longer in zip(fan, fan[1:]):
            if longer[:len(shorter)] != shorter:
                a, b = self.instances[shorter], self.instances[longer]
                raise GenesisError(
                    f"{what} reads '{a.describe()}' and '{b.describe()}', two one_to_many joins on different "
                    f"branches: every row of one would be paired with every row of the other, which is no "
                    f"row of this input", loc, "split it into one aggregate per branch")
        chain = [()] + fan
        identity = [self.instances[p] for i, p in enumerate(chain)
                    if i + 1 == len(chain) or not _determined_by(self.instances[chain[i + 1]], len(p))]
        must_exist = self.instances[fan[-1]] if fan else None
        return Grain(tuple(identity), frozenset(scope), must_exist, False)

    def exists(self, instance: Instance) -> exp.Expr:
        """True on a joined row of `instance`, false on a left join's NULL-extension."""
        return exists_condition(instance, self.alias(instance))

    def missing_aliases(self, instance: Instance) -> set[str]:
        """Aliases whose columns are all NULL when `instance` is NULL-extended."""
        n = len(instance.path)
        return {self.aliases[p] for p in self.instances if p[:n] == instance.path}


def join_reads(parent: str, join: Join) -> list[str]:
    """The references a join of data source `parent` reads: itself and its key fields on both sides."""
    return [f"{parent}.join:{join.name}"] + [key for left, right in join.on
                                             for key in (f"{parent}.{left}", f"{join.datasource}.{right}")]


def _determined_by(below: Instance, depth: int) -> bool:
    """Does a row of `below` fix the row of its ancestor at path length `depth`?

    Going up a one_to_many or one_to_one join leads to one row; up a many_to_one, to many."""
    return all(j.relationship in ("one_to_many", "one_to_one") for j in below.joins[depth:])



def build_plan(graph: JoinGraph, inp: Input, literals: Mapping[str, str]) -> QueryPlan:
    """Resolve and classify everything an input asks for; raises a located GenesisError.

    The plan holds no decision yet: run the passes (passes.PASSES) over it, then render it.
    """
    planner = Resolver(graph, inp, literals)
    errors = planner.errors
    columns: list[PlannedColumn] = []
    for index, item in enumerate(inp.fields):
        planner.part = ("fields", index)
        try:
            columns.append(_plan_column(planner, item))
        except GenesisError as exc:
            errors.extend([exc])
    where: list[exp.Expr] = []
    having: list[exp.Expr] = []
    origins: list[tuple[Any, Location | None]] = [(c.expr, c.source.loc) for c in columns if c.source is not None]
    for index, flt in enumerate(inp.filters):
        planner.part = ("filters", index)
        try:
            tree = planner.parse_user_sql(flt.sql, flt.loc, f"filter {index + 1}")
            origins.append((tree, flt.loc))
            _check_boolean(tree, flt, f"filter {index + 1}", planner)
            (having if ex.has_aggregate(tree) else where).append(tree)
        except GenesisError as exc:
            errors.extend([exc])
    planner.part = None
    errors.raise_if_any()

    metric_mode = any(c.aggregate and not (c.source and c.source.agg) for c in columns)
    dims = [c for c in columns if not c.aggregate]
    if not metric_mode:
        for column in dims:
            instance = _single_instance(planner, column.expr)
            if instance is not None and instance.repeats_root_rows and column.source is not None:
                item = column.source
                join = next(j for j in instance.joins if j.relationship == "one_to_many")
                errors.add(
                    f"'{item.field or item.name}' is reached over the one_to_many join '{join.name}' "
                    f"({join.datasource}): one {inp.root} row has many, so it needs `agg:`",
                    item.loc, "add agg: list (or count, count_distinct, min, max, sum, avg)")
    errors.raise_if_any()

    all_units: list[tuple[exp.Expr, Location | None, str]] = []
    for column in columns:
        for unit in ex.aggregate_units(column.expr):
            all_units.append((unit, column.source.loc if column.source else None, f"column '{column.output.name}'"))
    for tree in having:
        for unit in ex.aggregate_units(tree):
            all_units.append((unit, inp.locs.get("filters"), "a filter"))
    for unit, loc, what in all_units:
        if ex.nested_aggregate(unit):
            errors.add(f"{what} nests an aggregate inside another", loc)
    errors.raise_if_any()

    where = [_only_existing_children(planner, tree) for tree in where]
    for node, _, _ in all_units:
        _exact_float_sum(node, planner)
    calls = []
    for index, (node, loc, what) in enumerate(all_units):
        grain = planner.grain_of(node, loc, what)
        if grain.must_exist is not None and not always_joined(grain.must_exist):
            only_existing_rows(node, planner.exists(grain.must_exist), planner.missing_aliases(grain.must_exist))
        grain_alias = "_".join(planner.alias(i) for i in grain.identity)
        calls.append(AggregateCall(node, grain, f"_a{index}", grain_alias, loc, what))

    sort = []
    for index, sort_item in enumerate(inp.sort):
        planner.part = ("sort", index)
        sort.append(_plan_sort(planner, sort_item, columns, metric_mode))
    planner.part = None
    return QueryPlan(
        input=inp, root=planner.root, resolved=frozen(planner.instances), instances=frozen(planner.instances),
        aliases=frozen(planner.aliases), by_alias=frozen(planner.by_alias), columns=tuple(columns),
        where=tuple(where), having=tuple(having), calls=tuple(calls), metric_mode=metric_mode, sort=tuple(sort),
        limit=inp.limit, references=frozenset(planner.references), origins=tuple(origins), uses=tuple(planner.uses))


def datasource_origins(plan: QueryPlan, paths) -> list[tuple[Any, Location]]:
    """Fields with `sql:` of the data sources at `paths`, so an engine error can point at them.

    Built lazily (a function in place of the expression): only an error needs them.
    """
    found = []
    for path, instance in plan.resolved.items():
        if path not in paths:
            continue
        ds, alias = instance.datasource, plan.aliases[path]
        for member in ds.fields.values():
            if member.sql is not None and member.sql_loc is not None:
                found.append((functools.partial(field_expr, ds, member, alias), member.sql_loc))
    return found


EXACT_SUM_TYPE = "decimal(38,12)"


def _exact_float_sum(unit: exp.Expr, planner: Resolver) -> None:
    """Sum doubles as exact decimals, so the result does not depend on the row order.

    A parallel engine adds rows in a different order on every run; with doubles that
    changes the last bits of `sum` and `avg`, and an unchanged tracker would be rewritten.
    Decimal addition is associative. (Range: |x| < 1e26, 12 decimals.)
    """
    agg = unit.this if isinstance(unit, exp.Filter) else unit
    if isinstance(agg, (exp.Sum, exp.Avg)) and infer_type(agg.this, planner.known_types) in ("double", "real"):
        agg.set("this", ex.cast(agg.this, EXACT_SUM_TYPE))


def _only_existing_children(planner: Resolver, tree: exp.Expr) -> exp.Expr:
    """A filter over a one_to_many join holds only on a row that join found.

    `WHERE order_lines.code IS NULL` keeps the orders with a line without code, not the
    orders without lines (as the EXISTS form of the same filter does)."""
    fan = {p[:n] for i in planner.instances_in(tree) for p in [i.path] for n in range(1, len(p) + 1)
           if planner.instances[p[:n]].joins[-1].relationship == "one_to_many"}
    conditions = []
    for path in sorted(fan, key=len, reverse=True):
        instance = planner.instances[path]
        if any(other[:len(path)] == path and other != path for other in fan):
            continue  # a deeper one's row being there implies this one's
        if always_joined(instance) or false_when_missing(tree, planner.missing_aliases(instance)):
            continue
        conditions.append(planner.exists(instance))
    if not conditions:
        return tree
    return exp.and_(*conditions, exp.paren(tree, copy=False), copy=False)


def _single_instance(planner: Resolver, tree: exp.Expr) -> Instance | None:
    used = planner.instances_in(tree)
    fanning = [i for i in used if i.repeats_root_rows]
    return fanning[0] if fanning else None


def _plan_column(planner: Resolver, item: InputField) -> PlannedColumn:
    """One output column of a field (plain, aggregated or measure) or of a computed `sql:`."""
    if item.field is not None:
        resolved = planner.graph.resolve(planner.input.root, item.field, item.sql_loc)
        expr = planner.member_expr(resolved, item.sql_loc)
        member = resolved.member
        value_type = member_type(member, infer_type(expr, planner.known_types))
        labels = member.labels if isinstance(member, Field) else None
        if item.agg:
            if resolved.is_measure:
                raise GenesisError(f"'{item.field}' is a measure; it is aggregated already, remove `agg:`",
                                   item.loc)
            if labels and item.agg == "list":  # list the display texts, not the stored codes
                expr = labelled(expr, labels, value_type)
            expr = field_agg_expr(expr, item.agg) if item.agg != "avg" else portable_average(expr, value_type)
            column_type = field_agg_type(item.agg, value_type)
            labels = None
        else:
            column_type = "varchar" if labels else value_type
        output = OutputColumn(item.name, column_type, item.format, None if item.agg else item.field)
        return PlannedColumn(output, expr, bool(item.agg) or resolved.is_measure, labels,
                          value_type if labels else None, item,
                          None if item.agg else (resolved.instance.path, member.name))
    assert item.sql is not None  # the loader requires `field:` or `sql:`
    expr = planner.parse_user_sql(item.sql, item.sql_loc, f"column '{item.name}'")
    if item.type:
        expr = ex.cast(expr, item.type)
    column_type = item.type or infer_type(expr, planner.known_types)
    return PlannedColumn(OutputColumn(item.name, column_type, item.format, None), expr, ex.has_aggregate(expr),
                      source=item)


_BOOLEAN_NODES = (exp.Predicate, exp.Connector, exp.Not, exp.Boolean, exp.In, exp.Between, exp.Is,
                  exp.Like, exp.ILike, exp.RegexpLike, exp.ArrayContains, exp.Exists)


def _check_boolean(tree: exp.Expr, flt, what: str, planner: Resolver) -> None:
    node = tree.unnest() if isinstance(tree, exp.Paren) else tree
    if isinstance(node, _BOOLEAN_NODES):
        return
    inferred = infer_type(node, planner.known_types)
    if inferred == "boolean":
        return
    if inferred is None and isinstance(node, (exp.Anonymous, exp.Func, exp.Case, exp.Column, exp.Cast)):
        return  # a function or value whose type we cannot see; the engine checks it
    raise GenesisError(f"{what} is not a boolean expression: '{flt.sql}'", flt.loc,
                       "a filter must be true or false for each row, e.g. movie.status = 'PHOT'")


def _plan_sort(planner: Resolver, item, columns: list[PlannedColumn], metric_mode: bool) -> SortKey:
    """An output column by name, or a resolved expression of one value per output row."""
    by_name = {c.output.name: c for c in columns}
    name = output_name(item.expression, by_name, item.loc, f"sort item '{item.expression}'")
    if name is not None:
        return SortKey(name, None, item.descending)
    for index, column in enumerate(columns):
        if column.output.reference == item.expression:
            _sort_uses_column(planner, index)
            return SortKey(column.output.name, None, item.descending)
    reference = _single_reference(item.expression)
    if reference is not None:  # `part.name` and `the_part.name` name the same column
        resolved = planner.graph.resolve(planner.input.root, reference, item.loc)
        for index, column in enumerate(columns):
            if column.member_key == (resolved.instance.path, resolved.member.name):
                _sort_uses_column(planner, index)
                return SortKey(column.output.name, None, item.descending)
    expr = planner.parse_user_sql(item.expression, item.loc, f"sort item '{item.expression}'")
    if any(i.repeats_root_rows for i in planner.instances_in(expr)):
        raise GenesisError(f"sort item '{item.expression}' is reached over a one_to_many join", item.loc,
                           "add it to `fields` with an `agg:` and sort by that column")
    if ex.has_aggregate(expr):
        raise GenesisError(f"sort item '{item.expression}' aggregates; it is not an output column", item.loc,
                           "add it to `fields` and sort by that column's name")
    if metric_mode:
        raise GenesisError(
            f"sort item '{item.expression}' is not an output column of this grouped input: its rows are "
            f"groups of the other fields, which may hold several values of it", item.loc,
            did_you_mean(item.expression, by_name) or "sort by an output column name or add the field to `fields`")
    # A grouped listing groups by the root's primary key; a value of the root row (or of a
    # row it reaches by many_to_one / one_to_one joins) is one per group: it groups by it
    # too (QueryPlan.hidden_keys).
    return SortKey(None, expr, item.descending)


def _sort_uses_column(planner: Resolver, column: int) -> None:
    """A sort item naming a column's reference reads what that column reads."""
    sort = planner.part
    if sort is not None:
        planner.uses += [use._replace(part=sort) for use in planner.uses if use.part == ("fields", column)]


def _single_reference(text: str) -> str | None:
    try:
        node = ex.parse_expression(text, None, "sort item")
    except GenesisError:
        return None
    return ex.reference_text(node)
