"""Output column names as sort items name them: exact, else case-insensitive, else a hint.

A sort item without a `.` can only be an output column name (references always have a
data source or join before the field), so a miss is reported as such, with the closest
output name, instead of as a reference that does not resolve.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import GenesisError, Location, did_you_mean


def output_name(text: str, names: Iterable[str], loc: Location | None, what: str) -> str | None:
    """The output column `text` names, or None when `text` is not a bare name.

    Names match exactly, else case-insensitively when that picks one column; raises a
    located error for a bare name that matches no column (or several, by case only).
    """
    names = list(names)
    if "." in text or not text.strip():
        return None
    if text in names:
        return text
    folded = [n for n in names if n.casefold() == text.casefold()]
    if len(folded) == 1:
        return folded[0]
    if not folded and any(c in text for c in "()+-*/,'"):
        return None  # an expression: the parser reports what is wrong with it
    if folded:
        raise GenesisError(f"{what} matches output columns {', '.join(repr(n) for n in folded)}, "
                           f"which differ only by case", loc, "write the name exactly as the column's label")
    by_fold = {n.casefold(): n for n in names}
    guess = did_you_mean(text.casefold(), by_fold)
    hint = (f"did you mean '{by_fold[guess.split(chr(39))[1]]}'?" if guess
            else f"output columns: {', '.join(names)}; or write a reference such as data_source.field")
    raise GenesisError(f"{what} is not an output column", loc, hint)
