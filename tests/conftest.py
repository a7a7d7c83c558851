"""Shared fixtures: an isolated project per test (own landing, warehouse, published, runs,
dbt target dirs) that uses the repository's dbt project, sources, KPIs and suites."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb
import pytest

from cxkpi.config import Settings, scratch_settings

REPO = Path(__file__).resolve().parents[1]

# No test may phone home.
os.environ.update(
    {
        "DO_NOT_TRACK": "1",
        "SCARF_NO_ANALYTICS": "true",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
    }
)


def make_settings(tmp_path: Path, **overrides) -> Settings:
    """Settings of the repository's project with every mutable path under ``tmp_path``."""
    return scratch_settings(REPO / "cxkpi.yml", tmp_path, **overrides)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


def copy_tree(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, dirs_exist_ok=True)
    return target


def query(database: Path, sql: str) -> list[tuple]:
    """Run ``sql`` on a DuckDB file through a short read-only connection."""
    con = duckdb.connect(str(database), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()
