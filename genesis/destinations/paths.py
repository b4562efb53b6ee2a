"""Where a file destination may write.

A tracker's `path` comes from a pull request, and refreshes often run with more rights
than its author (a CI runner, a cron job as root). So a file destination stays inside the
project, or inside the `output_root` that genesis.yaml names (relative paths are then
resolved against it). Refused at validate time, with the destination's location:
- absolute paths (`/srv/x.csv`, `C:\\x.csv`) and `..` that leaves the root;
- `~` (Genesis does not expand it: it would create a folder named `~`);
- device and kernel paths (`/dev/...`, `/proc/...`, `/sys/...`), even when allowed.
A symlink inside the root that points outside it is refused at write time.
A tracker that must write elsewhere says so explicitly with
`destination: {type: file, path: ..., allow_outside_project: true}`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from ..errors import GenesisError, Location
from .kinds import FileDestination, destination_of

_SYSTEM = ("/dev", "/proc", "/sys")


def output_root(project_root: str | Path, configured: str | None) -> Path:
    """The folder relative file paths are resolved against (the project by default)."""
    root = Path(project_root)
    if configured:
        path = Path(os.path.expanduser(str(configured)))  # written by the project's owner
        root = path if path.is_absolute() else root / path
    return Path(os.path.abspath(root))


def file_path(root: Path, destination: FileDestination | Mapping[str, Any], where: Location | None = None) -> Path:
    """The absolute path a file destination writes to, or a located GenesisError."""
    typed = destination_of(destination, where)
    if not isinstance(typed, FileDestination):
        raise GenesisError(f"a {typed.kind} destination has no file path", where)
    text, allowed = typed.path, typed.allow_outside_project
    if text.startswith("~"):
        raise GenesisError(f"file destination '{text}' starts with '~', which Genesis does not expand", where,
                           hint="write the path relative to the project (or an absolute path with "
                                "allow_outside_project: true)")
    absolute = PurePosixPath(text).is_absolute() or PureWindowsPath(text).is_absolute() or bool(PureWindowsPath(text).drive)
    if absolute and not allowed:
        raise GenesisError(f"file destination '{text}' is an absolute path; files stay inside the project", where,
                           hint=_HINT)
    path = Path(os.path.normpath(text if absolute else os.path.join(root, text)))
    if not allowed and not _inside(path, root):
        raise GenesisError(f"file destination '{text}' leaves the project ('..')", where, hint=_HINT)
    if _is_system(path):
        raise GenesisError(f"file destination '{text}' is a device or system path", where,
                           hint="write to a file in the project")
    return path


def check_resolved(path: Path, root: Path, destination: FileDestination) -> None:
    """At write time: symlinks may not lead a path out of the root, or onto a device."""
    real = Path(os.path.realpath(path))
    if _is_system(real):
        raise GenesisError(f"file destination '{destination.path}' resolves to a device or system path")
    if not destination.allow_outside_project and not _inside(real, Path(os.path.realpath(root))):
        raise GenesisError(f"file destination '{destination.path}' resolves outside the project "
                           f"(through a symbolic link)", hint=_HINT)


_HINT = ("use a path relative to the project (or to output_root in genesis.yaml), "
         "or set allow_outside_project: true on the destination")


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return path != root


def _is_system(path: Path) -> bool:
    text = path.as_posix()
    return any(text == p or text.startswith(p + "/") for p in _SYSTEM)


def tracker_file_path(project: Any, tracker: Any) -> Path:
    """A tracker's file destination path, inside the project or output_root."""
    root = output_root(project.root, project.config.output_root)
    return file_path(root, tracker.destination, tracker.locs.get("destination", tracker.loc))
