"""Small wording helpers shared by every message, so counts read as English everywhere."""

from __future__ import annotations


def plural(count: int, word: str, words: str | None = None) -> str:
    """`1 input`, `2 inputs`, `0 data sources`; `words` for an irregular plural."""
    return f"{count:,} {word if count == 1 else (words or word + 's')}"
