"""Google Sheets access: credentials, the HTTP client, and every call of a refresh.

`SheetsApi` is the one way a refresh talks to the Sheets API. Each call is paced to the
service account's per-minute read and write quotas (process-wide, shared by every thread),
bounded by the refresh's deadline (`retry.Deadline`), retried on 429/5xx with the shared
`retry.Backoff` (Retry-After honoured), and turned into a message that names the service
account to share the spreadsheet with. A write whose outcome is unknown raises
`Ambiguous` (never re-sent blind: the caller reads again and re-plans); a fenced write
refused with 400 raises `Rejected` (see sheets_lease). Secrets never reach a message.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests
from gspread.exceptions import APIError
from gspread.http_client import HTTPClient
from gspread.urls import SPREADSHEET_BATCH_UPDATE_URL

from ..errors import GenesisError, register_secret
from . import sheets_lease as lease
from .report import SyncReport
from .retry import Backoff, Deadline, retry_after, retrying, unreachable, unreachable_error
from .sync import Plan

log = logging.getLogger("genesis.destinations.sheets")

GOOGLE_ENDPOINT = "https://sheets.googleapis.com"
SCOPES = ("https://www.googleapis.com/auth/spreadsheets",)


@dataclass
class RetryPolicy:
    """Backoff (the shared `retry.Backoff`) and pacing; tests shorten every interval."""

    base_seconds: float = 1.0
    max_seconds: float = 32.0
    writes_per_minute: int = 60  # Sheets' per-user write quota
    reads_per_minute: int = 60  # Sheets' per-user read quota
    window_seconds: float = 61.0  # a minute, plus a second for clock and network skew
    request_timeout: float = 120.0

    @property
    def backoff(self) -> Backoff:
        """The retry backoff these intervals give."""
        return Backoff(self.base_seconds, self.max_seconds)


def load_credentials(path: str, endpoint: str = GOOGLE_ENDPOINT) -> tuple[Any, str]:
    """(google-auth service-account credentials, client email) from a JSON key file.

    Errors name the file and what is wrong with it, never its content."""
    from google.oauth2.service_account import Credentials as Default

    credentials_class = Default if endpoint.rstrip("/") == GOOGLE_ENDPOINT else _proxied_credentials_class()
    try:
        with open(path, encoding="utf-8") as fh:
            info = json.load(fh)
    except FileNotFoundError as err:
        raise GenesisError(f"Google Sheets credentials file not found: {path}",
                           hint="google_sheets.credentials must name a service-account JSON file") from err
    except (OSError, ValueError) as err:
        raise GenesisError(f"Google Sheets credentials file {path} is not readable JSON",
                           hint="download the service account's JSON key again") from err
    if isinstance(info, dict):  # its secrets are masked in any output from now on
        for name, value in info.items():
            if name not in _PUBLIC_CREDENTIAL_FIELDS:
                register_secret(value)
    missing = [k for k in ("client_email", "private_key", "token_uri") if not info.get(k)] if isinstance(info, dict) else ["all"]
    if missing or info.get("type") != "service_account":
        raise GenesisError(f"{path} is not a service-account key file (missing: {', '.join(missing) or 'type'})",
                           hint="use the JSON key of a service account")
    try:
        creds = credentials_class.from_service_account_info(info, scopes=list(SCOPES))
    except Exception:  # the message could quote the key; say only what is wrong
        raise GenesisError(f"the private key in {path} cannot be loaded", hint="download the key again") from None
    return creds, info["client_email"]


# Fields of a service-account file that say who and where, not how to prove it: shown in
# hints ("share the spreadsheet with <client_email>"); every other field is a secret.
_PUBLIC_CREDENTIAL_FIELDS = frozenset({"type", "client_email", "project_id", "token_uri", "auth_uri",
                                       "auth_provider_x509_cert_url", "client_x509_cert_url", "universe_domain"})


def _proxied_credentials_class():
    from google.oauth2.service_account import Credentials

    class ProxiedCredentials(Credentials):
        """Service-account credentials for an overridden endpoint (a company proxy, a test
        server): google-auth would otherwise look up a "regional access boundary" at
        Google's IAM host after each token refresh, a call that bypasses the endpoint."""

        def _is_regional_access_boundary_lookup_required(self):
            return False

    return ProxiedCredentials


class EndpointHTTPClient(HTTPClient):
    """gspread's HTTP client, sending Sheets API calls to `endpoint` (a proxy, a test server)."""

    endpoint = GOOGLE_ENDPOINT

    def request(self, method, endpoint, *args, **kwargs):
        """gspread's request, with a Google Sheets URL rewritten to start at this client's endpoint."""
        if endpoint.startswith(GOOGLE_ENDPOINT) and self.endpoint != GOOGLE_ENDPOINT:
            endpoint = self.endpoint + endpoint[len(GOOGLE_ENDPOINT):]
        return super().request(method, endpoint, *args, **kwargs)


def http_client(creds: Any, endpoint: str, policy: RetryPolicy) -> EndpointHTTPClient:
    """gspread's client for `endpoint`, with the policy's request timeout."""
    client = EndpointHTTPClient(creds)
    client.endpoint = endpoint.rstrip("/")
    client.set_timeout((10, policy.request_timeout))
    return client


class Ambiguous(Exception):
    """A write failed in a way that leaves its outcome unknown."""

    def __init__(self, error: Exception, plan: Plan | None = None):
        super().__init__(str(error))
        self.error, self.plan = error, plan


class _MissingTab(Exception):
    pass


class Rejected(Exception):
    """A fenced write refused with 400: a lost compare-and-swap, or a bad request."""

    def __init__(self, error: APIError):
        super().__init__(str(error))
        self.error = error


class Conflict(Exception):
    """Another writer changed the tab after our read; read again and re-plan."""


class OutOfTime(GenesisError):
    """The refresh's deadline came before a request, a quota wait or a retry could start.
    While another refresh holds the tab, `sync_google_sheet` reports that instead."""


class Busy(Exception):
    """Another refresh is in the middle of a multi-request write of the tab."""

    def __init__(self, holder: lease.Holder):
        super().__init__(holder.run)
        self.holder = holder


# (endpoint, service account, read|write) -> recent call times: the per-user quotas
_CALLS: dict[tuple[str, str, str], deque] = {}
_CALLS_LOCK = threading.Lock()


class SheetsApi:
    """Calls with retries, pacing, the deadline and the user-facing error messages."""

    def __init__(self, http: EndpointHTTPClient, spreadsheet_id: str, worksheet: str, email: str,
                 deadline: Deadline, policy: RetryPolicy, report: SyncReport):
        self.http, self.spreadsheet_id, self.worksheet, self.email = http, spreadsheet_id, worksheet, email
        self.deadline, self.policy, self.report = deadline, policy, report

    def read(self, fn: Callable[[], Any]) -> Any:
        """One read call `fn`, paced, retried and bounded by the deadline."""
        return self._call("read", fn)

    def read_tab(self, fn: Callable[[], Any]) -> Any:
        """A read of the tab's range; None when the tab does not exist."""
        try:
            return self._call("read", fn, missing_tab=True)
        except _MissingTab:
            return None

    def write(self, body: bytes) -> Any:
        """One fenced batchUpdate; raises Rejected on a 400 (see sheets_lease)."""
        url = SPREADSHEET_BATCH_UPDATE_URL % self.spreadsheet_id
        result = self._call("write", lambda: self.http.request(
            "post", url, data=body, headers={"Content-Type": "application/json"}), fenced=True)
        self.report.payload_bytes += len(body)
        return result

    def lease_value(self) -> str | None:
        """The tab's lease value as it is now (one small read)."""
        doc = self.read(lambda: self.http.fetch_sheet_metadata(
            self.spreadsheet_id, params={"fields": lease.METADATA_FIELDS}))
        return lease.find(doc.get("developerMetadata"), self.worksheet)

    def wait_for_holder(self, holder: lease.Holder, attempt: int) -> None:
        """Sleep while another refresh holds the tab, or fail clearly at the deadline."""
        delay = self.policy.backoff.delay(attempt)
        if self.deadline.allows(delay):
            log.warning("sheets %s: another refresh holds tab '%s' until %s UTC; waiting %.2fs",
                        self.spreadsheet_id, self.worksheet, _clock(holder.until), delay)
            self.report.waited_seconds += delay
        self.deadline.sleep(delay, lambda: self.held_error(holder))

    def held_error(self, holder: lease.Holder) -> GenesisError:
        """The refresh ran out of time while another refresh held the tab: say so (not
        just "deadline"), because waiting for that refresh is what used the time."""
        return GenesisError(
            f"another refresh holds tab '{self.worksheet}' of spreadsheet '{self.spreadsheet_id}' "
            f"(it is writing in several steps; its hold ends by {_clock(holder.until)} UTC); nothing was written",
            hint=f"run again when it has finished, or {self.deadline.hint()}")

    def remaining(self) -> float:
        """Seconds left before the refresh's deadline."""
        return self.deadline.remaining()

    def _call(self, kind: str, fn: Callable[[], Any], missing_tab: bool = False, fenced: bool = False) -> Any:
        from google.auth import exceptions as auth_errors

        def once() -> tuple[Any, Exception | None]:
            self._pace(kind)
            self._bound_timeout()
            setattr(self.report, f"{kind}_calls", getattr(self.report, f"{kind}_calls") + 1)
            try:
                return fn(), None
            except APIError as err:
                if missing_tab and err.code == 400 and "Unable to parse range" in str((err.error or {}).get("message")):
                    raise _MissingTab() from None
                if fenced and err.code == 400:
                    raise Rejected(err) from None
                if not _retryable(err):
                    raise self.user_error(err) from None
                if kind == "write" and err.code != 429 and not _rate_limited(err):
                    raise Ambiguous(err) from None
                return None, err
            except (requests.ConnectionError, requests.Timeout, auth_errors.TransportError) as err:
                reason = unreachable(err)
                if reason:  # nothing was sent: not worth a retry, and not an ambiguous write
                    raise unreachable_error("Google Sheets", self.http.endpoint, reason, "google_sheets.endpoint") from None
                if kind == "write":
                    raise Ambiguous(err) from None
                return None, err
            except auth_errors.RefreshError as err:
                raise self._auth_error(err) from None

        return retrying(once, lambda _, error, attempt: None if error is None else self._wait(attempt, error),
                        self.deadline, self._gave_up, self._retried)

    def _bound_timeout(self) -> None:
        """No single request may outlive the refresh's deadline."""
        remaining = self.deadline.timeout(self.policy.request_timeout, lambda: OutOfTime(
            f"the refresh of spreadsheet '{self.spreadsheet_id}' reached its deadline",
            hint=f"the tab is consistent; the next refresh continues where this one stopped; {self.deadline.hint()}"))
        self.http.set_timeout((min(10.0, remaining), remaining))

    def backoff(self, attempt: int, error: Exception) -> None:
        """Wait before reading again after a write whose outcome is unknown, with the same
        backoff and deadline as a retried call; give up when the deadline would pass."""
        wait = self._wait(attempt, error)
        if not self.deadline.allows(wait):
            raise self._gave_up(error)
        self._retried(error, wait)
        time.sleep(wait)

    def _wait(self, attempt: int, error: BaseException | None) -> float:
        return self.policy.backoff.delay(attempt, retry_after(error) if error is not None else 0.0)

    def _retried(self, error: BaseException | None, wait: float) -> None:
        self.report.retries += 1
        log.warning("sheets %s: %s; retrying in %.2fs", self.spreadsheet_id, _describe(error), wait)

    def _gave_up(self, error: BaseException | None) -> GenesisError:
        return OutOfTime(
            f"Google Sheets kept failing for spreadsheet '{self.spreadsheet_id}' ({_describe(error)}); "
            f"gave up before the deadline of {self.deadline.seconds:g} s after {self.report.retries} retries",
            hint=f"the tab is consistent; the next refresh continues where this one stopped; {self.deadline.hint()}")

    def _pace(self, kind: str) -> None:
        """Stay under the per-user read and write quotas instead of collecting 429s."""
        limit = self.policy.writes_per_minute if kind == "write" else self.policy.reads_per_minute
        while True:
            with _CALLS_LOCK:
                times = _CALLS.setdefault((self.http.endpoint, self.email, kind), deque())
                now = time.monotonic()
                while times and now - times[0] >= self.policy.window_seconds:
                    times.popleft()
                if len(times) < limit:
                    times.append(now)
                    return
                wait = times[0] + self.policy.window_seconds - now
            self.deadline.sleep(wait, lambda: OutOfTime(
                f"the {kind} quota of {self.email} is used up until after the deadline",
                hint=f"refresh fewer trackers at once, or {self.deadline.hint()}"))

    def user_error(self, err: APIError) -> GenesisError:
        """The message for a refused call: what to share with whom, or what was refused."""
        message = str((err.error or {}).get("message") or "")
        if err.code == 404:
            return GenesisError(f"spreadsheet '{self.spreadsheet_id}' was not found",
                                hint=f"check spreadsheet_id and share the spreadsheet with {self.email} as an editor")
        if err.code == 403:
            return GenesisError(f"the service account {self.email} has no access to spreadsheet '{self.spreadsheet_id}'",
                                hint=f"share the spreadsheet with {self.email} as an editor")
        if err.code == 401:
            return GenesisError("Google Sheets rejected the service account's credentials",
                                hint="check that the key in the credentials file is active")
        hint = "nothing more was written"
        if "limit" in message:
            hint = "the spreadsheet is full: remove tabs or rows, or filter the input; " + hint
        return GenesisError(f"Google Sheets refused the update of tab '{self.worksheet}': {message} (HTTP {err.code})",
                            hint=hint)

    def _auth_error(self, err: Exception) -> GenesisError:
        reason = "unknown error"
        if len(getattr(err, "args", ())) > 1 and isinstance(err.args[1], dict):
            code = str(err.args[1].get("error") or "")
            reason = code if re.fullmatch(r"[a-z_]{1,40}", code) else reason  # an OAuth error code, never the answer
        return GenesisError(f"could not get an access token for the service account {self.email} ({reason})",
                            hint="check the credentials file: the key may be revoked or its token_uri wrong")


def _clock(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%H:%M:%S")


def _retryable(err: APIError) -> bool:
    return err.code in (408, 429) or err.code >= 500 or _rate_limited(err)


def _rate_limited(err: APIError) -> bool:
    return err.code == 403 and (err.error or {}).get("status") == "RESOURCE_EXHAUSTED"


def _describe(error: BaseException | None) -> str:
    if isinstance(error, APIError):
        return f"HTTP {error.code} {(error.error or {}).get('status', '')}".strip()
    return type(error).__name__
