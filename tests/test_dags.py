"""The Airflow DAG: a DagBag integrity test, and real `airflow dags test` nights (a good
one that publishes, a bad one that is blocked)."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import duckdb
import pytest
from airflow_env import BIN, airflow_environment, run, write_project_config
from conftest import REPO, inject_out_of_range_nps, make_settings

from cxkpi.config import Settings

pytestmark = pytest.mark.e2e
ACCESS = REPO / "access" / "access.yml"

MODELS = (
    "stg_surveys__responses",
    "stg_surveys__factor_ratings",
    "stg_ops__customers",
    "stg_ops__orders",
    "stg_ops__deliveries",
    "stg_ops__tickets",
    "stg_ops__org_units",
    "int_org_units",
    "int_order_units",
    "int_orders",
    "int_survey_responses_enriched",
    "int_factor_ratings_enriched",
    "int_order_history",
    "int_deliveries_enriched",
    "int_tickets_enriched",
    "int_kpi__observations",
    "int_kpi__definitions",
    "int_kpi__values_base",
    "int_kpi__values_derived",
    "int_kpi_obs__survey_responses",
    "kpi_values",
    "dim_org_units",
    "kpi_catalog",
)


def migrated_airflow(tmp: Path, **settings: object) -> dict[str, str]:
    """The environment of a fresh Airflow home (metadata DB migrated) for the project in
    ``tmp`` (with these extra ``settings``)."""
    # `airflow dags test` runs no triggerer: the dbt group in cosmos' local mode
    env = {
        **airflow_environment(tmp, write_project_config(tmp, **settings)),
        "CXKPI_AIRFLOW_DBT_TASKS": "local",
    }
    migrate = run([str(BIN / "airflow"), "db", "migrate"], env, tmp)
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    return env


def airflow_night(env: dict[str, str], tmp: Path, day: str) -> tuple[int, str]:
    """``airflow dags test cx_nightly <day>``: its exit code and output."""
    night = run([str(BIN / "airflow"), "dags", "test", "cx_nightly", day], env, tmp)
    return night.returncode, night.stdout + night.stderr


def night_failure(output: str) -> str:
    """What an assertion on a night shows: the first failed task's exception and the log
    just before it (a whole night's log is megabytes), then the run's last lines."""
    failed = output.find("Task failed with exception")
    if failed < 0:
        return output[-5000:]
    return output[max(0, failed - 6000) : failed + 4000] + "\n[...]\n" + output[-1500:]


# The two nights are classes, and first in this file: pytest-xdist (--dist loadscope) hands
# them out first, one to each worker.
class TestAGoodNight:
    def test_airflow_runs_a_good_night_and_publishes_it(self, tmp_path: Path) -> None:
        from cxkpi import dbt_runner, demo

        settings = make_settings(tmp_path, access_file=ACCESS)
        demo.generate(settings.landing_dir, scale=0.2)
        dbt_runner.parse(settings)
        # with the demo's access file: the publish task writes every scope's extract and
        # report too, drawing reports in the Airflow task's process
        env = migrated_airflow(tmp_path, access_file=str(ACCESS))
        returncode, output = airflow_night(env, tmp_path, "2026-10-31")
        assert returncode == 0, night_failure(output)
        assert "state=success" in output, night_failure(output)

        con = duckdb.connect(str(settings.published_path), read_only=True)
        try:
            tables = {r[0] for r in con.execute("show tables").fetchall()}
            kpi_rows = con.execute("select count(*) from kpi_values").fetchone()[0]
            log = con.execute(
                "select version, run_id, logical_date::varchar, audit_summary from publish_log"
            ).fetchall()
        finally:
            con.close()
        assert {"kpi_values", "dim_org_units", "kpi_catalog", "publish_log"} <= tables
        assert kpi_rows > 0
        [(version, run_id, logical_date, audit)] = log
        assert version == 1 and run_id.startswith("manual__") and logical_date == "2026-10-31"
        assert '"failed": 0' in audit
        manifest = json.loads((settings.published_dir / "latest.json").read_text())
        assert len(manifest["scopes"]) == 24
        for unit in manifest["scopes"]:
            assert (settings.published_dir / "scopes" / unit / "report.html").stat().st_size > 0


class TestABadNight:
    def test_airflow_blocks_a_bad_night(self, demo_project: Settings, tmp_path: Path) -> None:
        """A project that published a good night (a copy of the session's demo night; its
        dbt build left the manifest the DAG renders from) gets a score out of range in the
        warehouse, behind the loader's back. The dbt test task fails, publish never runs,
        the published files stay as they were."""
        published_before = hashlib.sha256(demo_project.published_path.read_bytes()).hexdigest()
        latest_before = (demo_project.published_dir / "latest.json").read_text()
        inject_out_of_range_nps(demo_project.warehouse_path, "2026-11-01 10:00")
        env = migrated_airflow(tmp_path)
        returncode, output = airflow_night(env, tmp_path, "2026-11-01")
        assert returncode != 0, output[-3000:]
        assert "accepted_range" in output and "state=failed" in output
        published_after = hashlib.sha256(demo_project.published_path.read_bytes()).hexdigest()
        assert published_after == published_before
        assert (demo_project.published_dir / "latest.json").read_text() == latest_before

    def test_a_night_whose_load_rejects_too_much_fails_before_dbt(
        self, demo_project: Settings, tmp_path: Path
    ) -> None:
        """A new survey export of which every row has an NPS out of range: check_load (the
        gate's load checks, right after loading) fails the night, dbt never starts, the
        gate's log leads with its verdict, and the published files stay as they were."""
        published_before = hashlib.sha256(demo_project.published_path.read_bytes()).hexdigest()
        header = (
            "ResponseId,SurveyId,CustomerId,OrderId,StoreId,AdvisorId,Channel,Touchpoint,"
            "RecordedDate,NPS,Satisfaction,Effort,Comment,Language,Consent\n"
        )
        rows = "".join(
            f"RX{i:04d},SRV-DELIVERY,,,S007,A0033,delivery,delivery,2026-11-01 08:00:00,"
            f"{11 + i},Satisfied,3,,en,Yes\n"
            for i in range(40)
        )
        (demo_project.landing_dir / "surveys" / "responses_2026-11.csv").write_text(header + rows)
        env = migrated_airflow(tmp_path)
        returncode, output = airflow_night(env, tmp_path, "2026-11-01")
        assert returncode != 0, output[-3000:]
        assert "quality gate FAILED" in output
        assert "load_rejects(max_share=0.05)" in output
        verdict = output.index("quality gate FAILED")
        assert "_model_build" not in output[:verdict], "dbt started before the verdict"
        assert "Running with dbt" not in output
        published_after = hashlib.sha256(demo_project.published_path.read_bytes()).hexdigest()
        assert published_after == published_before


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("dagbag")
    config = write_project_config(tmp)
    settings = make_settings(tmp)
    from cxkpi import dbt_runner

    dbt_runner.parse(settings)  # the manifest the DAG renders from
    env = airflow_environment(tmp, config)
    mp = pytest.MonkeyPatch()
    for key in (
        "AIRFLOW_HOME",
        "AIRFLOW__CORE__DAGS_FOLDER",
        "AIRFLOW__CORE__LOAD_EXAMPLES",
        "CXKPI_CONFIG",
        "AIRFLOW__COSMOS__CACHE_DIR",
    ):
        mp.setenv(key, env[key])
    spawned: list = []
    original = subprocess.Popen.__init__

    def spy(self, *args, **kwargs):
        spawned.append(args[0] if args else kwargs.get("args"))
        return original(self, *args, **kwargs)

    from airflow.dag_processing.dagbag import DagBag

    mp.setattr(subprocess.Popen, "__init__", spy)
    bag = DagBag(dag_folder=str(REPO / "dags"))
    mp.undo()
    bag.spawned_while_parsing = [c for c in spawned if "file" not in str(c)]
    return bag


def test_dags_import_without_errors(dagbag) -> None:
    assert dagbag.import_errors == {}
    assert set(dagbag.dags) == {"cx_nightly"}


def test_parsing_runs_no_dbt_or_other_process(dagbag) -> None:
    # croniter runs `file -b python` on import of Airflow itself; nothing else may
    assert dagbag.spawned_while_parsing == []


def test_task_ids_and_wiring(dagbag) -> None:
    dag = dagbag.dags["cx_nightly"]
    ids = set(dag.task_ids)
    assert {
        "claim_night",
        "prepare",
        "load_x_data",
        "load_o_data",
        "check_load",
        "analyze",
        "quality_gate",
        "publish",
        "hand_over_cases",
        "release_night",
    } <= ids
    # watcher mode: one producer runs `dbt build`; one task per model, grouped by folder
    assert "dbt.dbt_producer_watcher" in ids
    model_tasks = [t for t in dag.tasks if t.task_id.startswith("dbt.models.")]
    for model in MODELS:
        assert any(t.task_id.endswith(f".{model}_run") for t in model_tasks), model
    folders = {t.task_id.split(".")[2] for t in model_tasks}
    assert folders == {"staging", "intermediate", "kpis", "marts", "diagnostics", "utilities"}
    # no task per test or per source
    assert not [i for i in ids if i.endswith(("_test", "_source"))]
    # model tasks cost no worker; only the producer writes, in the warehouse pool
    assert all(t.start_from_trigger for t in model_tasks)
    assert dag.get_task("dbt.dbt_producer_watcher").pool == "cxkpi_warehouse"
    assert {t.pool for t in model_tasks} == {"default_pool"}
    assert dag.get_task("prepare").downstream_task_ids == {"load_x_data", "load_o_data"}
    assert dag.get_task("load_x_data").downstream_task_ids == {"check_load"}
    # the build is planned before dbt and recorded after it; analyze waits for the record
    assert dag.get_task("check_load").downstream_task_ids == {"plan_build"}
    assert "dbt.dbt_producer_watcher" in dag.get_task("plan_build").downstream_task_ids
    assert dag.get_task("analyze").upstream_task_ids == {"finish_build"}
    assert dag.get_task("finish_build").trigger_rule == "none_failed"
    # a full refresh is a switch of the trigger form, off for scheduled nights
    assert dag.params["full_refresh"] is False
    assert dag.get_task("quality_gate").downstream_task_ids == {"publish"}
    # the closed loop: the published outbox is handed over by a task of its own
    assert dag.get_task("publish").downstream_task_ids == {"hand_over_cases"}
    assert dag.get_task("hand_over_cases").downstream_task_ids == {"release_night"}
    assert dag.get_task("analyze").downstream_task_ids == {"quality_gate"}
    upstream_of_record = dag.get_task("finish_build").upstream_task_ids - {"plan_build"}
    assert upstream_of_record and all(t.startswith("dbt.") for t in upstream_of_record)
    assert dag.get_task("release_night").is_teardown
    assert dag.doc_md and "publish" in dag.doc_md


def test_dag_has_no_cycles(dagbag) -> None:
    dagbag.dags["cx_nightly"].check_cycle()  # raises on a cycle
