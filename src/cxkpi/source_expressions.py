"""Derived columns of a source declaration: ``columns: {comment: {expr: "..."}}``.

An expression is SQL over the landing file's own columns, named as the file names them
(a name with spaces or other characters in double quotes: ``"Review Title"``), checked
with ``kpi_expr.SOURCE_GRAMMAR`` when the declaration is read and evaluated by DuckDB when
each file loads. Inside it every column is its value as text, trimmed, an empty value
NULL, exactly what a mapped column gives before it is typed: so
``concat_ws(' - ', title, message)`` with an empty title gives the message alone, and
``review_id || '-' || order_id`` is NULL (a missing key) when either part is missing.
The result is then mapped (``values:``), typed and checked like a mapped column's value.
"""

from __future__ import annotations

import duckdb
from sqlglot import exp

from cxkpi import kpi_expr
from cxkpi.warehouse import connect, quote_ident

# The loader's table of a file's rows, one text column per column of the file.
SOURCE_TABLE = "src"


def column_text(source_column: str) -> str:
    """A column of the file as the loader reads it: text, trimmed, empty = NULL."""
    return f"nullif(trim(cast({SOURCE_TABLE}.{quote_ident(source_column)} as varchar)), '')"


def parse_expression(text: object) -> kpi_expr.Expression:
    """The expression checked against the source grammar (ExpressionError if refused)."""
    return kpi_expr.parse(text, None, kpi_expr.SOURCE_GRAMMAR)


def evaluated_sql(expression: kpi_expr.Expression) -> str:
    """The expression over the file's columns as text, for one row of ``src``: '' when its
    result is NULL, and NULL only when it fails on the row's values (a cast of text that
    is not a number), so that the loader can reject that row with its reason."""

    def text_of(node: exp.Expression) -> exp.Expression:
        if not isinstance(node, exp.Column):
            return node
        # built as nodes, so sqlglot quotes the name (never text pasted into SQL)
        column = exp.column(node.name, table=SOURCE_TABLE, quoted=True)
        trimmed = exp.Trim(this=exp.cast(column, exp.DataType.Type.VARCHAR))
        return exp.Nullif(this=trimmed, expression=exp.Literal.string(""))

    rendered = expression.tree.copy().transform(text_of).sql(dialect="duckdb")
    return f"try(coalesce(cast(({rendered}) as varchar), ''))"


def bind_problem(expression: kpi_expr.Expression) -> str | None:
    """DuckDB's objection to the expression over text columns (the first line of it), or
    None: types that do not fit (text + 1) are refused before any file is read."""
    con = connect()
    try:
        # DuckDB matches names case-insensitively: names differing only in case are one
        # column here, and refused as such by the declaration's own check
        names = {c.lower(): c for c in expression.columns}.values()
        columns = ", ".join(f"{quote_ident(c)} varchar" for c in names)
        con.execute(f"create temp table {SOURCE_TABLE} ({columns or 'unused varchar'})")
        con.execute(f"select {evaluated_sql(expression)} from {SOURCE_TABLE}")
    except duckdb.Error as exc:
        return str(exc).splitlines()[0]
    finally:
        con.close()
    return None
