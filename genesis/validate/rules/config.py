"""genesis.yaml: the `alerts:` and `history:` settings."""

from __future__ import annotations

from ...errors import GenesisError
from ...project.model import Project
from ..registry import Rule


def alerts_and_history(project: Project) -> list[GenesisError]:
    """`alerts:` and `history:` in genesis.yaml name known channels and valid durations."""
    from ...monitoring.alerts import config_problems

    return config_problems(project)


RULES = (
    Rule("config.alerts", project=alerts_and_history, always=True),
)
