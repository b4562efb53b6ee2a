"""`genesis impact`: which inputs and trackers use a data source, a field or measure, or a join.

    impact = find_impact(project, "movie.title")         # ImpactReport: inputs and trackers

Nothing is resolved here: each input is compiled once (remembered per project) and the
compiler's record says what it reads (`CompiledQuery.references`, which already holds what a
use implies: a join's key fields, a measure's field) and which part of the input reads it
(`CompiledQuery.uses`). The HTML catalog (docs.py) reads the same record through `used_names`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..compiler import CompiledQuery, compile_input
from ..compiler.query_plan import ReferenceUse
from ..destinations.kinds import describe_destination
from ..errors import GenesisError, did_you_mean
from ..project.model import Input, Project, Tracker

PLAN_ONLY = "the query plan (keys and grain)"  # a reference no part names: keys, grains


@dataclass
class ImpactReport:
    """What uses `ref`: each input with where it uses it, each tracker of those inputs."""

    ref: str
    kind: str
    inputs: list[dict[str, Any]]  # {"name", "uses": [...], "via": [...]}
    trackers: list[dict[str, Any]]  # {"name", "input", "owner", "schedule", "destination"}
    errors: list[str] = field(default_factory=list)  # inputs that did not compile

    def to_json(self) -> dict[str, Any]:
        """The report as `genesis impact --format json` prints it."""
        return {"ref": self.ref, "kind": self.kind, "inputs": self.inputs, "trackers": self.trackers,
                "errors": self.errors}


def find_impact(project: Project, ref: str) -> ImpactReport:
    """The inputs and trackers that use a data source, a field/measure or a join."""
    kind, ds, key = parse_impact_ref(project, ref)
    inputs, errors = [], []
    for name in sorted(project.inputs):
        try:
            compiled = compile_input(project, name)  # remembered per project
        except GenesisError as exc:
            errors.append(f"input '{name}': {exc.render()}")
            continue
        uses = _matching(compiled, kind, ds, key)
        if uses:
            inputs.append({"name": name, "uses": sorted(public_reference(u) for u in uses),
                           "via": _via(compiled, uses)})
    # Parameter values are literals: a tracker uses exactly the references of its input.
    used_inputs = {i["name"] for i in inputs}
    trackers = [_tracker_summary(t) for t in sorted(project.trackers.values(), key=lambda t: t.name)
                if t.input in used_inputs]
    return ImpactReport(ref, kind, inputs, trackers, errors)


def reference_candidates(project: Project) -> dict[str, str]:
    """Every name `impact` accepts -> its kind (datasource, field, measure, join, segment)."""
    out = {}
    for ds in project.datasources.values():
        out[ds.name] = "datasource"
        out.update({f"{ds.name}.{f}": "field" for f in ds.fields})
        out.update({f"{ds.name}.{m}": "measure" for m in ds.measures})
        out.update({f"{ds.name}.{j}": "join" for j in ds.joins})
        out.update({f"{ds.name}.{s}": "segment" for s in ds.segments})
    return out


def parse_impact_ref(project: Project, ref: str) -> tuple[str, str, str]:
    """(kind, datasource, reference key) for `movie`, `movie.title` or `movie.cast`."""
    text = ref.strip().replace(".join:", ".")
    candidates = reference_candidates(project)
    kind = candidates.get(text)
    if kind is None:
        hint = did_you_mean(text, candidates)
        if hint is None and "." in text and text.split(".")[0] not in project.datasources:
            hint = did_you_mean(text.split(".")[0], project.datasources)
        raise GenesisError(f"'{ref}' is not a data source, field, measure or join",
                           hint=hint or "write a data source (movie), a field (movie.title) or a join (movie.cast)")
    ds = text.split(".")[0]
    if kind == "join":
        return kind, ds, f"{ds}.join:{text.split('.', 1)[1]}"
    return kind, ds, text


def used_names(compiled: CompiledQuery) -> frozenset[str]:
    """Every reference key and data source name a compiled query reads (docs' "used by")."""
    return compiled.references | compiled.datasources


def public_reference(key: str) -> str:
    """The name people write for an internal reference key: `movie.join:cast` -> `movie.cast`."""
    return key.replace(".join:", ".", 1)


def input_usage(compiled: CompiledQuery) -> dict[str, set[str]]:
    """reference key -> the places of the input that use it ("column 'Title'", "filter 1", ...).

    Read from the compiler's record; join keys (`ds.join:name`) and the key fields they join
    on are credited to "join path of" the places whose path goes through them.
    """
    usage: dict[str, set[str]] = {}
    for use in compiled.uses:
        where = input_part_name(compiled.input, use)
        usage.setdefault(use.reference, set()).add(f"join path of {where}" if use.via_join else where)
    return usage


def input_part_name(inp: Input, use: ReferenceUse) -> str:
    """How `impact` names the part of `inp` a use comes from: a column, a filter, the sort."""
    section, index = use.part
    if section == "fields":
        column = inp.fields[index]
        return f"column '{column.name}'" if column.field else f"computed column '{column.name}'"
    if section == "filters":
        return f"filter {index + 1}"
    return "sort"


def _matching(compiled: CompiledQuery, kind: str, ds: str, key: str) -> set[str]:
    """The references of `compiled` that the impact ref names (a data source: all of its own)."""
    refs = compiled.references
    if kind == "datasource":
        return {r for r in refs if r.split(".", 1)[0] == ds} or ({ds} if ds in compiled.datasources else set())
    return {key} & refs


def _via(compiled: CompiledQuery, uses: set[str]) -> list[str]:
    """Where in the input each used reference appears: a column, a filter, the sort."""
    usage = input_usage(compiled)
    found = sorted({where for ref in uses for where in usage.get(ref, ())})
    return found or [PLAN_ONLY]


def _tracker_summary(tracker: Tracker) -> dict[str, Any]:
    return {"name": tracker.name, "input": tracker.input, "owner": tracker.owner,
            "schedule": tracker.schedule, "destination": describe_destination(tracker.destination)}
