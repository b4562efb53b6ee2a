"""The compiler's passes, in the order they run: each is `QueryPlan -> QueryPlan`.

Like sqlglot's optimizer rules: every pass is a function of the plan alone that returns a
new plan with its decisions recorded (the plan is frozen), and builds no SQL; render.py
builds the SQL of every decision. tests/fixtures/passes/<pass>/ holds golden SQL per pass,
and tests/test_compiler_passes.py fails when a pass is taken out of PASSES.

- semi_join: filters that alone read a one_to_many branch become EXISTS, the branch unjoined;
- grouping: whether the query groups, which aggregates need a key sub-query (needs semi_join's
  result: a branch taken out repeats no row);
- preaggregate: a branch read only by re-aggregatable aggregates is aggregated per join key first;
- fewest_joins: each CTE of the keyed query joins only what it reads;
- tie_breakers: the fewest ORDER BY additions that make the row order total.
"""

from __future__ import annotations

from collections.abc import Callable

from ..query_plan import QueryPlan
from .fewest_joins import fewest_joins
from .grouping import grouping
from .order import tie_breakers
from .preaggregate import preaggregate
from .semi_join import semi_join

Pass = Callable[[QueryPlan], QueryPlan]

PASSES: tuple[Pass, ...] = (semi_join, grouping, preaggregate, fewest_joins, tie_breakers)


def run_passes(plan: QueryPlan, passes: tuple[Pass, ...] | None = None) -> QueryPlan:
    """`plan` after every pass of `passes` (default: PASSES, looked up when called)."""
    for each in PASSES if passes is None else passes:
        plan = each(plan)
    return plan
