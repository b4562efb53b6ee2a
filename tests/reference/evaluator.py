"""The reference evaluator: docs/semantics.md in slow, plain Python over the rows.

No SQL and no compiler code: it builds the joined rows of an input by nested loops,
applies the filters row by row, groups, and computes every aggregate over exactly the
rows the semantics say it sees. It is meant to be read next to docs/semantics.md.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .expr import Col, Env, Expr, Ref, aggregate, aggs_in, refs_in
from .spec import InputSpec, JoinSpec, Rows, Schema, SourceSpec

Path = tuple[str, ...]
FullRow = dict  # instance path -> the row of that instance (a dict), or None (NULL-extended)


class Evaluator:
    def __init__(self, schema: Schema, rows: Rows):
        self.schema = schema
        self.tables = {s.name: current_rows(s, rows.get(s.table, [])) for s in schema.values()}

    # ------------------------------------------------------------ paths

    def source_at(self, root: str, path: Path) -> SourceSpec:
        source = self.schema[root]
        for name in path:
            source = self.schema[source.joins[name].target]
        return source

    def join_at(self, root: str, path: Path) -> JoinSpec:
        return self.source_at(root, path[:-1]).joins[path[-1]]

    def fan_points(self, root: str, path: Path) -> list[Path]:
        """The prefixes of `path` reached by a one_to_many join."""
        return [path[:n] for n in range(1, len(path) + 1)
                if self.join_at(root, path[:n]).relationship == "one_to_many"]

    # ------------------------------------------------------------ values

    def field_value(self, source: SourceSpec, name: str, row: dict | None) -> Any:
        """A field of a row; every field of a row a left join did not find is NULL."""
        if row is None:
            return None
        spec = source.fields[name]
        if spec.sql is None:
            return row[name]
        return cast(spec.sql.value(Env(column=lambda c: row[c])), spec.type)

    def ref_value(self, root: str, ref: Ref, full: FullRow) -> Any:
        source = self.source_at(root, ref.path)
        if ref.member in source.segments:  # its condition over the fields of that instance's row
            row = full[ref.path]
            return source.segments[ref.member].value(Env(column=lambda c: self.field_value(source, c, row)))
        return self.field_value(source, ref.member, full[ref.path])

    def expanded(self, root: str, ref: Ref) -> list[Ref]:
        """A reference and, for a derived measure, the measures it reads (at their paths), nested."""
        source = self.source_at(root, ref.path)
        spec = source.measures.get(ref.member)
        if spec is None or spec.agg is not None:
            return [ref]
        return [ref] + [e for r in refs_in(spec.arg) for e in self.expanded(root, self.below(ref, r))]

    @staticmethod
    def below(ref: Ref, inner: Ref) -> Ref:
        """A reference written in the definition of `ref`'s data source, seen from the root."""
        return Ref(inner.text, ref.path + inner.path, inner.member)

    # ------------------------------------------------------------ the joined rows

    def full_rows(self, root: str, paths: set[Path]) -> list[FullRow]:
        """The root rows joined along every path, parents first (LEFT joins unless inner)."""
        rows: list[FullRow] = [{(): r} for r in self.tables[root]]
        for path in sorted(paths, key=lambda p: (len(p), p)):
            if not path:
                continue
            join = self.join_at(root, path)
            parent_source = self.source_at(root, path[:-1])
            target = self.schema[join.target]
            extended = []
            for full in rows:
                parent = full[path[:-1]]
                keys = [self.field_value(parent_source, left, parent) for left, _ in join.on]
                matches = [] if any(k is None for k in keys) else [
                    child for child in self.tables[target.name]
                    if all(self.field_value(target, right, child) == k for (_, right), k in zip(join.on, keys))]
                if not matches and not join.inner:
                    extended.append({**full, path: None})
                extended.extend({**full, path: child} for child in matches)
            rows = extended
        return rows

    def keeps(self, root: str, condition: Expr, full: FullRow, params: dict) -> bool:
        """A filter holds on a joined row when it is TRUE there; one that reads data reached
        over a one_to_many join is false where that join found no row."""
        for ref in refs_in(condition):
            if any(full[p] is None for p in self.fan_points(root, ref.path)):
                return False
        env = Env(ref=lambda r: self.ref_value(root, r, full), params=params)
        return condition.value(env) is True

    # ------------------------------------------------------------ aggregates

    def measure(self, root: str, ref: Ref, group: list[FullRow]) -> Any:
        """A named measure: each row of its instance that the group reaches, once."""
        source = self.source_at(root, ref.path)
        spec = source.measures[ref.member]
        if spec.agg is None:  # derived: its expression over the measures it names, each at its own grain
            result = spec.arg.value(Env(ref=lambda r: self.measure(root, self.below(ref, r), group)))
            return cast(result, spec.type) if spec.type else result
        seen, rows = set(), []
        for full in group:
            row = full[ref.path]
            if row is not None and id(row) not in seen:
                seen.add(id(row))
                rows.append(row)
        if spec.arg is None:
            values = None
        elif isinstance(spec.arg, Col) and spec.arg.name in source.fields:  # `sql:` names a field
            values = [self.field_value(source, spec.arg.name, row) for row in rows]
        else:
            values = [spec.arg.value(Env(column=lambda c, row=row: row[c])) for row in rows]
        result = aggregate(spec.agg, values or [], len(rows) if values is None else None)
        return cast(result, spec.type) if spec.type else result

    def over_rows(self, root: str, kind: str, arg: Expr | None, group: list[FullRow],
                  labels: dict | None = None) -> Any:
        """Any other aggregate: the group's joined rows cut down to the paths it reads, each
        distinct combination of rows once; rows whose one_to_many join found nothing drop out."""
        scope = {()}
        for ref in refs_in(arg):
            scope.update(ref.path[:n] for n in range(len(ref.path) + 1))
        scope_list = sorted(scope, key=lambda p: (len(p), p))
        fan = {p for ref in refs_in(arg) for p in self.fan_points(root, ref.path)}
        seen, rows = set(), []
        for full in group:
            identity = tuple(id(full[p]) if full[p] is not None else None for p in scope_list)
            if identity in seen or any(full[p] is None for p in fan):
                continue
            seen.add(identity)
            rows.append(full)
        if arg is None:
            return aggregate("count", [], len(rows))
        values = [arg.value(Env(ref=lambda r, full=full: self.ref_value(root, r, full))) for full in rows]
        if labels:
            values = [None if v is None else labels.get(str(v), str(v)) for v in values]
        return aggregate(kind, values)

    # ------------------------------------------------------------ the input

    def is_measure(self, root: str, ref: Ref) -> bool:
        return ref.member in self.source_at(root, ref.path).measures

    def run(self, inp: InputSpec) -> list[tuple]:
        root = inp.root
        params = {name: value for name, (_, value) in inp.params.items()}
        exprs = [i.sql for i in inp.items if i.sql is not None] + list(inp.filters)
        refs = [i.ref for i in inp.items if i.ref is not None] + [r for e in exprs for r in refs_in(e)]
        refs += [key for key, _ in inp.sort if isinstance(key, Ref)]
        refs = [e for ref in refs for e in self.expanded(root, ref)]
        paths = {ref.path[:n] for ref in refs for n in range(len(ref.path) + 1)}
        rows = self.full_rows(root, paths)

        def aggregating(e: Expr) -> bool:
            return bool(aggs_in(e)) or any(self.is_measure(root, r) for r in refs_in(e))

        where = [f for f in inp.filters if not aggregating(f)]
        having = [f for f in inp.filters if aggregating(f)]
        rows = [full for full in rows if all(self.keeps(root, f, full, params) for f in where)]

        metric = any((i.ref is not None and i.agg is None and self.is_measure(root, i.ref))
                     or (i.sql is not None and aggregating(i.sql)) for i in inp.items)
        groups: dict[Any, list[FullRow]] = {}
        if metric:
            dims = [i for i in inp.items if not ((i.ref is not None and (i.agg or self.is_measure(root, i.ref)))
                                                 or (i.sql is not None and aggregating(i.sql)))]
            if not dims:
                groups[()] = []  # a global aggregate: one row, even over no rows
            for full in rows:
                key = tuple(self.dim_value(root, i, full, params) for i in dims)
                groups.setdefault(key, []).append(full)
        else:  # a listing: one output row per root row
            for full in rows:
                groups.setdefault(id(full[()]), []).append(full)

        out = []
        for group in groups.values():
            env = self.group_env(root, group, params)
            if not all(f.value(env) is True for f in having):
                continue
            values = {i.name: self.item_value(root, i, group, params) for i in inp.items}
            sort_values = [values[key] if isinstance(key, str) else
                           (self.ref_value(root, key, group[0]) if group else None) for key, _ in inp.sort]
            out.append((values, sort_values, group[0][()] if group else None))
        # Sort: the input's items, then the fewest tie-breakers that leave no two rows tied
        # (docs/semantics.md, "Row order"); NULLs last either way.
        keys = [(lambda o, n=n: o[1][n], desc) for n, (_, desc) in enumerate(inp.sort)]
        keys += [(getter, False) for getter in self.tie_breakers(inp, metric)]
        for getter, desc in reversed(keys):
            present = [o for o in out if getter(o) is not None]
            absent = [o for o in out if getter(o) is None]
            present.sort(key=getter, reverse=desc)
            out = present + absent
        if inp.limit:
            out = out[:inp.limit]
        return [tuple(values[i.name] for i in inp.items) for values, _, _ in out]

    def tie_breakers(self, inp: InputSpec, metric: bool) -> list:
        """Getters over (values, sort values, root row) that make the order total.

        A listing: the root's primary key. A grouped input: the primary key of the shortest
        path whose key is among the group keys and fixes all of them (every other key a field
        reached from it over many_to_one / one_to_one joins); else the group keys, or every
        output column when a group key shows labels; a global aggregate: none."""
        root = inp.root
        by_name = [lambda o, name=i.name: o[0][name] for i in inp.items]
        if not metric:
            pk = self.schema[root].pk
            if not pk:
                return by_name
            return [lambda o, k=k: None if o[2] is None else o[2][k] for k in pk]
        dims = [i for i in inp.items if not (i.agg or (i.ref is not None and self.is_measure(root, i.ref))
                                             or (i.sql is not None and (aggs_in(i.sql) or any(
                                                 self.is_measure(root, r) for r in refs_in(i.sql)))))]
        if not dims:
            return []
        labelled = [i for i in dims if i.ref is not None
                    and self.source_at(root, i.ref.path).fields[i.ref.member].labels]
        if all(i.ref is not None for i in dims):
            for path in sorted({i.ref.path for i in dims}, key=lambda p: (len(p), p)):
                pk = self.source_at(root, path).pk
                key_items = [next((i for i in dims if i.ref.path == path and i.ref.member == k
                                   and i not in labelled), None) for k in pk]
                if not pk or None in key_items:
                    continue
                if all(i.ref.path[:len(path)] == path and all(
                        self.join_at(root, i.ref.path[:n]).relationship in ("many_to_one", "one_to_one")
                        for n in range(len(path) + 1, len(i.ref.path) + 1)) for i in dims):
                    return [lambda o, name=i.name: o[0][name] for i in key_items]
        if labelled:
            return by_name
        return [lambda o, name=i.name: o[0][name] for i in dims]

    def dim_value(self, root: str, item, full: FullRow, params: dict) -> Any:
        if item.ref is not None:
            return self.ref_value(root, item.ref, full)
        return item.sql.value(Env(ref=lambda r: self.ref_value(root, r, full), params=params))

    def group_env(self, root: str, group: list[FullRow], params: dict) -> Env:
        def ref(r: Ref):
            if self.is_measure(root, r):
                return self.measure(root, r, group)
            return self.ref_value(root, r, group[0]) if group else None
        return Env(ref=ref, params=params, agg=lambda a: self.over_rows(root, a.kind, a.arg, group))

    def item_value(self, root: str, item, group: list[FullRow], params: dict) -> Any:
        if item.ref is not None:
            source = self.source_at(root, item.ref.path)
            if self.is_measure(root, item.ref):
                return self.measure(root, item.ref, group)
            labels = source.fields[item.ref.member].labels
            if item.agg:
                return self.over_rows(root, item.agg, item.ref, group, labels if item.agg == "list" else None)
            value = self.ref_value(root, item.ref, group[0]) if group else None
            return labels.get(str(value), str(value)) if labels and value is not None else value
        return item.sql.value(self.group_env(root, group, params))


def current_rows(source: SourceSpec, rows: list[dict]) -> list[dict]:
    """A CDC log read as its latest rows: the newest row per primary key, unless a delete."""
    if source.latest is None:
        return list(rows)
    order_by, deleted = source.latest
    newest: dict[tuple, dict] = {}
    for row in rows:
        key = tuple(row[k] for k in source.pk)
        if key not in newest or row[order_by] > newest[key][order_by]:
            newest[key] = row
    return [row for row in newest.values()
            if deleted is None or deleted.value(Env(column=lambda c, row=row: row[c])) is not True]


def cast(value: Any, type_text: str) -> Any:
    """CAST(value AS type) for the types the differential test uses."""
    if value is None:
        return None
    if type_text in ("bigint", "integer"):
        return int(value)
    if type_text == "double":
        return float(value)
    if type_text.startswith("decimal"):
        scale = int(type_text.rstrip(")").split(",")[1])
        return Decimal(value).quantize(Decimal(1).scaleb(-scale))
    if type_text == "varchar":
        return value if isinstance(value, str) else str(value)
    if type_text == "boolean":
        return bool(value)
    raise ValueError(type_text)


def evaluate(schema: Schema, rows: Rows, inp: InputSpec) -> list[tuple]:
    return Evaluator(schema, rows).run(inp)
