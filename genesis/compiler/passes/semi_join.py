"""A pass: filters that alone reach down a one_to_many branch become semi-joins (EXISTS).

`WHERE cast.fee >= 100` keeps the movies with such a cast member; joining the branch
would repeat each movie per matching row and force de-duplication. With EXISTS the
branch is not joined at all, so nothing fans out (TPC-H Q4's shape). A branch that a
column, a HAVING or another filter also reads stays joined.
"""

from __future__ import annotations

import dataclasses

from ..query_plan import Filter, QueryPlan, SemiJoin, branch_of, frozen, instances_in


def semi_join(plan: QueryPlan) -> QueryPlan:
    """The plan with each filter-only one_to_many branch as a SemiJoin in `where`, not joined."""
    other_trees = [c.expr for c in plan.columns] + list(plan.having)
    used_elsewhere = {i.path for tree in other_trees for i in instances_in(plan, tree)}
    by_branch: dict[tuple[str, ...], list[Filter]] = {}
    kept: list[Filter] = []
    for tree in plan.where:
        branches = {branch_of(i) for i in instances_in(plan, tree) if i.repeats_root_rows}
        if len(branches) == 1:
            by_branch.setdefault(branches.pop(), []).append(tree)
        else:
            kept.append(tree)
    instances = dict(plan.instances)
    for branch, trees in by_branch.items():
        members = [path for path in instances if path[:len(branch)] == branch]
        other_filters = [t for b, ts in by_branch.items() if b != branch for t in ts] + kept
        if any(path in used_elsewhere for path in members) or any(
                i.path in members for t in other_filters for i in instances_in(plan, t)):
            kept.extend(trees)
            continue
        kept.append(semi_join_of(plan, branch, members, trees))
        for path in members:  # the outer query no longer joins this branch
            del instances[path]
    if not by_branch:
        return plan
    return dataclasses.replace(plan, where=tuple(kept), instances=frozen(instances))


def semi_join_of(plan: QueryPlan, head: tuple[str, ...], members, filters) -> SemiJoin:
    """The SemiJoin deciding that `filters` hold on some row of the branch at `head`."""
    ordered = sorted(members, key=lambda p: (len(p), p))
    return SemiJoin(plan.instances[head[:-1]], plan.instances[head],
                    tuple(plan.instances[p] for p in ordered), tuple(filters))
