"""`genesis init`: write a new project that works at once over the sample warehouse.

The templates live in genesis/authoring/scaffold/files/ (dot-files are stored without their dot, so
that packaging keeps them: `gitignore` -> `.gitignore`, `github/` -> `.github/`). The JSON
Schemas are copied into the project's schemas/ so that the `# yaml-language-server:
$schema=...` line of every YAML file works offline, in any editor, at the version of
Genesis that wrote it. Existing files are never overwritten: `init` on a project only
adds what is missing (delete schemas/ and rerun it to update the schemas).
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from ... import __version__
from ...errors import GenesisError

SCHEMAS = ("config", "datasource", "input", "tracker")


def scaffold(directory: Path) -> tuple[list[str], list[str]]:
    """Write the project's files into `directory`; returns (written, kept) relative paths."""
    if directory.exists() and not directory.is_dir():
        raise GenesisError(f"'{directory}' exists and is not a folder")
    name = project_name(directory)
    written, kept = [], []
    for relative, text in sorted(_files(name).items()):
        path = directory / relative
        if path.exists():
            kept.append(relative)
            continue
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise GenesisError(f"cannot write {path}: {exc.strerror or exc}") from None
        written.append(relative)
    return written, kept


def project_name(directory: Path) -> str:
    """The folder's name as a project name (`My Trackers` -> `my-trackers`)."""
    slug = re.sub(r"[^a-z0-9]+", "-", directory.resolve().name.lower()).strip("-")
    return slug or "trackers"


def _files(name: str) -> dict[str, str]:
    """Relative path in the new project -> its text."""
    root = resources.files("genesis.authoring.scaffold").joinpath("files")
    out = {}
    for relative, node in _walk(root, ""):
        text = node.read_text(encoding="utf-8")
        text = text.replace("__PROJECT_NAME__", name).replace("__GENESIS_VERSION__", __version__)
        out[_dotted(relative)] = text
    schemas = resources.files("genesis").joinpath("schemas")
    for kind in SCHEMAS:
        out[f"schemas/{kind}.schema.json"] = schemas.joinpath(f"{kind}.schema.json").read_text(encoding="utf-8")
    return out


def _walk(node, prefix: str):
    for child in sorted(node.iterdir(), key=lambda c: c.name):
        relative = f"{prefix}{child.name}"
        if child.is_dir():
            yield from _walk(child, relative + "/")
        elif not child.name.endswith((".pyc", ".py")):
            yield relative, child


def _dotted(relative: str) -> str:
    if relative == "gitignore":
        return ".gitignore"
    if relative.startswith("github/"):
        return "." + relative
    return relative
