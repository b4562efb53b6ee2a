"""What a validation rule is, and the one tuple of every rule `genesis validate` runs.

A rule is a small named check. It looks at one kind of definition (a data source, an
input, a tracker, or the project as a whole), or at the compiled query of an input or
tracker, and returns located problems. `rule(project)` runs it over the whole project;
`genesis.validate.validate_project` runs every rule of `RULES` in one pass, compiling
each input and tracker once for all of them.

Adding a check means writing one function in the topic module of `rules/` and listing it
in that module's `RULES`; `tests/test_validation_rules.py` refuses a rule that no bad
project case exercises.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..compiler import CompiledQuery
from ..errors import GenesisError
from ..project.model import DataSource, Input, Project, Tracker
from .outcomes import compiled_input, compiled_tracker, sound_trackers

Problems = Iterable[GenesisError]
DataSourceCheck = Callable[[Project, DataSource], Problems]
InputCheck = Callable[[Project, Input], Problems]
TrackerCheck = Callable[[Project, Tracker], Problems]
CompiledInputCheck = Callable[[Project, Input, CompiledQuery], Problems]
CompiledTrackerCheck = Callable[[Project, Tracker, CompiledQuery], Problems]
ProjectCheck = Callable[[Project], Problems]
AnyCheck = DataSourceCheck | InputCheck | TrackerCheck | CompiledInputCheck | CompiledTrackerCheck | ProjectCheck


@dataclass(frozen=True)
class Rule:
    """One named check, made of the parts it needs (each optional).

    - `datasource`, `input`, `tracker`: called once per definition of that kind;
    - `compiled_input`, `compiled_tracker`: called with the compiled query of an input or
      tracker that compiled (a query that did not compile already has its error);
    - `project`: called once.

    `gate`: a structural check of the data sources; when one finds a problem, the rules
    that read inputs and trackers are skipped, since every input over that data source
    would only repeat it. `always`: runs even then (it reads neither inputs nor trackers).
    `refresh`: its tracker parts also run before a refresh writes (`check_tracker`); False
    for a check whose problem does not change what is written.
    """

    name: str
    datasource: DataSourceCheck | None = None
    input: InputCheck | None = None
    tracker: TrackerCheck | None = None
    compiled_input: CompiledInputCheck | None = None
    compiled_tracker: CompiledTrackerCheck | None = None
    project: ProjectCheck | None = None
    gate: bool = False
    always: bool = False
    refresh: bool = True

    def __call__(self, project: Project) -> list[GenesisError]:
        """Every problem this rule finds in `project` (rule(project) -> problems)."""
        problems: list[GenesisError] = []
        for ds in project.datasources.values():
            if self.datasource:
                problems.extend(self.datasource(project, ds))
        for inp in project.inputs.values():
            if self.input:
                problems.extend(self.input(project, inp))
            if self.compiled_input:
                compiled = compiled_input(project, inp.name)
                if compiled is not None:
                    problems.extend(self.compiled_input(project, inp, compiled))
        for tracker in sound_trackers(project):
            if self.tracker:
                problems.extend(self.tracker(project, tracker))
            if self.compiled_tracker:
                compiled = compiled_tracker(project, tracker)
                if compiled is not None:
                    problems.extend(self.compiled_tracker(project, tracker, compiled))
        if self.project:
            problems.extend(self.project(project))
        return problems

    @property
    def doc(self) -> str:
        """The first line of the docstring of the rule's first part: what it checks."""
        for part in (self.datasource, self.input, self.tracker, self.compiled_input, self.compiled_tracker,
                     self.project):
            if part is not None and part.__doc__:
                return part.__doc__.strip().splitlines()[0]
        return self.name


def all_rules() -> tuple[Rule, ...]:
    """Every rule, in the order validate reports them (data sources, inputs, trackers,
    destinations, formats, configuration); imported here so that the topic modules may
    import this one."""
    from .rules import config, datasources, destinations, formats, trackers, types

    return (datasources.RULES + types.RULES + trackers.RULES + destinations.RULES
            + formats.RULES + config.RULES)
