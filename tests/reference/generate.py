"""Random schemas, rows and valid inputs for the differential test.

`rnd` is a `random.Random`; the test passes hypothesis' `st.randoms()`, whose draws
hypothesis records and shrinks. Every input generated here is one the docs allow
(docs/semantics.md, "What an input may ask"), so a refusal by Genesis is a failure too.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal
from random import Random

from .expr import Agg, Arith, Case, Cmp, Coalesce, Col, Expr, InList, IsNull, Lit, Logic, Not, Param, Ratio, Ref
from .spec import FieldSpec, InputSpec, Item, JoinSpec, MeasureSpec, Rows, Schema, SourceSpec

NUMERIC = ("bigint", "decimal(10,2)", "double")
VALUES = {
    "bigint": [None, 0, 1, 2, 3, 5, -1],
    "varchar": [None, "A", "B", "C", "A"],
    "decimal(10,2)": [None, Decimal("0.50"), Decimal("1.25"), Decimal("2.00"), Decimal("-3.00")],
    "double": [None, 0.25, 0.5, 1.5, -2.0],
    "boolean": [None, True, False],
}
LABELS = {"A": "Alpha", "B": "Beta"}


# ---------------------------------------------------------------- schema and rows

def gen_schema(rnd: Random) -> tuple[Schema, Rows]:
    n = rnd.randint(3, 6)
    sources: list[SourceSpec] = []
    for i in range(n):
        composite = rnd.random() < 0.25
        pk = ["id", "v"] if composite else ["id"]
        columns = {"id": "bigint", **({"v": "bigint"} if composite else {}), "qty": "bigint", "code": "varchar"}
        for name, type_text in (("amount", "decimal(10,2)"), ("ratio", "double"), ("flag", "boolean")):
            if rnd.random() < 0.5:
                columns[name] = type_text
        sources.append(SourceSpec(f"s{i}", f"s{i}", columns, pk, {}))
    edges = [(i, rnd.randrange(i)) for i in range(1, n)]
    edges += [(c, rnd.randrange(c)) for c in (rnd.randrange(1, n) for _ in range(rnd.randint(0, 2)))]
    one_to_one = {}
    for k, (child, parent) in enumerate(edges):
        c, p = sources[child], sources[parent]
        fk = [f"p{k}_{col}" for col in p.pk]
        for col in fk:
            c.columns[col] = "bigint"
        unique = rnd.random() < 0.2
        one_to_one[k] = unique
        if rnd.random() < 0.85:
            c.joins[f"up{k}"] = JoinSpec(f"up{k}", p.name, tuple(zip(fk, p.pk)),
                                         "one_to_one" if unique else "many_to_one", inner=rnd.random() < 0.1)
        if rnd.random() < 0.85:
            p.joins[f"down{k}"] = JoinSpec(f"down{k}", c.name, tuple(zip(p.pk, fk)),
                                           "one_to_one" if unique else "one_to_many")
    cdc = rnd.choice(sources) if rnd.random() < 0.5 else None
    if cdc is not None:
        cdc.columns["op"] = "varchar"
        cdc.columns["ts"] = "bigint"
        cdc.latest = ("ts", Cmp("=", Col("op"), Lit("d")))
    for s in sources:
        for name, type_text in s.columns.items():
            if name not in ("op", "ts"):
                s.fields[name] = FieldSpec(name, type_text, labels=LABELS if name == "code" and rnd.random() < 0.3
                                           else None)
        derived = [FieldSpec("is_a", "bigint", Case(Cmp("=", Col("code"), Lit("A")), Lit(1), Lit(0))),
                   FieldSpec("code_or", "varchar", Coalesce((Col("code"), Lit("?")))),
                   FieldSpec("qty2", "bigint", Arith("*", Col("qty"), Lit(2))),
                   FieldSpec("qty_or0", "bigint", Coalesce((Col("qty"), Lit(0))))]
        for f in rnd.sample(derived, rnd.randint(0, 2)):
            s.fields[f.name] = f
        measures = [MeasureSpec("n", "count"),
                    MeasureSpec("total_qty", "sum", Col("qty")),
                    MeasureSpec("kinds", "count_distinct", Col("code")),
                    MeasureSpec("coded", "count", Coalesce((Col("code"), Lit("?")))),
                    MeasureSpec("a_qty", "sum", Case(Cmp("=", Col("code"), Lit("A")), Col("qty"), Lit(0))),
                    MeasureSpec("max_code", "max", Col("code")),
                    MeasureSpec("avg_qty", "avg", Col("qty"))]
        if "amount" in s.columns:
            measures.append(MeasureSpec("total_amount", "sum", Col("amount"), "decimal(18,2)"))
        if "is_a" in s.fields:
            measures.append(MeasureSpec("a_lines", "sum", Col("is_a")))
        for m in rnd.sample(measures, rnd.randint(1, 3)):
            s.measures[m.name] = m
    schema = {s.name: s for s in sources}
    for s in sources:
        gen_derived_measures(rnd, schema, s)
        gen_segments(rnd, s)
    return schema, gen_rows(rnd, sources, edges, one_to_one)


NUMERIC_MEASURES = ("n", "total_qty", "kinds", "coded", "a_qty", "avg_qty", "total_amount", "a_lines")


def gen_derived_measures(rnd: Random, schema: Schema, source: SourceSpec) -> None:
    """Measures derived from measures of the source and of data sources one or two joins away
    (over one_to_many joins too, where a join would multiply a plain aggregate), maybe nested."""
    if rnd.random() < 0.4:
        return
    options: list[Ref] = [Ref(m, (), m) for m, spec in source.measures.items() if m in NUMERIC_MEASURES]
    for join in source.joins.values():
        target = schema[join.target]
        options += [Ref(f"{join.name}.{m}", (join.name,), m) for m in target.measures if m in NUMERIC_MEASURES]
        for deeper in target.joins.values():
            options += [Ref(f"{join.name}.{deeper.name}.{m}", (join.name, deeper.name), m)
                        for m in schema[deeper.target].measures if m in NUMERIC_MEASURES]
    if not options:
        return
    first = rnd.choice(options)
    second = rnd.choice(options)
    if rnd.random() < 0.7:
        source.measures["ratio_m"] = MeasureSpec("ratio_m", None, Ratio(first, second))
    else:
        source.measures["ratio_m"] = MeasureSpec("ratio_m", None, Ratio(Arith("+", first, Lit(1)), second), "double")
    if rnd.random() < 0.4:  # a derived measure of a derived measure
        source.measures["twice_m"] = MeasureSpec("twice_m", None, Arith("*", Ref("ratio_m", (), "ratio_m"), Lit(2)))


def gen_segments(rnd: Random, source: SourceSpec) -> None:
    """A named condition over the source's fields (plain and derived)."""
    if rnd.random() < 0.5:
        return
    shapes: list[Expr] = [Cmp("=", Col("code"), Lit("A")), IsNull(Col("code"), negated=True),
                          Logic("OR", Cmp(">", Col("qty"), Lit(1)), IsNull(Col("qty")))]
    if "is_a" in source.fields:
        shapes.append(Cmp("=", Col("is_a"), Lit(0)))
    if "qty_or0" in source.fields:
        shapes.append(Cmp(">=", Col("qty_or0"), Lit(2)))
    source.segments["seg"] = rnd.choice(shapes)


def gen_rows(rnd: Random, sources: list[SourceSpec], edges, one_to_one) -> Rows:
    rows: Rows = {}
    keys: dict[str, list[tuple]] = {}
    ts = 0
    for i, s in enumerate(sources):
        count = rnd.randint(2, 8) if rnd.random() < 0.9 else 0
        if len(s.pk) == 2:
            candidates = [(a, b) for a in range(1, 6) for b in (1, 2)]
        else:
            candidates = [(a,) for a in range(1, 10)]
        own = rnd.sample(candidates, min(count, len(candidates)))
        keys[s.name] = own
        fk_choices = {}
        for k, (child, parent) in enumerate(edges):
            if child != i:
                continue
            parent_keys = keys[sources[parent].name]
            orphan = tuple(99 for _ in sources[parent].pk)
            pool = parent_keys + [orphan, None]
            if one_to_one[k]:
                picked = rnd.sample(parent_keys + [orphan], min(len(own), len(parent_keys) + 1))
                picked += [None] * (len(own) - len(picked))
                rnd.shuffle(picked)
            else:
                picked = [rnd.choice(pool) for _ in own]
            fk_choices[k] = picked
        table_rows = []
        for n, key in enumerate(own):
            row = dict(zip(s.pk, key))
            for k, picked in fk_choices.items():
                parent = sources[edges[k][1]]
                for col, value in zip(parent.pk, picked[n] if picked[n] is not None else [None] * len(parent.pk)):
                    row[f"p{k}_{col}"] = value
            for name, type_text in s.columns.items():
                if name not in row and name not in ("op", "ts"):
                    row[name] = rnd.choice(VALUES[type_text])
            if s.latest is None:
                table_rows.append(row)
                continue
            events = rnd.choice([["c"], ["c", "u"], ["c", "d"], ["c", "u", "d"], ["c", "d", "c"], ["c", "u", "u"]])
            for op in events:
                ts += 1
                event = dict(row, op=op, ts=ts)
                if op != "c" or rnd.random() < 0.5:  # updates and re-creations change values
                    for name in ("qty", "code"):
                        event[name] = rnd.choice(VALUES[s.columns[name]])
                row = event
                table_rows.append(event)
        # A key created, deleted and gone stays in `keys`: children keep pointing at it.
        rnd.shuffle(table_rows)
        rows[s.table] = table_rows
    return rows


# ---------------------------------------------------------------- inputs

class Paths:
    """The instances an input may use: join paths from the root, at most `depth` joins."""

    def __init__(self, schema: Schema, root: str, depth: int = 3, cap: int = 40):
        self.schema, self.root = schema, root
        self.items: list[tuple[tuple[str, ...], SourceSpec, bool]] = [((), schema[root], False)]
        queue = deque(self.items[:1])
        while queue and len(self.items) < cap:
            path, source, fans = queue.popleft()
            if len(path) >= depth:
                continue
            for join in source.joins.values():
                item = (path + (join.name,), schema[join.target], fans or join.relationship == "one_to_many")
                self.items.append(item)
                queue.append(item)

    def relationship(self, path) -> str:
        source = self.schema[self.root]
        for name in path[:-1]:
            source = self.schema[source.joins[name].target]
        return source.joins[path[-1]].relationship

    def ref(self, rnd: Random, path, member: str) -> Ref:
        if not path:
            return Ref(f"{self.root}.{member}", (), member)
        target = self.target(path)
        if rnd.random() < 0.3 and self.only_shortest(target) == path:
            return Ref(f"{target}.{member}", path, member)
        return Ref(".".join(path) + "." + member, path, member)

    def target(self, path) -> str:
        source = self.schema[self.root]
        for name in path:
            source = self.schema[source.joins[name].target]
        return source.name

    def only_shortest(self, target: str):
        """The one shortest simple path to `target` (as the spec resolves a name), or None."""
        if target == self.root:
            return None
        found, queue = [], deque([(self.root, ())])
        while queue:
            name, path = queue.popleft()
            if found and len(path) >= len(found[0]):
                break
            visited = {self.root} | {self.target(path[:n]) for n in range(1, len(path) + 1)}
            for join in self.schema[name].joins.values():
                if join.target in visited:
                    continue
                if join.target == target:
                    found.append(path + (join.name,))
                else:
                    queue.append((join.target, path + (join.name,)))
        return found[0] if len(found) == 1 else None


def _fields_of(source: SourceSpec, types: tuple[str, ...] | None = None) -> list[str]:
    return [f.name for f in source.fields.values() if types is None or f.type in types]


def gen_input(rnd: Random, schema: Schema, index: int) -> InputSpec:
    root = rnd.choice(sorted(schema))
    paths = Paths(schema, root, depth=rnd.choice([1, 2, 2, 3]))
    flat = [p for p in paths.items if not p[2]]
    metric = rnd.random() < 0.5
    items: list[Item] = []
    names = iter(f"c{i}" for i in range(100))

    def field_ref(candidates, types=None):
        options = [(path, f) for path, source, _ in candidates for f in _fields_of(source, types)]
        if not options:
            return None
        path, member = rnd.choice(options)
        return paths.ref(rnd, path, member)

    def agg_arg(kind: str) -> Expr | None:
        """An argument over one instance and (maybe) its ancestors: one chain of joins."""
        path, source, _ = rnd.choice(paths.items)
        numeric = _fields_of(source, NUMERIC)
        ancestors = [(path[:n], paths.items[[p for p, _, _ in paths.items].index(path[:n])][1])
                     for n in range(len(path))]
        if kind in ("sum", "avg") or (numeric and rnd.random() < 0.5):
            if not numeric:
                return None
            value: Expr = paths.ref(rnd, path, rnd.choice(numeric))
            shape = rnd.random()
            if shape < 0.25 and ancestors:
                a_path, a_source = rnd.choice(ancestors)
                same = [f for f in _fields_of(a_source, ("bigint",))]
                if same and schema_type(schema, root, paths, value) != "double":
                    value = Arith("*", value, paths.ref(rnd, a_path, rnd.choice(same)))
            elif shape < 0.5 and "code" in source.fields:
                value = Case(Cmp("=", paths.ref(rnd, path, "code"), Lit("A")), value, Lit(0))
            return value
        if rnd.random() < 0.3 and "code" in source.fields:
            return Coalesce((paths.ref(rnd, path, "code"), Lit("?")))
        return paths.ref(rnd, path, rnd.choice(_fields_of(source)))

    def aggregate_expr() -> Expr | None:
        kind = rnd.choice(["count", "count_distinct", "sum", "avg", "min", "max", "count_star"])
        if kind == "count_star":
            return Agg("count", None)
        arg = agg_arg(kind)
        return Agg(kind, arg) if arg is not None else None

    # Fields -------------------------------------------------------------------
    if metric:
        for _ in range(rnd.randint(0, 2)):
            ref = field_ref(paths.items)
            if ref is not None:
                items.append(Item(next(names), ref))
        if rnd.random() < 0.2:  # a computed group field
            ref = field_ref(paths.items, ("bigint",))
            if ref is not None:
                items.append(Item(next(names), sql=Arith("+", ref, Lit(1))))
        for _ in range(rnd.randint(1, 2)):
            measured = [(p, s) for p, s, _ in paths.items if s.measures]
            if rnd.random() < 0.5 and measured:
                path, source = rnd.choice(measured)
                derived = [m for m, spec in sorted(source.measures.items()) if spec.agg is None]
                name = rnd.choice(derived) if derived and rnd.random() < 0.4 else rnd.choice(sorted(source.measures))
                items.append(Item(next(names), paths.ref(rnd, path, name)))
            else:
                expr = aggregate_expr()
                if expr is not None and rnd.random() < 0.2 and expr.kind in ("count", "sum"):
                    expr = Arith("+", expr, Lit(1))
                elif expr is not None and rnd.random() < 0.2 and expr.kind in ("count", "count_distinct"):
                    other = aggregate_expr()  # two aggregates, maybe over different branches
                    if other is not None and other.kind in ("count", "count_distinct"):
                        expr = Arith(rnd.choice(["+", "-"]), expr, other)
                if expr is not None:
                    items.append(Item(next(names), sql=expr))
        if not any(i.sql is not None or (i.ref and i.ref.member in paths_source(paths, i.ref).measures)
                   for i in items):
            items.append(Item(next(names), sql=Agg("count", None)))
    else:
        for _ in range(rnd.randint(1, 2)):
            ref = field_ref(flat)
            if ref is not None:
                items.append(Item(next(names), ref))
        if rnd.random() < 0.3:
            ref = field_ref(flat, ("bigint",))
            if ref is not None:
                items.append(Item(next(names), sql=Arith("+", ref, Lit(1))))
    for _ in range(rnd.randint(0 if items else 1, 2)):
        path, source, _ = rnd.choice(paths.items)
        member = rnd.choice(_fields_of(source))
        type_text = source.fields[member].type
        kinds = ["count", "count_distinct", "min", "max"]
        kinds += ["sum", "avg"] if type_text in NUMERIC else []
        kinds += ["list"] if type_text in ("bigint", "varchar", "boolean") else []
        items.append(Item(next(names), paths.ref(rnd, path, member), rnd.choice(kinds)))

    # Filters ------------------------------------------------------------------
    params: dict = {}
    filters: list[Expr] = []
    for _ in range(rnd.choice([0, 0, 1, 1, 2])):
        condition = gen_condition(rnd, paths, params)
        if condition is not None:
            filters.append(condition)
    if rnd.random() < 0.25:
        measured = [(p, s) for p, s, _ in paths.items if s.measures]
        if measured and rnd.random() < 0.5:
            path, source = rnd.choice(measured)
            name = rnd.choice([m for m in sorted(source.measures) if source.measures[m].agg != "avg"] or [None])
            having = Cmp(rnd.choice([">", ">=", "<"]), paths.ref(rnd, path, name), Lit(rnd.randint(0, 3))) \
                if name and source.measures[name].agg not in ("max",) else None
        else:
            expr = aggregate_expr()
            having = Cmp(">=", expr, Lit(rnd.randint(0, 3))) if isinstance(expr, Agg) and expr.kind in (
                "count", "count_distinct", "sum") else None
        if having is not None:
            filters.append(having)

    # Sort and limit -----------------------------------------------------------
    sort = []
    for _ in range(rnd.choice([0, 1, 1, 2])):
        if not metric and rnd.random() < 0.4:
            ref = field_ref(flat)
            if ref is not None:
                sort.append((ref, rnd.random() < 0.5))
        else:
            sort.append((rnd.choice(items).name, rnd.random() < 0.5))
    seen, unique_sort = set(), []
    for key, desc in sort:
        label = key if isinstance(key, str) else key.text
        if label not in seen:
            seen.add(label)
            unique_sort.append((key, desc))
    limit = rnd.choice([None, None, None, 1, 3])
    return InputSpec(f"q{index}", root, items, filters, params, unique_sort, limit)


def paths_source(paths: Paths, ref: Ref) -> SourceSpec:
    return paths.schema[paths.target(ref.path)]


def schema_type(schema: Schema, root: str, paths: Paths, ref: Ref) -> str:
    return paths_source(paths, ref).fields[ref.member].type


def gen_condition(rnd: Random, paths: Paths, params: dict) -> Expr | None:
    path, source, _ = rnd.choice(paths.items)
    if source.segments and rnd.random() < 0.35:  # a segment by reference, maybe combined
        condition: Expr = paths.ref(rnd, path, "seg")
        if rnd.random() < 0.3:
            condition = Not(condition)
        if rnd.random() < 0.3:
            other = gen_condition(rnd, paths, params)
            if other is not None:
                condition = Logic(rnd.choice(["AND", "OR"]), condition, other)
        return condition
    member = rnd.choice(_fields_of(source))
    ref = paths.ref(rnd, path, member)
    type_text = source.fields[member].type
    shape = rnd.random()
    if shape < 0.15:
        condition = IsNull(ref, negated=rnd.random() < 0.5)
    elif type_text == "varchar":
        if shape < 0.4:
            name = f"p{len(params)}"
            params[name] = ("varchar", rnd.choice(["A", "B", "it's"]))
            condition = Cmp("=", ref, Param(name))
        else:
            condition = Cmp(rnd.choice(["=", "<>", "<"]), ref, Lit(rnd.choice(["A", "B", "C"])))
    elif type_text == "bigint" and shape < 0.4:
        name = f"p{len(params)}"
        params[name] = ("array(bigint)", rnd.sample([0, 1, 2, 3, 5], rnd.randint(0, 3)))
        condition = InList(ref, Param(name))
    elif type_text in NUMERIC:
        literal = rnd.choice([0, 1, 2]) if type_text == "bigint" else rnd.choice(
            [Decimal("0.50"), Decimal("1.25"), Decimal("0")])
        condition = Cmp(rnd.choice(["=", "<>", "<", "<=", ">", ">="]), ref, Lit(literal))
    elif type_text == "boolean":
        condition = Cmp("=", ref, Lit(rnd.random() < 0.5))
    else:
        return None
    if rnd.random() < 0.2:
        other = gen_condition(rnd, paths, params)
        if other is not None:
            condition = Logic(rnd.choice(["AND", "OR"]), condition, other)
    if rnd.random() < 0.1:
        condition = Not(condition)
    return condition
