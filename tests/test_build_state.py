"""What a dbt build was built from: the fingerprint of the definitions, the watermark of
the data, and the decision a night takes from them (no dbt work, incremental, full)."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import duckdb
import pytest
from conftest import REPO, make_settings

from cxkpi import build_state
from cxkpi.config import Settings


@pytest.fixture
def project(tmp_path: Path) -> Settings:
    """A project with its own copy of the dbt project and a warehouse holding raw rows."""
    dbt_dir = shutil.copytree(
        REPO / "dbt_project", tmp_path / "dbt_project", ignore=shutil.ignore_patterns("target")
    )
    settings = make_settings(tmp_path, dbt_project_dir=dbt_dir)
    settings.warehouse_path.parent.mkdir(parents=True)
    con = duckdb.connect(str(settings.warehouse_path))
    try:
        con.execute("create schema raw")
        con.execute("create table raw.orders as select range as order_id from range(100)")
    finally:
        con.close()
    return settings


def test_the_fingerprint_follows_the_dbt_project_and_the_settings(project: Settings) -> None:
    before = build_state.fingerprint(project)
    (project.dbt_project_dir / "target").mkdir()
    (project.dbt_project_dir / "target" / "manifest.json").write_text("{}")
    assert build_state.fingerprint(project) == before  # dbt's output is not its input

    model = project.dbt_project_dir / "models" / "marts" / "kpi_values.sql"
    model.write_text(model.read_text() + "\n-- changed\n")
    assert build_state.fingerprint(project) != before

    changed = build_state.fingerprint(project)
    other_sample = dataclasses.replace(project, min_sample=project.min_sample + 1)
    assert build_state.fingerprint(other_sample) != changed


def test_the_gate_key_follows_the_suites_and_the_settings(project: Settings) -> None:
    """A night with nothing new skips the full gate only if the gate that passed checked
    with the same suites and settings: an edited suite must be run (pipeline.gate_key)."""
    from cxkpi import pipeline

    suites = shutil.copytree(REPO / "expectations", project.dbt_project_dir.parent / "suites")
    project = dataclasses.replace(project, expectations_dir=suites)
    before = pipeline.gate_key(project)
    assert pipeline.gate_key(project) == before
    suite = min(suites.rglob("*.yml"))
    suite.write_text(suite.read_text() + "\n# changed\n")
    edited = pipeline.gate_key(project)
    assert edited != before
    assert pipeline.gate_key(dataclasses.replace(project, pii_phone_regions=("CN",))) != edited


def test_the_watermark_follows_every_raw_row(project: Settings) -> None:
    before = build_state.watermark(project)
    assert build_state.watermark(project) == before
    con = duckdb.connect(str(project.warehouse_path))
    try:
        con.execute("update raw.orders set order_id = 1000 where order_id = 7")
    finally:
        con.close()
    assert build_state.watermark(project) != before


def test_a_night_skips_dbt_only_after_a_successful_build_on_the_same_inputs(
    project: Settings,
) -> None:
    inputs = build_state.current_inputs(project)
    assert build_state.full_refresh_reason(project, inputs, requested=False) == (
        "no earlier build of this warehouse"
    )
    build_id = build_state.start(project, "night-1", inputs, full_refresh=True)
    assert not build_state.is_unchanged(build_state.latest(project), inputs)  # running
    build_state.finish(project, build_id, succeeded=True)
    assert build_state.is_unchanged(build_state.latest(project), inputs)
    assert build_state.full_refresh_reason(project, inputs, requested=False) is None
    assert build_state.full_refresh_reason(project, inputs, requested=True) == "requested"

    failed = build_state.start(project, "night-2", inputs, full_refresh=False)
    build_state.finish(project, failed, succeeded=False)
    assert not build_state.is_unchanged(build_state.latest(project), inputs)

    definitions_changed = dataclasses.replace(inputs, fingerprint="other")
    reason = build_state.full_refresh_reason(project, definitions_changed, requested=False)
    assert reason == (f"the dbt project, definitions or settings changed since build {build_id}")
