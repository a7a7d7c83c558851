"""The whole nightly path in-process on demo data: load, dbt, gate, publish, rerun."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from conftest import DEMO_DATE, DEMO_RUN_ID, DemoNight, copy_tree, make_settings

from cxkpi import kpi_spec, pipeline
from cxkpi.config import Settings

pytestmark = pytest.mark.integration


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def kpi_rows(path: Path) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("select * exclude (kpi_label) from kpi_values order by 1").fetchall()
    finally:
        con.close()


@dataclass
class TwoNights:
    settings: Settings
    written: dict[str, int]  # what demo.generate wrote for the first night
    first_kpi_rows: list[tuple]  # kpi_values as the first night published them
    second: pipeline.RunResult  # the full rerun of the same night on the same data


@pytest.fixture(scope="module")
def demo_run(demo_night: DemoNight, tmp_path_factory: pytest.TempPathFactory) -> TwoNights:
    """The session's demo night ("night-1", copied) and a full rerun of it ("night-2",
    ``--full-refresh``: a plain rerun with nothing new builds and publishes nothing)."""
    settings = make_settings(copy_tree(demo_night.folder, tmp_path_factory.mktemp("demo")))
    before = kpi_rows(settings.published_path)
    second = pipeline.run_all(
        settings, pipeline.RunContext.new("night-2", DEMO_DATE), full_refresh=True
    )
    return TwoNights(settings, demo_night.written, before, second)


def test_every_row_is_loaded_or_rejected(demo_run) -> None:
    settings, written = demo_run.settings, demo_run.written
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        for entity, count in written.items():
            loaded = con.execute(f"select count(*) from raw.{entity}").fetchone()[0]
            rejected = con.execute(
                "select count(*) from raw.load_rejects where entity = ?", [entity]
            ).fetchone()[0]
            assert loaded + rejected == count, entity
        read, ok, bad = con.execute(
            "select sum(rows_read), sum(rows_loaded), sum(rows_rejected) from raw.load_files"
        ).fetchone()
    finally:
        con.close()
    assert read == ok + bad == sum(written.values())


def test_published_file_has_kpis_and_a_publish_log(demo_run) -> None:
    settings = demo_run.settings
    con = duckdb.connect(str(settings.published_path), read_only=True)
    try:
        tables = {r[0] for r in con.execute("show tables").fetchall()}
        kpis = {r[0] for r in con.execute("select distinct kpi_id from kpi_values").fetchall()}
        log = con.execute(
            "select version, run_id, logical_date::varchar from publish_log order by version"
        ).fetchall()
        unreliable = con.execute(
            "select count(*) from kpi_values where not is_reliable and status = 'not_reliable'"
        ).fetchone()[0]
    finally:
        con.close()
    assert {"kpi_values", "dim_org_units", "kpi_catalog", "publish_log"} <= tables
    # every measurable KPI of the starter catalog has values on demo data
    catalog = kpi_spec.load_catalog([settings.kpi_definitions_dir], org_levels=settings.org_levels)
    assert kpis == {d.id for d in catalog.kpis if d.measurable}
    assert len(kpis) >= 25
    assert log == [(1, "night-1", "2026-10-31"), (2, "night-2", "2026-10-31")]
    assert unreliable > 0  # daily store values fall under min_sample and say so
    summary = pipeline.kpi_summary(settings.published_path)
    headline = {d.id for d in catalog.kpis if d.measurable and d.level in ("goal", "outcome")}
    assert {r["kpi_id"] for r in summary} == headline
    assert all(r["n"] >= 30 or r["status"] == "not_reliable" for r in summary)


def test_rerun_is_idempotent(demo_run) -> None:
    settings, second = demo_run.settings, demo_run.second
    assert second.stages["load_x"]["rows_loaded"] == 0
    assert second.stages["load_o"]["rows_loaded"] == 0
    assert kpi_rows(settings.published_path) == demo_run.first_kpi_rows
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        dupes = con.execute(
            "select count(*) - count(distinct response_id) from raw.survey_responses"
        ).fetchone()[0]
    finally:
        con.close()
    assert dupes == 0


def test_run_log_records_stage_timings(demo_run) -> None:
    settings = demo_run.settings
    import json

    log = json.loads((settings.runs_dir / DEMO_RUN_ID / "run.json").read_text())
    assert set(log["seconds"]) == set(pipeline.STAGES)
    assert log["error"] is None


def test_published_file_opens_in_another_process_read_only(demo_run) -> None:
    settings = demo_run.settings
    code = (
        "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True); "
        "print(c.execute('select count(*) from kpi_values').fetchone()[0])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(settings.published_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(out.stdout) > 0


def test_published_file_uses_a_storage_format_duckdb_1_readers_open(demo_run) -> None:
    settings = demo_run.settings
    header = settings.published_path.read_bytes()[:64]
    assert header[8:12] == b"DUCK"
    # storage version 64 is read by every duckdb since 0.10 (duckdb 2 writes 69)
    assert int.from_bytes(header[12:20], "little") == 64


def test_every_published_table_and_parquet_file_is_identical_on_a_rerun(demo_run) -> None:
    """Two nights on the same data: the same tables, byte for byte the same Parquet files
    (only publish_log, which records the runs, differs)."""
    settings = demo_run.settings
    first, second = (settings.published_dir / "versions" / f"v{v:06d}" for v in (1, 2))
    files = sorted(p.name for p in first.glob("*.parquet") if p.name != "publish_log.parquet")
    assert len(files) >= 15
    differ = [name for name in files if sha256(first / name) != sha256(second / name)]
    assert differ == []
    con = duckdb.connect(str(first / "cx.duckdb"), read_only=True)
    try:
        con.execute(f"attach '{second / 'cx.duckdb'}' as second (read_only)")
        tables = [r[0] for r in con.execute("show tables").fetchall() if r[0] != "publish_log"]
        changed = [
            t
            for t in tables
            if con.execute(
                f"select count(*) from (select * from {t} except all select * from second.{t})"
            ).fetchone()[0]
            or con.execute(
                f"select count(*) from (select * from second.{t} except all select * from {t})"
            ).fetchone()[0]
        ]
    finally:
        con.close()
    assert len(tables) == len(files) and changed == []
