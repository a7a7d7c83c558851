"""What the Airflow DAG needs from the package: settings, run context, cosmos configs.

Kept here so ``dags/cx_nightly.py`` only wires tasks. Nothing here touches a database or
the network; cosmos reads the precompiled dbt manifest (``cxkpi compile``) to render the
dbt tasks without running dbt while the DAG file is parsed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cxkpi.config import Settings, find_config, load_settings
from cxkpi.dbt_runner import dbt_env, dbt_vars
from cxkpi.pipeline import RunContext

# dbt tasks write the DuckDB warehouse, which has a single writer: create this pool with
# one slot (`airflow pools set cxkpi_warehouse 1 "DuckDB warehouse writers"`).
WAREHOUSE_POOL = "cxkpi_warehouse"


def settings(dag_folder: Path | None = None) -> Settings:
    """The project settings: $CXKPI_CONFIG, else the first cxkpi.yml in the DAG file's
    folder or above (the DAG passes its own folder: Airflow's working directory is not the
    project's), else in the working directory or above. Never a path computed from where
    the package is installed."""
    return load_settings(find_config(dag_folder))


def run_context(context: dict[str, Any]) -> RunContext:
    """The run's identity from Airflow: its run id and logical date (data interval end
    for runs without one, e.g. manual runs in Airflow 3)."""
    dag_run = context["dag_run"]
    moment = context.get("logical_date") or dag_run.run_after
    return RunContext.new(dag_run.run_id, moment.date().isoformat())


def cosmos_configs(project: Settings) -> dict[str, Any]:
    """Keyword arguments for cosmos' DbtTaskGroup: rendered from the manifest, run locally
    in-process (dbtRunner), sources with tests rendered, one pool slot for the warehouse."""
    import cosmos.settings
    from cosmos import ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
    from cosmos.constants import (
        ExecutionMode,
        InvocationMode,
        LoadMode,
        SourceRenderingBehavior,
        TestBehavior,
    )

    # cosmos read its telemetry switches when first imported, maybe before cxkpi set them.
    cosmos.settings.enable_telemetry = False

    return {
        "project_config": ProjectConfig(
            dbt_project_path=project.dbt_project_dir,
            manifest_path=project.dbt_manifest_path,
            install_dbt_deps=False,
            dbt_vars=dbt_vars(project),
            # the profile's paths and the telemetry switches, for every dbt task
            env_vars=dbt_env(project),
        ),
        "profile_config": ProfileConfig(
            profile_name="cxkpi",
            target_name=project.dbt_target,
            profiles_yml_filepath=project.dbt_project_dir / "profiles.yml",
        ),
        "render_config": RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            test_behavior=TestBehavior.BUILD,
            source_rendering_behavior=SourceRenderingBehavior.WITH_TESTS_OR_FRESHNESS,
            # a relationships test runs once both of its models exist
            should_detach_multiple_parents_tests=True,
        ),
        "execution_config": ExecutionConfig(
            execution_mode=ExecutionMode.LOCAL,
            invocation_mode=InvocationMode.DBT_RUNNER,
        ),
        "operator_args": {"pool": WAREHOUSE_POOL},
    }
