"""Airflow as a data engineer deploys it, on one machine: the environment of the README's
recipe (``cxkpi airflow-env``) and a local stack (api-server, scheduler, dag-processor,
triggerer on 127.0.0.1) that the benchmarks and the end-to-end tests start.

The environment is the one place that says how every Airflow process of a cxkpi
deployment is configured: where the DAGs and the project are, where the api-server listens
and how the scheduler's tasks reach it, who may log in, and that nothing phones home.
cosmos reads its telemetry switch in the scheduler and api-server processes, which never
import cxkpi: the switches must be in their environment, not only set by cxkpi's code.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from cxkpi.dbt_runner import TELEMETRY_OFF

# Every switch Airflow, cosmos, dbt and their libraries read to stay off the network.
AIRFLOW_TELEMETRY_OFF = {
    **TELEMETRY_OFF,
    "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False",
    "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
}

PROCESSES = ("api-server", "scheduler", "dag-processor", "triggerer")


def recipe_environment(
    config: Path,
    home: Path,
    *,
    dags_folder: Path | None = None,
    host: str = "127.0.0.1",
    port: int = 8080,
    users: str = "admin:admin",
    log_server_port: int = 8793,
) -> dict[str, str]:
    """The variables every Airflow process of the deployment needs (and nothing else).

    ``config`` is the project's cxkpi.yml; the DAGs folder defaults to its ``dags/``.
    ``users`` is Airflow's simple auth manager's ``name:role`` list: the passwords it
    generates are in ``$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated``.
    ``log_server_port`` is where the scheduler's executor serves task logs to the
    api-server (two deployments on one machine need two ports)."""
    config = config.resolve()
    base_url = f"http://{host}:{port}"
    return {
        "AIRFLOW_HOME": str(home.resolve()),
        "CXKPI_CONFIG": str(config),
        "AIRFLOW__CORE__DAGS_FOLDER": str((dags_folder or config.parent / "dags").resolve()),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        # the api-server binds here; the scheduler's tasks report to its execution API
        "AIRFLOW__API__HOST": host,
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": base_url,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": users,
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(log_server_port),
        # a new DAG waits to be unpaused; cosmos caches its parsed graph under the home
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__COSMOS__CACHE_DIR": str(home.resolve() / "cosmos_cache"),
        **AIRFLOW_TELEMETRY_OFF,
    }


def shell_exports(environment: dict[str, str]) -> str:
    """``export NAME=value`` lines, for ``eval "$(cxkpi airflow-env)"``."""
    return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in environment.items())


@dataclass
class LocalStack:
    """Airflow's four services for one project, each a process with its log file under
    ``$AIRFLOW_HOME/services``; ``start()`` returns once the api-server answers."""

    environment: dict[str, str]
    airflow: Path = field(default_factory=lambda: Path(sys.executable).parent / "airflow")
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def home(self) -> Path:
        return Path(self.environment["AIRFLOW_HOME"])

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, **self.environment}

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run ``airflow <args>``. The metadata DB is SQLite here, and a write while the
        scheduler writes may find it locked: such a command is tried again."""
        for attempt in range(5):
            done = subprocess.run(
                [str(self.airflow), *args],
                env=self.env,
                capture_output=True,
                text=True,
                check=False,
                timeout=600,
            )
            if done.returncode == 0 or "database is locked" not in done.stderr:
                break
            time.sleep(1 + attempt)
        if check and done.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed:\n{done.stderr[-3000:]}")
        return done

    def start(self, timeout: float = 120) -> LocalStack:
        try:
            return self._start(timeout)
        except BaseException:
            self.stop()  # no service outlives a failed start
            raise

    def _start(self, timeout: float) -> LocalStack:
        self.home.mkdir(parents=True, exist_ok=True)
        self.cli("db", "migrate")
        logs = self.home / "services"
        logs.mkdir(exist_ok=True)
        for name in PROCESSES:
            with open(logs / f"{name}.log", "ab") as out:
                self.processes[name] = subprocess.Popen(
                    [str(self.airflow), name],
                    env=self.env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # stop() ends the service and its children
                )
        health = f"{self.environment['AIRFLOW__API__BASE_URL']}/api/v2/monitor/health"
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            try:
                with urllib.request.urlopen(health, timeout=2) as answer:
                    if answer.status == 200:
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"the api-server did not answer at {health}")
            time.sleep(0.5)

    def _check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                log = (self.home / "services" / f"{name}.log").read_text(errors="replace")
                raise RuntimeError(f"airflow {name} exited ({process.returncode}):\n{log[-3000:]}")

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.processes.clear()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_for_dag(self, dag_id: str, timeout: float = 180) -> None:
        """Until the dag-processor has serialised ``dag_id`` (or reported an import error)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            with self.metadata() as db:
                if db.execute("select 1 from serialized_dag where dag_id = ?", [dag_id]).fetchone():
                    return
                errors = db.execute("select stacktrace from import_error").fetchall()
            if errors:
                raise RuntimeError(f"the DAG folder has import errors:\n{errors[0][0][-3000:]}")
            time.sleep(1)
        raise TimeoutError(f"DAG {dag_id} was not parsed within {timeout} s")

    def trigger(self, dag_id: str, logical_date: str, run_id: str | None = None) -> str:
        run_id = run_id or f"manual__{logical_date}"
        self.cli("dags", "trigger", dag_id, "--logical-date", logical_date, "--run-id", run_id)
        return run_id

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 1800) -> str:
        """The run's final state (success or failed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            with self.metadata() as db:
                row = db.execute(
                    "select state from dag_run where dag_id = ? and run_id = ?", [dag_id, run_id]
                ).fetchone()
            if row and row[0] in ("success", "failed"):
                return str(row[0])
            time.sleep(1)
        raise TimeoutError(f"run {run_id} did not finish within {timeout} s")

    @contextmanager
    def metadata(self) -> Iterator[sqlite3.Connection]:
        """A short read connection to the metadata DB (SQLite under the home)."""
        db = sqlite3.connect(f"file:{self.home / 'airflow.db'}?mode=ro", uri=True, timeout=30)
        try:
            yield db
        finally:
            db.close()

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        with self.metadata() as db:
            db.row_factory = sqlite3.Row
            rows = db.execute(
                """select task_id, state, try_number, start_date, end_date,
                          (julianday(end_date) - julianday(start_date)) * 86400 as seconds
                   from task_instance where dag_id = ? and run_id = ? order by start_date""",
                [dag_id, run_id],
            ).fetchall()
        return [dict(r) for r in rows]

    def run_seconds(self, dag_id: str, run_id: str) -> float:
        with self.metadata() as db:
            row = db.execute(
                """select (julianday(end_date) - julianday(start_date)) * 86400
                   from dag_run where dag_id = ? and run_id = ?""",
                [dag_id, run_id],
            ).fetchone()
        return float(row[0])

    def passwords(self) -> dict[str, str]:
        path = self.home / "simple_auth_manager_passwords.json.generated"
        return json.loads(path.read_text()) if path.exists() else {}
