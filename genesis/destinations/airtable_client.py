"""Airtable access: one per-base rate limiter per process, and every call of a refresh.

Every HTTP request goes through `_GovernedAdapter` (the requests library's documented
extension point): it waits for the base's rate limiter (Airtable allows 5 requests per
second per base; a 6th earns a 30 s ban of the whole base), bounds the request's timeout
by the refresh's deadline, retries 5xx and lost connections with the shared
`retry.Backoff`, makes every tracker on a base wait out a 429's penalty, and counts the
calls in the refresh's `SyncReport`. `AirtableTable` is the table's reads, writes and
schema through pyairtable; `api_error` the message of a failed call, never the token.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import requests
from pyairtable import Api
from requests.adapters import HTTPAdapter

from ..errors import GenesisError, redact
from .airtable_fields import Column
from .report import SyncReport
from .retry import Backoff, Deadline, retrying, unreachable

log = logging.getLogger("genesis.destinations.airtable")

DEFAULT_ENDPOINT = "https://api.airtable.com"
PAGE_SIZE = 100  # Airtable's maximum page size
BATCH_SIZE = 10  # Airtable's maximum records per write




@dataclass(frozen=True)
class Settings:
    """Call pacing; tests and the bench swap in faster values (`airtable.SETTINGS = ...`)."""

    requests_per_second: int = 5  # per base, across every tracker of the process
    rate_window_seconds: float = 1.0
    penalty_seconds: float = 30.0  # what Airtable imposes after a 429
    backoff_seconds: float = 0.5  # first 5xx retry waits about this long, then doubles
    max_backoff_seconds: float = 8.0
    max_retries: int = 5  # per request, for 5xx and connection errors
    request_timeout_seconds: float = 60.0



# ---------------------------------------------------------------------------------------
# Rate limiting: one limiter per process, keyed by base id
# ---------------------------------------------------------------------------------------


class DeadlineExceeded(GenesisError):
    """A wait or a request would end after the refresh's deadline."""


class _Slot:
    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done: float | None = None  # monotonic time the answer came back


class BaseRateLimiter:
    """At most N requests per window per base, counted the way the server counts them.

    A token bucket with a burst of N would let N+1 requests land inside one second. Here a
    request may start only when fewer than N requests are in flight or finished within the
    last window; a request's time is when its answer came back, which is after the server
    saw it, so the server never counts more than N in any window, whatever the latency.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._slots: dict[str, list[_Slot]] = {}
        self._blocked_until: dict[str, float] = {}

    def acquire(self, base: str, deadline: float, settings: Settings) -> _Slot:
        """A slot to send one request to `base` now, waiting for one no later than
        `deadline` (monotonic); DeadlineExceeded when none frees in time."""
        with self._cond:
            while True:
                now = time.monotonic()
                wait = self._wait_needed(base, now, settings)
                if wait == 0:
                    slot = _Slot()
                    self._slots.setdefault(base, []).append(slot)
                    return slot
                if now + (wait or 0) > deadline:
                    raise DeadlineExceeded("it ran out of time waiting for Airtable's rate limit")
                # wait None: every slot is in flight; `release` wakes us.
                self._cond.wait(timeout=wait if wait is not None else deadline - now)

    def _wait_needed(self, base: str, now: float, settings: Settings) -> float | None:
        """0: go now; seconds until a slot frees; None: until a request in flight ends."""
        blocked = self._blocked_until.get(base, 0.0) - now
        if blocked > 0:
            return blocked
        window = settings.rate_window_seconds
        slots = [s for s in self._slots.get(base, []) if s.done is None or s.done > now - window]
        self._slots[base] = slots
        if len(slots) < settings.requests_per_second:
            return 0
        finished = [s.done for s in slots if s.done is not None]
        return (min(finished) + window - now) if finished else None

    def release(self, slot: _Slot) -> None:
        """The request's answer came back: its slot counts from now for one window."""
        with self._cond:
            slot.done = time.monotonic()
            self._cond.notify_all()

    def penalize(self, base: str, seconds: float) -> None:
        """A 429: nobody in this process talks to the base until the penalty is over."""
        with self._cond:
            until = time.monotonic() + seconds
            self._blocked_until[base] = max(self._blocked_until.get(base, 0.0), until)
            self._cond.notify_all()


LIMITER = BaseRateLimiter()


# ---------------------------------------------------------------------------------------
# Transport: every HTTP request of a refresh goes through here
# ---------------------------------------------------------------------------------------


class _GovernedAdapter(HTTPAdapter):
    """Paces, retries and counts requests; the requests library's documented extension point."""

    def __init__(self, deadline: Deadline, report: SyncReport, settings: Settings):
        super().__init__(max_retries=0)
        self.deadline, self.report, self.settings = deadline, report, settings

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        """Send `request` through the base's rate limiter, retrying 429/5xx/lost
        connections within the deadline; the answer, or the last error."""
        base, kind = _classify(request.method or "GET", request.url or "")

        def once() -> tuple[requests.Response | None, BaseException | None]:
            if self.deadline.remaining() <= 0:
                raise DeadlineExceeded("it ran out of time")
            return self._send_once(request, base, kind, kwargs)

        response = retrying(once, lambda answer, error, attempt: self._retry_delay(answer, error, base, attempt),
                            self.deadline, _gave_up, self._retried)
        assert response is not None  # an attempt without an answer ends with its error
        return response

    def _retried(self, error: BaseException | None, wait: float) -> None:
        self.report.retries += 1

    def _send_once(self, request, base, kind, kwargs):
        slot = LIMITER.acquire(base, self.deadline.at, self.settings) if base else None
        setattr(self.report, f"{kind}_calls", getattr(self.report, f"{kind}_calls") + 1)
        remaining = self.deadline.remaining()
        kwargs["timeout"] = max(0.1, min(self.settings.request_timeout_seconds, remaining))
        try:
            response = super().send(request, **kwargs)
            _ = response.content  # read the body before the slot's time is taken
            return response, None
        except (requests.ConnectionError, requests.Timeout) as err:
            return None, err
        finally:
            if slot is not None:
                LIMITER.release(slot)
            log.debug("airtable %s %s", request.method, _path(request.url))

    def _retry_delay(self, response, error, base, attempt) -> float | None:
        """Seconds to wait before sending again, or None to give the answer back."""
        if response is not None and response.status_code == 429:
            if base:
                LIMITER.penalize(base, self.settings.penalty_seconds)
            if not self.deadline.allows(self.settings.penalty_seconds):
                raise DeadlineExceeded(f"Airtable's rate-limit penalty of {self.settings.penalty_seconds:g} s "
                                       "would end after the deadline")
            log.warning("Airtable rate limit hit on base %s; waiting %.1f s", base, self.settings.penalty_seconds)
            return 0.0  # the limiter itself holds the next request until the penalty ends
        if error is not None and unreachable(error):
            return None  # connection refused, unknown host: retrying cannot help
        transient = error is not None or (response is not None and response.status_code >= 500)
        if not transient or attempt >= self.settings.max_retries:
            return None
        return Backoff(self.settings.backoff_seconds, self.settings.max_backoff_seconds).delay(attempt)


def _gave_up(error: BaseException | None) -> DeadlineExceeded:
    return DeadlineExceeded("the Airtable refresh ran out of time retrying a failed request")


def _classify(method: str, url: str) -> tuple[str | None, str]:
    """(base id, kind) of an Airtable API URL: kind is read, write or meta."""
    parts = [urllib.parse.unquote(p) for p in urllib.parse.urlsplit(url).path.split("/") if p]
    if "v0" in parts:
        parts = parts[parts.index("v0") + 1:]
    if parts[:2] == ["meta", "bases"] and len(parts) > 2:
        return parts[2], "meta"
    if not parts or parts[0] == "meta":
        return None, "meta"
    if parts[-1] == "listRecords" or method.upper() == "GET":
        return parts[0], "read"
    return parts[0], "write"


def _path(url: str | None) -> str:
    return urllib.parse.urlsplit(url or "").path


# ---------------------------------------------------------------------------------------
# The table: reads, writes and schema through pyairtable
# ---------------------------------------------------------------------------------------


class AirtableTable:
    """One table of a base, every call governed (paced, retried, bounded, counted in
    `report`); pyairtable's own retries are off so the two do not fight."""

    def __init__(self, base_id: str, name: str, token: str, endpoint: str, deadline: Deadline,
                 settings: Settings, report: SyncReport | None = None):
        self.base_id, self.name = base_id, name
        self.report = report or SyncReport(base_id, name, "", "")
        self.api = Api(token, endpoint_url=endpoint, retry_strategy=None)
        adapter = _GovernedAdapter(deadline, self.report, settings)
        self.api.session.mount("http://", adapter)
        self.api.session.mount("https://", adapter)
        self.table = self.api.table(base_id, name)
        self._schema: Any = None  # pyairtable's TableSchema, once read

    def records(self) -> list[dict] | None:
        """Every record (pages of 100, comment counts included), or None if no such table."""
        try:
            return [dict(r) for r in self.table.all(page_size=PAGE_SIZE, count_comments=True)]
        except requests.HTTPError as err:
            if status_of(err) == 404 and error_type(err) == "TABLE_NOT_FOUND":
                return None
            raise

    def forget_schema(self) -> None:
        """Read the schema again on the next `field_types` (a field may have changed)."""
        self._schema = None

    def field_types(self) -> dict[str, str]:
        """name -> Airtable type, from the base schema (one call, then cached)."""
        if self._schema is None:
            self._schema = self.table.schema(force=True)
        return {f.name: str(getattr(f.type, "value", f.type)) for f in self._schema.fields}

    def create_table(self, columns: Sequence[Column]) -> None:
        """Create the missing table with `columns` as its fields (the first is primary)."""
        specs = [_field_spec(c) for c in columns]
        self.table.base.create_table(self.name, specs)
        self.table = self.api.table(self.base_id, self.name)
        self._schema = None

    def create_field(self, column: Column) -> None:
        """Add one field of the column's type to the table."""
        self.field_types()  # field creation addresses the table by id
        self.table.create_field(column.name, column.type, options=dict(column.options or {}) or None)

    def upsert(self, batch: list[dict], key: Sequence[str]) -> None:
        """Update records by id, or by the `key` fields for new ones (a re-run finds them)."""
        self.table.batch_upsert(batch, key_fields=list(key))  # <= 10 records: one request

    def delete(self, ids: list[str]) -> None:
        """Delete records by id."""
        self.table.batch_delete(ids)  # <= 10 ids: one request


def _field_spec(column: Column) -> dict:
    spec: dict[str, Any] = {"name": column.name, "type": column.type}
    if column.options:
        spec["options"] = dict(column.options)
    return spec


def status_of(err: requests.HTTPError) -> int:
    """The HTTP status of a failed call (0 when there was no answer)."""
    return err.response.status_code if err.response is not None else 0


def _error_body(err: requests.HTTPError) -> Any:
    try:
        return err.response.json().get("error")  # type: ignore[union-attr]  # no answer: caught below
    except Exception:
        return None


def error_type(err: requests.HTTPError) -> str:
    """Airtable's error type (`TABLE_NOT_FOUND`, `UNKNOWN_FIELD_NAME`...) of a failed call."""
    body = _error_body(err)
    return str(body.get("type", "")) if isinstance(body, dict) else str(body or "")


def api_error(err: Exception, token: str, where: str) -> GenesisError:
    """A GenesisError for a failed call, naming the call and Airtable's reason, never the token."""
    if isinstance(err, requests.HTTPError):
        body = _error_body(err)
        reason = body.get("message", "") if isinstance(body, dict) else ""
        text = f"Airtable answered {status_of(err)} {error_type(err)}".rstrip()
        if reason:
            text += f": {reason}"
        hint = {401: "check the airtable token of the target",
                403: "check that the token may read and write this base",
                404: "check the tracker's base_id and table",
                422: "the table's fields do not match the result (type or name)",
                429: "the base stayed rate limited; run again later"}.get(status_of(err))
        if status_of(err) >= 500:
            hint = "Airtable kept failing; the table is consistent, run again to finish"
    elif unreachable(err):
        text, hint = f"cannot reach Airtable: {unreachable(err)}", "check airtable.endpoint and the network"
    else:
        text, hint = f"could not reach Airtable: {type(err).__name__}", "check airtable.endpoint"
    return GenesisError(redact(f"{where}: {text}"), hint=hint)  # the token is a registered secret
