"""The Airtable destination: a query result kept in an Airtable table that people annotate.

One refresh = read every record once (pages of 100), diff by key with `sync.plan_sync`,
then write only what changed: new and changed records with `performUpsert` (batches of 10),
removed ones deleted in batches of 10 or marked in the status field. An unchanged result
makes no write call.

Ownership: Genesis owns the output columns (the key columns among them) and the status
field (`sync.STATUS_COLUMN`). Every other field belongs to people; a record is annotated
when one of those fields is non-empty or the record has comments. Computed fields
(formula, created time, autonumber...) are not annotations: the base schema, fetched only
when it decides something, tells them apart.

Calls: a process-wide limiter keeps every tracker of a run under 5 requests per second
per base (Airtable's limit; a 6th request inside a second earns a 30 s ban of the whole
base). A 429 makes every tracker on that base wait out the penalty, 5xx answers are
retried with jittered backoff, and all waiting is bounded by the refresh's deadline.
pyairtable's own retries are off so the two do not fight. The token is only ever put in
the Authorization header; messages and logs never show it.

Modules: this one runs a refresh (read, plan, ensure fields, write, re-plan when records
vanish); airtable_client.py holds the rate limiter and the governed calls,
airtable_fields.py the field types and value encoding, airtable_stamp.py the stamp.

Idempotence: new records are matched on the key fields (`fieldsToMergeOn`), so a refresh
killed between two writes and run again updates the records it already created instead of
duplicating them, and converges to the state an uninterrupted run leaves.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any

import requests

from ..errors import GenesisError, register_secret
from ..result import QueryResult
from .airtable_client import (  # noqa: F401 - Settings, DEFAULT_ENDPOINT, api_error: public here too
    BATCH_SIZE,
    DEFAULT_ENDPOINT,
    AirtableTable,
    DeadlineExceeded,
    Settings,
    api_error,
    error_type,
)
from .airtable_fields import COMPUTED_TYPES, Column, columns_of, text_value
from .report import SyncReport, check_key, result_rows
from .retry import DEFAULT_DEADLINE_SECONDS, Deadline
from .sync import STATUS_COLUMN, STATUS_REMOVED, ExistingRow, Plan, ResultRow, check_policy, key_of, plan_sync

log = logging.getLogger(__name__)

SETTINGS = Settings()  # the pacing of every Airtable call; tests and the bench swap it
AirtableSyncReport = SyncReport  # the name before the report was shared with Google Sheets


def sync_airtable(
    result: QueryResult,
    *,
    base_id: str,
    table: str,
    key: Sequence[str],
    mode: str = "upsert",
    on_removed: str = "delete",
    token: str,
    endpoint: str = DEFAULT_ENDPOINT,
    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
    dry_run: bool = False,
) -> SyncReport:
    """Make Airtable table `table` of base `base_id` hold `result`, keyed by the output
    columns `key`; see the module docstring for what is written and what is kept."""
    started = time.monotonic()
    mode, policy = check_policy(mode, on_removed)
    if not token:
        raise GenesisError("no Airtable token", hint="set `airtable.token` in the target")
    register_secret(token)  # masked in any output, whatever route it takes
    key = tuple(key)
    check_key(result, key, "Airtable", max_fields=3)
    where = f"Airtable base {base_id} table '{table}'"
    deadline = Deadline(deadline_seconds, "airtable.deadline_seconds")
    report = SyncReport(base_id, table, mode, policy, rows=result.table.num_rows, dry_run=dry_run,
                        service="airtable")
    remote = AirtableTable(base_id, table, token, endpoint.rstrip("/"), deadline, SETTINGS, report)
    refresh = _Refresh(result, remote, key, mode, policy, dry_run)
    try:
        while True:
            try:
                refresh.run()
                break
            except _Vanished as err:
                report.replans += 1
                log.info("%s: %s; reading the table again", where, err)
                if report.replans > MAX_REPLANS:
                    raise GenesisError(
                        f"{where}: records kept disappearing while Genesis wrote ({err}); "
                        f"re-read the table {MAX_REPLANS} times",
                        hint="another refresh of this table, or a person, is deleting records right now; "
                             "the table is consistent, run again when it is done") from None
    except DeadlineExceeded as err:
        raise GenesisError(
            f"{where}: stopped at its deadline of {deadline_seconds:g} s: {err.message} "
            f"({refresh.progress()})",
            hint=f"the table is consistent; run again to finish, or {deadline.hint()}",
        ) from None
    except requests.RequestException as err:
        raise api_error(err, token, where) from None
    report.seconds = time.monotonic() - started
    log.info("%s: %s in %.1f s, %d calls", where, report.summary(), report.seconds, report.calls)
    return report


MAX_REPLANS = 5
_GONE = {"MODEL_ID_NOT_FOUND", "ROW_DOES_NOT_EXIST", "RECORD_NOT_FOUND"}


class _Vanished(Exception):
    """A write named a record that no longer exists: someone deleted it after our read.
    Airtable applies a batch whole or not at all, so the table is as another writer or a
    person left it; the refresh reads it again and re-plans (a record already deleted is
    then simply not there to delete)."""


class _Refresh:
    """One refresh of one table: read, plan, ensure fields, write."""

    def __init__(self, result: QueryResult, remote: AirtableTable, key: tuple[str, ...], mode: str,
                 policy: str, dry_run: bool):
        self.result, self.remote, self.key = result, remote, key
        self.mode, self.policy, self.dry_run = mode, policy, dry_run
        self.columns = columns_of(result, key)
        self.owned = {c.name for c in self.columns} | {STATUS_COLUMN}
        self.fields_created: list[str] = []
        self.known_fields: set[str] = set()  # fields that exist without asking the schema
        self.writes_done = 0
        self.writes_planned = 0
        self.existing: tuple[ExistingRow, ...] = ()

    def progress(self) -> str:
        """How far the writes got, for the deadline's message."""
        return f"{self.writes_done} of {self.writes_planned} write calls done"

    def run(self) -> None:
        """Read, plan, write; the outcome goes in the table's report."""
        records = self.remote.records()
        if records is None:
            records = self._create_table()
        rows = result_rows(self.result, {c.name: c.encode for c in self.columns}, self.key)
        plan = self._plan(records, rows)
        if not self.dry_run:
            self._write(plan, records, rows)
        report = self.remote.report
        report.count(plan)
        report.fields_created, report.plan, report.existing = tuple(self.fields_created), plan, self.existing

    def _create_table(self) -> list[dict]:
        if not self.dry_run:
            ordered = sorted(self.columns, key=lambda c: c.name not in self.key)  # key first: primary
            try:
                self.remote.create_table(ordered)
            except requests.HTTPError as err:
                if error_type(err) == "DUPLICATE_TABLE_NAME":  # another refresh created it first
                    raise _Vanished("the table was created by another refresh after the read") from None
                raise
            self.fields_created.extend(c.name for c in ordered)
            self.known_fields.update(c.name for c in ordered)
        return []

    # -- planning ---------------------------------------------------------------------------

    def _plan(self, records: list[dict], rows: list[ResultRow]) -> Plan:
        computed: set[str] = set()
        if self._annotation_matters(records, rows):
            types = self.remote.field_types()
            computed = {name for name, t in types.items() if t in COMPUTED_TYPES}
        existing = [self._existing_row(r, computed) for r in records]
        self.existing = tuple(existing)
        return plan_sync(existing, rows, columns=[c.name for c in self.columns],
                         key_names=self.key, mode=self.mode, on_removed=self.policy)

    def _annotation_matters(self, records: list[dict], rows: list[ResultRow]) -> bool:
        """Whether a record whose fate depends on `annotated` (a removed key under `delete`,
        a keyless record under `replace`) has a field that may be computed; only then is the
        schema fetched, so a refresh with nothing to delete costs no schema call."""
        if self.mode == "append":
            return False
        keys = {key_of(r.key) for r in rows}
        for record in records:
            k = key_of(_stored(record.get("fields", {}).get(name)) for name in self.key)
            keyless = all(part is None for part in k)
            decides = self.mode == "replace" if keyless else (k not in keys and self.policy == "delete")
            if decides and self._foreign_values(record, set()):
                return True
        return False

    def _foreign_values(self, record: dict, computed: set[str]) -> bool:
        fields = record.get("fields", {})
        return any(
            name not in self.owned and name not in computed and not _empty(value)
            for name, value in fields.items()
        )

    def _existing_row(self, record: dict, computed: set[str]) -> ExistingRow:
        fields = record.get("fields", {})
        annotated = bool(record.get("commentCount")) or self._foreign_values(record, computed)
        return ExistingRow(
            row_id=record["id"],
            key=tuple(_stored(fields.get(k)) for k in self.key),
            values={c.name: _stored(fields.get(c.name)) for c in self.columns},
            annotated=annotated,
            marked=fields.get(STATUS_COLUMN) == STATUS_REMOVED,
        )

    # -- writing ----------------------------------------------------------------------------

    def _write(self, plan: Plan, records: list[dict], rows: list[ResultRow]) -> None:
        upserts = self._upsert_records(plan, records)
        deletes = list(plan.deletes)
        self.writes_planned = _batches(len(upserts)) + _batches(len(deletes))
        if not upserts and not deletes:
            return
        self._ensure_fields(upserts, records)
        for batch in _chunks(upserts):
            self._upsert(batch)
        for batch in _chunks(deletes):
            try:
                self.remote.delete(batch)
            except requests.HTTPError as err:
                if error_type(err) in _GONE:
                    raise _Vanished("a record to delete was already deleted (by another refresh or a person)") from None
                raise
            self.writes_done += 1

    def _upsert(self, batch: list[dict]) -> None:
        try:
            self.remote.upsert(batch, self.key)
        except requests.HTTPError as err:
            if error_type(err) in _GONE:
                raise _Vanished("a record to update was deleted after the read (by another refresh or a person)") from None
            # A field renamed or removed since the read: create it and send again, once.
            if error_type(err) != "UNKNOWN_FIELD_NAME":
                raise
            self._create_missing({name for r in batch for name in r["fields"]}, force=True)
            self.remote.upsert(batch, self.key)
        self.writes_done += 1

    def _upsert_records(self, plan: Plan, records: list[dict]) -> list[dict]:
        """Write payloads: existing records by id (changed fields only), new ones by key."""
        fields_of: dict[str, dict] = {}
        for update in plan.updates:
            fields_of.setdefault(update.row_id, {}).update(
                {c: update.values.get(c) for c in update.columns})
        for row_id in plan.marks:
            fields_of.setdefault(row_id, {})[STATUS_COLUMN] = STATUS_REMOVED
        for row_id in plan.unmarks:
            fields_of.setdefault(row_id, {})[STATUS_COLUMN] = None
        order = {r["id"]: i for i, r in enumerate(records)}
        payload = [{"id": rid, "fields": fields_of[rid]} for rid in sorted(fields_of, key=order.__getitem__)]
        for row in plan.inserts:
            fields = {k: v for k, v in row.values.items() if v is not None}
            fields.update(zip(self.key, row.key))  # merge fields: a re-run finds what it created
            payload.append({"fields": fields})
        return payload

    def _ensure_fields(self, upserts: list[dict], records: list[dict]) -> None:
        """Create the fields a write needs that no record showed (Airtable omits empty cells,
        so a field seen in a record exists; only unseen ones need the schema)."""
        seen = {name for r in records for name in r.get("fields", {})} | self.known_fields
        needed = {name for r in upserts for name, v in r["fields"].items() if v is not None}
        if needed - seen:
            self._create_missing(needed - seen)

    def _create_missing(self, names: set[str], force: bool = False) -> None:
        if force:
            self.remote.forget_schema()
        existing = self.remote.field_types()
        candidates = self.columns + [Column(STATUS_COLUMN, "singleLineText", None, text_value)]
        for column in candidates:  # in output order, so the table reads like the result
            if column.name in names and column.name not in existing:
                self.remote.create_field(column)
                self.fields_created.append(column.name)


def _stored(value: Any) -> Any:
    """An Airtable cell as the diff compares it: empty cells (absent, "", false, []) are None."""
    return None if _empty(value) else value


def _empty(value: Any) -> bool:
    return value is None or value == "" or value is False or value == [] or value == {}


def _batches(n: int) -> int:
    return -(-n // BATCH_SIZE)


def _chunks(items: list) -> Iterator[list]:
    for i in range(0, len(items), BATCH_SIZE):
        yield items[i:i + BATCH_SIZE]
