"""TPC-H as an oracle: official query texts next to the same questions written as Genesis inputs.

QUERIES maps each Genesis input (tests/tpch/project/inputs/<input>.yaml) to the official query
text it must reproduce (tests/tpch/queries/qN.sql) and says whether that text fully orders its
result (then rows are compared in order, else as multisets).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROJECT_DIR = HERE / "project"
QUERY_DIR = HERE / "queries"


@dataclass(frozen=True)
class TpchQuery:
    number: int
    input: str  # the Genesis input's name
    ordered: bool  # the official ORDER BY gives one order (or the result is a single row)
    features: str  # what of the spec it exercises (for reports)

    @property
    def id(self) -> str:
        return f"q{self.number}"

    def official_sql(self) -> str:
        return (QUERY_DIR / f"q{self.number}.sql").read_text()


QUERIES: list[TpchQuery] = [
    TpchQuery(1, "tpch_q01", True, "measures (sum/avg/count) + aggregate computed column, integer parameter, sort"),
    TpchQuery(3, "tpch_q03", True, "2 many_to_one hops, aggregate computed column, varchar+date parameters, sort on output column, limit"),
    TpchQuery(4, "tpch_q04", True, "filter over a one_to_many join (EXISTS), count measure at its own grain"),
    TpchQuery(5, "tpch_q05", True, "two nation paths, 4-hop path to region, cross-source column filter, measure, parameter"),
    TpchQuery(6, "tpch_q06", True, "global aggregate, date/decimal/integer parameters with defaults"),
    TpchQuery(7, "tpch_q07", True, "same source on two paths (aliases), OR filter across them, computed fields, parameters"),
    TpchQuery(8, "tpch_q08", True, "ratio of aggregates with CASE, 4-hop path to the customer's region, parameters"),
    TpchQuery(9, "tpch_q09", True, "composite-key join (partsupp), group by computed column, sort DESC"),
    TpchQuery(10, "tpch_q10", True, "3-hop fields, measure mid select list, sort on measure, limit"),
    TpchQuery(12, "tpch_q12", True, "CASE inside sum over a joined column, array parameter in IN"),
    TpchQuery(14, "tpch_q14", True, "ratio of sums with CASE over a joined column, single row"),
    TpchQuery(18, "tpch_q18", True, "aggregate over a one_to_many join from root orders, HAVING, limit"),
    TpchQuery(19, "tpch_q19", True, "OR-heavy filter over two sources with IN/BETWEEN, measure only"),
]
BY_INPUT = {q.input: q for q in QUERIES}
