"""The keyed diff (genesis.destinations.sync): value normalisation, errors, and properties."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genesis.destinations.sync import (
    Bool,
    ExistingRow,
    ResultRow,
    apply_plan,
    check_policy,
    normalize,
    plan_sync,
)
from genesis.errors import GenesisError

COLUMNS = ("id", "a", "b")


# --------------------------------------------------------------------------- normalize

def test_numbers_compare_by_value_not_type():
    assert normalize(1) == normalize(1.0) == normalize(Decimal("1.00"))
    assert normalize(0.1 + 0.2) == normalize(0.3)  # what survives a spreadsheet round trip
    assert normalize(-0.0) == normalize(0)


def test_booleans_are_not_numbers():
    assert normalize(True) == Bool(True)
    assert normalize(True) != normalize(1)
    assert normalize(False) != normalize(0.0)


def test_dates_equal_their_serials():
    assert normalize(date(2024, 1, 1)) == normalize(45292) == normalize(45292.0)
    noon = datetime(2024, 1, 1, 12)
    assert normalize(noon) == normalize(45292.5)
    aware = datetime(2024, 1, 1, 14, tzinfo=timezone(timedelta(hours=2)))
    assert normalize(aware) == normalize(noon)  # aware values compare in UTC


def test_empty_values_are_one_value():
    assert normalize(None) is normalize("") is normalize(float("nan")) is None


def test_big_integers_keep_every_digit_as_text():
    assert normalize(2**63 - 1) == str(2**63 - 1)
    assert normalize(10**15) != normalize(10**15 + 1)
    assert normalize(Decimal("12345678901234567.89")) == "12345678901234567.89"


def test_text_is_kept_as_is():
    assert normalize("007") == "007"
    assert normalize("=1+1") == "=1+1"
    assert normalize(("x", 1)) == ("x", 1.0)


# --------------------------------------------------------------------------- errors and policy

def _row(i, key, annotated=False, marked=False, **values):
    return ExistingRow(i, (key,), {"id": key, **values}, annotated, marked)


def test_duplicate_keys_in_the_result_name_the_key():
    result = [ResultRow((7,), {"id": 7}), ResultRow((7.0,), {"id": 7}), ResultRow((8,), {"id": 8})]
    with pytest.raises(GenesisError, match=r"duplicate key in the result: movie_id=7 \(2 rows\)"):
        plan_sync([], result, columns=COLUMNS, key_names=["movie_id"])


def test_duplicate_keys_in_the_destination_name_the_rows():
    existing = [_row(2, "A"), _row(3, "B"), _row(5, "A")]
    with pytest.raises(GenesisError, match=r"duplicate keys: code='A' \(rows 2, 5\)") as err:
        plan_sync(existing, [], columns=COLUMNS, key_names=["code"])
    assert "nothing was written" in err.value.hint


def test_empty_key_in_the_result_is_an_error():
    with pytest.raises(GenesisError, match=r"key \(id\) is empty in 1 result row"):
        plan_sync([], [ResultRow((None,), {"id": None})], columns=COLUMNS, key_names=["id"])


def test_policies():
    assert check_policy("upsert", None) == ("upsert", "delete")
    assert check_policy("upsert", "delete_unannotated") == ("upsert", "delete")
    assert check_policy("replace", "mark") == ("replace", "mark")
    with pytest.raises(GenesisError, match="cannot keep removed rows"):
        check_policy("replace", "keep")
    with pytest.raises(GenesisError, match="unknown mode"):
        check_policy("merge", "delete")
    with pytest.raises(GenesisError, match="unknown on_removed"):
        check_policy("upsert", "drop")


def test_plan_lists_only_changed_columns():
    existing = [_row(2, 1, a="x", b=1.0), _row(3, 2, a="y", b=2.0)]
    result = [ResultRow((1,), {"id": 1, "a": "x", "b": 1}), ResultRow((2,), {"id": 2, "a": "z", "b": 2})]
    plan = plan_sync(existing, result, columns=COLUMNS, key_names=["id"])
    assert plan.unchanged == (2,)
    assert [(u.row_id, u.columns) for u in plan.updates] == [(3, ("a",))]


def test_removed_rows_follow_the_policy():
    existing = [_row(2, 1), _row(3, 2, annotated=True), _row(4, 3, annotated=True, marked=True), _row(5, 4, marked=True)]
    result = [ResultRow((4,), {"id": 4})]
    delete = plan_sync(existing, result, columns=COLUMNS, key_names=["id"], on_removed="delete")
    assert (delete.deletes, delete.marks, delete.kept, delete.unmarks) == ((2,), (3,), (4,), (5,))
    mark = plan_sync(existing, result, columns=COLUMNS, key_names=["id"], on_removed="mark")
    assert (mark.deletes, mark.marks, mark.kept) == ((), (2, 3), (4,))
    keep = plan_sync(existing, result, columns=COLUMNS, key_names=["id"], on_removed="keep")
    assert (keep.deletes, keep.marks, keep.kept) == ((), (), (2, 3, 4))


def test_replace_removes_blank_rows_and_clears_keyless_owned_cells():
    existing = [_row(2, 1), ExistingRow(3, (None,), {}), ExistingRow(4, (None,), {"a": "stray"}, annotated=True),
                ExistingRow(5, (None,), {}, annotated=True)]
    result = [ResultRow((1,), {"id": 1})]
    plan = plan_sync(existing, result, columns=COLUMNS, key_names=["id"], mode="replace")
    assert plan.deletes == (3,)
    assert [(u.row_id, u.columns) for u in plan.updates] == [(4, ("a",))]
    assert plan.ignored == (5,)
    upsert = plan_sync(existing, result, columns=COLUMNS, key_names=["id"], mode="upsert")
    assert upsert.ignored == (3, 4, 5) and upsert.is_noop


def test_append_only_adds_new_keys():
    existing = [_row(2, 1, a="old"), _row(3, 2)]
    result = [ResultRow((1,), {"id": 1, "a": "new"}), ResultRow((3,), {"id": 3})]
    plan = plan_sync(existing, result, columns=COLUMNS, key_names=["id"], mode="append")
    assert [r.key for r in plan.inserts] == [(3,)]
    assert plan.changes == 1


# --------------------------------------------------------------------------- properties

values = st.one_of(st.none(), st.integers(-3, 3), st.sampled_from(["", "x", "y", "007"]), st.booleans(),
                   st.sampled_from([1.0, 2.5, Decimal("2.50")]), st.sampled_from([date(2024, 1, 1), 45292]))
keys = st.integers(0, 12)


@st.composite
def scenarios(draw):
    existing_keys = draw(st.lists(keys, unique=True, max_size=10))
    existing = []
    for i, k in enumerate(existing_keys):
        key = (float(k) if draw(st.booleans()) else k,)  # the sheet returns floats
        existing.append(ExistingRow(i + 2, key, {"id": key[0], "a": draw(values), "b": draw(values)},
                                    annotated=draw(st.booleans()), marked=draw(st.booleans())))
    for n in range(draw(st.integers(0, 3))):  # people's keyless rows, anywhere
        at = draw(st.integers(0, len(existing)))
        owned = {"a": draw(values)} if draw(st.booleans()) else {}
        existing.insert(at, ExistingRow(100 + n, (None,), owned, annotated=draw(st.booleans())))
    result = [ResultRow((k,), {"id": k, "a": draw(values), "b": draw(values)})
              for k in draw(st.lists(keys, unique=True, max_size=10))]
    mode = draw(st.sampled_from(["upsert", "replace", "append"]))
    policies = ["delete", "mark"] if mode == "replace" else ["delete", "mark", "keep"]
    return existing, result, mode, draw(st.sampled_from(policies))


def _owned(row) -> tuple:
    return tuple(normalize(row.values.get(c)) for c in COLUMNS)


def _key(row) -> tuple:
    return tuple(normalize(v) for v in row.key)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_applying_a_plan_gives_the_result(scenario):
    existing, result, mode, policy = scenario
    plan = plan_sync(existing, result, columns=COLUMNS, key_names=["id"], mode=mode, on_removed=policy)
    after = apply_plan(existing, result, plan)
    by_key = {}
    for row in after:
        if any(v is not None for v in _key(row)):
            assert _key(row) not in by_key, "a key appears twice"
            by_key[_key(row)] = row
    old_keys = {_key(r) for r in existing if any(v is not None for v in _key(r))}
    for new in result:
        row = by_key[_key(new)]
        if mode != "append" or _key(new) not in old_keys:
            assert _owned(row) == _owned(new)  # the owned block is the result
            assert not row.marked
    removed = [r for r in existing if _key(r) in old_keys - {_key(n) for n in result}]
    for old in removed:
        kept = by_key.get(_key(old))
        if old.annotated or mode == "append" or policy in ("mark", "keep"):
            assert kept is not None, "an annotated (or kept) row was deleted"
        if kept is not None and mode != "append" and policy != "keep":
            assert kept.marked
        if kept is not None and (policy == "keep" or mode == "append"):
            assert kept.marked == old.marked and _owned(kept) == _owned(old)
    if mode == "replace":
        for row in after:
            if all(v is None for v in _key(row)):
                assert row.annotated and all(v is None for v in _owned(row)[1:])


@settings(max_examples=150, deadline=None)
@given(scenarios())
def test_annotated_rows_are_never_deleted(scenario):
    existing, result, mode, policy = scenario
    plan = plan_sync(existing, result, columns=COLUMNS, key_names=["id"], mode=mode, on_removed=policy)
    annotated = {r.row_id for r in existing if r.annotated}
    assert not annotated & set(plan.deletes)


@settings(max_examples=150, deadline=None)
@given(scenarios())
def test_applying_twice_is_a_noop(scenario):
    existing, result, mode, policy = scenario
    plan = plan_sync(existing, result, columns=COLUMNS, key_names=["id"], mode=mode, on_removed=policy)
    after = apply_plan(existing, result, plan)
    again = plan_sync(after, result, columns=COLUMNS, key_names=["id"], mode=mode, on_removed=policy)
    assert again.is_noop, again


@settings(max_examples=100, deadline=None)
@given(scenarios())
def test_updates_name_exactly_the_changed_columns(scenario):
    existing, result, mode, policy = scenario
    plan = plan_sync(existing, result, columns=COLUMNS, key_names=["id"], mode=mode, on_removed=policy)
    old = {r.row_id: r for r in existing}
    for update in plan.updates:
        before = old[update.row_id].values
        for c in COLUMNS:
            differs = normalize(before.get(c)) != normalize(update.values.get(c))
            assert differs == (c in update.columns)


@given(st.one_of(st.integers(-10**16, 10**16), st.floats(allow_nan=False, allow_infinity=False),
                 st.dates(), st.datetimes(), st.booleans(), st.text()))
def test_normalize_is_stable(value):
    once = normalize(value)
    assert normalize(value) == once
    if isinstance(once, float):
        assert normalize(once) == once and not math.isnan(once)  # a written value reads back equal
