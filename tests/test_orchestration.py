"""The Airflow side's dbt configuration, built without running Airflow."""

from __future__ import annotations

import json
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from conftest import make_settings

from cxkpi.dbt_runner import dbt_env


def test_dbt_tasks_get_the_profile_environment_through_the_project_config(
    tmp_path: Path,
) -> None:
    """cosmos 1.3+ reads task environments from ProjectConfig.env_vars; the older
    operator_args["env"] is deprecated (removed in cosmos 2.0) and warns on every parse."""
    from cxkpi.orchestration import cosmos_configs

    settings = make_settings(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        configs = cosmos_configs(settings)
    assert configs["project_config"].env_vars == dbt_env(settings)
    assert "env" not in configs.get("operator_args", {})
    assert "env" not in configs["execution_config"].setup_operator_args
    assert configs["project_config"].env_vars["DBT_SEND_ANONYMOUS_USAGE_STATS"] == "false"


class _Run:
    def __init__(self, run_type: str, run_after: datetime) -> None:
        self.run_id = f"{run_type}__x"
        self.run_type = run_type
        self.run_after = run_after


def test_a_scheduled_night_processes_the_day_that_ended_and_a_manual_one_its_date() -> None:
    """The 02:00 night of 3 December (São Paulo) processes 2 December; a backfill the same;
    `airflow dags trigger --logical-date 2026-10-31` is the night of 31 October."""
    from cxkpi.orchestration import run_context

    zone = ZoneInfo("America/Sao_Paulo")
    fired = datetime(2026, 12, 3, 2, 0, tzinfo=zone)
    for run_type in ("scheduled", "backfill"):
        context = {
            "dag_run": _Run(run_type, fired),
            "logical_date": fired,
            "data_interval_start": (fired - timedelta(days=1)).astimezone(UTC),
        }
        assert run_context(context, "America/Sao_Paulo").logical_date == "2026-12-02"
    manual = {
        "dag_run": _Run("manual", datetime(2026, 12, 3, 9, tzinfo=UTC)),
        "logical_date": datetime(2026, 10, 31, tzinfo=UTC),
    }
    assert run_context(manual).logical_date == "2026-10-31"
    without_date = {"dag_run": _Run("manual", datetime(2026, 12, 3, 9, tzinfo=UTC))}
    assert run_context(without_date).logical_date == "2026-12-03"


def test_unpausing_the_dag_schedules_the_next_night_not_one_at_once(tmp_path: Path) -> None:
    from airflow.timetables.base import TimeRestriction

    from cxkpi.orchestration import nightly_schedule

    timetable = nightly_schedule(make_settings(tmp_path))
    first = timetable.next_dagrun_info(
        last_automated_data_interval=None,
        restriction=TimeRestriction(earliest=None, latest=None, catchup=False),
    )
    assert first is not None
    now = datetime.now(UTC)
    assert first.run_after > now  # the next 02:00, never a night already under way
    assert first.data_interval.end - first.data_interval.start == timedelta(days=1)


def test_the_producer_reports_each_model_once_and_no_test() -> None:
    """Of a model's dbt events only its outcome (NodeFinished, an upstream failure's skip)
    reaches cosmos' XCom pushes; its progress events, LogModelResult, every test's events
    and lines without a node are handled as before (logged / passed on)."""
    from cxkpi.airflow_watch import report_models_only

    passed: list[str] = []

    class Producer:
        def _make_parse_callable(self):
            return lambda line, extra: passed.append(json.loads(line)["info"]["name"])

    producer = Producer()
    report_models_only(producer)
    parse = producer._make_parse_callable()

    def line(event: str, resource_type: str | None = "model") -> str:
        node = {"unique_id": f"{resource_type}.cx.x", "resource_type": resource_type}
        data = {"node_info": node} if resource_type else {}
        return json.dumps({"info": {"name": event, "msg": event}, "data": data})

    for event in ("NodeStart", "NodeCompiling", "NodeExecuting", "LogModelResult"):
        parse(line(event), {})
    for event in ("NodeFinished", "SkippingDetails", "LogSkipBecauseError"):
        parse(line(event), {})
    parse(line("NodeFinished", "test"), {})
    parse(line("MainReportVersion", None), {})
    assert passed == ["NodeFinished", "SkippingDetails", "LogSkipBecauseError", "MainReportVersion"]


def test_the_producer_runs_the_build_the_plan_decided() -> None:
    """No dbt on a night with nothing new, --full-refresh when the definitions changed,
    an incremental build otherwise; no plan at all is an error, not a guess."""
    from cxkpi.errors import CxkpiError
    from cxkpi.orchestration import follow_the_plan

    class Producer:
        full_refresh = False

        def __init__(self) -> None:
            self.builds: list[bool] = []

        def execute(self, context):
            self.builds.append(self.full_refresh)
            return "built"

    class TaskInstance:
        def __init__(self, plan):
            self.plan = plan

        def xcom_pull(self, task_ids: str):
            assert task_ids == "plan_build"
            return self.plan

    def night(plan):
        producer = Producer()
        follow_the_plan(producer)
        result = producer.execute(context={"ti": TaskInstance(plan)})
        return result, producer.builds

    nothing_new = {"skip": True, "full_refresh": False, "build_id": None, "reason": "nothing new"}
    assert night(nothing_new) == (None, [])
    changed = {"skip": False, "full_refresh": True, "build_id": 3, "reason": "full refresh: x"}
    assert night(changed) == ("built", [True])
    new_rows = {"skip": False, "full_refresh": False, "build_id": 4, "reason": "incremental"}
    assert night(new_rows) == ("built", [False])
    with pytest.raises(CxkpiError, match="no build plan"):
        night(None)
