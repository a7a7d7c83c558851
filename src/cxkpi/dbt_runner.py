"""Run dbt in-process (one start-up per run, not per model) and report what failed.

dbt reads its connection from ``dbt_project/profiles.yml``, which takes the warehouse path
and target from the environment this module sets from the settings.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cxkpi.config import Settings
from cxkpi.errors import DbtError

log = logging.getLogger(__name__)

# dbt, cosmos and friends must never try to reach the network.
TELEMETRY_OFF = {
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "DO_NOT_TRACK": "1",
    "SCARF_NO_ANALYTICS": "true",
    "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
}


# A night builds models and runs their data tests; dbt's unit tests check the project's SQL
# on fixtures and run with the test suite, not every night.
NIGHTLY_EXCLUDE = "resource_type:unit_test"


def dbt_vars(settings: Settings) -> dict[str, object]:
    """The project settings dbt models read as ``var(...)``: passed on every invocation
    (``--vars``) and by the DAG, so dbt_project.yml's values are only defaults."""
    return {
        "min_sample": settings.min_sample,
        "reporting_timezone": settings.reporting_timezone,
        "org_levels": list(settings.org_levels),
        "multi_unit_orders": settings.multi_unit_orders,
        "effectiveness_org_level": settings.effectiveness_level,
    }


def dbt_env(settings: Settings) -> dict[str, str]:
    """Environment variables dbt's profile reads, plus telemetry switches. The PostgreSQL
    password is not among them: the profile reads CXKPI_PG_PASSWORD itself."""
    server = settings.postgres if settings.warehouse_type == "postgres" else None
    return {
        "CXKPI_WAREHOUSE_PATH": str(settings.warehouse_path),
        "CXKPI_DBT_TARGET": settings.dbt_target,
        "DBT_PROFILES_DIR": str(settings.dbt_project_dir),
        **(
            {
                "CXKPI_PG_HOST": server.host,
                "CXKPI_PG_PORT": str(server.port),
                "CXKPI_PG_DATABASE": server.database,
                "CXKPI_PG_USER": server.user,
            }
            if server is not None
            else {}
        ),
        **TELEMETRY_OFF,
    }


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


@dataclass
class DbtOutcome:
    command: str
    success: bool
    results: list[dict] = field(default_factory=list)

    @property
    def failures(self) -> list[dict]:
        return [r for r in self.results if r["status"] in ("error", "fail")]

    @property
    def warnings(self) -> list[dict]:
        return [r for r in self.results if r["status"] == "warn"]

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for r in self.results:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        return ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "nothing ran"


def _release_connections() -> None:
    """dbt keeps adapter connections (and DuckDB file locks) after an in-process run.

    dbt-duckdb's ``close_all_connections`` only drops its reference to the DuckDB instance
    (dbt-core issue 11980), so the file stays open until garbage collection: close it here.
    """
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    from dbt.adapters.factory import cleanup_connections, reset_adapters

    cleanup_connections()
    with DuckDBConnectionManager._LOCK:
        if DuckDBConnectionManager._ENV is not None:
            DuckDBConnectionManager._ENV.close()
            DuckDBConnectionManager._ENV = None
    reset_adapters()


def invoke(settings: Settings, args: list[str]) -> DbtOutcome:
    from dbt.cli.main import dbtRunner

    project = str(settings.dbt_project_dir)
    full_args = [
        *args,
        "--project-dir",
        project,
        "--profiles-dir",
        project,
        "--target",
        settings.dbt_target,
        "--target-path",
        str(settings.dbt_target_dir),
        "--log-path",
        str(settings.runs_dir / "dbt_logs"),
        "--vars",
        json.dumps(dbt_vars(settings), sort_keys=True),
    ]
    if not log.isEnabledFor(logging.INFO):
        full_args.insert(1, "--quiet")
    log.info("dbt %s", " ".join(args))
    # keep the DuckDB file open while dbt runs (profiles.yml): _release_connections closes it
    with _environment({**dbt_env(settings), "CXKPI_DBT_KEEP_OPEN": "True"}):
        try:
            result = dbtRunner().invoke(full_args)
        finally:
            _release_connections()
    outcome = DbtOutcome(command=" ".join(args), success=bool(result.success))
    run_results = getattr(result.result, "results", None) or []
    for r in run_results:
        node = r.node
        outcome.results.append(
            {
                "unique_id": node.unique_id,
                "name": node.name,
                "resource_type": str(node.resource_type),
                "status": str(r.status),
                "failures": r.failures,
                "message": r.message,
                "execution_time": r.execution_time,
            }
        )
    if result.exception is not None and not outcome.results:
        raise DbtError(f"dbt {outcome.command} could not run: {result.exception}")
    return outcome


def build(settings: Settings, select: str | None = None, full_refresh: bool = False) -> DbtOutcome:
    """``dbt build``: models and their tests in DAG order; raise naming what failed.

    ``full_refresh`` rebuilds the incremental models from all their data."""
    args = ["build", "--exclude", NIGHTLY_EXCLUDE] + (["--select", select] if select else [])
    if full_refresh:
        args.append("--full-refresh")
    outcome = invoke(settings, args)
    if not outcome.success:
        lines = [
            f"  {f['resource_type']} {f['name']}: {f['status']}"
            + (f" ({f['failures']} failing rows)" if f.get("failures") else "")
            + (f": {f['message']}" if f.get("message") else "")
            for f in outcome.failures
        ]
        raise DbtError(
            f"dbt build failed ({outcome.summary()}); nothing was published:\n" + "\n".join(lines)
        )
    return outcome


def parse(settings: Settings) -> Path:
    """Write ``target/manifest.json`` (the DAG renders its dbt tasks from it)."""
    outcome = invoke(settings, ["parse"])
    if not outcome.success:
        raise DbtError("dbt parse failed: fix the dbt project (see the log above)")
    return settings.dbt_manifest_path


def _unique_keys(manifest: dict) -> dict[str, list[list[str]]]:
    """Model id -> the column lists its ``unique`` and ``unique_combination_of_columns``
    data tests check (what a reader looks rows up by)."""
    keys: dict[str, list[list[str]]] = {}
    for node in manifest["nodes"].values():
        meta = node.get("test_metadata") or {}
        model = node.get("attached_node")
        if node["resource_type"] != "test" or not model:
            continue
        if meta.get("name") == "unique" and node.get("column_name"):
            columns = [node["column_name"]]
        elif meta.get("name") == "unique_combination_of_columns":
            columns = list(meta.get("kwargs", {}).get("combination_of_columns") or [])
        else:
            continue
        if columns and columns not in keys.setdefault(model, []):
            keys[model].append(columns)
    return keys


def published_models(settings: Settings) -> list[dict]:
    """Models tagged ``published`` in the manifest: name, schema, columns and scope rule,
    in name order."""
    manifest_path = settings.dbt_manifest_path
    if not manifest_path.exists():
        parse(settings)
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    keys = _unique_keys(manifest)
    models = [
        {
            "name": node["name"],
            "schema": node["schema"],
            "database": node.get("database"),
            "columns": list(node.get("columns", {})),
            # which rows each role's extract holds (cxkpi.scopes)
            "scope": (node.get("config", {}).get("meta") or node.get("meta") or {}).get("scope"),
            # the column sets its data tests hold unique: PostgreSQL indexes them
            "keys": keys.get(unique_id, []),
        }
        for unique_id, node in manifest["nodes"].items()
        if node["resource_type"] == "model" and "published" in node.get("tags", [])
    ]
    return sorted(models, key=lambda m: m["name"])
