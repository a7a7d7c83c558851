"""What Airflow costs a night: a real scheduler against `cxkpi run`, and `airflow dags
test` against a plain `dbt build`, on the same demo data.

    python bench/airflow_nights.py [--scale 1] [--skip-dags-test]

Starts Airflow's api-server, scheduler, dag-processor and triggerer on 127.0.0.1 in a
temporary AIRFLOW_HOME with the README recipe's environment (`cxkpi airflow-env`), triggers
the night of 2026-10-31 and waits for it. Every night runs on its own copy of the landing
files, in a fresh warehouse. Prints wall times, the ratios the issue targets, and the
slowest tasks. Not a test: tests assert correctness only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import yaml

from cxkpi import demo
from cxkpi.airflow_local import LocalStack, recipe_environment
from cxkpi.config import load_settings
from cxkpi.dbt_runner import dbt_vars

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
NIGHT = "2026-10-31"


def project(folder: Path, landing: Path) -> Path:
    """A project in ``folder`` reading the repository's definitions and a copy of the
    landing files; its DAG folder is the repository's."""
    folder.mkdir(parents=True)
    shutil.copytree(landing, folder / "landing")
    settings = yaml.safe_load((REPO / "cxkpi.yml").read_text(encoding="utf-8"))
    settings.update(
        {
            "landing_dir": str(folder / "landing"),
            "warehouse_path": str(folder / "warehouse" / "cx.duckdb"),
            "published_dir": str(folder / "published"),
            "runs_dir": str(folder / "runs"),
            "dbt_target_dir": str(folder / "dbt_target"),
            **{
                key: str(REPO / name)
                for key, name in (
                    ("sources_dir", "sources"),
                    ("kpi_definitions_dir", "kpi_definitions"),
                    ("expectations_dir", "expectations"),
                    ("topics_dir", "topics"),
                    ("case_rules_dir", "case_rules"),
                    ("access_file", "access/access.yml"),
                    ("dbt_project_dir", "dbt_project"),
                )
            },
        }
    )
    config = folder / "cxkpi.yml"
    config.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return config


def timed(args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{(done.stdout + done.stderr)[-4000:]}")
    return time.perf_counter() - started


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def scheduler_night(tmp: Path, landing: Path) -> tuple[float, list[dict]]:
    config = project(tmp / "scheduler", landing)
    env = {**os.environ, "CXKPI_CONFIG": str(config)}
    timed([str(BIN / "cxkpi"), "compile"], env)
    environment = recipe_environment(
        config,
        tmp / "scheduler" / "airflow_home",
        dags_folder=REPO / "dags",
        port=free_port(),
        log_server_port=free_port(),
    )
    with LocalStack(environment) as stack:
        stack.cli("pools", "set", "cxkpi_warehouse", "1", "DuckDB warehouse writers")
        stack.wait_for_dag("cx_nightly")
        stack.cli("dags", "unpause", "cx_nightly")
        run_id = stack.trigger("cx_nightly", f"{NIGHT}T00:00:00+00:00")
        state = stack.wait_for_run("cx_nightly", run_id)
        tasks = stack.task_instances("cx_nightly", run_id)
        if state != "success":
            failed = [t["task_id"] for t in tasks if t["state"] != "success"]
            sys.exit(f"the scheduler's night ended {state}; not successful: {failed}")
        return stack.run_seconds("cx_nightly", run_id), tasks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--skip-dags-test", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cxkpi-airflow-bench-") as name:
        tmp = Path(name)
        landing = tmp / "landing"
        demo.generate(landing, scale=args.scale, end_date=date.fromisoformat(NIGHT))

        config = project(tmp / "cli", landing)
        env = {**os.environ, "CXKPI_CONFIG": str(config)}
        run_s = timed([str(BIN / "cxkpi"), "run", "--logical-date", NIGHT], env)

        scheduler_s, tasks = scheduler_night(tmp, landing)

        print(f"demo scale {args.scale:g}, night {NIGHT}")
        print(f"  `cxkpi run` (new process)                 {run_s:7.1f}s")
        print(f"  real scheduler night (trigger to success) {scheduler_s:7.1f}s")
        print(f"  scheduler / cxkpi run: {scheduler_s / run_s:.2f}x (target <= 1.3x)")
        dbt_tasks = [t for t in tasks if t["task_id"].startswith("dbt.")]
        print(f"  {len(tasks)} tasks, {len(dbt_tasks)} in the dbt group; slowest:")
        for task in sorted(tasks, key=lambda t: -(t["seconds"] or 0))[:8]:
            print(f"    {task['task_id']:<52} {task['seconds'] or 0:6.1f}s")

        if args.skip_dags_test:
            return
        config = project(tmp / "dags_test", landing)
        environment = recipe_environment(
            config, tmp / "dags_test" / "airflow_home", dags_folder=REPO / "dags"
        )
        # dags test runs no triggerer: the dbt group in cosmos' local mode (docs: Airflow)
        env = {**os.environ, **environment, "CXKPI_AIRFLOW_DBT_TASKS": "local"}
        timed([str(BIN / "cxkpi"), "compile"], env)
        timed([str(BIN / "airflow"), "db", "migrate"], env)
        dags_s = timed([str(BIN / "airflow"), "dags", "test", "cx_nightly", NIGHT], env)

        config = project(tmp / "dbt", landing)
        env = {**os.environ, "CXKPI_CONFIG": str(config)}
        settings = yaml.safe_load(config.read_text(encoding="utf-8"))
        timed([str(BIN / "cxkpi"), "run", "--logical-date", NIGHT], env)  # loads the raw tables
        dbt = [
            str(BIN / "dbt"),
            "build",
            "--exclude",
            "resource_type:unit_test",
            "--project-dir",
            settings["dbt_project_dir"],
            "--profiles-dir",
            settings["dbt_project_dir"],
            "--target-path",
            settings["dbt_target_dir"],
            "--vars",
            json.dumps(dbt_vars(load_settings(config)), sort_keys=True),
            "--quiet",
        ]
        dbt_env = {**env, "CXKPI_WAREHOUSE_PATH": settings["warehouse_path"]}
        dbt_s = timed(dbt, dbt_env)
        print(f"  `airflow dags test cx_nightly` (a whole night) {dags_s:7.1f}s")
        print(f"  plain `dbt build` (new process, same data)     {dbt_s:7.1f}s")
        print(f"  dags test / plain dbt build: {dags_s / dbt_s:.2f}x (target <= 1.3x)")
        print(f"  dags test / cxkpi run: {dags_s / run_s:.2f}x")


if __name__ == "__main__":
    main()
