"""Semantic checks across a loaded project: a registry of small rules (see registry.py).

`validate_project` runs every rule and compiles every input and tracker, so one run
reports every problem in the project (`genesis validate`); `check_tracker` runs the
tracker rules for one tracker before a refresh writes it. The rules themselves live in
`rules/`, one module a topic.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..compiler import CompiledQuery
from ..errors import ErrorCollector, GenesisError, ValidationError
from ..project.model import Project, Tracker
from .outcomes import input_outcome, sound_trackers, tracker_outcome
from .registry import Rule, all_rules
from .rules.destinations import FILE_EXTENSIONS
from .rules.trackers import cron_problem

__all__ = ["FILE_EXTENSIONS", "InputError", "Rule", "all_rules", "check_tracker", "cron_problem",
           "project_problems", "tracker_problems", "validate_project"]

Identity = tuple[str, str, "str | None"]


def validate_project(project: Project, errors: ErrorCollector | None = None) -> None:
    """Raise ValidationError listing every semantic problem; return quietly when valid.

    Definitions that depend on one that failed to load (project.broken) are skipped:
    their errors would only repeat the first one.
    """
    errors = errors if errors is not None else ErrorCollector()
    errors.extend(project_problems(project))
    errors.raise_if_any()


def project_problems(project: Project, rules: Iterable[Rule] | None = None) -> list[GenesisError]:
    """Every problem `rules` (all of them by default) find, each once, in this order: the
    data sources' structure; then, only when it is sound, the other data source checks,
    each tracker's problems, and each input's problems (naming the trackers that meet
    them again); the project-wide settings last."""
    rules = tuple(rules if rules is not None else all_rules())
    found: list[GenesisError] = [p for rule in rules if rule.gate for p in rule(project)]
    if not found and not project.broken.get("datasource"):
        checked = [rule for rule in rules if not rule.gate and not rule.always]
        for rule in checked:
            for ds in project.datasources.values():
                if rule.datasource:
                    found.extend(rule.datasource(project, ds))
            if rule.project:
                found.extend(rule.project(project))
        found.extend(_tracker_and_input_problems(project, checked))
    found.extend(p for rule in rules if rule.always for p in rule(project))
    return _once(found)


def _once(problems: list[GenesisError]) -> list[GenesisError]:
    """`problems` without repeats (two trackers over one input meet the same problem)."""
    seen: set[Identity] = set()
    kept = []
    for problem in problems:
        if _identity(problem) not in seen:
            seen.add(_identity(problem))
            kept.append(problem)
    return kept


def _tracker_and_input_problems(project: Project, rules: list[Rule]) -> list[GenesisError]:
    """Each tracker's problems, then each input's; an input's problem that its trackers
    meet again is one error naming them, not one per tracker."""
    input_errors: dict[Identity, GenesisError] = {}
    for name in project.inputs:
        for error in _input_problems(project, name, rules):
            input_errors.setdefault(_identity(error), error)
    errors: list[GenesisError] = []
    users: dict[Identity, set[str]] = {}
    for tracker in sound_trackers(project):
        for error in _tracker_check(project, tracker, rules)[1]:
            if _identity(error) in input_errors:
                users.setdefault(_identity(error), set()).add(tracker.name)
            else:
                errors.append(error)
    return errors + [_with_trackers(error, users.get(key, set())) for key, error in input_errors.items()]


def _input_problems(project: Project, name: str, rules: list[Rule]) -> list[GenesisError]:
    inp = project.inputs[name]
    compiled, problems = input_outcome(project, name)
    problems = list(problems)
    for rule in rules:
        if rule.input:
            problems.extend(rule.input(project, inp))
        if rule.compiled_input and compiled is not None:
            problems.extend(rule.compiled_input(project, inp, compiled))
    return problems


def _tracker_check(project: Project, tracker: Tracker, rules: Iterable[Rule],
                   params: Mapping[str, Any] | None = None) -> tuple[CompiledQuery | None, list[GenesisError]]:
    """The tracker compiled (or None) and every problem the tracker parts of `rules` find."""
    rules = list(rules)
    problems: list[GenesisError] = [p for rule in rules if rule.tracker for p in rule.tracker(project, tracker)]
    if tracker.input not in project.inputs:
        return None, problems  # said by the tracker.input rule
    compiled, compile_problems = tracker_outcome(project, tracker, params)
    problems.extend(compile_problems)
    if compiled is not None:
        for rule in rules:
            if rule.compiled_tracker:
                problems.extend(rule.compiled_tracker(project, tracker, compiled))
    return compiled, problems


class InputError(GenesisError):
    """A problem of an input, reported once with the trackers it breaks."""

    def __init__(self, error: GenesisError, trackers: list[str]):
        # Worded as `validate --catalog-check` words the trackers a problem breaks.
        affects = f"breaks tracker{'s' if len(trackers) > 1 else ''}: {', '.join(trackers)}" if trackers else None
        super().__init__(error.message, error.location, "; ".join(h for h in (error.hint, affects) if h) or None)
        self.trackers = trackers

    def to_json(self) -> dict:
        """The error's JSON form, with the trackers it breaks."""
        return {**super().to_json(), "trackers": self.trackers}


def _identity(error: GenesisError) -> Identity:
    return (str(error.location), error.message, error.hint)


def _with_trackers(error: GenesisError, trackers: set[str]) -> GenesisError:
    return InputError(error, sorted(trackers)) if trackers else error


def _refresh_rules() -> list[Rule]:
    return [rule for rule in all_rules() if not rule.gate and not rule.always and rule.refresh]


def check_tracker(project: Project, tracker: Tracker, params: Mapping[str, Any] | None = None) -> CompiledQuery:
    """Compile one tracker (with --param `params`, which win) and run the tracker rules on
    it before a refresh; raises ValidationError, returns the CompiledQuery."""
    compiled, problems = _tracker_check(project, tracker, _refresh_rules(), params)
    if problems:
        raise ValidationError(problems)
    assert compiled is not None  # no problem: the input exists and compiled
    return compiled


def tracker_problems(project: Project, tracker: Tracker) -> list[GenesisError]:
    """Every problem of one tracker that the tracker rules find (its input's included)."""
    rules = [rule for rule in all_rules() if not rule.gate and not rule.always]
    return _tracker_check(project, tracker, rules)[1]
