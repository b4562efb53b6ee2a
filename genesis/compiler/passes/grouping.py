"""A pass: whether the query groups, and which aggregate calls need a key sub-query.

- The query groups when it has a measure or an aggregate computed column (its rows are
  groups of the other fields), any aggregate call, or a joined one_to_many branch: a
  listing then groups by the root's primary key (one row per root row), which it needs.
- An aggregate call whose rows the joins repeat, and which is not idempotent (sum, count,
  avg), is computed in a key sub-query over the primary keys of its grain (Cube's
  approach: DISTINCT (group keys, grain key, inputs) first, then aggregate), which needs
  those primary keys.
Runs after semi_join: a branch a semi-join took out repeats nothing.
"""

from __future__ import annotations

import dataclasses

from ...errors import GenesisError
from .. import expressions as ex
from ..query_plan import QueryPlan, joins_repeat


def grouping(plan: QueryPlan) -> QueryPlan:
    """The plan with `grouped` and every call's `keyed` decided; raises when a key is missing."""
    inp = plan.input
    any_fanout = any(i.repeats_root_rows for i in plan.instances.values())
    grouped = plan.metric_mode or bool(plan.calls) or any_fanout
    references = set(plan.references)
    if grouped and not plan.metric_mode:
        root_ds = plan.root.datasource
        if not root_ds.primary_key:
            raise GenesisError(
                f"listing '{inp.name}' collapses one_to_many rows per {root_ds.name} row, which needs "
                f"the primary_key of data source '{root_ds.name}'", inp.locs.get("from", inp.loc),
                f"declare primary_key in {root_ds.path}")
        references.update(f"{root_ds.name}.{k}" for k in root_ds.primary_key)
    calls = []
    for call in plan.calls:
        keyed = joins_repeat(plan, call.grain) and not ex.is_idempotent(call.node)
        for instance in call.identity if keyed else ():
            if not instance.datasource.primary_key:
                raise GenesisError(
                    f"{call.what} sums rows of '{instance.datasource.name}' that the joins of this input repeat; "
                    f"counting each once needs its primary_key", call.loc,
                    f"declare primary_key in {instance.datasource.path}")
            references.update(f"{instance.datasource.name}.{k}" for k in instance.datasource.primary_key)
        calls.append(dataclasses.replace(call, keyed=keyed) if keyed else call)
    return dataclasses.replace(plan, grouped=grouped, calls=tuple(calls), references=frozenset(references))
