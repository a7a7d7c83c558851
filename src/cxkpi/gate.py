"""The quality gate: the suites of ``expectations/``, run before anything is published.

A suite holds two kinds of checks:

* **Great Expectations expectations** (``expect: ...``) audit the marts about to be
  published, read into pandas batches: GX's SQL datasource is broken on DuckDB upstream
  (GX issue 11579) while its pandas datasource is correct, and the published marts are
  aggregates, small enough for memory.
* **cxkpi checks** (``check: <kind>``) need what GX does not have: the run (its id and
  logical date), the load registry, the last published version. They are SQL run by DuckDB
  in the warehouse, so they scale with the database, not with memory (see
  docs/quality-gate.md). Kinds: ``load_rejects``, ``empty_files``, ``freshness``,
  ``volume_change``, ``kpi_movement``, ``pii_in_published``, ``withheld_texts``, ``orphans``.

dbt's own tests run earlier, inside ``dbt build``. A check with severity ``error`` blocks
the publish; ``warn`` is reported and published.

Suite file format::

    table: marts.kpi_values          # schema.table the expectations run on (optional
                                     # when the suite holds only cxkpi checks)
    checks:
      - expect: column_values_to_not_be_null   # any GX expectation, without "expect_"...
        column: kpi_value_id                   # ...and its arguments
        severity: error                        # error (default) or warn
      - check: volume_change                   # a cxkpi check kind...
        max_ratio: 10                          # ...and its parameters
        severity: error
"""

from __future__ import annotations

import json
import logging
import math
import re
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import yaml

from cxkpi import pii, publish
from cxkpi.canonical import ENTITIES
from cxkpi.errors import ConfigError, GateFailed
from cxkpi.warehouse import connect, quote_ident, quote_literal, writer_lock

log = logging.getLogger(__name__)
SEVERITIES = ("error", "warn")
_SAMPLE_ROWS = 5
_SAMPLE_TEXT = 160  # characters of a sampled value shown in a message


# === suites ===============================================================================


@dataclass(frozen=True)
class Check:
    expectation: str | None  # GX class name (ExpectColumnValuesToNotBeNull), None for cxkpi
    kwargs: dict[str, Any]  # GX arguments, or the cxkpi check's parameters (defaults filled)
    severity: str
    label: str  # as the suite file wrote it, for messages
    kind: str = "expect"  # "expect" or a cxkpi check kind
    table: str = ""  # the table the check is about, for messages


@dataclass(frozen=True)
class Suite:
    name: str
    table: str | None  # schema.table of the expectations
    checks: tuple[Check, ...]
    path: Path

    @property
    def expectations(self) -> list[Check]:
        return [c for c in self.checks if c.expectation is not None]

    @property
    def cxkpi_checks(self) -> list[Check]:
        return [c for c in self.checks if c.expectation is None]


@dataclass
class CheckResult:
    suite: str
    table: str
    check: str
    severity: str
    success: bool
    unexpected_count: int | None = None
    sample: list = field(default_factory=list)
    message: str = ""  # what was found, in words (cxkpi checks)
    skipped: str | None = None  # why a check could not run (counted as passed)
    observed: dict = field(default_factory=dict)  # the numbers behind the verdict

    def describe(self) -> str:
        rows = "" if self.unexpected_count is None else f", {self.unexpected_count} rows"
        message = f": {self.message}" if self.message else ""
        sample = f", e.g. {self.sample[:_SAMPLE_ROWS]}" if self.sample else ""
        return f"{self.table}: {self.check} [{self.severity}]{rows}{message}{sample}"


@dataclass
class GateReport:
    results: list[CheckResult] = field(default_factory=list)
    run_id: str | None = None
    logical_date: str | None = None
    evidence_dir: Path | None = None

    @property
    def errors(self) -> list[CheckResult]:
        return [r for r in self.results if not r.success and r.severity == "error"]

    @property
    def warnings(self) -> list[CheckResult]:
        return [r for r in self.results if not r.success and r.severity == "warn"]

    @property
    def skipped(self) -> list[CheckResult]:
        return [r for r in self.results if r.skipped]

    @property
    def status(self) -> str:
        return "failed" if self.errors else "warned" if self.warnings else "passed"

    def summary(self) -> dict[str, int]:
        passed = sum(r.success for r in self.results)
        return {"passed": passed, "warned": len(self.warnings), "failed": len(self.errors)}


# --- cxkpi check kinds --------------------------------------------------------------------


@dataclass(frozen=True)
class GateContext:
    """What the cxkpi checks may need besides the warehouse; each part is optional and a
    check that lacks its part is skipped (reported, counted as passed)."""

    warehouse: Path
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


CHECK_KINDS: dict[str, CheckKind] = {}


def check_kind(
    name: str,
    params: dict[str, Param],
    table: str | Callable[[dict[str, Any]], str] = lambda p: p["table"],
    label: Callable[[dict[str, Any]], str] | None = None,
) -> Callable[[CheckFunction], CheckFunction]:
    """Register a cxkpi check kind: ``check: <name>`` in a suite runs the function."""

    def register(function: CheckFunction) -> CheckFunction:
        CHECK_KINDS[name] = CheckKind(
            name,
            function,
            params,
            (lambda p: table) if isinstance(table, str) else table,
            label or (lambda p: name),
        )
        return function

    return register


def _validate_param(name: str, spec: Param, value: Any) -> Any:
    def fail(expected: str) -> ConfigError:
        return ConfigError(f"parameter {name!r} must be {expected}, got {value!r}")

    number = isinstance(value, int | float) and not isinstance(value, bool)
    if spec.type == "table":
        if not isinstance(value, str) or value.count(".") != 1:
            raise fail("schema.table")
    elif spec.type == "column":
        if not isinstance(value, str) or not value:
            raise fail("a column name")
    elif spec.type == "share":
        if not number or not 0 <= value <= 1:
            raise fail("a share between 0 and 1 (0.05 = 5%)")
    elif spec.type == "ratio":
        if not number or value <= 1:
            raise fail("a ratio above 1 (3 = three times more or less)")
    elif spec.type in ("number", "days"):
        if not number or value < 0:
            raise fail("a number >= 0")
    elif spec.type == "names":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise fail("a list of names")
    elif spec.type == "bounds":
        if number and value >= 0:
            return {"default": value}
        if not isinstance(value, dict) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and v >= 0
            for v in value.values()
        ):
            raise fail("a number or a mapping of unit to number, e.g. {points: 30}")
        return {str(k): v for k, v in value.items()}
    elif spec.type == "bool" and not isinstance(value, bool):
        raise fail("true or false")
    return value


def _parse_cxkpi_check(raw: dict, suite_table: str | None) -> Check:
    kind_name = str(raw["check"])
    kind = CHECK_KINDS.get(kind_name)
    if kind is None:
        raise ConfigError(f"unknown check kind {kind_name!r}; known: {sorted(CHECK_KINDS)}")
    given = {k: v for k, v in raw.items() if k not in ("check", "severity")}
    if "table" in kind.params and "table" not in given and suite_table:
        given["table"] = suite_table
    unknown = sorted(set(given) - set(kind.params))
    if unknown:
        raise ConfigError(
            f"{kind_name}: unknown parameter(s) {unknown}; known: {sorted(kind.params)}"
        )
    params: dict[str, Any] = {}
    for name, spec in kind.params.items():
        if name in given:
            params[name] = _validate_param(name, spec, given[name])
        elif spec.required:
            raise ConfigError(f"{kind_name}: parameter {name!r} is required")
        else:
            params[name] = spec.default
    return Check(
        None,
        params,
        str(raw.get("severity", "error")),
        kind.label(params),
        kind_name,
        kind.table(params),
    )


def _expectation_class_name(name: str) -> str:
    name = name.removeprefix("expect_")
    return "Expect" + "".join(part.capitalize() for part in name.split("_"))


def _parse_expectation(raw: dict, table: str | None) -> Check:
    import great_expectations as gx

    if table is None:
        raise ConfigError("an expectation needs the suite's 'table: schema.table'")
    kwargs = {k: v for k, v in raw.items() if k not in ("expect", "severity")}
    class_name = _expectation_class_name(str(raw["expect"]))
    if not hasattr(gx.expectations, class_name):
        raise ConfigError(
            f"{raw['expect']!r} is not a Great Expectations expectation "
            f"(looked for gx.expectations.{class_name})"
        )
    label = str(raw["expect"]) + (f"({raw['column']})" if "column" in raw else "")
    return Check(class_name, kwargs, str(raw.get("severity", "error")), label, "expect", table)


def load_suites(directory: Path) -> list[Suite]:
    suites = []
    for path in sorted([*directory.glob("*.yml"), *directory.glob("*.yaml")]):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("checks"), list):
            raise ConfigError(f"{path}: a suite needs 'checks: [...]' (and 'table: schema.table')")
        table = str(data["table"]) if data.get("table") is not None else None
        if table is not None and table.count(".") != 1:
            raise ConfigError(f"{path}: table must be schema.table, got {table!r}")
        checks = []
        for i, raw in enumerate(data["checks"], start=1):
            if not isinstance(raw, dict) or ("expect" in raw) == ("check" in raw):
                raise ConfigError(
                    f"{path}: check {i}: needs either 'expect: <expectation name>' "
                    "or 'check: <cxkpi check kind>'"
                )
            if raw.get("severity", "error") not in SEVERITIES:
                raise ConfigError(f"{path}: check {i}: severity must be one of {SEVERITIES}")
            try:
                if "expect" in raw:
                    checks.append(_parse_expectation(raw, table))
                else:
                    checks.append(_parse_cxkpi_check(raw, table))
            except ConfigError as exc:
                raise ConfigError(f"{path}: check {i}: {exc}") from None
        suites.append(Suite(path.stem, table, tuple(checks), path))
    return suites


# === helpers for check functions ==========================================================


def _table_sql(table: str) -> str:
    schema, name = table.split(".")
    return f"{quote_ident(schema)}.{quote_ident(name)}"


def _table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    schema, name = table.split(".")
    found = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, name],
    ).fetchone()
    return bool(found and found[0])


def _require_table(con: duckdb.DuckDBPyConnection, table: str) -> Outcome | None:
    """A missing table fails the check (it is not silently passed)."""
    if _table_exists(con, table):
        return None
    return Outcome(False, message=f"table {table} does not exist in the warehouse")


def _rows(cursor: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def mask_pii(text: str) -> str:
    """``text`` with personal data replaced by [email], [phone]... (cxkpi.pii)."""
    return pii.detector().mask(text)


def _shown(value: Any) -> Any:
    """A sampled value as it may appear in a message: PII masked, long text shortened."""
    if isinstance(value, str):
        text = mask_pii(value)
        return text if len(text) <= _SAMPLE_TEXT else text[: _SAMPLE_TEXT - 1] + "…"
    if isinstance(value, datetime | date):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    if isinstance(value, float):
        return round(value, 3)
    return value


def _shown_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: _shown(v) for k, v in row.items()}


def _pct(share: float) -> str:
    return f"{share:.1%}"


# === the check kinds ======================================================================


_LOAD_SCOPE = """
    -- files of this run; a file with the content of one loaded before under another
    -- path is a re-delivery: its rows were loaded (or rejected) then, it adds nothing.
    with run_files as (
        select f.*,
               exists (
                   select 1 from raw.load_files b
                   where b.file_sha256 = f.file_sha256 and b.source_file <> f.source_file
                     and b.status in ('loaded', 'replaced') and b.loaded_at <= f.loaded_at
               ) as redelivered
        from raw.load_files f
        where f.batch_id = $run_id
    )
"""


def _source_filter(params: dict[str, Any], column: str = "source_name") -> str:
    if not params.get("sources"):
        return ""
    names = ", ".join("'" + s.replace("'", "''") + "'" for s in params["sources"])
    return f" and {column} in ({names})"


def _reason_pattern(reason: str, entity_name: str | None = None) -> str:
    """A reject reason without its row's values, so reasons group: "nps: 11 is above the
    maximum 10" and "nps: 12 ..." are both "nps: … is above the maximum 10"."""
    keys = ", ".join(ENTITIES[entity_name].primary_key) if entity_name in ENTITIES else None
    parts = []
    for part in reason.split("; "):
        part = re.sub(r"^(\w+): '.*' is not ", r"\1: '…' is not ", part)
        part = re.sub(r"^(\w+): -?[0-9.eE+-]+ is (above|below)", r"\1: … is \2", part)
        if keys and part.startswith(f"duplicate {keys} "):
            if " within the file (first at record " in part:
                part = f"duplicate {keys} … within the file"
            elif ": already loaded from " in part:
                part = f"duplicate {keys} …: already loaded"
        parts.append(part[:120])
    return "; ".join(parts)


@check_kind(
    "load_rejects",
    {"max_share": Param("share", required=True), "sources": Param("names")},
    table="raw.load_rejects",
    label=lambda p: (
        "load_rejects("
        + "".join(f"{source}, " for source in p["sources"] or ())
        + f"max_share={p['max_share']:g})"
    ),
)
def check_load_rejects(con, ctx: GateContext, params: dict[str, Any]) -> Outcome:
    """Share of rows of this run's files rejected by the loader, per source."""
    if ctx.run_id is None:
        return Outcome.skip("no run_id given: the run's loads are unknown")
    if not _table_exists(con, "raw.load_files"):
        return Outcome.skip("nothing was ever loaded (no raw.load_files)")
    args = {"run_id": ctx.run_id}
    sources = _rows(
        con.execute(
            _LOAD_SCOPE
            + f"""
            select source_name,
                   sum(rows_read) filter (where not redelivered) as rows_read,
                   sum(rows_rejected) filter (where not redelivered) as rows_rejected,
                   count(*) filter (where redelivered) as redelivered_files,
                   count(*) as files
            from run_files where true {_source_filter(params)}
            group by source_name order by source_name""",
            args,
        )
    )
    failing, observed = [], {}
    for s in sources:
        read, rejected = int(s["rows_read"] or 0), int(s["rows_rejected"] or 0)
        share = rejected / read if read else 0.0
        observed[s["source_name"]] = {
            "files": s["files"],
            "redelivered_files": s["redelivered_files"],
            "rows_read": read,
            "rows_rejected": rejected,
            "share": round(share, 4),
        }
        if rejected and share > params["max_share"]:
            failing.append((s["source_name"], read, rejected, share))
    if not failing:
        return Outcome(True, 0, observed={"sources": observed})
    messages, sample = [], []
    for name, read, rejected, share in failing:
        reasons = con.execute(
            _LOAD_SCOPE
            + """
            select r.entity, r.reason, count(*) as n
            from raw.load_rejects r
            inner join run_files f using (source_file, file_sha256)
            where r.batch_id = $run_id and r.source_name = $source and not f.redelivered
            group by all order by n desc, min(r.source_record) limit 1000""",
            {**args, "source": name},
        ).fetchall()
        grouped: dict[str, int] = {}
        for entity_name, reason, n in reasons:
            key = _reason_pattern(reason or "no reason recorded", entity_name)
            grouped[key] = grouped.get(key, 0) + n
        top = sorted(grouped.items(), key=lambda kv: -kv[1])[:3]
        messages.append(
            f"{name} rejected {rejected} of {read} rows ({_pct(share)}, max "
            f"{_pct(params['max_share'])}); top reasons: "
            + ", ".join(f"{n}x {reason!r}" for reason, n in top)
        )
        rows = _rows(
            con.execute(
                _LOAD_SCOPE
                + """
                select r.source_name as source, r.source_file as file,
                       r.source_record as record, r.reason, r.raw_values
                from raw.load_rejects r
                inner join run_files f using (source_file, file_sha256)
                where r.batch_id = $run_id and r.source_name = $source and not f.redelivered
                order by r.source_file, r.source_record nulls first limit $n""",
                {**args, "source": name, "n": _SAMPLE_ROWS},
            )
        )
        for row in rows:
            row["file"] = Path(row["file"]).name if row["file"] else None
            # masked first, then cut: enough to find the record (the reason says why)
            raw = mask_pii(row["raw_values"] or "")
            row["raw_values"] = raw if len(raw) <= 120 else raw[:119] + "…"
        sample.extend(_shown_row(r) for r in rows)
    return Outcome(
        False,
        sum(f[2] for f in failing),
        sample[:_SAMPLE_ROWS],
        "; ".join(messages),
        observed={"sources": observed},
    )


@check_kind(
    "empty_files",
    {"sources": Param("names")},
    table="raw.load_files",
)
def check_empty_files(con, ctx: GateContext, params: dict[str, Any]) -> Outcome:
    """Files of this run that held no record (0 bytes, or a header only)."""
    if ctx.run_id is None:
        return Outcome.skip("no run_id given: the run's loads are unknown")
    if not _table_exists(con, "raw.load_files"):
        return Outcome.skip("nothing was ever loaded (no raw.load_files)")
    rows = _rows(
        con.execute(
            f"""select source_name as source, source_file as file, status, file_bytes,
                       message
                from raw.load_files
                where batch_id = $run_id and rows_read = 0
                  and status in ('loaded', 'replaced', 'empty') {_source_filter(params)}
                order by source_name, source_file""",
            {"run_id": ctx.run_id},
        )
    )
    if not rows:
        return Outcome(True, 0)
    for row in rows:
        row["file"] = Path(row["file"]).name
    names = ", ".join(f"{r['source']}: {r['file']}" for r in rows)
    return Outcome(
        False,
        len(rows),
        [_shown_row(r) for r in rows[:_SAMPLE_ROWS]],
        f"{len(rows)} file(s) of this run have no records ({names}): did an export fail?",
    )


@check_kind(
    "freshness",
    {
        "table": Param("table", required=True),
        "column": Param("column", required=True),
        "max_lag_days": Param("days", default=0),
    },
    label=lambda p: f"freshness({p['column']})",
)
def check_freshness(con, ctx: GateContext, params: dict[str, Any]) -> Outcome:
    """The newest value of a timestamp column reaches the logical date minus the lag.

    Values later than the day after the logical date are not counted (a garbled future
    timestamp must not make stale data look fresh); their number is reported.
    """
    if ctx.logical_date is None:
        return Outcome.skip("no logical date given")
    missing = _require_table(con, params["table"])
    if missing:
        return missing
    column = quote_ident(params["column"])
    horizon = ctx.logical_date + timedelta(days=2)
    found = con.execute(
        f"""select max({column}) filter (where {column} < $horizon),
                   count(*) filter (where {column} >= $horizon), count({column})
            from {_table_sql(params["table"])}""",
        {"horizon": horizon},
    ).fetchone()
    assert found is not None
    latest, future, count = found
    required = ctx.logical_date - timedelta(days=params["max_lag_days"])
    latest_day = latest.date() if isinstance(latest, datetime) else latest
    observed = {
        "latest": _shown(latest),
        "required_from": required.isoformat(),
        "logical_date": ctx.logical_date.isoformat(),
        "rows_with_values": count,
        "rows_after_horizon": future,
    }
    if latest_day is not None and latest_day >= required:
        return Outcome(True, observed=observed)
    lag = (ctx.logical_date - latest_day).days if latest_day else None
    what = (
        f"latest {params['column']} is {_shown(latest)}, {lag} day(s) before"
        if latest_day
        else f"no {params['column']} value at all up to"
    )
    beyond = f"; {future} value(s) after {horizon} ignored" if future else ""
    return Outcome(
        False,
        None,
        [observed],
        f"{what} the logical date {ctx.logical_date} (allowed lag: "
        f"{params['max_lag_days']:g} day(s)){beyond}: is a source file missing?",
        observed=observed,
    )


def _published_parquet(published: Path | None, table: str) -> Path | None:
    """The current published version's archived Parquet file of ``table`` (None if nothing
    is published or the table is not in it): immutable, so a BI client holding the live
    ``cx.duckdb`` open, even read-write, cannot block or change the comparison."""
    if published is None:
        return None
    archive = publish.current_archive(published.parent)
    if archive is None or not (archive / f"{table}.parquet").is_file():
        return None
    return archive / f"{table}.parquet"


def _last_publish(published: Path | None) -> dict[str, Any] | None:
    log_file = _published_parquet(published, "publish_log")
    if log_file is None:
        return None
    con = connect()
    try:
        rows = _rows(
            con.execute(
                f"select * from read_parquet({quote_literal(log_file)}) "
                "order by version desc limit 1"
            )
        )
    finally:
        con.close()
    return rows[0] if rows else None


@check_kind(
    "volume_change",
    {
        "table": Param("table", required=True),
        "max_ratio": Param("ratio", required=True),
        "published_table": Param("column"),
    },
    label=lambda p: f"volume_change(max_ratio={p['max_ratio']:g})",
)
def check_volume_change(con, ctx: GateContext, params: dict[str, Any]) -> Outcome:
    """Rows now vs the rows the last published version recorded for the table."""
    if _published_parquet(ctx.published_path, "publish_log") is None:
        return Outcome.skip("nothing published yet")
    missing = _require_table(con, params["table"])
    if missing:
        return missing
    name = params["published_table"] or params["table"].split(".")[1]
    last = _last_publish(ctx.published_path)
    counts = json.loads(last["row_counts"]) if last else {}
    if name not in counts:
        return Outcome.skip(f"{name} is not in the last published version")
    old = int(counts[name])
    found = con.execute(f"select count(*) from {_table_sql(params['table'])}").fetchone()
    new = int(found[0]) if found else 0
    ratio = new / old if old else (1.0 if new == 0 else math.inf)
    bound = params["max_ratio"]
    observed = {
        "rows": new,
        "published_rows": old,
        "published_version": last["version"] if last else None,
        "ratio": round(ratio, 4) if math.isfinite(ratio) else "inf",
    }
    if 1 / bound <= ratio <= bound:
        return Outcome(True, observed=observed)
    return Outcome(
        False,
        new,
        [observed],
        f"{new:,} rows vs {old:,} in published version {observed['published_version']} "
        f"(x{ratio:.2f}; allowed between x{1 / bound:.2f} and x{bound:g})",
        observed=observed,
    )


_HQ_MONTHS = """
    select kpi_id, period_start, value, unit, n, is_reliable
    from {table}
    where period_grain = 'month' and org_level = 'hq' and channel = 'all'
      and segment = 'all' and touchpoint = 'all' {kpis}
"""


def _hq_months(con, table_sql: str, kpis: list[str] | None) -> dict[tuple, dict]:
    where = ""
    if kpis:
        where = " and kpi_id in (" + ", ".join("'" + k.replace("'", "''") + "'" for k in kpis) + ")"
    rows = _rows(con.execute(_HQ_MONTHS.format(table=table_sql, kpis=where)))
    return {(r["kpi_id"], r["period_start"]): r for r in rows}


def _latest_reliable(values: dict[tuple, dict], kpi: str, reliable_only: bool) -> dict | None:
    candidates = [
        v
        for (k, _), v in values.items()
        if k == kpi and v["value"] is not None and (v["is_reliable"] or not reliable_only)
    ]
    return max(candidates, key=lambda v: v["period_start"], default=None)


@check_kind(
    "kpi_movement",
    {
        "max_change": Param("bounds", required=True),
        "kpis": Param("names"),
        "table": Param("table", default="marts.kpi_values"),
        "published_table": Param("column", default="kpi_values"),
        "include_unreliable": Param("bool", default=False),
    },
    label=lambda p: (
        "kpi_movement(" + ", ".join(f"{k}: {v:g}" for k, v in p["max_change"].items()) + ")"
    ),
)
def check_kpi_movement(con, ctx: GateContext, params: dict[str, Any]) -> Outcome:
    """Monthly HQ values (all channels, segments, touchpoints) vs the last published ones.

    Flags a KPI whose value for a month moved by more than its unit's bound since the
    last publish, and one whose latest month moved by more than the bound from the
    previous publish's latest month. Only values with a reliable sample are compared
    (``include_unreliable: true`` compares all): a month just begun moves a lot.
    """
    if _published_parquet(ctx.published_path, "publish_log") is None:
        return Outcome.skip("nothing published yet")
    missing = _require_table(con, params["table"])
    if missing:
        return missing
    new = _hq_months(con, _table_sql(params["table"]), params["kpis"])
    published = _published_parquet(ctx.published_path, params["published_table"])
    if published is None:
        return Outcome.skip(f"{params['published_table']} is not in the published version")
    pub = connect()
    try:
        old = _hq_months(pub, f"read_parquet({quote_literal(published)})", params["kpis"])
    finally:
        pub.close()
    bounds, reliable_only = params["max_change"], not params["include_unreliable"]

    def bound_of(unit: str | None) -> float | None:
        return bounds.get(unit or "", bounds.get("default"))

    def comparable(v: dict | None) -> bool:
        return v is not None and v["value"] is not None and (v["is_reliable"] or not reliable_only)

    moved, compared = [], 0
    for key, now in new.items():
        before, bound = old.get(key), bound_of(now["unit"])
        if bound is None or not comparable(now) or not comparable(before):
            continue
        compared += 1
        if abs(now["value"] - before["value"]) > bound:
            moved.append(("same month", now, before, bound))
    for kpi in sorted({k for k, _ in new}):
        now, before = (
            _latest_reliable(new, kpi, reliable_only),
            _latest_reliable(old, kpi, reliable_only),
        )
        if now is None or before is None or now["period_start"] <= before["period_start"]:
            continue  # same latest month: compared above
        bound = bound_of(now["unit"])
        compared += bound is not None
        if bound is not None and abs(now["value"] - before["value"]) > bound:
            moved.append(("latest month vs previous latest", now, before, bound))
    observed = {"values_compared": compared}
    if not moved:
        return Outcome(True, 0, observed=observed)
    moved.sort(key=lambda m: -abs(m[1]["value"] - m[2]["value"]))
    sample = [
        {
            "kpi": now["kpi_id"],
            "comparison": how,
            "period": now["period_start"].isoformat(),
            "published_period": before["period_start"].isoformat(),
            "old": round(before["value"], 2),
            "new": round(now["value"], 2),
            "unit": now["unit"],
            "max_change": bound,
        }
        for how, now, before, bound in moved
    ]
    text = "; ".join(
        f"{s['kpi']} {s['period'][:7]}: {s['old']:g} -> {s['new']:g} {s['unit']}"
        + (
            f" (published latest {s['published_period'][:7]})"
            if s["period"] != s["published_period"]
            else ""
        )
        + f", moved {abs(s['new'] - s['old']):.1f} > {s['max_change']:g}"
        for s in sample[:_SAMPLE_ROWS]
    )
    return Outcome(
        False,
        len(moved),
        sample[:_SAMPLE_ROWS],
        f"{len(moved)} KPI value(s) moved: {text}",
        observed=observed,
    )


# Values the detector cannot flag (cxkpi.pii.may_hold_pii is false), decided in SQL so a
# column of a million keys costs a scan, not a million Python calls: ASCII only (NFKC
# leaves it unchanged), no at sign or at-word, fewer than pii.MIN_DIGITS digits.
_MAY_HOLD_PII_SQL = f"""(
    not regexp_full_match(part, '[\\x00-\\x7f]*')
    or part like '%@%'
    or regexp_matches(lower(part), '(^|[^a-z])(at|arroba|arobase)([^a-z]|$)')
    or length(regexp_replace(part, '[^0-9]', '', 'g')) >= {pii.MIN_DIGITS})"""


def _varchar_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    schema, name = table.split(".")
    return [
        row[0]
        for row in con.execute(
            """select column_name from information_schema.columns
               where table_schema = ? and table_name = ? and data_type = 'VARCHAR'
               order by ordinal_position""",
            [schema, name],
        ).fetchall()
    ]


def _published_tables(con: duckdb.DuckDBPyConnection, ctx: GateContext) -> list[str]:
    if ctx.published_tables is not None:
        return list(ctx.published_tables)
    # without the publish list (a gate run by hand): every table of marts, a superset
    rows = con.execute(
        "select table_schema || '.' || table_name from information_schema.tables "
        "where table_schema = 'marts' order by 1"
    ).fetchall()
    return [r[0] for r in rows]


@check_kind("pii_in_published", {"tables": Param("names")}, table="published tables")
def check_pii_in_published(con, ctx: GateContext, params: dict[str, Any]) -> Outcome:
    """No personal data in any text column of any published table (cxkpi.pii).

    Every varchar column is scanned over its distinct "|"-separated parts: keys built by
    key_of join dimension texts with "|" and no kind of personal data spans a "|", so a
    key is clean when its parts are, and kpi_values' millions of keys come down to the
    few distinct dimension values and dates they are made of. Parts the SQL prefilter
    proves clean never reach Python.
    """
    tables = params["tables"] or _published_tables(con, ctx)
    detector = pii.detector()
    findings: list[dict[str, Any]] = []
    observed: dict[str, Any] = {}
    offending = 0
    for table in tables:
        missing = _require_table(con, table)
        if missing:
            return missing
        for column in _varchar_columns(con, table):
            col = quote_ident(column)
            parts = con.execute(
                f"""select distinct part from (
                        select unnest(string_split({col}, '|')) as part
                        from {_table_sql(table)} where {col} is not null)
                    where {_MAY_HOLD_PII_SQL}"""
            ).fetchall()
            flagged = {p: kinds for (p,) in parts if (kinds := detector.kinds(p))}
            observed[f"{table}.{column}"] = {"candidates": len(parts), "flagged": len(flagged)}
            if not flagged:
                continue
            rows = con.execute(
                f"""select count(*) from {_table_sql(table)}
                    where list_has_any(string_split({col}, '|'), $parts)""",
                {"parts": list(flagged)},
            ).fetchone()
            offending += int(rows[0]) if rows else 0
            for part, kinds in list(flagged.items())[:_SAMPLE_ROWS]:
                findings.append(
                    {"table": table, "column": column, "kinds": kinds, "value": _shown(part)}
                )
    if not findings:
        return Outcome(True, 0, observed={"columns": observed})
    where = sorted({f"{f['table']}.{f['column']}" for f in findings})
    return Outcome(
        False,
        offending,
        findings[:_SAMPLE_ROWS],
        f"{offending} row(s) of published tables hold personal data in {', '.join(where)} "
        "(shown masked); the loader should have masked it: see docs/quality-gate.md",
        observed={"columns": observed},
    )


@check_kind("withheld_texts", {}, table=pii.WITHHELD_TABLE)
def check_withheld_texts(con, ctx: GateContext, params: dict[str, Any]) -> Outcome:
    """Texts of this run's files the loader withheld (NULL in raw; kept in
    raw.withheld_texts) because they could not be made safe."""
    if ctx.run_id is None:
        return Outcome.skip("no run_id given: the run's loads are unknown")
    if not _table_exists(con, pii.WITHHELD_TABLE):
        return Outcome(True, 0, observed={"withheld": 0})
    rows = _rows(
        con.execute(
            f"""select source_name as source, source_file as file, source_record as record,
                       column_name as column, reason
                from {pii.WITHHELD_TABLE} where batch_id = $run_id
                order by source_file, source_record""",
            {"run_id": ctx.run_id},
        )
    )
    if not rows:
        return Outcome(True, 0, observed={"withheld": 0})
    for row in rows:
        row["file"] = Path(row["file"]).name
    return Outcome(
        False,
        len(rows),
        rows[:_SAMPLE_ROWS],
        f"{len(rows)} text value(s) withheld (NULL in the warehouse, original kept in "
        f"{pii.WITHHELD_TABLE}): they could not be made safe",
        observed={"withheld": len(rows)},
    )


@check_kind(
    "orphans",
    {
        "table": Param("table", required=True),
        "column": Param("column", required=True),
        "ref_table": Param("table", required=True),
        "ref_column": Param("column", required=True),
        "max_share": Param("share", default=0.0),
        "key": Param("column"),
    },
    label=lambda p: f"orphans({p['column']} -> {p['ref_table']}.{p['ref_column']})",
)
def check_orphans(con, ctx: GateContext, params: dict[str, Any]) -> Outcome:
    """Rows whose (non-empty) key is not found in the referenced table."""
    for table in (params["table"], params["ref_table"]):
        missing = _require_table(con, table)
        if missing:
            return missing
    column, ref_column = quote_ident(params["column"]), quote_ident(params["ref_column"])
    orphan_rows = f"""
        from {_table_sql(params["table"])} t
        where t.{column} is not null and not exists (
            select 1 from {_table_sql(params["ref_table"])} r where r.{ref_column} = t.{column})
    """
    counts = con.execute(
        f"select (select count(*) {orphan_rows}), "
        f"(select count({column}) from {_table_sql(params['table'])})"
    ).fetchone()
    assert counts is not None
    orphans, keyed = int(counts[0]), int(counts[1])
    share = orphans / keyed if keyed else 0.0
    observed = {"rows_with_key": keyed, "orphans": orphans, "share": round(share, 4)}
    if not orphans or share <= params["max_share"]:
        return Outcome(True, orphans, observed=observed)
    key = f"t.{quote_ident(params['key'])} as key, " if params["key"] else ""
    rows = _rows(
        con.execute(f"select {key}t.{column} {orphan_rows} order by 1 limit {_SAMPLE_ROWS}")
    )
    return Outcome(
        False,
        orphans,
        [_shown_row(r) for r in rows],
        f"{orphans} of {keyed} rows ({_pct(share)}, max {_pct(params['max_share'])}) have "
        f"{params['column']} values not found in {params['ref_table']}.{params['ref_column']}",
        observed=observed,
    )


# === running the gate =====================================================================


def _gx_context(evidence_dir: Path | None):
    """An ephemeral GX context; with an evidence folder, its stores and Data Docs site
    live in ``<evidence_dir>/gx`` so every run keeps its own validation results and HTML."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        FilesystemStoreBackendDefaults,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    if evidence_dir is not None:
        # a retried task (same run id) replaces the evidence of the attempt before
        shutil.rmtree(evidence_dir / "gx", ignore_errors=True)
    stores = (
        FilesystemStoreBackendDefaults(root_directory=str((evidence_dir / "gx").resolve()))
        if evidence_dir is not None
        else InMemoryStoreBackendDefaults()
    )
    config = DataContextConfig(
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
        store_backend_defaults=stores,
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def data_docs_index(evidence_dir: Path) -> Path:
    """Where a run's Great Expectations Data Docs start."""
    return evidence_dir / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"


def _run_expectations(
    suites: list[Suite], frames: dict[str, Any], evidence_dir: Path | None
) -> list[CheckResult]:
    import great_expectations as gx

    context = _gx_context(evidence_dir)
    datasource = context.data_sources.add_pandas("cxkpi_warehouse")
    results = []
    for suite in suites:
        asset = datasource.add_dataframe_asset(name=suite.name)
        batch = asset.add_batch_definition_whole_dataframe(f"{suite.name}_batch")
        gx_suite = context.suites.add(gx.ExpectationSuite(name=suite.name))
        check_of_id: dict[str, Check] = {}
        for check in suite.expectations:
            assert check.expectation is not None
            added = gx_suite.add_expectation(
                getattr(gx.expectations, check.expectation)(**check.kwargs)
            )
            check_of_id[str(added.id)] = check
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(data=batch, suite=gx_suite, name=f"{suite.name}_validation")
        )
        assert suite.table is not None
        actions = (
            [] if evidence_dir is None else [gx.checkpoint.UpdateDataDocsAction(name="data_docs")]
        )
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name=f"{suite.name}_checkpoint",
                validation_definitions=[definition],
                actions=actions,
                result_format="SUMMARY",
            )
        )
        outcome_of_run = checkpoint.run(batch_parameters={"dataframe": frames[suite.table]})
        [result] = outcome_of_run.run_results.values()
        if evidence_dir is not None:
            (evidence_dir / f"{suite.name}.json").write_text(
                json.dumps(result.to_json_dict(), indent=2, default=str), encoding="utf-8"
            )
        for outcome in result.results:
            check = check_of_id[str(outcome.expectation_config.id)]
            details = outcome.result or {}
            results.append(
                CheckResult(
                    suite=suite.name,
                    table=suite.table,
                    check=check.label,
                    severity=check.severity,
                    success=bool(outcome.success),
                    unexpected_count=details.get("unexpected_count"),
                    sample=list(details.get("partial_unexpected_list") or [])[:_SAMPLE_ROWS],
                )
            )
    return results


def _run_cxkpi_check(
    con: duckdb.DuckDBPyConnection, ctx: GateContext, suite: Suite, check: Check
) -> CheckResult:
    try:
        outcome = CHECK_KINDS[check.kind].function(con, ctx, check.kwargs)
    except duckdb.Error as exc:
        # a check that cannot run must not pass: it fails with its severity, saying why
        outcome = Outcome(False, message=f"the check could not run: {exc}")
    return CheckResult(
        suite=suite.name,
        table=check.table,
        check=check.label,
        severity=check.severity,
        success=outcome.success,
        unexpected_count=outcome.unexpected_count,
        sample=outcome.sample[:_SAMPLE_ROWS],
        message=outcome.message,
        skipped=outcome.skipped,
        observed=outcome.observed,
    )


def _as_date(value: str | date | None) -> date | None:
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise ConfigError(f"logical date {value!r} is not an ISO date (YYYY-MM-DD)") from None


def _write_report(report: GateReport, ctx: GateContext, evidence_dir: Path) -> None:
    payload = {
        "run_id": ctx.run_id,
        "logical_date": ctx.logical_date.isoformat() if ctx.logical_date else None,
        "warehouse": str(ctx.warehouse),
        "published": str(ctx.published_path) if ctx.published_path else None,
        "finished_at": datetime.now(UTC).isoformat(),
        "status": report.status,
        "summary": report.summary(),
        "results": [{**asdict(r), "describe": r.describe()} for r in report.results],
    }
    (evidence_dir / "gate.json").write_text(
        json.dumps(payload, indent=2, default=str), encoding="utf-8"
    )


def run_gate(
    warehouse: Path,
    expectations_dir: Path,
    evidence_dir: Path | None = None,
    *,
    published_path: Path | None = None,
    run_id: str | None = None,
    logical_date: str | date | None = None,
    published_tables: list[str] | None = None,
) -> GateReport:
    """Run every suite; write the evidence to ``evidence_dir``; raise GateFailed on errors.

    ``published_path`` (the current published file), ``run_id`` and ``logical_date`` are
    the context the cxkpi checks need; a check whose context is not given is skipped and
    says so. Evidence: ``<suite>.json`` (GX's validation result, per suite with
    expectations) and ``gate.json`` (every check's verdict, message, sample and numbers).
    """
    suites = load_suites(expectations_dir)
    if not suites:
        raise ConfigError(f"no expectation suites in {expectations_dir}: the gate would be empty")
    ctx = GateContext(
        warehouse,
        published_path,
        run_id,
        _as_date(logical_date),
        tuple(published_tables) if published_tables is not None else None,
    )
    if evidence_dir is not None:
        evidence_dir.mkdir(parents=True, exist_ok=True)
    report = GateReport(
        run_id=run_id,
        logical_date=ctx.logical_date.isoformat() if ctx.logical_date else None,
        evidence_dir=evidence_dir,
    )
    gx_suites = [s for s in suites if s.expectations]
    with writer_lock(warehouse):
        con = connect(warehouse, read_only=True)
        try:
            frames = {}
            for table in sorted({s.table for s in gx_suites if s.table}):
                frames[table] = con.execute(f"select * from {_table_sql(table)}").df()
            checked = [
                _run_cxkpi_check(con, ctx, suite, check)
                for suite in suites
                for check in suite.cxkpi_checks
            ]
        finally:
            con.close()
    report.results.extend(_run_expectations(gx_suites, frames, evidence_dir))
    report.results.extend(checked)
    if evidence_dir is not None:
        _write_report(report, ctx, evidence_dir)
    for skipped in report.skipped:
        log.info("quality gate: %s", skipped.describe())
    for warning in report.warnings:
        log.warning("quality gate warning: %s", warning.describe())
    if report.errors:
        lines = "\n".join(f"  {r.describe()}" for r in report.errors)
        failure = GateFailed(
            f"quality gate failed: {len(report.errors)} check(s) with severity error; "
            f"nothing was published:\n{lines}",
            [asdict(r) for r in report.errors],
        )
        failure.report = report  # type: ignore[attr-defined]  # for notify()
        raise failure
    return report


# === notifications ========================================================================


@dataclass(frozen=True)
class GateNotice:
    """What a notifier receives: the verdict of one gate run, ready to send."""

    status: str  # passed | warned | failed
    summary: dict[str, int]
    run_id: str | None
    logical_date: str | None
    lines: tuple[str, ...]  # one per failed or warned check, as in the messages
    evidence_dir: str | None

    @property
    def subject(self) -> str:
        s = self.summary
        return (
            f"cxkpi quality gate {self.status}: run {self.run_id or '?'} "
            f"(logical date {self.logical_date or '?'}): {s.get('failed', 0)} failed, "
            f"{s.get('warned', 0)} warned, {s.get('passed', 0)} passed"
        )

    @property
    def text(self) -> str:
        body = "\n".join(f"- {line}" for line in self.lines) or "- all checks passed"
        where = f"\nEvidence: {self.evidence_dir}" if self.evidence_dir else ""
        return f"{self.subject}\n{body}{where}"


Notifier = Callable[[GateNotice, Any], None]  # (notice, settings or None)


def log_notifier(notice: GateNotice, settings: Any = None) -> None:
    """The default notifier: one log record, at the level the verdict deserves."""
    level = {"failed": logging.ERROR, "warned": logging.WARNING}.get(notice.status, logging.INFO)
    log.log(level, "%s", notice.text)


# Every callable here is called by notify(). Add yours at deploy time, e.g. in the DAG file:
#     gate.NOTIFIERS.append(gate.webhook_notifier(os.environ["CXKPI_GATE_WEBHOOK"]))
NOTIFIERS: list[Notifier] = [log_notifier]


def _notice(report_or_failure: GateReport | GateFailed) -> GateNotice:
    report = report_or_failure
    if isinstance(report_or_failure, GateFailed):
        report = getattr(report_or_failure, "report", None)
        if report is None:  # a GateFailed raised elsewhere: only its message is known
            return GateNotice(
                "failed",
                {"failed": len(report_or_failure.failures)},
                None,
                None,
                tuple(str(report_or_failure).splitlines()[1:]),
                None,
            )
    assert isinstance(report, GateReport)
    lines = tuple(r.describe() for r in (*report.errors, *report.warnings))
    return GateNotice(
        report.status,
        report.summary(),
        report.run_id,
        report.logical_date,
        lines,
        str(report.evidence_dir) if report.evidence_dir else None,
    )


def notify(
    report_or_failure: GateReport | GateFailed,
    settings: Any = None,
    notifiers: list[Notifier] | None = None,
) -> GateNotice:
    """Tell every notifier of ``NOTIFIERS`` (or ``notifiers``) how the gate went.

    A notifier that raises is logged and skipped: a broken mail server must not turn a
    good night into a failed one, nor hide the gate's own failure.
    """
    notice = _notice(report_or_failure)
    for notifier in NOTIFIERS if notifiers is None else notifiers:
        try:
            notifier(notice, settings)
        except Exception:
            log.exception("gate notifier %r failed", notifier)
    return notice


def email_notifier(
    smtp_host: str,
    sender: str,
    recipients: list[str],
    statuses: tuple[str, ...] = ("warned", "failed"),
    port: int = 25,
) -> Notifier:
    """A notifier that e-mails the notice (via SMTP, when the status is in ``statuses``).

    Example (not enabled by default)::

        gate.NOTIFIERS.append(gate.email_notifier("smtp.example.com", "cxkpi@example.com",
                                                  ["data-team@example.com"]))
    """

    def send(notice: GateNotice, settings: Any = None) -> None:
        if notice.status not in statuses:
            return
        import smtplib
        from email.message import EmailMessage

        message = EmailMessage()
        message["Subject"], message["From"] = notice.subject, sender
        message["To"] = ", ".join(recipients)
        message.set_content(notice.text)
        with smtplib.SMTP(smtp_host, port, timeout=30) as smtp:
            smtp.send_message(message)

    return send


def webhook_notifier(
    url: str, statuses: tuple[str, ...] = ("warned", "failed"), timeout_s: float = 10.0
) -> Notifier:
    """A notifier that POSTs the notice as JSON (Slack/Teams-style ``{"text": ...}`` plus
    the structured fields) when the status is in ``statuses``.

    Example (not enabled by default)::

        gate.NOTIFIERS.append(gate.webhook_notifier(os.environ["CXKPI_GATE_WEBHOOK"]))
    """

    def post(notice: GateNotice, settings: Any = None) -> None:
        if notice.status not in statuses:
            return
        import urllib.request

        body = json.dumps({"text": notice.text, **asdict(notice)}).encode("utf-8")
        request = urllib.request.Request(
            url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            response.read()

    return post
