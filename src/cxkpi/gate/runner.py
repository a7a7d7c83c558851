"""Running the gate: every suite's checks against the warehouse, evidence, ``GateFailed``."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from cxkpi.errors import ConfigError, GateFailed
from cxkpi.gate.batches import partition_rows, plan
from cxkpi.gate.gx import run_expectations
from cxkpi.gate.registry import CHECK_KINDS, GateContext, Outcome
from cxkpi.gate.report import SAMPLE_ROWS, CheckResult, GateReport
from cxkpi.gate.suites import Check, Suite, load_suites
from cxkpi.warehouse import Warehouse, as_warehouse

log = logging.getLogger("cxkpi.gate")


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
        sample=outcome.sample[:SAMPLE_ROWS],
        message=outcome.message,
        skipped=outcome.skipped,
        observed=outcome.observed,
    )


SCOPES = ("all", "load", "night")


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
    warehouse: Warehouse | Path,
    expectations_dir: Path,
    evidence_dir: Path | None = None,
    *,
    published_path: Path | None = None,
    run_id: str | None = None,
    logical_date: str | date | None = None,
    published_tables: list[str] | None = None,
    scope: str = "all",
) -> GateReport:
    """Run every suite; write the evidence to ``evidence_dir``; raise GateFailed on errors.

    ``published_path`` (the current published file), ``run_id`` and ``logical_date`` are
    the context the cxkpi checks need; a check whose context is not given is skipped and
    says so. Evidence: ``<suite>.json`` (GX's validation result, per suite with
    expectations) and ``gate.json`` (every check's verdict, message, sample and numbers).
    ``scope`` is ``all``; ``load``: only the checks of the night's load
    (``checks_the_load``), the early gate right after loading; or ``night``: only the
    checks whose verdict depends on the night (``checks_the_night``: its date, its loads),
    for a night that built nothing new. Neither runs Great Expectations.
    """
    if scope not in SCOPES:
        raise ValueError(f"gate scope {scope!r} is not one of {', '.join(SCOPES)}")
    warehouse = as_warehouse(warehouse)
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
    gx_suites = [s for s in suites if s.expectations] if scope == "all" else []

    def selected(check: Check) -> bool:
        kind = CHECK_KINDS[check.kind]
        return {"all": True, "load": kind.checks_the_load, "night": kind.checks_the_night}[scope]

    with warehouse.writer_lock():
        con = warehouse.connect(read_only=True)
        try:
            # GX reads the batches while the connection is open: one frame at a time
            batches = plan(con, gx_suites, partition_rows())
            validated = run_expectations(
                gx_suites, batches, lambda batch: con.execute(batch.sql).df(), evidence_dir
            )
            checked = [
                _run_cxkpi_check(con, ctx, suite, check)
                for suite in suites
                for check in suite.cxkpi_checks
                if selected(check)
            ]
        finally:
            con.close()
    report.results.extend(validated)
    report.results.extend(checked)
    if evidence_dir is not None:
        _write_report(report, ctx, evidence_dir)
    summary = report.summary()
    log.log(
        logging.ERROR if report.errors else logging.INFO,
        "quality gate %s: %s passed, %s warned, %s failed%s",
        "FAILED" if report.errors else "passed",
        summary["passed"],
        summary["warned"],
        summary["failed"],
        f" (evidence: {evidence_dir / 'gate.json'})" if evidence_dir is not None else "",
    )
    for error in report.errors:
        log.error("quality gate error: %s", error.describe())
    for skipped in report.skipped:
        log.info("quality gate: %s", skipped.describe())
    for warning in report.warnings:
        log.warning("quality gate warning: %s", warning.describe())
    for note in report.notes:
        # logged as a warning so the console shows it by default; the check passed
        log.warning("quality gate note: %s: %s: %s", note.table, note.check, note.message)
    if report.errors:
        lines = "\n".join(f"  {r.describe()}" for r in report.errors)
        failure = GateFailed(
            f"quality gate failed: {len(report.errors)} check(s) with severity error; "
            f"nothing was published:\n{lines}",
            [asdict(r) for r in report.errors],
            report,
        )
        raise failure
    return report
