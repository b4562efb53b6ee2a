"""What `genesis refresh` prints for people: one progress line per tracker, then a summary.

The summary names each tracker's destination and, for a failure, the reason. The same
error for several trackers (a missing credential, a broken shared input) is printed once,
with the trackers it stopped, instead of once per tracker.
"""

from __future__ import annotations

from ..run.refresh import RefreshReport, TrackerReport
from ..text import plural


class Progress:
    """Prints `[i/n] tracker: result` lines on stderr as trackers finish (in finish order
    when several run at once; run_pool calls it under a lock).

    With one tracker at a time on a terminal, a tracker shows `... running` while it runs,
    then its result on the same line; in a log each tracker is exactly one line. An error
    already printed for an earlier tracker is not repeated: the line says which tracker had
    it first.
    """

    def __init__(self, total: int, echo, live: bool) -> None:
        self.total, self.echo, self.live = total, echo, live
        self.finished = 0
        self.first_with: dict[str, str] = {}  # error text -> the first tracker that had it

    def __call__(self, event: str, report: TrackerReport) -> None:
        """Print `report`'s tracker: on "start" its live `...` line (a terminal only), on "end" its result line."""
        if event == "start":  # only with --jobs 1: one tracker at a time
            if self.live:
                self.echo(f"[{self.finished + 1}/{self.total}] {report.tracker} -> {report.destination} ...", nl=False)
            return
        self.finished += 1
        rows = "" if report.rows is None else f"{plural(report.rows, 'row')}, "
        status = f"FAILED at {report.stage}" if report.failed else report.status
        line = f"[{self.finished}/{self.total}] {report.tracker}: {status} ({rows}{report.seconds:.2f} s)"
        if report.error:
            first = self.first_with.setdefault(report.error, report.tracker)
            line += f": {report.error}" if first == report.tracker else f": the same error as {first}"
        self.echo(("\r\x1b[K" if self.live else "") + line)


def summary_table(result: RefreshReport) -> str:
    """A table of every tracker (rows, seconds, result, destination), each distinct error
    once with the trackers it stopped, and a count line."""
    rows = [("tracker", "rows", "seconds", "result", "destination")]
    for t in result.trackers:
        rows.append((t.tracker, "" if t.rows is None else f"{t.rows:,}", f"{t.seconds:.2f}",
                     t.status if not t.failed else f"FAILED at {t.stage}", t.destination))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i in (0, 3, 4) else c.rjust(w)
                       for i, (c, w) in enumerate(zip(r, widths))).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    errors: dict[str, list[str]] = {}
    for t in result.trackers:
        if t.failed:
            errors.setdefault(t.error or "failed", []).append(t.tracker)
    if errors:
        lines.append("")
        lines.append(f"{plural(len(errors), 'error')}:")
        for error, trackers in errors.items():
            who = trackers[0] if len(trackers) == 1 else f"{plural(len(trackers), 'tracker')} ({', '.join(trackers)})"
            lines.append(f"  {who}: {error}")
    failed = sum(t.failed for t in result.trackers)
    cancelled = sum(t.status == "cancelled" for t in result.trackers)
    lines.append(f"{len(result.trackers) - failed - cancelled} ok, {failed} failed in {result.seconds:.1f} s"
                 + (f", {cancelled} cancelled (stopped: nothing half-written)" if cancelled else "")
                 + (" (dry run: nothing written)" if result.dry_run else ""))
    lines += [f"warning: {w}" for w in result.warnings]  # history and alerts: never a failure
    return "\n".join(lines)
