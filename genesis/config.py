"""Targets: pick one and render its `{{ env.NAME }}` values when it is used.

Values are rendered in a sandboxed Jinja2 environment that sees only `env`; a missing
variable is an error that names it. Rendered settings may hold secrets: they are
never printed, and `redact` masks them wherever a setting must be shown.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from .errors import GenesisError, did_you_mean
from .model import Project, Target

_JINJA = SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)
SECRET_KEYS = {"password", "token", "credentials", "secret", "private_key"}


def get_target(project: Project, name: str | None = None) -> Target:
    chosen = name or project.config.default_target
    target = project.config.targets.get(chosen)
    if target is None:
        raise GenesisError(f"no target named '{chosen}' in {project.config.path}",
                           hint=did_you_mean(chosen, project.config.targets)
                           or f"targets: {', '.join(project.config.targets)}")
    return target


def render_settings(target: Target, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The target's settings with every `{{ env.NAME }}` replaced by its value."""
    env = dict(os.environ if environ is None else environ)
    return _render(target.settings, env, target.name, "")


def _render(value: Any, env: dict, target: str, key: str) -> Any:
    if isinstance(value, Mapping):
        return {k: _render(v, env, target, f"{key}.{k}" if key else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_render(v, env, target, key) for v in value]
    if isinstance(value, str) and "{{" in value:
        where = f"{key} of target '{target}'"
        try:
            return _JINJA.from_string(value).render(env=_Env(env, where))
        except jinja2.TemplateError as exc:
            raise GenesisError(f"{where}: cannot render '{value}': {exc}") from None
    return value


def render_value(value: str, where: str, environ: Mapping[str, str] | None = None) -> str:
    """One `{{ env.NAME }}` string used outside a target (an alert channel's URL); `where`
    names it in the error when a variable is missing."""
    if "{{" not in value:
        return value
    env = dict(os.environ if environ is None else environ)
    try:
        return _JINJA.from_string(value).render(env=_Env(env, where))
    except jinja2.TemplateError as exc:
        raise GenesisError(f"{where}: cannot render the value: {exc}") from None


class _Env(dict):
    """`env.NAME` that fails with the variable's name instead of rendering empty."""

    def __init__(self, env: dict, where: str):
        super().__init__(env)
        self.where = where

    def __getattr__(self, name: str) -> str:
        if name.startswith("__"):
            raise AttributeError(name)
        if name not in self:
            raise GenesisError(f"environment variable {name} is not set (needed by {self.where})",
                               hint=f"export {name}=... before running genesis")
        return self[name]

    def __getitem__(self, name: str) -> str:
        return self.__getattr__(name) if not dict.__contains__(self, name) else dict.__getitem__(self, name)


def redact(value: Any, key: str = "") -> Any:
    """A copy of settings safe to show: secret-looking values masked."""
    if isinstance(value, Mapping):
        return {k: redact(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, key) for v in value]
    if any(word in key.lower() for word in SECRET_KEYS) and value:
        return "***"
    return value


def warehouse_dir(project: Project, settings: Mapping[str, Any]) -> Path:
    path = Path(str(settings.get("warehouse", ".genesis/warehouse")))
    return path if path.is_absolute() else Path(project.root) / path


def output_dir(project: Project, settings: Mapping[str, Any]) -> Path:
    path = Path(str(settings.get("output_dir", "out")))
    return path if path.is_absolute() else Path(project.root) / path


def warehouse_location(project: Project, settings: Mapping[str, Any]):
    """The target's local warehouse: its directory and, with `catalog_uri:`, the SQL catalog
    (PostgreSQL) that holds its table list instead of DIR/catalog.db."""
    from .warehouse import Warehouse

    uri = settings.get("catalog_uri")
    return Warehouse(warehouse_dir(project, settings).resolve(), str(uri) if uri else None)
