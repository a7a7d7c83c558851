"""cx_nightly: load X-data and O-data, build the KPI marts with dbt, audit, publish.

Wiring only: every task calls a function of the cxkpi package (see cxkpi.pipeline).
"""

from __future__ import annotations

from pathlib import Path

import pendulum
from airflow.sdk import dag, get_current_context, task
from cosmos import DbtTaskGroup

from cxkpi import orchestration, pipeline

# $CXKPI_CONFIG, else the cxkpi.yml in this file's folder or above
PROJECT = orchestration.settings(Path(__file__).resolve().parent)

DOC = """
### CX nightly KPI run
1. **prepare** checks source declarations, suites and KPI definitions, and that the
   compiled KPI models and dbt sources are current (`cxkpi compile` at deploy time).
2. **load_x_data** / **load_o_data** load new landing files into `raw.*`; bad rows go to
   `raw.load_rejects` with their reason (rows read = loaded + rejected).
3. **dbt** builds staging, intermediate and mart models; each model's tests run right
   after it (a failing test stops the night).
4. **analyze** computes what SQL cannot: derived factor importance (key-driver analysis).
5. **quality_gate** runs the suites of `expectations/`: Great Expectations on the marts and
   in-database checks (rejects, freshness, volume and KPI movement, orphans, PII).
6. **publish** archives a complete new version (DuckDB file, Parquet, manifest) and
   switches `published/current` to it in one atomic rename (`cxkpi rollback` restores
   an earlier version after checking its checksums).

A failure anywhere leaves the published file as it was. Evidence: `runs/<run_id>/`.
"""


@dag(
    dag_id="cx_nightly",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=DOC,
    tags=["cxkpi", "cx"],
    default_args={"retries": 0},
)
def cx_nightly():
    @task
    def prepare() -> dict:
        # the dbt tasks were rendered from the deployed manifest: only check it is current
        ctx = orchestration.run_context(get_current_context())
        return pipeline.prepare(PROJECT, ctx, write=False)

    @task
    def load_x_data() -> dict:
        ctx = orchestration.run_context(get_current_context())
        return pipeline.load(PROJECT, ctx, "x")

    @task
    def load_o_data() -> dict:
        ctx = orchestration.run_context(get_current_context())
        return pipeline.load(PROJECT, ctx, "o")

    dbt = DbtTaskGroup(group_id="dbt", **orchestration.cosmos_configs(PROJECT))

    @task
    def analyze() -> dict:
        return pipeline.analyze(PROJECT, orchestration.run_context(get_current_context()))

    @task
    def quality_gate() -> dict:
        return pipeline.audit(PROJECT, orchestration.run_context(get_current_context()))

    @task
    def publish(audit_summary: dict) -> dict:
        ctx = orchestration.run_context(get_current_context())
        return pipeline.publish_marts(PROJECT, ctx, audit_summary)

    gate = quality_gate()
    prepare() >> [load_x_data(), load_o_data()] >> dbt >> analyze() >> gate
    publish(gate)


cx_nightly()
