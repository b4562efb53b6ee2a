"""Targets: pick one and render its `{{ env.NAME }}` values when it is used.

Values are rendered in the bounded Jinja2 sandbox of `genesis.project.load.templating` that sees only
`env`; a missing variable is an error that names it, and `env` alone (which would print
the whole environment) is refused. Every environment value a setting uses, and every
value of a setting named like a secret, is registered with `errors.register_secret`, so
it is masked in any output, whatever the key it was rendered into.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2

from ..errors import GenesisError, did_you_mean, register_secret
from . import templating
from .model import Project, Target

SECRET_KEYS = {"password", "token", "credentials", "secret", "private_key"}


def get_target(project: Project, name: str | None = None) -> Target:
    """The target called `name`, else the project's `default_target`; an error listing the targets when unknown."""
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
    if isinstance(value, str) and ("{{" in value or "{%" in value):
        where = f"{key} of target '{target}'"
        try:
            value = templating.render(value, env=_Env(env, where))
        except jinja2.TemplateError as exc:  # the message quotes the template, never a value
            raise GenesisError(f"{where}: cannot render '{value}': {exc}") from None
        except (ArithmeticError, ValueError, TypeError) as exc:
            raise GenesisError(f"{where}: cannot render '{value}': {type(exc).__name__}") from None
    if any(word in key.rsplit(".", 1)[-1].lower() for word in SECRET_KEYS):
        register_secret(value)
    return value


def render_value(value: str, where: str, environ: Mapping[str, str] | None = None) -> str:
    """One `{{ env.NAME }}` string used outside a target (an alert channel's URL); `where`
    names it in the error when a variable is missing. Rendered like a target's settings."""
    if "{{" not in value:
        return value
    env = dict(os.environ if environ is None else environ)
    try:
        return templating.render(value, env=_Env(env, where))
    except jinja2.TemplateError as exc:  # the message quotes the template, never a value
        raise GenesisError(f"{where}: cannot render the value: {exc}") from None


class _Env:
    """`env.NAME` / `env['NAME']`: the variable's value (registered as a secret), or an
    error naming it. `env` alone, or iterated, is refused: it would print every variable."""

    def __init__(self, env: dict, where: str):
        self._env, self._where = env, where

    def __getattr__(self, name: str) -> str:
        if name.startswith("_"):
            raise AttributeError(name)
        if name not in self._env:
            raise GenesisError(f"environment variable {name} is not set (needed by {self._where})",
                               hint=f"export {name}=... before running genesis")
        register_secret(self._env[name])
        return self._env[name]

    __getitem__ = __getattr__

    def _refuse(self, *args: Any) -> Any:
        raise GenesisError(f"{self._where} uses `env` alone, which would print the whole environment",
                           hint="name one variable: {{ env.NAME }}")

    __str__ = __repr__ = __iter__ = __len__ = _refuse


def warehouse_dir(project: Project, settings: Mapping[str, Any]) -> Path:
    """The target's local warehouse folder (`warehouse:`, default .genesis/warehouse),
    under the project root unless absolute."""
    path = Path(str(settings.get("warehouse", ".genesis/warehouse")))
    return path if path.is_absolute() else Path(project.root) / path


def output_dir(project: Project, settings: Mapping[str, Any]) -> Path:
    """Where a `destinations: local` target writes `<tracker>.csv` (`output_dir:`, default out),
    under the project root unless absolute."""
    path = Path(str(settings.get("output_dir", "out")))
    return path if path.is_absolute() else Path(project.root) / path


def warehouse_location(project: Project, settings: Mapping[str, Any]):
    """The target's local warehouse: its directory and, with `catalog_uri:`, the SQL catalog
    (PostgreSQL) that holds its table list instead of DIR/catalog.db."""
    from ..engines.warehouse import Warehouse

    uri = settings.get("catalog_uri")
    return Warehouse(warehouse_dir(project, settings).resolve(), str(uri) if uri else None)


def sheets_access(target: Target, settings: Mapping[str, Any]) -> tuple[str, str]:
    """(credentials file, endpoint) of a target's Google Sheets settings, already rendered;
    a clear error when the credentials are missing. One place for refresh and --due."""
    sheets = settings.get("google_sheets") or {}
    if not sheets.get("credentials"):
        raise GenesisError(f"target '{target.name}' has no google_sheets.credentials")
    return str(sheets["credentials"]), str(sheets.get("endpoint") or "https://sheets.googleapis.com")


def airtable_access(target: Target, settings: Mapping[str, Any]) -> tuple[str, str]:
    """(token, endpoint) of a target's Airtable settings, already rendered; a clear error
    when the token is missing."""
    airtable = settings.get("airtable") or {}
    if not airtable.get("token"):
        raise GenesisError(f"target '{target.name}' has no airtable.token")
    return str(airtable["token"]), str(airtable.get("endpoint") or "https://api.airtable.com")
