"""Durations as people write them in YAML: `90s`, `15m`, `2h`, `1d12h`, or plain seconds."""

from __future__ import annotations

import re

from ..errors import GenesisError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
MAX_SECONDS = 366 * 86400 * 10  # ten years: anything longer is a typo


def parse_duration(value: object) -> float:
    """Seconds in `value`; a GenesisError (with the accepted forms) when it is not a duration."""
    if isinstance(value, bool):
        raise _bad(value)
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value).strip().lower().replace(" ", "")
        if not text or _PART.sub("", text) or len(text) > 40:
            raise _bad(value)
        seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(text))
    if not 0 < seconds <= MAX_SECONDS:
        raise GenesisError(f"duration '{value}' must be more than 0 and at most 10 years")
    return seconds


def format_duration(seconds: float | None) -> str:
    """A short human form: 45s, 12m, 3h05m, 2d04h."""
    if seconds is None:
        return ""
    seconds = int(round(seconds))
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{sign}{days}d{hours:02d}h"
    if hours:
        return f"{sign}{hours}h{minutes:02d}m"
    if minutes:
        return f"{sign}{minutes}m"
    return f"{sign}{secs}s"


def _bad(value: object) -> GenesisError:
    return GenesisError(f"'{value}' is not a duration",
                        hint="write a number with a unit: 90s, 15m, 2h, 1d, 1d12h")
