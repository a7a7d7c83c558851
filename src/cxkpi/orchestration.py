"""What the Airflow DAG needs from the package: settings, run context, cosmos configs.

Kept here so ``dags/cx_nightly.py`` only wires tasks. Nothing here touches a database or
the network; cosmos reads the precompiled dbt manifest (``cxkpi compile``) to render the
dbt tasks without running dbt while the DAG file is parsed.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from cxkpi import night_lease
from cxkpi.config import Settings, find_config, load_settings
from cxkpi.dbt_runner import dbt_env, dbt_vars
from cxkpi.errors import CxkpiError
from cxkpi.night_lease import Holder
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


# Scheduled nights start at this time of day (the reporting time zone), once the day's
# exports have landed, and process the day that ended.
NIGHTLY_CRON = "0 2 * * *"


def nightly_schedule(project: Settings) -> Any:
    """The night's timetable: daily at NIGHTLY_CRON in the reporting time zone, the data
    interval the day before. ``run_immediately=False``: unpausing the DAG does not start
    a run for a day already under way; the first scheduled night is the next 02:00."""
    from airflow.timetables.trigger import CronTriggerTimetable

    return CronTriggerTimetable(
        NIGHTLY_CRON,
        timezone=project.reporting_timezone,
        interval=timedelta(days=1),
        run_immediately=False,
    )


def _value(enum_or_text: Any) -> str:
    return str(getattr(enum_or_text, "value", enum_or_text))


def run_context(context: dict[str, Any], timezone: str = "UTC") -> RunContext:
    """The run's identity from Airflow: its run id and the day it processes. A scheduled
    or backfilled night processes its data interval's day in the reporting ``timezone``
    (the night of 3 December at 02:00 processes 2 December); a manual run the day of its
    logical date (``airflow dags trigger --logical-date 2026-10-31`` is the night of 31
    October), or of its run_after when triggered without one."""
    dag_run = context["dag_run"]
    if _value(dag_run.run_type) in ("scheduled", "backfill"):
        day = context["data_interval_start"].astimezone(ZoneInfo(timezone)).date()
    else:
        day = (context.get("logical_date") or dag_run.run_after).date()
    return RunContext.new(dag_run.run_id, day.isoformat())


def claim_night(project: Settings, context: dict[str, Any]) -> Holder | None:
    """Claim the project's night lease for this run (None), or the night holding it; an
    Airflow holder whose run is no longer running is over."""
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    def is_gone(other: Holder) -> bool:
        if other.owner == "airflow" and other.dag_id:
            state = RuntimeTaskInstance.get_dagrun_state(other.dag_id, other.run_id)
            return _value(state) not in ("running", "queued")
        return night_lease.cli_process_is_gone(other)

    dag_run = context["dag_run"]
    claimant = Holder(run_id=dag_run.run_id, owner="airflow", dag_id=dag_run.dag_id)
    return night_lease.claim(project, claimant, is_gone)


def release_night(project: Settings, context: dict[str, Any]) -> bool:
    return night_lease.release(project, context["dag_run"].run_id)


def cosmos_configs(project: Settings) -> dict[str, Any]:
    """Keyword arguments for cosmos' DbtTaskGroup in its watcher mode.

    One producer task runs a single in-process ``dbt build`` (dbt's threads, one start-up);
    every model is a sensor task that turns green or red when dbt reports it, with its
    tests, so the UI still shows each model and its log. The graph is grouped by the
    project's folders (staging, intermediate, kpis, marts, diagnostics). A consumer task
    that is retried or cleared runs its own model with dbt (cosmos' fallback), so a single
    model can be rebuilt without rerunning the night. dbt's unit tests are not part of a
    night: they test the project's SQL, and run with the test suite (``make test``).
    """
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
            # no task per test: the producer's build runs every data test right after its
            # model (dbt build order), and a failing test fails the producer and every model
            # below it; a task per test (or per source) would cost a task start-up each
            test_behavior=TestBehavior.NONE,
            source_rendering_behavior=SourceRenderingBehavior.NONE,
            group_nodes_by_folder=True,
        ),
        "execution_config": ExecutionConfig(
            execution_mode=ExecutionMode.WATCHER,
            invocation_mode=InvocationMode.DBT_RUNNER,
            # only the producer writes the warehouse (a single writer): only it takes the pool
            # TestBehavior.NONE limits its build to models, seeds and snapshots: add the data
            # tests back (not the unit tests, which run with the test suite)
            setup_operator_args={
                "pool": WAREHOUSE_POOL,
                "dbt_cmd_flags": ["--resource-type", "test"],
            },
        ),
    }


def _local_configs(project: Settings) -> dict[str, Any]:
    """cosmos' local mode: one task per model running `dbt build` on it (model, then its
    tests), each in the warehouse pool. For `airflow dags test`, which has no triggerer:
    the watcher mode's model tasks start in the triggerer and would wait forever there."""
    from cosmos import ExecutionConfig, RenderConfig
    from cosmos.constants import (
        ExecutionMode,
        InvocationMode,
        LoadMode,
        SourceRenderingBehavior,
        TestBehavior,
    )

    configs = cosmos_configs(project)
    return {
        **configs,
        "render_config": RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            test_behavior=TestBehavior.BUILD,
            source_rendering_behavior=SourceRenderingBehavior.WITH_TESTS_OR_FRESHNESS,
            exclude=["resource_type:unit_test"],
            should_detach_multiple_parents_tests=True,
        ),
        "execution_config": ExecutionConfig(
            execution_mode=ExecutionMode.LOCAL,
            invocation_mode=InvocationMode.DBT_RUNNER,
        ),
        "operator_args": {"pool": WAREHOUSE_POOL},
    }


# `watcher` (default): one dbt build, model tasks in the triggerer; `local`: a task per
# model, for `airflow dags test` (no triggerer runs there).
DBT_TASKS_ENV = "CXKPI_AIRFLOW_DBT_TASKS"


# The DAG's task that decides the night's build (pipeline.plan_build); the dbt tasks read
# its XCom.
PLAN_TASK_ID = "plan_build"


def dbt_task_group(project: Settings, group_id: str = "dbt") -> Any:
    """The night's dbt as cosmos' watcher task group, its model tasks started in the
    triggerer (cxkpi.airflow_watch: no worker per model), its producer following the plan
    of the ``plan_build`` task."""
    from cosmos import DbtTaskGroup
    from cosmos.operators.watcher import DbtProducerWatcherOperator

    from cxkpi.airflow_watch import make_model_tasks_cheap

    if os.environ.get(DBT_TASKS_ENV, "watcher") == "local":
        configs = _local_configs(project)
        # every model task refreshes fully when the plan says so (a template: the plan is
        # read when the task runs); a night with nothing new still runs them, incrementally
        plan = f"(ti.xcom_pull(task_ids='{PLAN_TASK_ID}') or {{}})"
        configs["operator_args"]["full_refresh"] = f"{{{{ {plan}.get('full_refresh', False) }}}}"
        return DbtTaskGroup(group_id=group_id, **configs)
    group = DbtTaskGroup(group_id=group_id, **cosmos_configs(project))
    tasks = list(group.iter_tasks())
    make_model_tasks_cheap(tasks)
    for task in tasks:
        if isinstance(task, DbtProducerWatcherOperator):
            follow_the_plan(task)
    return group


def follow_the_plan(producer: Any, plan_task_id: str = PLAN_TASK_ID) -> None:
    """The producer runs the build ``plan_build`` decided: none on a night with nothing
    new (it succeeds at once and every model task ends skipped: cosmos reports a model
    the producer did not run as not run), a full refresh when the definitions changed
    (``--full-refresh``), else an incremental build."""
    execute = producer.execute

    def execute_the_plan(context: Any) -> Any:
        plan = context["ti"].xcom_pull(task_ids=plan_task_id)
        if plan is None:
            raise CxkpiError(
                f"no build plan from task {plan_task_id!r}: the producer will not guess "
                "between an incremental build and a full refresh"
            )
        print(f"build plan: {plan['reason']}")
        if plan["skip"]:
            return None
        producer.full_refresh = bool(plan["full_refresh"])
        return execute(context)

    producer.execute = execute_the_plan
