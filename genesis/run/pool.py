"""Refresh many trackers at once, as fast as the engine and the APIs' quotas allow.

`--jobs N` workers run trackers' queries in parallel (one Trino query per worker; DuckDB
with a cursor per worker over the one warehouse connection). A result then waits in its
*write lane* -- its spreadsheet, Airtable base or file -- where one writer at a time
writes, while the workers go on with the next queries. Different lanes write in parallel;
the per-account limits (Sheets reads and writes per service account, Airtable's 5 requests
a second per base and its 30-s penalty) are enforced process-wide by the destinations'
own limiters, which every thread shares. Results waiting for their lane hold at most
`PENDING_BYTES` of memory; beyond that the workers wait for the writers.

Isolation: a tracker's failure is its own report; it never stops or changes another.
Each finished tracker is one progress line, as it finishes; the summary keeps the order
the trackers were selected in.

Stopping (Ctrl-C, SIGTERM, or `stop.set()`): no new query or write starts, running
queries are cancelled on the engine, writes already under way finish (each is a complete
refresh of one destination: never half a write), and the report says what was done; the
trackers not done are `cancelled`. The next run converges (the writes are keyed and
idempotent, and `--due` still sees them as due: their stamps did not move).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import signal
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .. import clock
from ..api import execute
from ..engines import Engine, open_engine
from ..errors import GenesisError, redact
from ..project.config import get_target, render_settings
from ..project.model import Project, Tracker
from ..validate import check_tracker
from .checks import located_failures, output_column
from .refresh import RefreshReport, TrackerReport, destination_on_target, params_for, write_destination
from .scheduler import touch_before, write_lane

DEFAULT_JOBS = 8  # enough to keep a Trino cluster and the Sheets quota busy; see docs
PENDING_BYTES = 512 * 2**20  # results waiting for their write lane, at most (memory bound)


class ByteBudget:
    """Query workers wait while the results queued for writing hold more than `limit`
    bytes (a lone result larger than the limit still goes through)."""

    def __init__(self, limit: int):
        self.limit, self.used = limit, 0
        self._cond = threading.Condition()

    def take(self, size: int, stop: threading.Event) -> None:
        """Reserve `size` bytes, waiting while they do not fit; a set `stop` lets it through at once."""
        with self._cond:
            while self.used and self.used + size > self.limit and not stop.is_set():
                self._cond.wait(0.2)
            self.used += size

    def give(self, size: int) -> None:
        """Return `size` bytes taken before (its result is written) and wake the waiting workers."""
        with self._cond:
            self.used -= size
            self._cond.notify_all()


class WriteLanes:
    """One writer at a time per lane; different lanes write in parallel on a shared pool."""

    def __init__(self, pool: ThreadPoolExecutor):
        self._pool = pool
        self._lock = threading.Lock()
        self._queues: dict[str, deque] = {}

    def submit(self, lane: str, job: Callable[[], None]) -> None:
        """Queue `job` on `lane`; it runs after the lane's earlier jobs, in the order submitted."""
        with self._lock:
            queue = self._queues.get(lane)
            if queue is not None:  # a writer is draining this lane: it will run the job
                queue.append(job)
                return
            self._queues[lane] = deque([job])
        self._pool.submit(self._drain, lane)

    def _drain(self, lane: str) -> None:
        while True:
            with self._lock:
                queue = self._queues[lane]
                if not queue:
                    del self._queues[lane]
                    return
                job = queue[0]
            try:
                job()
            finally:
                with self._lock:
                    queue.popleft()


def run_trackers(project: Project, trackers: list[Tracker], *, target: str | None = None,
                 dry_run: bool = False, progress: Callable[[str, TrackerReport], None] | None = None,
                 jobs: int = 1, stop: threading.Event | None = None,
                 now: dt.datetime | None = None, params: Mapping[str, Any] | None = None) -> RefreshReport:
    """Refresh `trackers` with `jobs` workers; see the module docstring. `params` are the
    --param values, given to each tracker whose input declares them."""
    if jobs < 1:
        raise GenesisError(f"--jobs must be at least 1, not {jobs}")
    run = _Run(project, trackers, target, dry_run, progress, jobs, stop or threading.Event(), now or clock.now(),
               params)
    return run.go()


class _Run:
    def __init__(self, project: Project, trackers: list[Tracker], target: str | None, dry_run: bool,
                 progress: Callable[[str, TrackerReport], None] | None, jobs: int, stop: threading.Event,
                 now: dt.datetime, params: Mapping[str, Any] | None) -> None:
        self.project, self.trackers, self.dry_run, self.params = project, trackers, dry_run, params
        self.progress, self.jobs, self.stop, self.now = progress, jobs, stop, now
        self.target = get_target(project, target)
        # The target's settings are the same for every tracker: a missing environment
        # variable is one error for the whole run, raised before any tracker starts.
        self.settings = render_settings(self.target)
        self.reports = [TrackerReport(t.name, destination=destination_on_target(project, t, self.target))
                        for t in trackers]
        self.inline = jobs == 1  # one at a time: query, then write, then the next tracker
        self._engine: Engine | None = None
        self._engine_error: BaseException | None = None
        self._lock = threading.Lock()
        self._done = threading.Condition()
        self._remaining = len(trackers)
        self._print = threading.Lock()
        self._pending = ByteBudget(PENDING_BYTES)

    def go(self) -> RefreshReport:
        started = time.perf_counter()
        queries = ThreadPoolExecutor(self.jobs, thread_name_prefix="genesis-query")
        writers = ThreadPoolExecutor(max(2, min(32, 2 * self.jobs)), thread_name_prefix="genesis-write")
        self.lanes = WriteLanes(writers)
        cancelled_engine = False
        try:
            for tracker, report in zip(self.trackers, self.reports):
                queries.submit(self._query, tracker, report)
            with self._done:
                while self._remaining:
                    try:
                        self._done.wait(0.2)
                    except KeyboardInterrupt:  # no signal handler installed: stop gracefully
                        self.stop.set()
                    if self.stop.is_set() and not cancelled_engine:
                        cancelled_engine = True
                        self._cancel_queries()
        finally:
            queries.shutdown(wait=True)
            writers.shutdown(wait=True)
            if self._engine is not None:
                self._engine.close()
        return RefreshReport(self.target.name, self.reports, time.perf_counter() - started, self.dry_run)

    # -- one tracker ------------------------------------------------------------------------

    def _query(self, tracker: Tracker, report: TrackerReport) -> None:
        started = time.perf_counter()
        if self.stop.is_set():
            return self._cancel(report, started, "stopped before it started; nothing written")
        report.started_at = dt.datetime.now(dt.UTC)
        if self.inline:
            self._emit("start", report)
        try:
            report.stage = "compile"
            compiled = check_tracker(self.project, tracker, params_for(self.project, tracker, self.params))
            report.stage = "query"
            timeout = tracker.timeout_seconds or self.settings.get("timeout")
            result = execute(compiled, self.engine(), label=tracker.name, timeout=timeout)
            report.rows = result.table.num_rows
            report.stage = "checks"
            problems = located_failures(result, tracker.checks, compiled)
            if tracker.checks.fresh is not None:
                from ..monitoring.freshness import data_age, freshness_problem

                age = data_age(self.project, tracker, self.engine(), timeout=timeout)
                report.details["data_age_seconds"] = age
                stale = freshness_problem(tracker, age)
                if stale:
                    problems.append((stale, tracker.checks.loc_of("fresh")))
            if problems:  # located at the first failed check's own line
                raise GenesisError(f"checks failed, nothing written: {'; '.join(text for text, _ in problems)}",
                                   problems[0][1])
            if self.dry_run:
                report.status, report.stage = "checked", None
                return self._finish(report, started)
            report.stage = "write"
            key = [output_column(compiled, k, tracker.key_loc(i)).name for i, k in enumerate(tracker.key)]
        except BaseException as exc:  # noqa: BLE001 - one tracker must never stop the others
            return self._failed(report, started, exc)

        if self.inline:
            return self._write(tracker, report, result, key, started)
        size = result.table.nbytes
        self._pending.take(size, self.stop)

        def write() -> None:
            try:
                self._write(tracker, report, result, key, started)
            finally:
                self._pending.give(size)

        self.lanes.submit(write_lane(self.project, tracker, self.target, self.settings), write)

    def _write(self, tracker: Tracker, report: TrackerReport, result, key, started: float) -> None:
        if self.stop.is_set():
            return self._cancel(report, started, "stopped before its write started; nothing written")
        try:
            changed, details = write_destination(self.project, tracker, result, key, self.target,
                                                 self.settings, touch_before=touch_before(tracker, self.now))
            report.details.update(details)
            report.status = "ok" if changed else "unchanged"
            report.stage = None
        except BaseException as exc:  # noqa: BLE001
            return self._failed(report, started, exc)
        self._finish(report, started)

    # -- shared pieces -----------------------------------------------------------------------

    def engine(self) -> Engine:
        with self._lock:
            if self._engine_error is not None:
                raise self._engine_error
            if self._engine is None:
                try:
                    self._engine = open_engine(self.project, self.target.name)
                except BaseException as exc:
                    self._engine_error = exc
                    raise
            return self._engine

    def _cancel_queries(self) -> None:
        with self._lock:
            engine = self._engine
        cancel = getattr(engine, "cancel", None)
        if cancel is not None:
            cancel()

    def _failed(self, report: TrackerReport, started: float, exc: BaseException) -> None:
        if self.stop.is_set() and report.stage in ("compile", "query"):
            return self._cancel(report, started, "stopped while its query ran; nothing written")
        report.status = "failed"
        if isinstance(exc, GenesisError):
            report.error = exc.render()
            first = (getattr(exc, "errors", None) or [exc])[0]
            report.location = str(first.location) if first.location else None
        else:
            report.error = redact(f"internal error: {type(exc).__name__}: {exc}")
            report.details["traceback"] = redact("".join(traceback.format_exception(exc, limit=5)))
        self._finish(report, started)

    def _cancel(self, report: TrackerReport, started: float, why: str) -> None:
        report.status, report.error = "cancelled", why
        self._finish(report, started)

    def _finish(self, report: TrackerReport, started: float) -> None:
        report.seconds = time.perf_counter() - started
        report.ended_at = dt.datetime.now(dt.UTC)
        self._emit("end", report)
        with self._done:
            self._remaining -= 1
            self._done.notify_all()

    def _emit(self, event: str, report: TrackerReport) -> None:
        if self.progress is None:
            return
        with self._print:
            try:
                self.progress(event, report)
            except Exception:  # noqa: BLE001 - a broken progress printer must not lose a tracker
                pass



@contextlib.contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An Event set by SIGINT or SIGTERM while the block runs (then the old handlers return).

    A signal asks the run to stop gracefully (see the module docstring); a writer is never
    killed mid-write, so further signals change nothing."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum, frame):
        if not stop.is_set():
            print("genesis: stopping -- no new trackers start; writes under way finish", file=sys.stderr,
                  flush=True)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
