"""Engines run compiled SQL: DuckDB embedded (the default) or a Trino cluster."""

from __future__ import annotations

from ..errors import GenesisError
from ..project.config import get_target, render_settings, warehouse_location
from ..project.model import Project
from .base import Engine, EngineError, conform

__all__ = ["Engine", "EngineError", "conform", "open_engine"]


def open_engine(project: Project, target_name: str | None = None) -> Engine:
    """The engine of a target, with its settings rendered from the environment."""
    target = get_target(project, target_name)
    settings = render_settings(target)
    if target.engine == "duckdb":
        from .duckdb import DuckDBEngine

        return DuckDBEngine(warehouse_location(project, settings))
    if target.engine == "trino":
        from .trino import TrinoEngine

        if "trino" not in settings:
            raise GenesisError(f"target '{target.name}' uses engine trino but has no `trino:` settings")
        return TrinoEngine(settings["trino"])
    raise GenesisError(f"target '{target.name}' has unknown engine '{target.engine}'")
