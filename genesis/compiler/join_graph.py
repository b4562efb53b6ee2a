"""The join graph: reference resolution, path finding and fan-out facts.

A reference `PATH.member` names a member (field or measure) of a data source
*instance*: the data source reached from the input's root by one join path. The
same data source reached by two paths is two instances with two aliases. A path may
come back to a data source it passed (`the_order.order_lines` from a line: its
siblings); docs/semantics.md says which rows every such path gives.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import GenesisError, Location, did_you_mean
from ..project.model import DataSource, Field, Join, Measure, Segment


@dataclass(frozen=True)
class Instance:
    """A data source reached from the root by `path` (join names); () is the root."""

    path: tuple[str, ...]
    datasource: DataSource
    joins: tuple[Join, ...]  # the joins along `path`, in order

    @property
    def parent_path(self) -> tuple[str, ...]:
        """The path of the instance this one is joined from (the path without its last join)."""
        return self.path[:-1]

    @property
    def repeats_root_rows(self) -> bool:
        """True when one root row can meet several rows of this instance (a one_to_many
        join on its path), so joining it repeats the root's rows."""
        return any(j.relationship == "one_to_many" for j in self.joins)

    def describe(self) -> str:
        """The instance as messages name it: its join path (`cast.talent`), or the root's data source name."""
        names = [self.joins[0].name] if self.joins else []
        names += [j.name for j in self.joins[1:]]
        return ".".join(names) or self.datasource.name


@dataclass(frozen=True)
class Resolved:
    """A resolved reference: which instance, which member."""

    text: str
    instance: Instance
    member: Field | Measure | Segment

    @property
    def is_measure(self) -> bool:
        """True when the member is a measure (aggregated or derived), not a field or a segment."""
        return isinstance(self.member, Measure)

    @property
    def key(self) -> str:
        """`datasource.member`, the name `impact` and docs use."""
        return f"{self.instance.datasource.name}.{self.member.name}"


class JoinGraph:
    """Data sources as nodes, declared joins as directed edges."""

    def __init__(self, datasources: Mapping[str, DataSource]):
        self.datasources = datasources
        self._path_cache: dict[tuple[str, str], list[tuple[Join, ...]]] = {}

    def instance(self, root: str, joins: tuple[Join, ...]) -> Instance:
        """The instance reached from `root` by `joins`; the root itself when `joins` is empty."""
        target = self.datasources[joins[-1].datasource] if joins else self.datasources[root]
        return Instance(tuple(j.name for j in joins), target, joins)

    def shortest_paths(self, root: str, target: str) -> list[tuple[Join, ...]]:
        """Every shortest join path from root to target (simple paths, breadth first)."""
        key = (root, target)
        if key not in self._path_cache:
            self._path_cache[key] = self._search(root, target)
        return self._path_cache[key]

    def _search(self, root: str, target: str) -> list[tuple[Join, ...]]:
        found: list[tuple[Join, ...]] = []
        queue: deque[tuple[str, tuple[Join, ...]]] = deque([(root, ())])
        while queue:
            name, path = queue.popleft()
            if found and len(path) >= len(found[0]):
                break
            visited = {root} | {j.datasource for j in path}
            for join in self.datasources[name].joins.values():
                if join.datasource in visited or join.datasource not in self.datasources:
                    continue
                extended = path + (join,)
                if join.datasource == target:
                    found.append(extended)
                else:
                    queue.append((join.datasource, extended))
        return found

    def resolve(self, root: str, text: str, loc: Location | None = None) -> Resolved:
        """Resolve `PATH.member` from `root`, or raise a located error with a hint."""
        segments = [s.strip() for s in text.split(".")]
        if len(segments) < 2 or not all(segments):
            raise GenesisError(f"'{text}' is not a reference", loc,
                               f"write data_source.field, e.g. {root}.{_first_field(self.datasources[root])}")
        *path, member_name = segments
        joins = self._first_hop(root, path[0], text, loc)
        current = self.datasources[joins[-1].datasource] if joins else self.datasources[root]
        for segment in path[1:]:
            join = current.joins.get(segment)
            if join is None:
                raise GenesisError(
                    f"'{current.name}' has no join '{segment}' (in reference '{text}')", loc,
                    did_you_mean(segment, current.joins) or _listing("its joins", current.joins),
                )
            joins = joins + (join,)
            current = self.datasources[join.datasource]
        member = (current.fields.get(member_name) or current.measures.get(member_name)
                  or current.segments.get(member_name))
        if member is None:
            if member_name in current.joins:
                raise GenesisError(f"'{text}' names the join '{member_name}', not a field", loc,
                                   f"write {text}.<field>")
            candidates = list(current.fields) + list(current.measures) + list(current.segments)
            kinds = "field, measure or segment" if current.segments else "field or measure"
            raise GenesisError(f"data source '{current.name}' has no {kinds} '{member_name}'", loc,
                               did_you_mean(member_name, candidates) or _listing("its fields", candidates))
        return Resolved(text, self.instance(root, joins), member)

    def _first_hop(self, root: str, first: str, text: str, loc) -> tuple[Join, ...]:
        root_ds = self.datasources[root]
        if first in root_ds.joins:
            return (root_ds.joins[first],)
        if first == root:
            return ()
        if first in self.datasources:
            paths = self.shortest_paths(root, first)
            if not paths:
                raise GenesisError(f"data source '{first}' cannot be reached from '{root}' by any join", loc,
                                   f"declare a join to it, e.g. under {root}.yaml joins:")
            if len(paths) > 1:
                options = ", ".join(".".join(j.name for j in p) + "." + text.split(".", 1)[1] for p in paths)
                raise GenesisError(
                    f"'{text}' is ambiguous: '{first}' is reached from '{root}' by {len(paths)} paths "
                    f"of the same length", loc, f"write the explicit path: {options}")
            return paths[0]
        candidates = list(root_ds.joins) + list(self.datasources)
        raise GenesisError(
            f"'{first}' in '{text}' is neither a join of '{root}' nor a data source", loc,
            did_you_mean(first, candidates) or _listing(f"joins of {root}", root_ds.joins),
        )


def _first_field(ds: DataSource) -> str:
    return next(iter(ds.fields), "field")


def _listing(what: str, names) -> str | None:
    names = list(names)
    if not names:
        return None
    shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
    return f"{what}: {shown}"
