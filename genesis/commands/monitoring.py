"""What `genesis status` prints: the run history of a target, summarised per tracker."""

from __future__ import annotations

import json

from ..errors import GenesisError
from ..monitoring.history import history_enabled, open_history
from ..monitoring.status import render_text, tracker_statuses
from ..project.config import get_target, render_settings
from ..project.model import Project
from ..run.refresh import select_trackers


def status_command(project: Project, names, target: str | None, fmt: str) -> str:
    """The `genesis status` text or JSON: the run history on `target` of the named trackers (default: all),
    one summary per tracker. Raises GenesisError, with a hint, when the target keeps no run history."""
    chosen = get_target(project, target)
    if not history_enabled(project, chosen):
        raise GenesisError(f"target '{chosen.name}' keeps no run history",
                           hint="set history.table (a Trino target) or remove history.enabled: false in genesis.yaml")
    trackers = select_trackers(project, names, True, False)
    import pyarrow.compute as pc

    history = open_history(project, chosen, render_settings(chosen)).read()
    history = history.filter(pc.equal(history["target"], chosen.name))
    statuses = tracker_statuses(project, history, [t.name for t in trackers])
    if fmt == "json":
        return json.dumps({"target": chosen.name, "trackers": [s.to_json() for s in statuses]}, indent=2,
                          default=str)
    return render_text(statuses)
