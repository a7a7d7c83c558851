"""Scoped extracts (issue 13, role views): one DuckDB file, one Parquet file per table and
one report per scope, written into the version a publish stages.

Which rows a scope holds is data, declared next to each published model's contract
(``config.meta.scope`` in its YAML) and checked here, so a new published table without a
rule stops the publish instead of leaking:

``unit_values``  aggregate values per org unit (``column`` names the unit): the units of
                 the scope's subtree, plus its ancestors at the levels the access file lets
                 its scope level see (``sees_above``) - never a sibling's rows; optionally
                 only the ancestors' rows meeting ``ancestors_where`` (a SQL condition);
``unit_records`` one row per record owned by a unit (a verbatim, a case): the subtree's
                 only, never an ancestor's;
``follows``      rows that belong to rows of another table (``table``) by a key (``column``);
``company``      whole-company analyses (HQ's aggregates): only scopes that see the top level;
``reference``    definitions every scope needs (catalog, topics): all rows.

Every extract has every table (empty where the scope sees none of it, so one dashboard
serves every scope) and the table ``extract_scope`` telling which scope it is.

Unchanged scopes are not rewritten: a scope's fingerprint is a hash of its rule set, units
and the content of every table it holds (row count and an order-independent sum of row
hashes, computed in DuckDB without writing anything). A version whose scope has the same
fingerprint lends its files by hard link, which is also how a rollback restores the
extracts and reports of the version it restores.

A version archives a scope's Parquet files and report (checksummed, read-only); the DuckDB
file readers open lives beside the current main extract and is built from the same rows -
written directly for a new scope, loaded from the archived Parquet for a reused one - so
each version pays for the scope's rows once, not twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb

from cxkpi.access import Access, check_units
from cxkpi.errors import PublishError
from cxkpi.loader import file_sha256
from cxkpi.warehouse import quote_ident, quote_literal

log = logging.getLogger(__name__)

SCOPES = "scopes"
EXTRACT_FILE = "cx.duckdb"
REPORT_FILE = "report.html"
SCOPE_TABLE = "extract_scope"
# Bump when what an extract or report holds changes: every scope is then written afresh.
EXTRACT_FORMAT = 2
PER_WORKER = 4  # reports per drawing process below which one process draws them all
ROW_RULES = {
    "unit_values": "aggregates per unit: the subtree and the ancestors its level may see",
    "unit_records": "records owned by a unit: the subtree's only",
    "follows": "rows of another table's rows, by a key",
    "company": "whole-company analyses: scopes that see the top level",
    "reference": "definitions: every scope",
}
_RULE_KEYS = {"unit_values": {"column"}, "unit_records": {"column"}, "follows": {"table", "column"}}
# optional keys: ancestors_where, a condition on the ancestors' rows a scope holds (a
# store's extract needs HQ's weekly and monthly values to compare with, not HQ's 35,000
# daily breakdown rows, 80 % of its file)
_OPTIONAL_KEYS = {"unit_values": {"ancestors_where"}}
# Not in any extract: the publish history names runs and the whole company's audit.
UNSCOPED = {"publish_log"}
_SQL_TYPES = {str: "varchar", int: "integer", bool: "boolean", type(None): "varchar"}


@dataclass(frozen=True)
class TableRule:
    table: str
    rows: str
    column: str | None = None
    parent: str | None = None
    ancestors_where: str | None = None  # unit_values: which of the ancestors' rows


@dataclass(frozen=True)
class Scope:
    unit: str
    name: str
    level: str
    subtree: tuple[str, ...]  # the unit and every unit below it
    aggregates: tuple[str, ...]  # ancestors whose aggregate values it may see
    sees_company: bool
    children: tuple[str, ...]  # the scopes at the next scope level inside it (drill-down)
    parent: str | None  # the scope at the level above that holds it, if any


@dataclass
class ScopesResult:
    entries: dict[str, dict] = field(default_factory=dict)  # unit -> manifest entry
    written: int = 0
    reused: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)


def table_rules(models: list[dict]) -> dict[str, TableRule]:
    """Each published table's row rule, from its ``scope`` meta; PublishError naming every
    table whose rule is missing or wrong."""
    rules: dict[str, TableRule] = {}
    problems = []
    names = {m["name"] for m in models}
    for model in models:
        name = model["name"]
        if name in UNSCOPED:
            continue
        meta = model.get("scope")
        if not isinstance(meta, dict) or meta.get("rows") not in ROW_RULES:
            problems.append(
                f"{name}: declare which rows each scope gets as config.meta.scope.rows, one of "
                + ", ".join(ROW_RULES)
            )
            continue
        rows = meta["rows"]
        needed = _RULE_KEYS.get(rows, set())
        extra = set(meta) - {"rows"} - needed - _OPTIONAL_KEYS.get(rows, set())
        missing = needed - set(meta)
        if missing or extra:
            problems.append(
                f"{name}: rows {rows} takes {sorted(needed) or 'no other key'}"
                + (f"; missing {sorted(missing)}" if missing else "")
                + (f"; unknown {sorted(extra)}" if extra else "")
            )
            continue
        column = meta.get("column")
        if column is not None and model.get("columns") and column not in model["columns"]:
            problems.append(f"{name}: scope column {column!r} is not a column of the table")
            continue
        parent = meta.get("table")
        if parent is not None and parent not in names:
            problems.append(f"{name}: follows {parent!r}, which is not a published table")
            continue
        rules[name] = TableRule(name, rows, column, parent, meta.get("ancestors_where"))
    for rule in rules.values():
        followed = rules.get(rule.parent or "")
        if rule.rows == "follows" and followed is not None and followed.rows == "follows":
            problems.append(f"{rule.table}: follows {rule.parent}, which itself follows a table")
    if problems:
        raise PublishError(
            "the published tables' scope rules are incomplete (dbt model YAML, "
            "config.meta.scope):\n  " + "\n  ".join(problems)
        )
    return rules


def plan_scopes(con: duckdb.DuckDBPyConnection, access: Access, org_levels: tuple[str, ...]):
    """The scopes of the access file over the org units in ``dim_org_units`` (of the
    connection's default database), top level first."""
    rows = con.execute(
        "select org_unit_id, org_level, org_unit_name, "
        + ", ".join(quote_ident(f"{level}_id") for level in org_levels)
        + " from dim_org_units order by level_depth, org_unit_id"
    ).fetchall()
    path = {r[0]: dict(zip(org_levels, r[3:], strict=True)) for r in rows}
    level_of = {r[0]: r[1] for r in rows}
    name_of = {r[0]: r[2] or r[0] for r in rows}
    scope_levels = [s for s in access.scope_levels if s.level in org_levels]
    scope_levels.sort(key=lambda s: org_levels.index(s.level))
    scoped = {s.level for s in scope_levels}
    top = org_levels[0]
    scopes = []
    for position, scope_level in enumerate(scope_levels):
        below = scope_levels[position + 1].level if position + 1 < len(scope_levels) else None
        above = [s.level for s in scope_levels[:position]]
        for unit, level in level_of.items():
            if level != scope_level.level:
                continue
            subtree = tuple(u for u in path if path[u].get(level) == unit)
            aggregates = tuple(
                path[unit][ancestor]
                for ancestor in scope_level.sees_above
                if path[unit].get(ancestor) is not None
            )
            scopes.append(
                Scope(
                    unit=unit,
                    name=name_of[unit],
                    level=level,
                    subtree=subtree,
                    aggregates=aggregates,
                    sees_company=level == top or top in scope_level.sees_above,
                    children=tuple(u for u in subtree if below and level_of[u] == below),
                    parent=next(
                        (path[unit][a] for a in reversed(above) if a in scoped and path[unit][a]),
                        None,
                    ),
                )
            )
    return scopes


def _selection(rule: TableRule, rules: dict[str, TableRule], scope: Scope) -> str:
    """The query of a table's rows a scope holds, reading the attached source ``src``
    and the temporary unit lists of the scope."""
    source = f"src.main.{quote_ident(rule.table)}"
    if rule.rows == "reference":
        return f"select * from {source}"
    if rule.rows == "company":
        return f"select * from {source} where {'true' if scope.sees_company else 'false'}"
    column = quote_ident(rule.column or "")
    if rule.rows == "unit_records":
        return f"select * from {source} where {column} in (select unit from scope_units)"
    if rule.rows == "unit_values":
        ancestors = f" and ({rule.ancestors_where})" if rule.ancestors_where else ""
        return (
            f"select * from {source} where {column} in (select unit from scope_units) or "
            f"({column} in (select unit from scope_aggregate_units){ancestors})"
        )
    parent = rules[rule.parent or ""]
    return (
        f"select * from {source} where {column} in "
        f"(select {column} from ({_selection(parent, rules, scope)}))"
    )


def _ordered(rules: dict[str, TableRule], tables: list[str]) -> list[str]:
    """Tables in publish order, a table that follows another after it."""
    return sorted(tables, key=lambda t: (rules[t].rows == "follows", t))


def _scope_row(scope: Scope) -> dict:
    return {
        "scope_unit_id": scope.unit,
        "scope_unit_name": scope.name,
        "scope_level": scope.level,
        "subtree_units": len(scope.subtree),
        "aggregate_unit_ids": ",".join(scope.aggregates),
        "sees_company": scope.sees_company,
        "child_scope_ids": ",".join(scope.children),
        "parent_scope_id": scope.parent,
        "extract_format": EXTRACT_FORMAT,
    }


def _fingerprint(con, scope: Scope, rules: dict[str, TableRule], tables: list[str]) -> str:
    contents: dict[str, list] = {}
    for table in tables:
        selection = _selection(rules[table], rules, scope)
        count, total = con.execute(
            f"select count(*), coalesce(sum(hash(x)::hugeint), 0)::varchar from ({selection}) x"
        ).fetchone()
        columns = con.execute(f"describe {selection}").fetchall()
        contents[table] = [count, total, [(c[0], c[1]) for c in columns]]
    digest = {"scope": _scope_row(scope), "subtree": scope.subtree, "tables": contents}
    return hashlib.sha256(json.dumps(digest, sort_keys=True, default=str).encode()).hexdigest()


def _set_units(con, scope: Scope) -> None:
    con.execute("create or replace temp table scope_units (unit varchar)")
    con.execute("create or replace temp table scope_aggregate_units (unit varchar)")
    if scope.subtree:
        con.executemany("insert into scope_units values (?)", [(u,) for u in scope.subtree])
    if scope.aggregates:
        con.executemany(
            "insert into scope_aggregate_units values (?)", [(u,) for u in scope.aggregates]
        )


def _write_extract(
    con, live: Path, archive: Path, scope: Scope, rules: dict[str, TableRule], tables: list[str]
) -> dict[str, int]:
    """The scope's tables into the live DuckDB file readers open, and each as a Parquet file
    into the archive (the version's record, checksummed and kept)."""
    con.execute(f"attach {quote_literal(live / EXTRACT_FILE)} as scope")
    rows = {}
    try:
        con.execute("begin transaction")  # one commit for the file, not one per table
        for table in tables:
            con.execute(
                f"create table scope.main.{quote_ident(table)} as "
                + _selection(rules[table], rules, scope)
            )
        described = _scope_row(scope)
        con.execute(
            f"create table scope.main.{SCOPE_TABLE} as select "
            + ", ".join(
                f"?::{_SQL_TYPES[type(value)]} as {quote_ident(key)}"
                for key, value in described.items()
            ),
            list(described.values()),
        )
        con.execute("commit")
        for table in [*tables, SCOPE_TABLE]:
            target = f"scope.main.{quote_ident(table)}"
            file = archive / f"{table}.parquet"
            con.execute(
                f"copy {target} to {quote_literal(file)} (format parquet, compression zstd)"
            )
            count = con.execute(f"select count(*) from {target}").fetchone()
            rows[table] = int(count[0]) if count else 0
        con.execute("checkpoint scope")
    finally:
        con.execute("detach scope")
    del rows[SCOPE_TABLE]
    return rows


def extract_from_parquet(archive: Path, database: Path) -> None:
    """A scope's DuckDB extract built from its archived Parquet files: how a reused scope, a
    rollback and ``cxkpi report`` get the file without archiving it twice."""
    con = duckdb.connect(str(database))
    try:
        con.execute("begin transaction")
        for file in sorted(archive.glob("*.parquet")):
            con.execute(
                f"create table {quote_ident(file.stem)} as "
                f"select * from read_parquet({quote_literal(file)})"
            )
        con.execute("commit")
    finally:
        con.close()


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system: a copy
        shutil.copyfile(source, target)


def _reusable(previous: list[tuple[Path, dict]], unit: str, fingerprint: str):
    """A kept version's scope folder and entry with this fingerprint, files all present."""
    for folder, manifest in previous:
        entry = (manifest.get(SCOPES) or {}).get(unit)
        if entry and entry.get("fingerprint") == fingerprint:
            scope_folder = folder / SCOPES / unit
            if all((scope_folder / name).is_file() for name in entry["files"]):
                return scope_folder, entry
    return None


def write_scopes(
    database: Path,
    staging: Path,
    live_staging: Path,
    access: Access,
    org_levels: tuple[str, ...],
    models: list[dict],
    previous: list[tuple[Path, dict]],
    version: int,
    fsync: Callable[[Path], None],
    render_report: Callable[[Path, Path], None],
) -> ScopesResult:
    """Write every scope of the access file into the staged version: ``staging/scopes/<unit>/``
    (the archive: one Parquet file per table and the report, checksummed) and
    ``live_staging/scopes/<unit>/`` (what readers open: the DuckDB extract and the report).
    ``previous``: kept versions' folders and manifests to reuse from."""
    started = time.perf_counter()
    result = ScopesResult()
    (live_staging / SCOPES).mkdir()
    if not access.scope_levels:
        return result
    rules = table_rules(models)
    con = duckdb.connect()
    try:
        con.execute(f"attach {quote_literal(database)} as src (read_only)")
        con.execute("use src")
        scopes = plan_scopes(con, access, org_levels)
        levels = dict(con.execute("select org_unit_id, org_level from dim_org_units").fetchall())
        result.problems = check_units(access, levels)
        con.execute("use memory")
        tables = _ordered(rules, [m["name"] for m in models if m["name"] in rules])
        written: dict[str, dict] = {}
        for scope in scopes:
            _set_units(con, scope)
            fingerprint = _fingerprint(con, scope, rules, tables)
            archive = staging / SCOPES / scope.unit
            live = live_staging / SCOPES / scope.unit
            archive.mkdir(parents=True)
            live.mkdir()
            found = _reusable(previous, scope.unit, fingerprint)
            if found:
                source, entry = found
                for name in entry["files"]:
                    _link_or_copy(source / name, archive / name)
                extract_from_parquet(archive, live / EXTRACT_FILE)
                result.entries[scope.unit] = entry
                result.reused += 1
            else:
                rows = _write_extract(con, live, archive, scope, rules, tables)
                written[scope.unit] = {
                    **asdict(scope),
                    "fingerprint": fingerprint,
                    "written_in_version": version,
                    "rows": rows,
                }
    finally:
        con.close()
    _render_all(
        render_report,
        [
            (live_staging / SCOPES / u / EXTRACT_FILE, staging / SCOPES / u / REPORT_FILE)
            for u in written
        ],
    )
    for unit, entry in written.items():
        archive = staging / SCOPES / unit
        entry["files"] = {p.name: file_sha256(p) for p in sorted(archive.iterdir())}
        result.entries[unit] = entry
        result.written += 1
    for unit in result.entries:
        archive, live = staging / SCOPES / unit, live_staging / SCOPES / unit
        shutil.copyfile(archive / REPORT_FILE, live / REPORT_FILE)
        for file in [*archive.iterdir(), *live.iterdir()]:
            fsync(file)
    result.entries = dict(sorted(result.entries.items()))
    result.seconds = time.perf_counter() - started
    return result


def _render_all(render_report: Callable[[Path, Path], None], jobs: list[tuple[Path, Path]]) -> None:
    """Each (extract, report) pair's report drawn. Drawing charts is single-threaded Python
    and Vega: more than a few reports are drawn by one process per core."""
    workers = min(os.cpu_count() or 1, 4, len(jobs) // PER_WORKER)
    if multiprocessing.current_process().daemon:  # (a daemon may not start processes)
        workers = 1
    if workers < 2:
        for extract, out in jobs:
            render_report(extract, out)
        return
    context = multiprocessing.get_context("spawn")  # no fork of a process holding DuckDB
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        for done in [pool.submit(render_report, extract, out) for extract, out in jobs]:
            done.result()
