"""One error type that carries a source location and a hint.

Every problem a user can cause is a GenesisError; the CLI prints it as
`path:line:col: error: message` and never shows a traceback.

Secrets are redacted by value, not by name: every value a target's settings took from the
environment, and the secret fields of a credentials file, are registered with
`register_secret`, and `redact` replaces each of them by `***` in any text. Rendering an
error (text or JSON), the CLI's internal-error and GENESIS_DEBUG output and its log
handler all pass through `redact`, so a secret that reached a message by any route
(an endpoint echoing a token, a password in a URL, a value in a key not named like a
secret) is masked before it is printed.
"""

from __future__ import annotations

import difflib
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TextIO

MIN_SECRET_CHARS = 6  # shorter values ("443", "us") would mask ordinary text
_SECRETS: set[str] = set()
_SECRETS_LOCK = threading.Lock()


def register_secret(value: Any) -> None:
    """Remember `value` (and each line of a multi-line one, e.g. a PEM key) as a secret."""
    if not isinstance(value, str):
        return
    parts = [value] + [line.strip() for line in value.splitlines()]
    with _SECRETS_LOCK:
        _SECRETS.update(p for p in parts if len(p) >= MIN_SECRET_CHARS and "-----" not in p)


def redact(text: Any) -> Any:
    """`text` with every registered secret replaced by ***; non-text is returned as is."""
    if not isinstance(text, str) or not _SECRETS:
        return text
    with _SECRETS_LOCK:
        secrets = sorted(_SECRETS, key=len, reverse=True)  # longest first: a key before its lines
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, "***")
    return text


class _RedactedStderr(logging.StreamHandler):
    """Log records on the current sys.stderr (as Python's last-resort handler prints them),
    secrets masked."""

    def __init__(self, level: int):
        super().__init__()
        self.setLevel(level)
        self.addFilter(RedactingFilter())

    @property
    def stream(self) -> TextIO:
        """The current sys.stderr, looked up at each record (it may be replaced after this handler is made)."""
        import sys

        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        """Ignored: the handler always writes to the current sys.stderr."""


def install_log_redaction(debug: bool) -> None:
    """Route log records through one redacting stderr handler (DEBUG with GENESIS_DEBUG)."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _RedactedStderr)]:
        root.removeHandler(handler)
    root.addHandler(_RedactedStderr(logging.DEBUG if debug else logging.WARNING))
    if debug:
        root.setLevel(logging.DEBUG)


class RedactingFilter(logging.Filter):
    """A logging filter that masks registered secrets in every record it passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask registered secrets in the message and traceback (rendered to text here); never drops the record."""
        message = record.getMessage()
        record.msg, record.args = redact(message), None
        if record.exc_info:
            import traceback

            record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)))
            record.exc_info = None
        return True


@dataclass(frozen=True, order=True)
class Location:
    """A place in a file; line and column are 1-based, as editors show them."""

    path: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        if self.line:
            return f"{self.path}:{self.line}:{self.col}"
        return self.path


class GenesisError(Exception):
    """A problem the user can act on, optionally located in a file."""

    def __init__(self, message: str, location: Location | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.location = location
        self.hint = hint

    def render(self) -> str:
        """`path:line:col: error: message (hint)`, as the CLI prints it, secrets masked."""
        text = f"error: {self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return redact(f"{self.location}: {text}" if self.location else text)

    def to_json(self) -> dict:
        """The error as `--format json` reports it (location parts None when unlocated), secrets masked."""
        loc = self.location
        return {
            "path": loc.path if loc else None,
            "line": loc.line if loc else None,
            "col": loc.col if loc else None,
            "message": redact(self.message),
            "hint": redact(self.hint),
        }

    def __str__(self) -> str:
        return self.render()


class ValidationError(GenesisError):
    """Several located problems found in one pass over a project."""

    def __init__(self, errors: Iterable[GenesisError]):
        self.errors = sorted(errors, key=_sort_key)
        count = len(self.errors)
        super().__init__(f"{count} error" if count == 1 else f"{count} errors")

    def render(self) -> str:
        """Every error on its own line, in file and line order."""
        return "\n".join(e.render() for e in self.errors)  # each one redacted


def _sort_key(error: GenesisError):
    loc = error.location or Location("")
    return (loc.path, loc.line, loc.col, error.message)


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A 'did you mean' hint naming the closest candidate, if any is close."""
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"did you mean '{matches[0]}'?" if matches else None


class ErrorCollector:
    """Gathers every problem of a pass so that one run reports them all."""

    def __init__(self) -> None:
        self.errors: list[GenesisError] = []

    def add(self, message: str, location: Location | None = None, hint: str | None = None) -> None:
        """Record one problem; the pass goes on, so that the others are found too."""
        self.errors.append(GenesisError(message, location, hint))

    def extend(self, errors: Iterable[GenesisError]) -> None:
        """Record problems already raised or built elsewhere (a file that failed to load, a pass's findings)."""
        self.errors.extend(errors)

    def raise_if_any(self) -> None:
        """Raise one ValidationError listing every recorded problem; nothing when there are none."""
        if self.errors:
            raise ValidationError(self.errors)
