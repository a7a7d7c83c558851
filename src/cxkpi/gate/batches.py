"""The pandas batches Great Expectations validates: each suite's table, in pieces whose
size the setting bounds, with only the columns its expectations read.

GX validates pandas frames here (its SQL datasource is broken on DuckDB, GX issue 11579),
and a frame of a whole mart grows with the data: at ``--scale 100`` the marts took 8 GB
in pandas. So a table of more than ``CXKPI_GATE_PARTITION_ROWS`` rows (default 2 M) is
validated in partitions, each expectation on the partitions that give its verdict:

- a row-wise expectation (a GX map expectation: not null, in set, between, regex...) on
  any partition of the rows (``hash(rowid)``): it holds for the table if it holds for
  every part, and the unexpected rows of the table are those of the parts;
- a uniqueness expectation on partitions by the hash of its columns: equal values land in
  the same part, so the values are unique if they are unique within every part;
- a row count on a one-column frame of the whole table (a byte per row);
- anything else (``mostly``, a ``row_condition``, increasing values, statistics of a
  column) on one frame of the whole table, as before.

A table at or under the bound is one batch per suite, as GX always saw it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace

import duckdb

from cxkpi.gate.checks._common import table_sql
from cxkpi.gate.suites import Check, Suite
from cxkpi.warehouse import quote_ident

PARTITION_ROWS_ENV = "CXKPI_GATE_PARTITION_ROWS"
DEFAULT_PARTITION_ROWS = 2_000_000

# the arguments of GX's expectations that name the columns they read
_COLUMN_ARGUMENTS = ("column", "column_A", "column_B")
_COLUMN_LIST_ARGUMENTS = ("column_list", "column_set")
_ROW_COUNTS = frozenset({"ExpectTableRowCountToBeBetween", "ExpectTableRowCountToEqual"})
_UNIQUENESS = frozenset({"ExpectColumnValuesToBeUnique", "ExpectCompoundColumnsToBeUnique"})
# map expectations that compare a row with the rows before it
_ORDERED = frozenset({"ExpectColumnValuesToBeIncreasing", "ExpectColumnValuesToBeDecreasing"})


@dataclass(frozen=True)
class Batch:
    """Some of a suite's expectations (``suite.checks``) and the rows they are validated
    on (``sql``); ``part`` names a partition ("2-of-8"), empty for the whole table."""

    suite: Suite
    sql: str
    part: str = ""

    @property
    def name(self) -> str:
        """The batch's name in GX and in the evidence files: the suite's, or the suite's
        and the partition's."""
        return self.suite.name if not self.part else f"{self.suite.name}.{self.part}"


def partition_rows() -> int:
    return int(os.environ.get(PARTITION_ROWS_ENV) or DEFAULT_PARTITION_ROWS)


def expectation_columns(checks: list[Check]) -> str:
    """The select list of a batch: only the columns its expectations read. Every column
    when an expectation is about the table's columns or filters rows (``row_condition``:
    any column); a constant one when it only counts rows."""
    names: set[str] = set()
    for check in checks:
        assert check.expectation is not None
        if check.expectation.startswith("ExpectTableColumn") or check.kwargs.get("row_condition"):
            return "*"
        names.update(str(check.kwargs[k]) for k in _COLUMN_ARGUMENTS if k in check.kwargs)
        for key in _COLUMN_LIST_ARGUMENTS:
            names.update(str(c) for c in check.kwargs.get(key) or ())
    if not names:
        return "true as row_counted"
    return ", ".join(quote_ident(n) for n in sorted(names))


def _is_row_wise(check: Check) -> bool:
    import great_expectations as gx
    from great_expectations.expectations.expectation import (
        ColumnMapExpectation,
        ColumnPairMapExpectation,
        MulticolumnMapExpectation,
    )

    assert check.expectation is not None
    if check.expectation in _UNIQUENESS | _ORDERED:
        return False
    kind = getattr(gx.expectations, check.expectation)
    return issubclass(
        kind, (ColumnMapExpectation, ColumnPairMapExpectation, MulticolumnMapExpectation)
    )


def _partitioning(check: Check) -> tuple[str, ...] | None:
    """How ``check`` may be partitioned: by rows (``()``), by the hash of these columns,
    or not at all (None)."""
    assert check.expectation is not None
    if check.kwargs.get("mostly") not in (None, 1, 1.0) or check.kwargs.get("row_condition"):
        return None  # a share of rows, or rows picked by any column: the whole table
    if check.expectation in _UNIQUENESS:
        return tuple(check.kwargs.get("column_list") or [check.kwargs["column"]])
    return () if _is_row_wise(check) else None


def _is_base_table(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    schema, name = table.split(".")
    found = con.execute(
        """select count(*) from information_schema.tables
           where table_schema = ? and table_name = ? and table_type = 'BASE TABLE'""",
        [schema, name],
    ).fetchone()
    return bool(found and found[0])


def _batch(suite: Suite, group: list[Check], where: str = "", part: str = "") -> Batch:
    assert suite.table is not None
    sql = f"select {expectation_columns(group)} from {table_sql(suite.table)}{where}"
    return Batch(replace(suite, checks=tuple(group)), sql, part)


def _suite_batches(con: duckdb.DuckDBPyConnection, suite: Suite, bound: int) -> list[Batch]:
    assert suite.table is not None
    checks = suite.expectations
    try:
        counted = con.execute(f"select count(*) from {table_sql(suite.table)}").fetchone()
    except duckdb.Error:
        counted = None  # a missing table: GX says so on the whole-table batch
    rows = int(counted[0]) if counted else 0
    if rows <= bound or not _is_base_table(con, suite.table):
        return [_batch(suite, checks)]
    parts = math.ceil(rows / bound)
    whole: list[Check] = []
    counts: list[Check] = []
    by_key: dict[tuple[str, ...], list[Check]] = {}
    for check in checks:
        assert check.expectation is not None
        key = _partitioning(check)
        if check.expectation in _ROW_COUNTS:
            counts.append(check)
        elif key is None:
            whole.append(check)
        else:
            by_key.setdefault(key, []).append(check)
    batches = [_batch(suite, whole)] if whole else []
    if counts:
        batches.append(_batch(suite, counts, part="row-count"))
    for key, group in by_key.items():
        hashed = f"hash({', '.join(quote_ident(c) for c in key)})" if key else "hash(rowid)"
        by = "rows" if not key else "by-" + "-".join(key)
        batches.extend(
            _batch(suite, group, f" where {hashed} % {parts} = {i}", f"{by}.{i + 1}-of-{parts}")
            for i in range(parts)
        )
    return batches


def plan(con: duckdb.DuckDBPyConnection, suites: list[Suite], bound: int) -> list[Batch]:
    """The batches that validate every expectation of ``suites`` (each with a table)."""
    return [batch for suite in suites for batch in _suite_batches(con, suite, bound)]
