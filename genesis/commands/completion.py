"""Shell completion of names (click's shell_complete callbacks): trackers, inputs, data
sources, targets and selectors, read from the project of --project or the current folder.

Completion runs on every Tab press: a project that does not load completes nothing, never
an error or a traceback in the user's shell.
"""

from __future__ import annotations

import click
from click.shell_completion import CompletionItem

DESTINATION_TYPES = ("google_sheets", "airtable", "file")


def complete_names(kinds: tuple[str, ...], selectors: bool = False):
    """A callback completing the names of these kinds; with `selectors`, also the selector
    methods (`owner:`) and, after one, its values (`owner:finance-ap`)."""

    def complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
        project = _project(ctx)
        if project is None:
            return []
        candidates = _names(project, kinds)
        if selectors:
            from ..run.selection import METHODS

            method, _, _ = incomplete.rpartition(":")
            if method in METHODS:
                candidates = [f"{method}:{value}" for value in _values(project, method)]
            else:
                candidates += [f"{m}:" for m in METHODS]
        return [CompletionItem(c) for c in candidates if c.startswith(incomplete)]

    return complete


def complete_targets(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Completes --target with the target names of genesis.yaml (none when the project does not load)."""
    project = _project(ctx)
    names = sorted(project.config.targets) if project is not None else []
    return [CompletionItem(n) for n in names if n.startswith(incomplete)]


def _project(ctx: click.Context):
    try:
        from ..project.load import load_project

        return load_project(ctx.params.get("project_dir") or ".")
    except Exception:  # noqa: BLE001 - completion must never print a traceback into a shell
        return None


def _names(project, kinds: tuple[str, ...]) -> list[str]:
    pools = {"tracker": project.trackers, "input": project.inputs, "datasource": project.datasources}
    return sorted({name for kind in kinds for name in pools[kind]})


def _values(project, method: str) -> list[str]:
    if method == "owner":
        return sorted({t.owner for t in project.trackers.values() if t.owner})
    if method == "destination":
        return list(DESTINATION_TYPES)
    return _names(project, (method,))
