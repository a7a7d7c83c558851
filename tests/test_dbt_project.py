"""The dbt project itself: generated sources are current, best-practice rules hold."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, make_settings

from cxkpi import dbt_runner, dbt_sources, kpi_compile, kpi_spec

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
    import json

    settings = make_settings(tmp_path)
    dbt_runner.parse(settings)
    names = {m["name"] for m in dbt_runner.published_models(settings)}
    assert {
        "kpi_values",
        "kpi_catalog",
        "dim_org_units",
        "kpi_tree",
        "roadmap",
        "fct_factor_gaps",
        "kpi_benchmark_position",
    } <= names
    manifest = json.loads(settings.dbt_manifest_path.read_text())
    for node in manifest["nodes"].values():
        if node["resource_type"] == "model" and "published" in node.get("tags", []):
            assert node["config"]["contract"]["enforced"], node["name"]
            assert all(c.get("data_type") for c in node["columns"].values()), node["name"]


def test_committed_kpi_models_match_the_catalog() -> None:
    """The generated KPI models in the repository are what `cxkpi compile` produces now:
    the Airflow DAG renders its tasks from them, so they must never lag the YAML."""
    catalog = kpi_spec.load_catalog([REPO / "kpi_definitions"])
    assert not catalog.problems
    rendered = kpi_compile.render(catalog, REPO)
    directory = REPO / "dbt_project" / kpi_compile.GENERATED_DIR
    on_disk = {p.name for p in directory.iterdir() if p.suffix in (".sql", ".yml")}
    assert on_disk == set(rendered), "run `cxkpi compile` and commit dbt_project/models/kpis"
    for name, content in rendered.items():
        assert (directory / name).read_text(encoding="utf-8") == content, name


def test_compilation_is_deterministic(tmp_path: Path) -> None:
    first = kpi_compile.render(kpi_spec.load_catalog([REPO / "kpi_definitions"]), REPO)
    shutil.copytree(REPO / "kpi_definitions", tmp_path / "kpi_definitions")
    again = kpi_compile.render(kpi_spec.load_catalog([tmp_path / "kpi_definitions"]), tmp_path)
    assert first == again
