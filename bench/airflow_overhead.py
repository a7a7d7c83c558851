"""Airflow's overhead: the same night via `airflow dags test cx_nightly` vs in-process.

    python bench/airflow_overhead.py [--scale 0.2]

Prints: a plain `dbt build` (CLI, cold process), `cxkpi run` stage times (one in-process
dbt build), and the wall time of `airflow dags test` with per-task durations from the
Airflow metadata DB. Uses a temporary project and AIRFLOW_HOME; not a test.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def timed(args: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{(done.stdout + done.stderr)[-4000:]}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=0.2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cxkpi-airflow-bench-") as name:
        tmp = Path(name)
        config = tmp / "cxkpi.yml"
        paths = {
            "landing_dir": tmp / "landing",
            "warehouse_path": tmp / "warehouse" / "cx.duckdb",
            "published_dir": tmp / "published",
            "runs_dir": tmp / "runs",
            "dbt_target_dir": tmp / "dbt_target",
        }
        config.write_text(
            yaml.safe_dump(
                {
                    **{k: str(v) for k, v in paths.items()},
                    "sources_dir": str(REPO / "sources"),
                    "kpi_definitions_dir": str(REPO / "kpi_definitions"),
                    "expectations_dir": str(REPO / "expectations"),
                    "dbt_project_dir": str(REPO / "dbt_project"),
                }
            )
        )
        home = tmp / "airflow_home"
        env = {
            **os.environ,
            "CXKPI_CONFIG": str(config),
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__COSMOS__CACHE_DIR": str(home / "cosmos_cache"),
            "CXKPI_WAREHOUSE_PATH": str(paths["warehouse_path"]),
        }
        cxkpi = str(BIN / "cxkpi")
        timed([cxkpi, "demo-data", "--scale", str(args.scale)], env, tmp)
        timed([cxkpi, "compile"], env, tmp)

        run_s = timed([cxkpi, "run", "--logical-date", "2026-10-30"], env, tmp)
        dbt_s = timed(
            [
                str(BIN / "dbt"),
                "build",
                "--project-dir",
                str(REPO / "dbt_project"),
                "--profiles-dir",
                str(REPO / "dbt_project"),
                "--target-path",
                str(paths["dbt_target_dir"]),
                "--quiet",
            ],
            env,
            tmp,
        )
        migrate_s = timed([str(BIN / "airflow"), "db", "migrate"], env, tmp)
        dags_s = timed([str(BIN / "airflow"), "dags", "test", "cx_nightly", "2026-10-31"], env, tmp)
        rows = (
            sqlite3.connect(home / "airflow.db")
            .execute(
                "select task_id, (julianday(end_date) - julianday(start_date)) * 86400 "
                "from task_instance order by start_date"
            )
            .fetchall()
        )
        dbt_tasks = [d for t, d in rows if t.startswith("dbt.") and d is not None]

        print(f"demo scale {args.scale:g}")
        print(f"  plain `dbt build` (new process)        {dbt_s:7.2f}s")
        print(f"  `cxkpi run` whole night (new process)   {run_s:7.2f}s")
        print(f"  `airflow db migrate` (once)             {migrate_s:7.2f}s")
        print(f"  `airflow dags test cx_nightly`          {dags_s:7.2f}s")
        print(
            f"    {len(rows)} tasks; {len(dbt_tasks)} dbt tasks, sum {sum(dbt_tasks):.2f}s, "
            f"median {sorted(dbt_tasks)[len(dbt_tasks) // 2]:.2f}s"
        )
        for task_id, seconds in rows:
            if not task_id.startswith("dbt."):
                print(f"    {task_id:<14} {seconds or 0:6.2f}s")
        print(f"  Airflow / plain dbt build: {dags_s / dbt_s:.1f}x")


if __name__ == "__main__":
    main()
