"""The dbt project itself: generated sources are current, best-practice rules hold."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, make_settings

from cxkpi import dbt_runner, dbt_sources

RULES = REPO.parent / "shared" / "tools" / "dbt_project_rules.py"


def test_committed_sources_file_matches_the_canonical_model() -> None:
    committed = (REPO / "dbt_project" / dbt_sources.SOURCES_FILE).read_text(encoding="utf-8")
    assert committed == dbt_sources.render(), "run `cxkpi compile` and commit the result"


@pytest.mark.integration
def test_project_follows_the_dbt_project_evaluator_rules(tmp_path: Path) -> None:
    if not RULES.exists():
        pytest.skip(f"{RULES} is not beside this checkout")
    settings = make_settings(tmp_path, dbt_target_dir=tmp_path / "project" / "target")
    dbt_runner.parse(settings)
    done = subprocess.run(
        [sys.executable, str(RULES), str(tmp_path / "project")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout
    assert "0 problems" in done.stdout


@pytest.mark.integration
def test_published_models_are_tagged_and_contracted(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    dbt_runner.parse(settings)
    names = [m["name"] for m in dbt_runner.published_models(settings)]
    assert names == ["dim_org_units", "kpi_catalog", "kpi_values"]
