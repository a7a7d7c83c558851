"""What a gate run found: one ``CheckResult`` per check, gathered in a ``GateReport``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

SAMPLE_ROWS = 5  # rows of a sample shown in a message
SAMPLE_TEXT = 160  # characters of a sampled value shown in a message


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
        sample = f", e.g. {self.sample[:SAMPLE_ROWS]}" if self.sample else ""
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
    def notes(self) -> list[CheckResult]:
        """Passing checks that still have something to say (kpis_present names the KPIs
        without any data): shown on the console, not counted as warnings."""
        return [r for r in self.results if r.success and not r.skipped and r.message]

    @property
    def status(self) -> str:
        return "failed" if self.errors else "warned" if self.warnings else "passed"

    def summary(self) -> dict[str, int]:
        passed = sum(r.success for r in self.results)
        return {"passed": passed, "warned": len(self.warnings), "failed": len(self.errors)}
