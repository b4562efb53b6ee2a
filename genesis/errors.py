"""One error type that carries a source location and a hint.

Every problem a user can cause is a GenesisError; the CLI prints it as
`path:line:col: error: message` and never shows a traceback.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Iterable


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
        text = f"error: {self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return f"{self.location}: {text}" if self.location else text

    def to_json(self) -> dict:
        loc = self.location
        return {
            "path": loc.path if loc else None,
            "line": loc.line if loc else None,
            "col": loc.col if loc else None,
            "message": self.message,
            "hint": self.hint,
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
        return "\n".join(e.render() for e in self.errors)


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
        self.errors.append(GenesisError(message, location, hint))

    def extend(self, errors: Iterable[GenesisError]) -> None:
        self.errors.extend(errors)

    def raise_if_any(self) -> None:
        if self.errors:
            raise ValidationError(self.errors)
