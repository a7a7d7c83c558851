"""cx_nightly: load X-data and O-data, build the KPI marts with dbt, audit, publish.

Wiring only: every task calls a function of the cxkpi package (see cxkpi.pipeline).
"""

from __future__ import annotations

from pathlib import Path

from airflow.sdk import Param, PokeReturnValue, dag, get_current_context, task

from cxkpi import orchestration, pipeline

# $CXKPI_CONFIG, else the cxkpi.yml in this file's folder or above
PROJECT = orchestration.settings(Path(__file__).resolve().parent)

DOC = """
### CX nightly KPI run
0. **claim_night** takes the project's night lease: nights of one project never overlap
   (backfills and `cxkpi run` included); a night waits here for the one before.
1. **prepare** checks source declarations, suites and KPI definitions, and that the
   compiled KPI models and dbt sources are current (`cxkpi compile` at deploy time).
2. **load_x_data** / **load_o_data** load new landing files into `raw.*`; bad rows go to
   `raw.load_rejects` with their reason (rows read = loaded + rejected).
3. **check_load** runs the gate's load checks at once: a night whose loads rejected more
   than the suites allow fails here, before dbt.
4. **plan_build** decides the night's build from the build state: none when neither data
   nor definitions changed (every model task then ends skipped), a full refresh when the
   definitions changed, else incremental (only the periods touched by new rows).
5. **dbt** is one `dbt build` (the producer task, dbt's threads) with a task per model,
   grouped by layer; a model's task turns green or red when dbt reports it. Retrying or
   clearing one model's task rebuilds that model alone. A failing test fails the producer.
   **finish_build** records the build as succeeded (a failed one stays unfinished: the
   next night builds again).
6. **analyze** computes what SQL cannot: derived factor importance (key-driver analysis).
7. **quality_gate** runs the suites of `expectations/`: Great Expectations on the marts and
   in-database checks (rejects, freshness, volume and KPI movement, orphans, PII).
8. **publish** archives a complete new version (DuckDB file, Parquet, manifest, and the
   night's case outbox: the follow-up cases the case rules open) and switches
   `published/current` to it in one atomic rename (`cxkpi rollback` restores an earlier
   version after checking its checksums).
9. **hand_over_cases** gives the night's outbox to the case handlers (a ticketing API's
   webhook, e-mail; the log by default): retried alone when a handler fails.
10. **release_night** (a teardown: runs whatever happened) gives the lease back.

A failure anywhere leaves the published file as it was. Evidence: `runs/<run_id>/`.
Scheduled nights run at 02:00 (reporting time zone) for the day before; trigger a given
night with `airflow dags trigger cx_nightly --logical-date <day>`.
"""


@dag(
    dag_id="cx_nightly",
    schedule=orchestration.nightly_schedule(PROJECT),
    # no start date: unpausing waits for the next 02:00 instead of running today's night
    # at once (the timetable's run_immediately=False applies only without one)
    catchup=False,
    max_active_runs=1,
    doc_md=DOC,
    tags=["cxkpi", "cx"],
    default_args={"retries": 0},
    # the trigger form's switch (or --conf '{"full_refresh": true}'): rebuild every
    # incremental model from all data, as `cxkpi run --full-refresh` does
    params={
        "full_refresh": Param(
            False, type="boolean", description="Rebuild every incremental model from all data"
        )
    },
)
def cx_nightly():
    def night() -> pipeline.RunContext:
        return orchestration.run_context(get_current_context(), PROJECT.reporting_timezone)

    @task.sensor(poke_interval=10, timeout=12 * 3600, mode="reschedule")
    def claim_night() -> PokeReturnValue:
        busy = orchestration.claim_night(PROJECT, get_current_context())
        if busy is not None:
            print(f"waiting for {busy.describe()}")
        return PokeReturnValue(is_done=busy is None)

    @task
    def prepare() -> dict:
        # the dbt tasks were rendered from the deployed manifest: only check it is current
        return pipeline.prepare(PROJECT, night(), write=False)

    @task
    def load_x_data() -> dict:
        return pipeline.load(PROJECT, night(), "x")

    @task
    def load_o_data() -> dict:
        return pipeline.load(PROJECT, night(), "o")

    @task
    def check_load() -> dict:
        return pipeline.audit_load(PROJECT, night())

    @task(task_id=orchestration.PLAN_TASK_ID)
    def plan_build() -> dict:
        full_refresh = bool(get_current_context()["params"].get("full_refresh"))
        return pipeline.plan_build(PROJECT, night(), full_refresh=full_refresh)

    dbt = orchestration.dbt_task_group(PROJECT)

    # none_failed: on a night with nothing new every model task ends skipped
    @task(trigger_rule="none_failed")
    def finish_build(plan: dict) -> None:
        pipeline.finish_build(PROJECT, plan, succeeded=True)

    @task
    def analyze() -> dict:
        return pipeline.analyze(PROJECT, night())

    @task
    def quality_gate() -> dict:
        return pipeline.audit(PROJECT, night())

    @task
    def publish(audit_summary: dict) -> dict:
        return pipeline.publish_marts(PROJECT, night(), audit_summary)

    @task(retries=3)
    def hand_over_cases() -> dict:
        # the closed loop: the cases this night published go to the ticketing tool
        return pipeline.hand_over_cases(PROJECT, night())

    @task(trigger_rule="all_done")
    def release_night() -> bool:
        return orchestration.release_night(PROJECT, get_current_context())

    claim = claim_night()
    gate = quality_gate()
    published = publish(gate)
    loads = [load_x_data(), load_o_data()]
    plan = plan_build()
    finished = finish_build(plan)
    claim >> prepare() >> loads >> check_load() >> plan >> dbt >> finished >> analyze() >> gate
    published >> hand_over_cases() >> release_night().as_teardown(setups=claim)


cx_nightly()
