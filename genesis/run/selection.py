"""Selecting definitions by name, glob and property, as dbt's `--select` does.

One function serves every command that takes tracker names (`refresh`, `ls`, ...), so a
selector means the same thing everywhere:

- `NAME` or a glob (`late-*`, `*budget*`): definitions whose name matches;
- `tracker:GLOB`, `input:GLOB`, `datasource:GLOB`: a definition of that kind, and the
  definitions that use it (the trackers of an input; the inputs and trackers that read a
  data source);
- `owner:VALUE`: trackers whose owner matches the glob, or whose owner starts with
  `VALUE-` / `VALUE_` (`owner:finance` selects `finance-ap` and `finance-controller`);
- `destination:TYPE`: trackers writing to `google_sheets`, `airtable` or `file`;
- `A,B` (a comma inside one selector): definitions matching both A and B.

Several selectors are a union; `--exclude` removes what its selectors match.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..errors import GenesisError, did_you_mean
from ..project.model import Project

KINDS = ("datasource", "input", "tracker")
METHODS = ("tracker", "input", "datasource", "owner", "destination")
GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class Node:
    """One definition as selection sees it: its kind and name, and what it depends on."""

    kind: str  # datasource | input | tracker
    name: str
    owner: str | None = None
    input: str | None = None  # trackers: their input
    datasources: frozenset[str] = frozenset()  # inputs and trackers: the data sources they read
    destination: str | None = None  # trackers: the destination type


def project_nodes(project: Project) -> list[Node]:
    """Every definition of the project, data sources first, each kind sorted by name."""

    def build() -> list[Node]:
        reads = {name: _datasources_read(project, name) for name in project.inputs}
        nodes = [Node("datasource", name) for name in sorted(project.datasources)]
        nodes += [Node("input", name, datasources=reads[name]) for name in sorted(project.inputs)]
        nodes += [Node("tracker", t.name, owner=t.owner, input=t.input,
                       datasources=reads.get(t.input, frozenset()), destination=t.destination.kind)
                  for t in sorted(project.trackers.values(), key=lambda t: t.name)]
        return nodes

    return project.derived("selection_nodes", build)


def _datasources_read(project: Project, input_name: str) -> frozenset[str]:
    """The data sources an input's query reads; its `from:` alone when it does not compile."""
    from ..compiler import compile_input

    try:
        return frozenset(compile_input(project, input_name).datasources)
    except GenesisError:
        return frozenset({project.inputs[input_name].root})


def select(project: Project, selectors: Sequence[str] = (), exclude: Sequence[str] = (),
           kinds: Iterable[str] = KINDS) -> list[Node]:
    """The definitions of the given kinds that any selector matches (all when there is none),
    minus those an `exclude` selector matches, in `project_nodes` order."""
    kinds = tuple(kinds)
    nodes = [n for n in project_nodes(project) if n.kind in kinds]
    chosen = nodes
    if selectors:
        chosen = []
        for selector in selectors:
            matched = [n for n in nodes if _matches(project, n, selector)]
            if not matched:
                raise _nothing_matches(project, selector, kinds)
            chosen += [n for n in matched if n not in chosen]
        chosen = [n for n in nodes if n in chosen]
    for selector in exclude:
        chosen = [n for n in chosen if not _matches(project, n, selector)]
    return chosen


def split_selectors(values: Iterable[str]) -> list[str]:
    """`--select 'a b'` is two selectors, as in dbt; empty words are dropped."""
    return [word for value in values for word in str(value).split()]


def _matches(project: Project, node: Node, selector: str) -> bool:
    return all(_matches_one(project, node, part) for part in selector.split(",") if part)


def _matches_one(project: Project, node: Node, selector: str) -> bool:
    method, _, value = selector.rpartition(":")
    if not method:
        return _glob(node.name, value)
    if method not in METHODS:
        raise GenesisError(f"unknown selector method '{method}:' in '{selector}'",
                           hint=did_you_mean(method, METHODS) or f"methods: {', '.join(METHODS)}")
    if method == "owner":
        owner = node.owner or ""
        return bool(owner) and (_glob(owner, value) or owner.startswith((value + "-", value + "_")))
    if method == "destination":
        return node.destination is not None and _glob(node.destination, value)
    if method == node.kind:
        return _glob(node.name, value)
    if method == "input":
        return node.input is not None and _glob(node.input, value)
    if method == "datasource":
        return any(_glob(name, value) for name in node.datasources)
    return False  # tracker:X selects trackers only


def _glob(name: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(name, pattern)


def _nothing_matches(project: Project, selector: str, kinds: tuple[str, ...]) -> GenesisError:
    """A selector that selects nothing is a mistake: say so, with the nearest name."""
    names = {n.name for n in project_nodes(project) if n.kind in kinds}
    method, _, value = selector.rpartition(":")
    words = [k.replace("datasource", "data source") for k in kinds]
    what = words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"
    if not method and not GLOB_CHARS & set(value) and "," not in value:
        other = next((kind for kind, pool in (("input", project.inputs), ("datasource", project.datasources))
                      if kind not in kinds and value in pool), None)
        if other:
            return GenesisError(f"no {what} named '{value}'",
                                hint=f"'{value}' is {'an input' if other == 'input' else 'a data source'}: "
                                     f"--select {other}:{value} selects the trackers that use it")
        return GenesisError(f"no {what} named '{value}'",
                            hint=did_you_mean(value, names) or _listing(names))
    if method == "owner":
        owners = sorted({n.owner for n in project_nodes(project) if n.owner})
        return GenesisError(f"no tracker matches '{selector}'",
                            hint=did_you_mean(value, owners) or f"owners: {', '.join(owners) or 'none'}")
    pool = {"input": project.inputs, "datasource": project.datasources, "tracker": project.trackers}.get(method)
    hint = did_you_mean(value, pool) if pool is not None else None
    return GenesisError(f"no {what} matches '{selector}'", hint=hint)


def _listing(names: Iterable[str], most: int = 20) -> str | None:
    names = sorted(names)
    if not names or len(names) > most:
        return None
    return f"there are: {', '.join(names)}"
