"""The registry of cxkpi check kinds: ``check: <kind>`` in a suite names one of them.

A check kind is a function ``(con, ctx, params) -> Outcome`` registered with
``@check_kind(name, params)``; each lives in its own module of ``cxkpi.gate.checks``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import duckdb


@dataclass(frozen=True)
class GateContext:
    """What the cxkpi checks may need besides the warehouse; each part is optional and a
    check that lacks its part is skipped (reported, counted as passed)."""

    warehouse: object  # the Warehouse (a path for a DuckDB file)
    published_path: Path | None = None
    run_id: str | None = None
    logical_date: date | None = None
    published_tables: tuple[str, ...] | None = None  # schema.table of what is published


@dataclass
class Outcome:
    """What a check function returns."""

    success: bool
    unexpected_count: int | None = None
    sample: list = field(default_factory=list)
    message: str = ""
    skipped: str | None = None
    observed: dict = field(default_factory=dict)

    @classmethod
    def skip(cls, reason: str) -> Outcome:
        return cls(True, skipped=reason, message=f"skipped: {reason}")


@dataclass(frozen=True)
class Param:
    type: str  # table | column | share | ratio | number | days | names | bounds | bool
    required: bool = False
    default: Any = None


CheckFunction = Callable[[duckdb.DuckDBPyConnection, GateContext, dict[str, Any]], Outcome]


@dataclass(frozen=True)
class CheckKind:
    name: str
    function: CheckFunction
    params: dict[str, Param]
    table: Callable[[dict[str, Any]], str]  # the table named in messages
    label: Callable[[dict[str, Any]], str]
    # reads only what the night's load wrote (raw.*): runs right after loading, before dbt
    checks_the_load: bool = False
    # its verdict depends on the night (its logical date or run), not only on the
    # warehouse's contents: it runs again on a night that built nothing new
    checks_the_night: bool = False


CHECK_KINDS: dict[str, CheckKind] = {}


def check_kind(
    name: str,
    params: dict[str, Param],
    table: str | Callable[[dict[str, Any]], str] = lambda p: p["table"],
    label: Callable[[dict[str, Any]], str] | None = None,
    checks_the_load: bool = False,
    checks_the_night: bool = False,
) -> Callable[[CheckFunction], CheckFunction]:
    """Register a cxkpi check kind: ``check: <name>`` in a suite runs the function."""

    def register(function: CheckFunction) -> CheckFunction:
        CHECK_KINDS[name] = CheckKind(
            name,
            function,
            params,
            (lambda p: table) if isinstance(table, str) else table,
            label or (lambda p: name),
            checks_the_load,
            checks_the_night or checks_the_load,
        )
        return function

    return register
