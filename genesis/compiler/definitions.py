"""References written inside a data source's own definitions (derived measures, segments).

A derived measure (`total_budget / nullif(movie_count, 0)`) or a segment (`status IN (...)`)
names members of its own data source by bare name and members of joined data sources by
reference (`shoot_day.day_count`, resolved from the data source as an input's root would
be). Used in an input, each such reference is read at the instance where the definition
is used: `production.cost_per_shoot_day` from a movie reads `production.shoot_day.day_count`.
Both kinds of definition may refer to others of their kind, so a cycle is refused here,
with the path that loops, before anything expands.
"""

from __future__ import annotations

from sqlglot import exp

from ..errors import GenesisError, Location, did_you_mean
from ..project.model import DataSource, Field, Measure, Segment
from . import expressions as ex
from .join_graph import Instance, JoinGraph, Resolved

Member = Field | Measure | Segment


def expands(member: Member) -> bool:
    """Does using this member expand another definition (a derived measure or a segment)?"""
    return isinstance(member, Segment) or (isinstance(member, Measure) and member.derived)


def definition_sql(member: Member) -> tuple[str, Location | None]:
    """The SQL text of a derived measure or segment and where it is written."""
    return member.sql or "", member.sql_loc or member.loc


def what_of(ds: DataSource, member: Member) -> str:
    """How messages name a derived measure or segment: `measure 'production.cost_per_shoot_day'`."""
    kind = "segment" if isinstance(member, Segment) else "measure"
    return f"{kind} '{ds.name}.{member.name}'"


def resolve_local(graph: JoinGraph, ds: DataSource, node: exp.Expr, loc: Location | None,
                  what: str) -> Resolved:
    """A reference inside `ds`'s definition, resolved with `ds` as the root (path relative to it)."""
    text = ex.reference_text(node)
    if text is not None:
        return graph.resolve(ds.name, text, loc)
    name = ex.bare_name(node) or node.sql(ex.DIALECT)
    member = ds.fields.get(name) or ds.measures.get(name) or ds.segments.get(name)
    if member is None:
        candidates = list(ds.fields) + list(ds.measures) + list(ds.segments)
        raise GenesisError(f"{what} uses '{name}', which is not a field, measure or segment of '{ds.name}'", loc,
                           did_you_mean(name, candidates) or f"its measures: {', '.join(ds.measures) or 'none'}")
    return Resolved(name, Instance((), ds, ()), member)


def at_instance(base: Instance, local: Resolved) -> Resolved:
    """A reference resolved relative to `base`'s data source, as seen from the input's root."""
    inner = local.instance
    return Resolved(local.text, Instance(base.path + inner.path, inner.datasource, base.joins + inner.joins),
                    local.member)


def check_no_cycle(graph: JoinGraph, ds: DataSource, member: Member) -> None:
    """Refuse a definition that refers to itself, directly or through others (located, with the loop)."""
    chain: list[tuple[DataSource, Member]] = []

    def visit(owner: DataSource, current: Member) -> None:
        for index, (seen_ds, seen) in enumerate(chain):
            if seen_ds.name == owner.name and seen.name == current.name:
                loop = [f"{d.name}.{m.name}" for d, m in chain[index:]] + [f"{owner.name}.{current.name}"]
                first_ds, first = chain[index]
                text, loc = definition_sql(first)
                raise GenesisError(f"{what_of(first_ds, first)} refers to itself: {' -> '.join(loop)}", loc,
                                   "define it from measures that do not lead back to it")
        chain.append((owner, current))
        text, loc = definition_sql(current)
        tree = ex.read_expression(text, loc, what_of(owner, current))
        for node in list(ex.reference_nodes(tree)):
            local = resolve_local(graph, owner, node, loc, what_of(owner, current))
            if expands(local.member):
                visit(local.instance.datasource, local.member)
        chain.pop()

    visit(ds, member)
