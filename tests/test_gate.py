"""A bad night never reaches the published file: it stays byte-identical, the run fails."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO, inject_out_of_range_nps, repository_read_paths

from cxkpi import pipeline
from cxkpi.errors import DbtError, GateFailed

pytestmark = pytest.mark.integration


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def published_once(demo_project):
    """A private copy of a project that has published one good night (the session's demo
    night); the tests' nights rerun that logical date."""
    return demo_project


def nps_never_negative(tmp_path: Path, severity: str) -> Path:
    """The repository's suites plus a bound the demo data does not meet: NPS >= 0."""
    suites = tmp_path / "expectations"
    shutil.copytree(REPO / "expectations", suites)
    suite = yaml.safe_load((suites / "kpi_values.yml").read_text())
    suite["checks"].append(
        {
            "expect": "column_values_to_be_between",
            "column": "value",
            "min_value": 0,
            "row_condition": 'kpi_id == "nps"',
            "condition_parser": "pandas",
            "severity": severity,
        }
    )
    (suites / "kpi_values.yml").write_text(yaml.safe_dump(suite))
    return suites


def test_failing_dbt_test_blocks_publish(published_once) -> None:
    settings = published_once
    before = sha256(settings.published_path)
    inject_out_of_range_nps(settings.warehouse_path)
    with pytest.raises(DbtError) as failure:
        pipeline.run_all(settings, pipeline.RunContext.new("bad-night", "2026-10-31"))
    assert "accepted_range" in str(failure.value) and "nps" in str(failure.value)
    assert sha256(settings.published_path) == before


def test_failing_expectation_blocks_publish(published_once, tmp_path: Path) -> None:
    settings = published_once
    strict = settings.with_overrides(expectations_dir=nps_never_negative(tmp_path, "error"))
    before = sha256(settings.published_path)
    with pytest.raises(GateFailed) as failure:
        pipeline.run_all(strict, pipeline.RunContext.new("bad-night", "2026-10-31"))
    message = str(failure.value)
    assert "marts.kpi_values: column_values_to_be_between(value) [error]" in message
    assert "rows, e.g. [" in message
    assert sha256(settings.published_path) == before
    evidence = strict.runs_dir / "bad-night" / "gate" / "kpi_values.json"
    assert '"success": false' in evidence.read_text()
    from cxkpi.gate import data_docs_index

    docs = data_docs_index(strict.runs_dir / "bad-night" / "gate")
    assert docs.exists() and "kpi_values" in docs.read_text()
    # a retry of the same run (an Airflow task retry) audits again, replacing the evidence
    with pytest.raises(GateFailed):
        pipeline.audit(strict, pipeline.RunContext.new("bad-night", "2026-10-31"))


def test_warn_severity_publishes_and_counts_the_warning(published_once, tmp_path: Path) -> None:
    settings = published_once
    suites = nps_never_negative(tmp_path, "warn")
    result = pipeline.run_all(
        settings.with_overrides(expectations_dir=suites),
        pipeline.RunContext.new("warn-night", "2026-10-31"),
    )
    assert result.stages["gate"]["warned"] == 1
    assert result.stages["publish"]["version"] == 2


def test_cli_exits_non_zero_and_names_the_check(published_once, tmp_path: Path) -> None:
    settings = published_once
    config = tmp_path / "cli.yml"
    # the repository's project (its org levels and settings: `cxkpi run` compiles into the
    # repository's dbt project, which must stay as committed) with this night's paths
    project = yaml.safe_load((REPO / "cxkpi.yml").read_text(encoding="utf-8"))
    project.update(
        {
            "landing_dir": str(settings.landing_dir),
            "warehouse_path": str(settings.warehouse_path),
            "published_dir": str(settings.published_dir),
            "runs_dir": str(settings.runs_dir),
            "dbt_target_dir": str(settings.dbt_target_dir),
            **repository_read_paths(),
        }
    )
    config.write_text(yaml.safe_dump(project))
    before = sha256(settings.published_path)
    inject_out_of_range_nps(settings.warehouse_path)
    cli = Path(sys.executable).parent / "cxkpi"
    done = subprocess.run(
        [str(cli), "--config", str(config), "run"],
        check=False,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert "dbt build failed" in done.stderr and "accepted_range" in done.stderr
    assert "Traceback" not in done.stderr
    assert sha256(settings.published_path) == before
