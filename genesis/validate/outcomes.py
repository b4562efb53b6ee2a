"""Each input and tracker compiled once per validation, with its problems.

Several rules read the compiled query (its output columns and their types); compiling is
the costly part of `validate`, so the outcome of each compile (the query, or the located
problems that stopped it) is remembered on the project, which never changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ..compiler import CompiledQuery, compile_input, compile_tracker
from ..errors import GenesisError, ValidationError
from ..project.model import Project, Tracker
from .typecheck import quoted_parameters

Outcome = tuple["CompiledQuery | None", list[GenesisError]]


def attempt(action: Callable[[], Any]) -> tuple[Any, list[GenesisError]]:
    """Run `action`; its result and no problems, or None and the problems it raised."""
    try:
        return action(), []
    except ValidationError as exc:
        return None, list(exc.errors)
    except GenesisError as exc:
        return None, [exc]


def input_outcome(project: Project, name: str) -> Outcome:
    """Input `name` compiled (with its parameters' defaults), or the problems that stop it.

    A parameter written inside quotes is said plainly, in place of what the SQL parser
    makes of the quotes at the same place.
    """
    cache: dict[str, Outcome] = project.derived("validate_input_outcomes", dict)
    if name not in cache:
        compiled, problems = attempt(lambda: compile_input(project, name))
        quoted = quoted_parameters(project.inputs[name])
        if quoted:
            places = {str(error.location) for error in quoted}
            problems = quoted + [e for e in problems if str(e.location) not in places]
            compiled = None
        cache[name] = (compiled, problems)
    return cache[name]


def tracker_outcome(project: Project, tracker: Tracker, params: Mapping[str, Any] | None = None) -> Outcome:
    """The tracker's query compiled (with --param `params`, which win), or the problems
    that stop it; remembered when there are no `params`. A for_each tracker compiles with
    a sample value of its parameter (genesis.run.fan_out)."""
    if tracker.for_each is not None:
        from ..run.fan_out import sample_params

        params = {**sample_params(project, tracker.name), **(params or {})}
    if params:
        return attempt(lambda: compile_tracker(project, tracker.name, params))
    cache: dict[str, Outcome] = project.derived("validate_tracker_outcomes", dict)
    if tracker.name not in cache:
        cache[tracker.name] = attempt(lambda: compile_tracker(project, tracker.name))
    return cache[tracker.name]


def compiled_input(project: Project, name: str) -> CompiledQuery | None:
    """Input `name`'s compiled query, or None when it does not compile."""
    return input_outcome(project, name)[0]


def compiled_tracker(project: Project, tracker: Tracker) -> CompiledQuery | None:
    """The tracker's compiled query, or None when its input is unknown or does not compile."""
    if tracker.input not in project.inputs:
        return None
    return tracker_outcome(project, tracker)[0]


def sound_trackers(project: Project) -> Iterator[Tracker]:
    """The trackers worth checking, by name: not those whose input failed to load (its
    own error says it all)."""
    broken = project.broken.get("input", frozenset())
    return (t for t in sorted(project.trackers.values(), key=lambda t: t.name) if t.input not in broken)
