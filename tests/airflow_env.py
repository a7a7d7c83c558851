"""An isolated Airflow installation for tests: temp AIRFLOW_HOME, this repo's dags/, and a
cxkpi project whose mutable paths live under the test's tmp folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml
from conftest import REPO, repository_read_paths

BIN = Path(sys.executable).parent


def write_project_config(tmp: Path, **extra: object) -> Path:
    """The demo project's cxkpi.yml (its company settings: org levels, time zone...) with
    every path a night writes under ``tmp`` and every path it reads in the repository, and
    the ``extra`` settings (e.g. an ``access_file``, opted in)."""
    settings = yaml.safe_load((REPO / "cxkpi.yml").read_text(encoding="utf-8"))
    settings.update(
        {
            "landing_dir": str(tmp / "landing"),
            "warehouse_path": str(tmp / "warehouse" / "cx.duckdb"),
            "published_dir": str(tmp / "published"),
            "runs_dir": str(tmp / "runs"),
            "dbt_target_dir": str(tmp / "dbt_target"),
            **repository_read_paths(),
            **extra,
        }
    )
    config = tmp / "cxkpi.yml"
    config.write_text(yaml.safe_dump(settings))
    return config


def airflow_environment(tmp: Path, config: Path) -> dict[str, str]:
    home = tmp / "airflow_home"
    home.mkdir(exist_ok=True)
    return {
        # the project's config chooses the warehouse, not a CXKPI_WAREHOUSE of the caller
        **{name: value for name, value in os.environ.items() if name != "CXKPI_WAREHOUSE"},
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__COSMOS__CACHE_DIR": str(home / "cosmos_cache"),
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "DO_NOT_TRACK": "1",
        "SCARF_NO_ANALYTICS": "true",
        "CXKPI_CONFIG": str(config),
    }


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, env=env, cwd=cwd, capture_output=True, text=True, check=False, timeout=900
    )
