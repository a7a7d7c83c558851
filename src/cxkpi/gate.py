"""The quality gate: Great Expectations suites from ``expectations/`` over the staged marts.

dbt's tests run inside ``dbt build`` (in the database, at any scale). The suites here audit
the marts that are about to be published, read into pandas batches: GX's SQL datasource is
broken on DuckDB upstream (GX issue 11579) while its pandas datasource is correct, and the
published marts are aggregates, small enough for memory. A check with severity ``error``
blocks the publish; ``warn`` is reported and published.

Suite file format (one file per audited table)::

    table: marts.kpi_values          # schema.table in the warehouse
    checks:
      - expect: column_values_to_not_be_null   # any GX expectation, without "expect_"...
        column: kpi_value_id                   # ...and its arguments
        severity: error                        # error (default) or warn
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cxkpi.errors import ConfigError, GateFailed
from cxkpi.warehouse import connect, quote_ident, writer_lock

log = logging.getLogger(__name__)
SEVERITIES = ("error", "warn")
_SAMPLE_ROWS = 5


@dataclass(frozen=True)
class Check:
    expectation: str  # GX class name, e.g. ExpectColumnValuesToNotBeNull
    kwargs: dict[str, Any]
    severity: str
    label: str  # as the suite file wrote it, for messages


@dataclass(frozen=True)
class Suite:
    name: str
    table: str  # schema.table
    checks: tuple[Check, ...]
    path: Path


@dataclass
class CheckResult:
    suite: str
    table: str
    check: str
    severity: str
    success: bool
    unexpected_count: int | None = None
    sample: list = field(default_factory=list)

    def describe(self) -> str:
        rows = "" if self.unexpected_count is None else f", {self.unexpected_count} rows"
        sample = f", e.g. {self.sample[:_SAMPLE_ROWS]}" if self.sample else ""
        return f"{self.table}: {self.check} [{self.severity}]{rows}{sample}"


@dataclass
class GateReport:
    results: list[CheckResult] = field(default_factory=list)

    @property
    def errors(self) -> list[CheckResult]:
        return [r for r in self.results if not r.success and r.severity == "error"]

    @property
    def warnings(self) -> list[CheckResult]:
        return [r for r in self.results if not r.success and r.severity == "warn"]

    def summary(self) -> dict[str, int]:
        passed = sum(r.success for r in self.results)
        return {"passed": passed, "warned": len(self.warnings), "failed": len(self.errors)}


def _expectation_class_name(name: str) -> str:
    name = name.removeprefix("expect_")
    return "Expect" + "".join(part.capitalize() for part in name.split("_"))


def load_suites(directory: Path) -> list[Suite]:
    import great_expectations as gx

    suites = []
    for path in sorted([*directory.glob("*.yml"), *directory.glob("*.yaml")]):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(data, dict) or "table" not in data or "checks" not in data:
            raise ConfigError(f"{path}: a suite needs 'table: schema.table' and 'checks: [...]'")
        checks = []
        for i, raw in enumerate(data["checks"], start=1):
            if not isinstance(raw, dict) or "expect" not in raw:
                raise ConfigError(f"{path}: check {i} needs 'expect: <expectation name>'")
            kwargs = {k: v for k, v in raw.items() if k not in ("expect", "severity")}
            severity = raw.get("severity", "error")
            if severity not in SEVERITIES:
                raise ConfigError(f"{path}: check {i}: severity must be one of {SEVERITIES}")
            class_name = _expectation_class_name(str(raw["expect"]))
            if not hasattr(gx.expectations, class_name):
                raise ConfigError(
                    f"{path}: check {i}: {raw['expect']!r} is not a Great Expectations "
                    f"expectation (looked for gx.expectations.{class_name})"
                )
            label = str(raw["expect"]) + (f"({raw['column']})" if "column" in raw else "")
            checks.append(Check(class_name, kwargs, severity, label))
        table = str(data["table"])
        if table.count(".") != 1:
            raise ConfigError(f"{path}: table must be schema.table, got {table!r}")
        suites.append(Suite(path.stem, table, tuple(checks), path))
    return suites


def _gx_context():
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
        store_backend_defaults=InMemoryStoreBackendDefaults(),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _read_tables(warehouse: Path, tables: list[str]):
    with writer_lock(warehouse):
        con = connect(warehouse, read_only=True)
        try:
            frames = {}
            for table in tables:
                schema, name = table.split(".")
                frames[table] = con.execute(
                    f"select * from {quote_ident(schema)}.{quote_ident(name)}"
                ).df()
            return frames
        finally:
            con.close()


def run_gate(
    warehouse: Path, expectations_dir: Path, evidence_dir: Path | None = None
) -> GateReport:
    """Validate every suite; write GX results to ``evidence_dir``; raise GateFailed on errors."""
    import great_expectations as gx

    suites = load_suites(expectations_dir)
    if not suites:
        raise ConfigError(f"no expectation suites in {expectations_dir}: the gate would be empty")
    frames = _read_tables(warehouse, sorted({s.table for s in suites}))
    context = _gx_context()
    datasource = context.data_sources.add_pandas("cxkpi_warehouse")
    report = GateReport()
    for suite in suites:
        asset = datasource.add_dataframe_asset(name=suite.name)
        batch = asset.add_batch_definition_whole_dataframe(f"{suite.name}_batch")
        gx_suite = context.suites.add(gx.ExpectationSuite(name=suite.name))
        check_of_id: dict[str, Check] = {}
        for check in suite.checks:
            added = gx_suite.add_expectation(
                getattr(gx.expectations, check.expectation)(**check.kwargs)
            )
            check_of_id[str(added.id)] = check
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(data=batch, suite=gx_suite, name=f"{suite.name}_validation")
        )
        result = definition.run(
            batch_parameters={"dataframe": frames[suite.table]}, result_format="SUMMARY"
        )
        if evidence_dir is not None:
            evidence_dir.mkdir(parents=True, exist_ok=True)
            (evidence_dir / f"{suite.name}.json").write_text(
                json.dumps(result.to_json_dict(), indent=2, default=str), encoding="utf-8"
            )
        for outcome in result.results:
            check = check_of_id[str(outcome.expectation_config.id)]
            details = outcome.result or {}
            report.results.append(
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
    for warning in report.warnings:
        log.warning("quality gate warning: %s", warning.describe())
    if report.errors:
        lines = "\n".join(f"  {r.describe()}" for r in report.errors)
        raise GateFailed(
            f"quality gate failed: {len(report.errors)} check(s) with severity error; "
            f"nothing was published:\n{lines}",
            [r.__dict__ for r in report.errors],
        )
    return report
