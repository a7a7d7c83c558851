"""Airflow as deployed: a real api-server, scheduler, dag-processor and triggerer started
with the README recipe's environment (``cxkpi airflow-env``), not ``airflow dags test``.

One stack runs, in order: a triggered night, a backfill of two nights (allowed two active
runs, so only the night lease keeps them apart; nothing new for them: no dbt), and a cleared
dbt model task. Every
process runs with tests/netguard on its path, which refuses and records any connection or
name lookup leaving the machine.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pytest
from airflow_env import write_project_config
from conftest import REPO

from cxkpi import demo, pipeline
from cxkpi.airflow_local import AIRFLOW_TELEMETRY_OFF, LocalStack, recipe_environment
from cxkpi.config import load_settings

pytestmark = pytest.mark.e2e

DAG = "cx_nightly"
NIGHT = "2026-10-31"
CLEARED_MODEL_TASK = "dbt.models.marts.kpi_catalog_run"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class SchedulerNights:
    environment: dict[str, str]
    netguard_log: Path
    night: dict = field(default_factory=dict)  # run_id, state, tasks
    backfill: list[dict] = field(default_factory=list)
    cleared: dict = field(default_factory=dict)


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> SchedulerNights:
    tmp = tmp_path_factory.mktemp("scheduler")
    config = write_project_config(tmp)
    settings = load_settings(config)
    demo.generate(settings.landing_dir, scale=0.05, end_date=date.fromisoformat(NIGHT))
    pipeline.compile_catalog(settings)
    from cxkpi import dbt_runner

    dbt_runner.parse(settings)
    netguard_log = tmp / "netguard.log"
    environment = {
        **recipe_environment(
            config,
            tmp / "airflow_home",
            dags_folder=REPO / "dags",
            port=free_port(),
            log_server_port=free_port(),
        ),
        "PYTHONPATH": os.pathsep.join(
            [str(REPO / "tests" / "netguard"), os.environ.get("PYTHONPATH", "")]
        ),
        "CXKPI_NETGUARD_LOG": str(netguard_log),
    }
    result = SchedulerNights(environment, netguard_log)
    with LocalStack(environment) as stack:
        stack.cli("pools", "set", "cxkpi_warehouse", "1", "DuckDB warehouse writers")
        stack.wait_for_dag(DAG)
        stack.cli("dags", "unpause", DAG)

        run_id = stack.trigger(DAG, f"{NIGHT}T00:00:00+00:00")
        state = stack.wait_for_run(DAG, run_id)
        result.night = {
            "run_id": run_id,
            "state": state,
            "tasks": stack.task_instances(DAG, run_id),
        }

        # two nights, two active runs allowed: only the lease keeps them apart
        stack.cli(
            "backfill", "create", "--dag-id", DAG, "--from-date", "2026-10-29",
            "--to-date", "2026-10-31", "--max-active-runs", "2",
        )  # fmt: skip
        with stack.metadata() as db:
            backfill_runs = [
                r[0]
                for r in db.execute(
                    "select run_id from dag_run where dag_id = ? and run_type = 'backfill'", [DAG]
                )
            ]
        for backfill_run in backfill_runs:
            result.backfill.append(
                {
                    "run_id": backfill_run,
                    "state": stack.wait_for_run(DAG, backfill_run),
                    "tasks": stack.task_instances(DAG, backfill_run),
                }
            )

        # Airflow 3.3's --task-regex matches a substring of the task id (not a regular
        # expression); the dates pick the triggered night. Its setup and teardown (the
        # night lease) are cleared with it.
        stack.cli(
            "tasks", "clear", DAG, "--task-regex", CLEARED_MODEL_TASK,
            "--start-date", f"{NIGHT}T00:00:00+00:00", "--end-date", f"{NIGHT}T00:00:00+00:00",
            "--yes",
        )  # fmt: skip
        result.cleared = {
            "state": stack.wait_for_run(DAG, run_id),
            "tasks": stack.task_instances(DAG, run_id),
            "log": "\n".join(
                p.read_text(errors="replace")
                for p in (stack.home / "logs").rglob("attempt=2*.log")
                if CLEARED_MODEL_TASK in str(p)
            ),
        }
    return result


def _task(tasks: list[dict], task_id: str) -> dict:
    [found] = [t for t in tasks if t["task_id"] == task_id]
    return found


def test_a_triggered_night_succeeds_with_every_model_task(nights: SchedulerNights) -> None:
    assert nights.night["state"] == "success", [
        (t["task_id"], t["state"]) for t in nights.night["tasks"] if t["state"] != "success"
    ]
    tasks = {t["task_id"] for t in nights.night["tasks"]}
    assert {"claim_night", "check_load", "dbt.dbt_producer_watcher", "release_night"} <= tasks
    assert "dbt.models.marts.kpi_values_run" in tasks
    assert "dbt.models.staging.stg_surveys__responses_run" in tasks


def test_a_backfill_runs_its_nights_one_at_a_time(nights: SchedulerNights) -> None:
    """Two backfill runs allowed to be active together: the second waits at claim_night
    until the first has released the lease; neither overlaps the other's work."""
    assert len(nights.backfill) == 2
    assert [r["state"] for r in nights.backfill] == ["success", "success"]
    spans = sorted(
        (_task(r["tasks"], "prepare")["start_date"], _task(r["tasks"], "release_night")["end_date"])
        for r in nights.backfill
    )
    (_, first_end), (second_start, _) = spans
    assert first_end <= second_start, spans


def test_a_night_with_nothing_new_runs_no_dbt(nights: SchedulerNights) -> None:
    """The backfilled nights come after the triggered one loaded every file: nothing new,
    so the producer ran no dbt and every model task ended skipped, not rebuilt."""
    for run in nights.backfill:
        assert _task(run["tasks"], "plan_build")["state"] == "success"
        assert _task(run["tasks"], "dbt.dbt_producer_watcher")["state"] == "success"
        models = [t for t in run["tasks"] if t["task_id"].startswith("dbt.models.")]
        assert models and {t["state"] for t in models} == {"skipped"}, run["run_id"]
        assert _task(run["tasks"], "publish")["state"] == "success"
    # the triggered night built: its model tasks succeeded
    built = [t for t in nights.night["tasks"] if t["task_id"].startswith("dbt.models.")]
    assert {t["state"] for t in built} == {"success"}


def test_clearing_one_model_task_rebuilds_that_model_on_a_worker(
    nights: SchedulerNights,
) -> None:
    assert nights.cleared["state"] == "success"
    cleared = _task(nights.cleared["tasks"], CLEARED_MODEL_TASK)
    assert cleared["state"] == "success"
    assert cleared["try_number"] == 2
    # cosmos' fallback ran dbt for this model alone
    assert "kpi_catalog" in nights.cleared["log"]
    assert "Running with dbt" in nights.cleared["log"] or "dbt run" in nights.cleared["log"]
    # the rest of the night was not rerun
    producer = _task(nights.cleared["tasks"], "dbt.dbt_producer_watcher")
    assert producer["try_number"] == 1


def test_the_recipe_environment_keeps_every_process_off_the_network(
    nights: SchedulerNights,
) -> None:
    for name, value in AIRFLOW_TELEMETRY_OFF.items():
        assert nights.environment[name] == value
    # the guard works: a process of the same environment that tries is refused and recorded
    control_log = nights.netguard_log.with_name("control.log")
    tried = subprocess.run(
        [sys.executable, "-c", "import urllib.request; urllib.request.urlopen('https://pypi.org')"],
        env={**os.environ, **nights.environment, "CXKPI_NETGUARD_LOG": str(control_log)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert tried.returncode != 0 and "pypi.org" in control_log.read_text()
    attempts = nights.netguard_log.read_text() if nights.netguard_log.exists() else ""
    assert attempts == "", f"processes tried to leave the machine:\n{attempts}"
