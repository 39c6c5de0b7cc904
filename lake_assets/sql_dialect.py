"""SQL written once in DuckDB's dialect, turned into BigQuery's by sqlglot (no Dagster import).

The marts and the checks' queries are written for DuckDB, which runs them locally as they are.
For BigQuery they are transpiled, not kept as a second copy. The one rewrite sqlglot cannot know
to make: our timestamps are DATETIME in BigQuery (no time zone), so a difference of two of them is
DATETIME_DIFF, not DATE_DIFF.
"""

from __future__ import annotations

import functools

import sqlglot
from sqlglot import exp


def _datetime_diff(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.DateDiff):
        return exp.DatetimeDiff(
            this=node.this, expression=node.expression, unit=node.args.get("unit")
        )
    return node


@functools.lru_cache(maxsize=256)
def to_bigquery(duckdb_sql: str) -> str:
    """The same query in BigQuery's dialect; DuckDB's $name parameters become @name."""
    statements = sqlglot.parse(duckdb_sql, read="duckdb")
    return ";\n".join(s.transform(_datetime_diff).sql("bigquery") for s in statements if s)
