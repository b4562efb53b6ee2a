"""Git plumbing for reviews: the project's definitions as of a git ref, read from git objects.

`genesis diff` compares the working tree with a base ref. The base is read straight from
git's object store into a temporary directory, so the working tree (and the index) are
never touched, and loaded with the same `load_project` as the working tree's.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import GenesisError
from ..project.load import CONFIG_FILE, KIND_DIRS, load_project
from ..project.model import Project

# What load_project reads: the config and the YAML files directly in each kind's folder.
_DEFINITION_FILE = re.compile(rf"^({re.escape(CONFIG_FILE)}|({'|'.join(KIND_DIRS.values())})/[^/]+\.y[^/]*ml)$")


class BaseLoadError(GenesisError):
    """The project does not load at the base ref (the diff still shows the working tree)."""


def _git(args: list[str], cwd: Path, stdin: bytes | None = None) -> bytes:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, input=stdin, capture_output=True, check=False)
    except FileNotFoundError:
        raise GenesisError("git is not installed (genesis diff reads the base ref from git)") from None
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        fatal = [line for line in lines if line.startswith(("fatal:", "error:"))]
        raise GenesisError(f"git {args[0]} failed: {(fatal or lines or [str(done.returncode)])[0]}")
    return done.stdout


def _repo_prefix(project_dir: Path) -> str:
    """The project's path inside its git repository ('' at the top, else 'a/b/')."""
    try:
        return _git(["rev-parse", "--show-prefix"], project_dir).decode().strip()
    except GenesisError as exc:
        raise GenesisError(f"{project_dir} is not inside a git repository (or git cannot read it)",
                           hint=exc.message) from None


def _check_ref(ref: str, project_dir: Path) -> None:
    try:
        _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], project_dir)
    except GenesisError:
        raise GenesisError(f"unknown git ref '{ref}'",
                           hint="fetch it first, e.g. `git fetch origin main` (in CI: checkout with "
                                "fetch-depth: 0)") from None


def extract_definitions(ref: str, project_dir: str | Path, dest: Path) -> bool:
    """Write the project's definition files as of `ref` under `dest`; False if it had none.

    Only genesis.yaml and the three definition folders are read, straight from git's
    object store (ls-tree + one cat-file batch), so the working tree stays untouched.
    """
    project_dir = Path(project_dir).resolve()
    prefix = _repo_prefix(project_dir)
    _check_ref(ref, project_dir)
    listing = _git(["ls-tree", "-r", "-z", "--full-tree", ref, "--", prefix or "."], project_dir)
    wanted: list[tuple[str, str]] = []
    for entry in filter(None, listing.decode().split("\0")):
        meta, path = entry.split("\t", 1)
        mode, kind, oid = meta.split()
        relative = path[len(prefix):]
        if kind == "blob" and mode != "120000" and _DEFINITION_FILE.match(relative):
            wanted.append((oid, relative))
    if not any(rel == CONFIG_FILE for _, rel in wanted):
        return False
    blobs = _git(["cat-file", "--batch"], project_dir, "\n".join(oid for oid, _ in wanted).encode() + b"\n")
    for (_, relative), content in zip(wanted, _split_batch(blobs)):
        target = dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    return True


def _split_batch(data: bytes) -> Iterator[bytes]:
    """The contents out of `git cat-file --batch` output ('<oid> <type> <size>\\n<data>\\n')."""
    position = 0
    while position < len(data):
        header_end = data.index(b"\n", position)
        size = int(data[position:header_end].split()[2])
        start = header_end + 1
        yield data[start:start + size]
        position = start + size + 1


@contextmanager
def project_at(ref: str, project_dir: str | Path = ".") -> Iterator[Project | None]:
    """The project as of git `ref` (None when the ref has no genesis.yaml there).

    Raises BaseLoadError, with the locations rewritten to `ref:path`, when it does not load.
    """
    with tempfile.TemporaryDirectory(prefix="genesis-base-") as tmp:
        root = Path(tmp)
        if not extract_definitions(ref, project_dir, root):
            yield None
            return
        try:
            project = load_project(root)
        except GenesisError as exc:
            prefix = _repo_prefix(Path(project_dir).resolve())
            text = exc.render().replace(str(root.resolve()) + "/", f"{ref}:{prefix}")
            raise BaseLoadError(f"the project does not load at {ref}:\n{text}") from None
        yield project
