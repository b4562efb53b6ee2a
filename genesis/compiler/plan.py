"""What to select, join, filter and group, and at which grain each aggregate runs.

The plan is built from an Input in one pass that resolves every reference into an
expression over instance aliases, then decides:
- the group keys: none for a plain listing; the root's primary key plus the other
  fields for a listing that collapses a one_to_many join; the other fields when the
  input has a measure or an aggregate computed column;
- for every aggregate call, its grain (the instance whose rows it aggregates) and
  whether the joins of this query would multiply those rows. A multiplied,
  non-idempotent aggregate is computed in a key sub-query (Cube's approach): select
  the distinct (group keys, grain primary key, inputs) first, then aggregate.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Mapping, NamedTuple

from sqlglot import exp

from .. import types
from ..errors import ErrorCollector, GenesisError, Location, did_you_mean
from ..model import DataSource, Field, Input, InputField, Join, Measure, Segment
from ..result import OutputColumn
from ..semantic import Instance, JoinGraph, Resolved
from . import expressions as ex
from .derived import derived_measure_expr
from .names import output_name
from .segments import segment_expr
from .typing import infer_type, portable_arithmetic, portable_average


@dataclass
class PlanColumn:
    output: OutputColumn
    expr: exp.Expression  # over instance aliases; may contain aggregate units
    aggregate: bool
    labels: Mapping[str, str] | None = None
    label_type: str | None = None  # the stored type the labels' codes compare to
    source: InputField | None = None
    member_key: tuple | None = None  # (instance path, member name) of a plain field or measure


@dataclass
class Unit:
    node: exp.Expression  # an aggregate call inside some column / filter expression
    identity: tuple[Instance, ...]  # whose primary keys tell apart the rows it aggregates
    keyed: bool  # computed in a key sub-query (multiplied and not idempotent)
    alias: str  # the column that carries its value
    grain_alias: str  # names its key sub-query
    grain: "Grain | None" = None  # the rows it aggregates


@dataclass(frozen=True)
class Grain:
    """The rows an aggregate call sees (docs/semantics.md, "Which rows an aggregate sees").

    `identity`: the instances whose rows, taken together, are one row of the aggregate
    (their primary keys tell the rows apart when the joins repeat them); `scope`: the
    paths whose columns it may read; `must_exist`: the instance whose row must be there,
    not NULL-extended by a left join (None: every row of the scope is one).
    """

    identity: tuple[Instance, ...]
    scope: frozenset[tuple[str, ...]]
    must_exist: Instance | None
    measure: bool


class ReferenceUse(NamedTuple):
    """One reference read by one part of the input: `part` is ("fields" | "filters" | "sort",
    index in that list); `via_join` marks a join (or a join key) on the path to what the
    part names rather than the reference it names. `genesis impact` says "where" from these."""

    reference: str
    part: tuple[str, int]
    via_join: bool = False


@dataclass
class Plan:
    input: Input
    root: Instance
    instances: dict[tuple[str, ...], Instance]
    aliases: dict[tuple[str, ...], str]
    columns: list[PlanColumn]
    where: list[exp.Expression]
    having: list[exp.Expression]
    dims: list[exp.Expression]  # group-by expressions of the output's non-aggregate columns
    hidden_keys: list[exp.Expression]  # root primary key, for listings that group
    grouped: bool
    units: list[Unit]
    sort: list[tuple[exp.Expression, bool]]  # (expression or output alias column, descending)
    limit: int | None
    references: set[str] = field(default_factory=set)
    origins: list[tuple[Any, Location]] = field(default_factory=list)  # (expression or builder, location)
    # Filled by plan passes (preaggregate.py): aggregate calls replaced in the output, and
    # sub-queries joined after the instances: (relation, condition, inner).
    replacements: dict[int, exp.Expression] = field(default_factory=dict)
    extra_joins: list[tuple[exp.Expression, exp.Expression, bool]] = field(default_factory=list)
    # Filled by fewest_joins.py: per CTE of the keyed query ("base" or a grain alias), the
    # instances it joins, its filters and whether it needs DISTINCT; a CTE not named joins all.
    sources: dict[str, Any] = field(default_factory=dict)
    uses: list[ReferenceUse] = field(default_factory=list)  # which input part reads which reference


class Planner:
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
        self.part: tuple[str, int] | None = None  # the input part being planned, for `uses`
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
        return self.aliases[instance.path]

    # ------------------------------------------------------------ expressions

    def member_expr(self, resolved: Resolved, loc: Location | None) -> exp.Expression:
        """The SQL of a field or measure at its instance's alias."""
        instance = self._use(resolved.instance)
        self.references.add(resolved.key)
        self.note_use(resolved)
        alias = self.alias(instance)
        member = resolved.member
        if isinstance(member, Field):
            expr = field_expr(instance.datasource, member, alias)
            if member.sql is not None and instance.path and not self.always_joined(instance) \
                    and not null_when_missing(expr, {alias}):
                # A derived field of a row a left join did not find is NULL, like its columns.
                expr = exp.Case(ifs=[exp.If(this=self.exists(instance), true=expr)])
        elif isinstance(member, Segment):
            expr = segment_expr(self, instance, member)
        elif member.derived:  # its measures register their own units, each at its own grain
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
                       output_names: Mapping[str, exp.Expression] | None = None) -> exp.Expression:
        """Render parameters, parse, and replace references by their SQL."""
        rendered = ex.render_parameters(text, self.literals, loc, what)
        tree = ex.parse_expression(rendered, loc, what)

        def replace(node: exp.Expression) -> exp.Expression:
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

    def instances_in(self, tree: exp.Expression) -> list[Instance]:
        found: dict[tuple[str, ...], Instance] = {}
        for column in tree.find_all(exp.Column):
            instance = self.by_alias.get(column.table)
            if instance is not None:
                found[instance.path] = instance
        return sorted(found.values(), key=lambda i: (len(i.path), i.path))

    def fans_out(self, source: Instance, target: Instance) -> bool:
        """Can one row of `source` meet several rows of `target` in this query's joins?"""
        common = 0
        while common < min(len(source.path), len(target.path)) and source.path[common] == target.path[common]:
            common += 1
        going_up = source.joins[common:]  # traversed child -> parent
        going_down = target.joins[common:]  # traversed parent -> child
        return (any(j.relationship == "many_to_one" for j in going_up)
                or any(j.relationship == "one_to_many" for j in going_down))

    def grain_of(self, unit: exp.Expression, loc: Location | None, what: str) -> Grain:
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
        scope = {()}
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

    def multiplied(self, grain: Grain, paths=None) -> bool:
        """Would the joins of this query (or only those to `paths`) repeat the rows this aggregate sees?"""
        joined = {p: self.instances[p] for p in (self.instances if paths is None else paths)}
        if grain.measure:
            (instance,) = grain.identity
            return any(self.fans_out(instance, other) for other in joined.values() if other is not instance)
        for path, other in joined.items():
            if path in grain.scope:
                continue
            attach = max(n for n in range(len(path)) if path[:n] in grain.scope)
            if any(j.relationship == "one_to_many" for j in other.joins[attach:]):
                return True
        return False

    def exists(self, instance: Instance) -> exp.Expression:
        """True on a joined row, false on the NULL-extension of a left join that found none.

        A matched row's join key equals its parent's, so it is not NULL."""
        right = instance.joins[-1].on[0][1]
        column = field_expr(instance.datasource, instance.datasource.fields[right], self.alias(instance))
        return exp.Not(this=exp.Is(this=column, expression=exp.Null()))

    def missing_aliases(self, instance: Instance) -> set[str]:
        """Aliases whose columns are all NULL when `instance` is NULL-extended."""
        n = len(instance.path)
        return {self.aliases[p] for p in self.instances if p[:n] == instance.path}

    def always_joined(self, instance: Instance) -> bool:
        return all(j.type == "inner" for j in instance.joins)


def join_reads(parent: str, join: Join) -> list[str]:
    """The references a join of data source `parent` reads: itself and its key fields on both sides."""
    return [f"{parent}.join:{join.name}"] + [key for left, right in join.on
                                             for key in (f"{parent}.{left}", f"{join.datasource}.{right}")]


def _determined_by(below: Instance, depth: int) -> bool:
    """Does a row of `below` fix the row of its ancestor at path length `depth`?

    Going up a one_to_many or one_to_one join leads to one row; up a many_to_one, to many."""
    return all(j.relationship in ("one_to_many", "one_to_one") for j in below.joins[depth:])


def null_when_missing(node: exp.Expression, missing: set[str]) -> bool:
    """Is `node` NULL whenever every column of the `missing` aliases is NULL?

    Conservative: only operators and functions known to give NULL on NULL input count."""
    if isinstance(node, exp.Column):
        return node.table in missing
    if isinstance(node, (exp.Paren, exp.Cast, exp.Neg, exp.Not, exp.Upper, exp.Lower, exp.Abs, exp.Length,
                         exp.Year, exp.Month, exp.Day, exp.Trim)):
        return null_when_missing(node.this, missing)
    if isinstance(node, (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT,
                         exp.LTE, exp.Like, exp.DPipe)):
        return null_when_missing(node.left, missing) or null_when_missing(node.right, missing)
    if isinstance(node, (exp.In, exp.Between)):
        return null_when_missing(node.this, missing)
    if isinstance(node, (exp.And, exp.Or)):
        return null_when_missing(node.left, missing) and null_when_missing(node.right, missing)
    if isinstance(node, exp.Coalesce):
        return all(null_when_missing(a, missing) for a in [node.this, *node.expressions])
    if isinstance(node, exp.Case):
        default = node.args.get("default")
        # A branch whose condition is not true on that row never gives its value.
        return (all(false_when_missing(i.this, missing) or null_when_missing(i.args["true"], missing)
                    for i in node.args.get("ifs") or [])
                and (default is None or null_when_missing(default, missing)))
    if isinstance(node, exp.Null):
        return True
    return False


def false_when_missing(node: exp.Expression, missing: set[str]) -> bool:
    """Is the condition `node` not true whenever every column of `missing` is NULL?"""
    if isinstance(node, exp.Paren):
        return false_when_missing(node.this, missing)
    if isinstance(node, exp.And):
        return false_when_missing(node.left, missing) or false_when_missing(node.right, missing)
    if isinstance(node, exp.Or):
        return false_when_missing(node.left, missing) and false_when_missing(node.right, missing)
    if isinstance(node, exp.Not):
        return null_when_missing(node.this, missing)
    return null_when_missing(node, missing)


def only_existing_rows(unit: exp.Expression, condition: exp.Expression, missing: set[str]) -> None:
    """Make an aggregate skip the NULL-extended row of a left join that found no row.

    `count(coalesce(line.code, '?'))` over an order without lines would count its one
    NULL-extended row as a line. Aggregates whose argument is NULL on that row skip it
    anyway and are left as they are (so most SQL does not change)."""
    agg = unit.this if isinstance(unit, exp.Filter) else unit
    holder = agg.this if isinstance(agg.this, exp.Distinct) else agg
    argument = holder.expressions[0] if holder is not agg else agg.this
    strict = argument is not None and not isinstance(argument, exp.Star) and null_when_missing(argument, missing)
    if isinstance(unit, exp.Filter):
        where = unit.expression
        if not (strict or false_when_missing(where.this, missing)):
            where.set("this", exp.and_(condition, exp.paren(where.this, copy=False), copy=False))
        return
    if strict:
        return
    value = exp.Literal.number(1) if argument is None or isinstance(argument, exp.Star) else argument.copy()
    guarded = exp.Case(ifs=[exp.If(this=condition, true=value)])
    if holder is agg:
        holder.set("this", guarded)
    else:
        holder.set("expressions", [guarded])


def field_expr(ds: DataSource, member: Field, alias: str) -> exp.Expression:
    if member.sql is None:
        return exp.column(member.name, table=alias, quoted=_needs_quotes(member.name))
    tree = ex.parse_expression(member.sql, member.sql_loc, f"field '{ds.name}.{member.name}'")
    tree = ex.qualify_columns(tree, alias, f"field '{ds.name}.{member.name}'", member.sql_loc)
    tree = portable_arithmetic(tree, _column_types(ds, tree))
    return ex.cast(exp.paren(tree, copy=False) if not isinstance(tree, (exp.Column, exp.Func)) else tree,
                   member.type)


def _column_types(ds: DataSource, tree: exp.Expression) -> dict[int, str]:
    """The declared types of the table columns a data source's own SQL reads (plain fields)."""
    known = {}
    for column in tree.find_all(exp.Column):
        field = ds.fields.get(column.name)
        if field is not None and field.sql is None and field.type:
            known[id(column)] = field.type
    return known


def measure_expr(instance: Instance, measure: Measure, alias: str, is_root: bool) -> exp.Expression:
    ds = instance.datasource
    what = f"measure '{ds.name}.{measure.name}'"
    if measure.sql is None:
        argument = None
    elif measure.sql in ds.fields:
        argument = field_expr(ds, ds.fields[measure.sql], alias)
    else:
        argument = ex.qualify_columns(ex.parse_expression(measure.sql, measure.sql_loc, what), alias, what,
                                      measure.sql_loc)
        argument = portable_arithmetic(argument, _column_types(ds, argument))
    if measure.agg == "count":
        if argument is None:
            # A left join with no match still yields one row: count the key, not the row.
            if is_root or not ds.primary_key:
                return exp.Count(this=exp.Star(), big_int=True)
            argument = field_expr(ds, ds.fields[ds.primary_key[0]], alias)
        return exp.Count(this=argument, big_int=True)
    if measure.agg == "count_distinct":
        return exp.Count(this=exp.Distinct(expressions=[argument]), big_int=True)
    if measure.agg == "avg":
        argument_type = ds.fields[measure.sql].type if measure.sql in ds.fields else \
            infer_type(argument, _column_types(ds, argument))
        node = portable_average(argument, argument_type)
    else:
        node = {"sum": exp.Sum, "min": exp.Min, "max": exp.Max}[measure.agg](this=argument)
    if measure.type:
        return ex.cast(node, measure.type)
    return node


def field_agg_expr(argument: exp.Expression, agg: str) -> exp.Expression:
    """The SQL of a field-level `agg:`; `list` is the sorted, distinct, comma-joined values."""
    if agg == "list":
        text = ex.cast(argument, "varchar")
        collected = exp.Filter(
            this=exp.ArrayAgg(this=exp.Distinct(expressions=[text])),
            expression=exp.Where(this=exp.Not(this=exp.Is(this=argument.copy(), expression=exp.Null()))),
        )
        return exp.ArrayToString(this=exp.ArraySort(this=collected), expression=exp.Literal.string(", "))
    if agg == "count":
        return exp.Count(this=argument, big_int=True)
    if agg == "count_distinct":
        return exp.Count(this=exp.Distinct(expressions=[argument]), big_int=True)
    return {"sum": exp.Sum, "avg": exp.Avg, "min": exp.Min, "max": exp.Max}[agg](this=argument)


def labelled(expr: exp.Expression, labels: Mapping[str, str], stored_type: str | None) -> exp.Expression:
    """Stored codes shown as their display text; unknown codes pass through."""
    numeric = stored_type is not None and types.is_numeric(stored_type)
    case = exp.Case()
    for code, text in labels.items():
        value = exp.Literal.number(code) if numeric and _is_number(code) else exp.Literal.string(code)
        case = case.when(expr.copy().eq(value), exp.Literal.string(text), copy=False)
    fallback = expr.copy() if stored_type == "varchar" else ex.cast(expr.copy(), "varchar")
    return case.else_(fallback, copy=False)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _needs_quotes(name: str) -> bool:
    return not name.isidentifier() or name.lower() != name


def member_type(member: Field | Measure, inferred: str | None = None) -> str | None:
    if isinstance(member, Field):
        return member.type
    if member.type:
        return member.type
    return inferred


def field_agg_type(agg: str, value_type: str) -> str | None:
    if agg == "list":
        return "varchar"
    if agg in ("count", "count_distinct"):
        return "bigint"
    if agg in ("min", "max"):
        return value_type
    if agg == "avg":
        return "double"
    if value_type in types.INTEGER_TYPES:
        return "bigint"
    if types.is_decimal(value_type):
        return f"decimal(38,{types.decimal_scale(value_type)})"
    return "double" if value_type in ("double", "real") else None


def build_plan(graph: JoinGraph, inp: Input, literals: Mapping[str, str]) -> Plan:
    """Resolve and classify everything an input asks for; raises ValidationError."""
    planner = Planner(graph, inp, literals)
    errors = planner.errors
    columns: list[PlanColumn] = []
    for index, item in enumerate(inp.fields):
        planner.part = ("fields", index)
        try:
            columns.append(_plan_column(planner, item))
        except GenesisError as exc:
            errors.extend([exc])
    where, having = [], []
    origins = [(c.expr, c.source.loc) for c in columns if c.source is not None]
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
            if instance is not None and instance.fans_out:
                item = column.source
                join = next(j for j in instance.joins if j.relationship == "one_to_many")
                errors.add(
                    f"'{item.field or item.name}' is reached over the one_to_many join '{join.name}' "
                    f"({join.datasource}): one {inp.root} row has many, so it needs `agg:`",
                    item.loc, "add agg: list (or count, count_distinct, min, max, sum, avg)")
    errors.raise_if_any()

    all_units: list[tuple[exp.Expression, Location | None, str]] = []
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
    where = _semi_joins(planner, [c.expr for c in columns] + having, where)
    any_fanout = any(i.fans_out for i in planner.instances.values())
    grouped = metric_mode or bool(all_units) or any_fanout
    hidden_keys: list[exp.Expression] = []
    if grouped and not metric_mode:
        root_ds = planner.root.datasource
        if not root_ds.primary_key:
            raise GenesisError(
                f"listing '{inp.name}' collapses one_to_many rows per {root_ds.name} row, which needs "
                f"the primary_key of data source '{root_ds.name}'", inp.locs.get("from", inp.loc),
                f"declare primary_key in {root_ds.path}")
        hidden_keys = [field_expr(root_ds, root_ds.fields[k], planner.alias(planner.root))
                       for k in root_ds.primary_key]
        planner.references.update(f"{root_ds.name}.{k}" for k in root_ds.primary_key)

    for node, _, _ in all_units:
        _exact_float_sum(node, planner)
    units = []
    for index, (node, loc, what) in enumerate(all_units):
        grain = planner.grain_of(node, loc, what)
        keyed = planner.multiplied(grain) and not ex.is_idempotent(node)
        if grain.must_exist is not None and not planner.always_joined(grain.must_exist):
            only_existing_rows(node, planner.exists(grain.must_exist), planner.missing_aliases(grain.must_exist))
        for instance in grain.identity if keyed else ():
            if not instance.datasource.primary_key:
                raise GenesisError(
                    f"{what} sums rows of '{instance.datasource.name}' that the joins of this input repeat; "
                    f"counting each once needs its primary_key", loc,
                    f"declare primary_key in {instance.datasource.path}")
            planner.references.update(f"{instance.datasource.name}.{k}" for k in instance.datasource.primary_key)
        grain_alias = "_".join(planner.alias(i) for i in grain.identity)
        units.append(Unit(node, grain.identity, keyed, f"_a{index}", grain_alias, grain))

    sort = []
    for index, item in enumerate(inp.sort):
        planner.part = ("sort", index)
        sort.append(_plan_sort(planner, item, columns, grouped, metric_mode, hidden_keys))
    planner.part = None
    plan = Plan(inp, planner.root, planner.instances, planner.aliases, columns, where, having,
                [c.expr for c in dims], hidden_keys, grouped, units, sort, inp.limit, planner.references,
                origins + _datasource_origins(planner), uses=planner.uses)
    from .fewest_joins import fewest_joins  # passes over the finished plan
    from .preaggregate import preaggregate

    return fewest_joins(preaggregate(plan, planner), planner)


def _datasource_origins(planner: Planner) -> list[tuple[Any, Location]]:
    """Fields with `sql:` of the data sources used, so an engine error can point at them.

    Built lazily (a function in place of the expression): only an error needs them.
    """
    found = []
    for path, instance in planner.instances.items():
        ds, alias = instance.datasource, planner.aliases[path]
        for member in ds.fields.values():
            if member.sql is not None and member.sql_loc is not None:
                found.append((functools.partial(field_expr, ds, member, alias), member.sql_loc))
    return found


EXACT_SUM_TYPE = "decimal(38,12)"


def _exact_float_sum(unit: exp.Expression, planner: Planner) -> None:
    """Sum doubles as exact decimals, so the result does not depend on the row order.

    A parallel engine adds rows in a different order on every run; with doubles that
    changes the last bits of `sum` and `avg`, and an unchanged tracker would be rewritten.
    Decimal addition is associative. (Range: |x| < 1e26, 12 decimals.)
    """
    agg = unit.this if isinstance(unit, exp.Filter) else unit
    if isinstance(agg, (exp.Sum, exp.Avg)) and infer_type(agg.this, planner.known_types) in ("double", "real"):
        agg.set("this", ex.cast(agg.this, EXACT_SUM_TYPE))


def branch_of(instance: Instance) -> tuple[str, ...]:
    """The path of the instance where the first one_to_many join on its path lands."""
    for index, join in enumerate(instance.joins):
        if join.relationship == "one_to_many":
            return instance.path[:index + 1]
    return instance.path


def _semi_joins(planner: Planner, other_trees: list[exp.Expression], where: list[exp.Expression]):
    """Filters that alone reach down a one_to_many branch become EXISTS (...) sub-queries.

    `WHERE cast.fee >= 100` keeps the movies with such a cast member; joining the branch
    would repeat each movie per matching row and force de-duplication. With EXISTS the
    branch is not joined at all, so nothing fans out (TPC-H Q4's shape).
    """
    used_elsewhere = {i.path for tree in other_trees for i in planner.instances_in(tree)}
    by_branch: dict[tuple[str, ...], list[exp.Expression]] = {}
    kept = []
    for tree in where:
        branches = {branch_of(i) for i in planner.instances_in(tree) if i.fans_out}
        if len(branches) == 1:
            by_branch.setdefault(branches.pop(), []).append(tree)
        else:
            kept.append(tree)
    for branch, trees in by_branch.items():
        members = [path for path in planner.instances if path[:len(branch)] == branch]
        other_filters = [t for b, ts in by_branch.items() if b != branch for t in ts] + kept
        if any(path in used_elsewhere for path in members) or any(
                i.path in members for t in other_filters for i in planner.instances_in(t)):
            kept.extend(trees)
            continue
        kept.append(exists_subquery(planner, branch, members, trees))
        for path in members:  # the outer query no longer joins this branch
            del planner.instances[path]
    return kept


def _only_existing_children(planner: Planner, tree: exp.Expression) -> exp.Expression:
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
        if planner.always_joined(instance) or false_when_missing(tree, planner.missing_aliases(instance)):
            continue
        conditions.append(planner.exists(instance))
    if not conditions:
        return tree
    return exp.and_(*conditions, exp.paren(tree, copy=False), copy=False)


def exists_subquery(planner: Planner, branch, members, trees) -> exp.Exists:
    from .render import join_below, relation  # render builds FROM clauses; plan only decides

    head = planner.instances[branch]
    parent_path = branch[:-1]
    parent, parent_alias = planner.instances[parent_path], planner.aliases[parent_path]
    alias = planner.aliases[branch]
    sub = exp.select(exp.Literal.number(1)).from_(relation(head.datasource, alias), copy=False)
    # The joins the outer query would have made below the branch, so the filters mean the same.
    join_below(sub, planner.instances, planner.aliases, members, branch)
    correlation = join_condition(parent, parent_alias, head, alias)
    sub = sub.where(exp.and_(correlation, *[exp.paren(t) for t in trees], copy=False), copy=False)
    return exp.Exists(this=sub)


def join_condition(parent: Instance, parent_alias: str, child: Instance, alias: str) -> exp.Expression:
    """`parent.left = child.right AND ...` for the join that reaches `child`."""
    join = child.joins[-1]
    return exp.and_(*[
        field_expr(parent.datasource, parent.datasource.fields[left], parent_alias).eq(
            field_expr(child.datasource, child.datasource.fields[right], alias))
        for left, right in join.on
    ], copy=False)


def _single_instance(planner: Planner, tree: exp.Expression) -> Instance | None:
    used = planner.instances_in(tree)
    fanning = [i for i in used if i.fans_out]
    return fanning[0] if fanning else None


def _plan_column(planner: Planner, item: InputField) -> PlanColumn:
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
        _check_format(item, column_type)
        output = OutputColumn(item.name, column_type, item.format, None if item.agg else item.field)
        return PlanColumn(output, expr, bool(item.agg) or resolved.is_measure, labels,
                          value_type if labels else None, item,
                          None if item.agg else (resolved.instance.path, member.name))
    expr = planner.parse_user_sql(item.sql, item.sql_loc, f"column '{item.name}'")
    if item.type:
        expr = ex.cast(expr, item.type)
    column_type = item.type or infer_type(expr, planner.known_types)
    _check_format(item, column_type)
    return PlanColumn(OutputColumn(item.name, column_type, item.format, None), expr, ex.has_aggregate(expr),
                      source=item)


def _check_format(item: InputField, column_type: str | None) -> None:
    if not item.format:
        return
    from ..formatting import validate_format

    problems = validate_format(item.format, column_type or "varchar")
    if problems:
        raise GenesisError(f"format of '{item.name}': {problems[0]}", item.loc)


_BOOLEAN_NODES = (exp.Predicate, exp.Connector, exp.Not, exp.Boolean, exp.In, exp.Between, exp.Is,
                  exp.Like, exp.ILike, exp.RegexpLike, exp.ArrayContains, exp.Exists)


def _check_boolean(tree: exp.Expression, flt, what: str, planner: Planner) -> None:
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


def _plan_sort(planner: Planner, item, columns: list[PlanColumn], grouped: bool, metric_mode: bool,
               hidden_keys: list[exp.Expression]):
    by_name = {c.output.name: c for c in columns}
    name = output_name(item.expression, by_name, item.loc, f"sort item '{item.expression}'")
    if name is not None:
        return exp.column(name, quoted=True), item.descending
    for index, column in enumerate(columns):
        if column.output.reference == item.expression:
            _sort_uses_column(planner, index)
            return exp.column(column.output.name, quoted=True), item.descending
    reference = _single_reference(item.expression)
    if reference is not None:  # `part.name` and `the_part.name` name the same column
        resolved = planner.graph.resolve(planner.input.root, reference, item.loc)
        for index, column in enumerate(columns):
            if column.member_key == (resolved.instance.path, resolved.member.name):
                _sort_uses_column(planner, index)
                return exp.column(column.output.name, quoted=True), item.descending
    expr = planner.parse_user_sql(item.expression, item.loc, f"sort item '{item.expression}'")
    if any(i.fans_out for i in planner.instances_in(expr)):
        raise GenesisError(f"sort item '{item.expression}' is reached over a one_to_many join", item.loc,
                           "add it to `fields` with an `agg:` and sort by that column")
    if ex.has_aggregate(expr):
        raise GenesisError(f"sort item '{item.expression}' aggregates; it is not an output column", item.loc,
                           "add it to `fields` and sort by that column's name")
    if grouped and metric_mode:
        raise GenesisError(
            f"sort item '{item.expression}' is not an output column of this grouped input: its rows are "
            f"groups of the other fields, which may hold several values of it", item.loc,
            did_you_mean(item.expression, by_name) or "sort by an output column name or add the field to `fields`")
    if grouped:
        # A listing groups by the root's primary key; a value of the root row (or of a row
        # it reaches by many_to_one / one_to_one joins) is one per group: group by it too.
        hidden_keys.append(expr)
    return expr, item.descending


def _sort_uses_column(planner: Planner, column: int) -> None:
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
