"""The one retry and deadline policy of the Google Sheets and Airtable destinations.

- Transient failures (429, 5xx, a dropped connection, a timeout) are retried with
  exponential backoff and full jitter (tenacity's `wait_random_exponential`), so trackers
  that failed together do not retry in step; a server's Retry-After is honoured.
- An endpoint that cannot be reached at all (connection refused, a host name that does
  not resolve) is not transient: the refresh fails at once, naming the endpoint.
- Every refresh has a deadline, `deadline_seconds` of the target's `google_sheets` or
  `airtable` settings (default 300). No wait starts that would end after it, and no
  request may outlive it; when it cannot be met the refresh stops with a message naming
  that setting.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from tenacity import RetryCallState, wait_random_exponential

from ..errors import GenesisError

DEFAULT_DEADLINE_SECONDS = 300.0
T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter: attempt n waits up to min(cap, base * 2**n)."""

    base_seconds: float = 1.0
    max_seconds: float = 32.0

    def delay(self, attempt: int, retry_after: float = 0.0) -> float:
        """Seconds to wait after failed attempt `attempt` (0-based): random, up to min(cap, base * 2**attempt),
        and never less than `retry_after` (the server's Retry-After)."""
        wait = wait_random_exponential(multiplier=self.base_seconds, max=self.max_seconds)
        state = RetryCallState(cast(Any, None), None, (), {})  # the wait reads only the attempt number
        state.attempt_number = min(attempt, 60) + 1
        return max(wait(state), retry_after)


class Deadline:
    """When a refresh must be over; `setting` is the genesis.yaml key that sets it."""

    def __init__(self, seconds: float, setting: str):
        self.seconds, self.setting = float(seconds), setting
        self.at = time.monotonic() + self.seconds

    def remaining(self) -> float:
        """Seconds left before the deadline (0.0 once it has passed)."""
        return max(0.0, self.at - time.monotonic())

    def allows(self, wait: float) -> bool:
        """Would a wait of `wait` seconds still end before the deadline?"""
        return time.monotonic() + wait <= self.at

    def hint(self) -> str:
        """How to give the refresh more time, for error hints."""
        return f"raise {self.setting} (now {self.seconds:g} s) in the target to wait longer"

    def sleep(self, seconds: float, fail: Callable[[], BaseException]) -> None:
        """Wait `seconds` when the wait ends before the deadline; else raise `fail()` at
        once, so a refresh never starts a wait it cannot finish."""
        if not self.allows(seconds):
            raise fail()
        time.sleep(seconds)

    def timeout(self, cap: float, fail: Callable[[], BaseException]) -> float:
        """The timeout of the next request: at most `cap` and never past the deadline;
        raises `fail()` when the deadline has already passed."""
        remaining = self.remaining()
        if remaining <= 0:
            raise fail()
        return min(cap, remaining)


def retrying(send: Callable[[], tuple[T, BaseException | None]],
             delay: Callable[[T, BaseException | None, int], float | None], deadline: Deadline,
             give_up: Callable[[BaseException | None], BaseException],
             on_retry: Callable[[BaseException | None, float], None]) -> T:
    """The one retry loop of the live destinations. `send()` makes one attempt and returns
    (answer, error); `delay(answer, error, attempt)` says whether it is final (None) or how
    long to wait before sending again (a transient failure). A wait that would end after
    the deadline is never started: `give_up(error)` is raised instead. A final error is
    raised, a final answer returned; `on_retry(error, wait)` counts and logs each retry."""
    attempt = 0
    while True:
        answer, error = send()
        wait = delay(answer, error, attempt)
        if wait is None:
            if error is not None:
                raise error
            return answer
        if not deadline.allows(wait):
            raise give_up(error)
        on_retry(error, wait)
        time.sleep(wait)
        attempt += 1


def retry_after(error: BaseException) -> float:
    """The seconds a server's Retry-After header asks for (0 when it names none)."""
    response = getattr(error, "response", None)
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        return max(0.0, float(value)) if value else 0.0
    except ValueError:
        return 0.0


def deadline_setting(settings: Mapping[str, Any], section: str, target: str) -> float:
    """`<section>.deadline_seconds` of a target's rendered settings (default 300), or a
    clear error when it is not a number of seconds above 0."""
    value = (settings.get(section) or {}).get("deadline_seconds", DEFAULT_DEADLINE_SECONDS)
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = 0.0
    if not seconds > 0:
        raise GenesisError(f"{section}.deadline_seconds of target '{target}' must be a number of seconds "
                           f"above 0, not {value!r}")
    return seconds


def unreachable(error: BaseException) -> str | None:
    """'connection refused' or 'host not found' when `error` says the endpoint cannot be
    reached at all (retrying would not help), else None."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [error]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError):
            return "connection refused"
        if isinstance(current, socket.gaierror) or type(current).__name__ == "NameResolutionError":
            return "host not found"
        stack.extend([current.__cause__, current.__context__, getattr(current, "reason", None)])
        stack.extend(a for a in getattr(current, "args", ()) if isinstance(a, BaseException))
    return None


def unreachable_error(service: str, endpoint: str, reason: str, setting: str) -> GenesisError:
    """The error of an endpoint that cannot be reached: names it and the setting to check."""
    return GenesisError(f"cannot reach {service} at {endpoint}: {reason}",
                        hint=f"check {setting} and the network; nothing was written")
