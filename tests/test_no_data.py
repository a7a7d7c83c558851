"""A company without some of the data its catalog needs, on a real night (loader, dbt
build, gate, publish): the hand-made data with an empty help-desk export (no tickets) and
a survey export whose NPS column nobody answered, and no benchmarks export.

Goals and KPIs without data are no_data: no 0 % or 100 %, no row in kpi_values, named
with their reason in kpi_catalog and kpi_alignment_report, no_data in kpi_tree and left
out of its roll-up, of fct_kpi_effectiveness and the roadmap; the gate publishes and says
so on the console. A KPI with data that lost its values still fails the gate. Benchmarks:
none without an export, and a benchmark of an id the catalog lacks is flagged, not used.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import shutil
from pathlib import Path

import duckdb
import pytest
import yaml
from conftest import make_settings, settings_with_catalog
from handmade import KPIS, write_landing

from cxkpi import dbt_runner, gate, pipeline
from cxkpi.config import Settings
from cxkpi.errors import GateFailed

pytestmark = pytest.mark.integration

# The hand-made catalog, tied into a small tree: a goal over support KPIs (no tickets), a
# goal over survey KPIs (CSAT answered, NPS not, CES under NPS) and a derived KPI over one
# of each.
EXTRA = """
---
id: satisfaction_and_resolution
type: derived
formula: 0.5 * csat + 0.5 * first_contact_resolution
unit: percent
parents: [delight_customers]
target: 70
min_sample: 1
---
kind: goal
id: fix_support_fast
label: Fix support cases fast
---
kind: goal
id: delight_customers
label: Delight customers
"""
PARENTS = {
    "first_contact_resolution": ["fix_support_fast"],
    "median_hours_to_close": ["fix_support_fast"],
    "nps": ["delight_customers"],
    "csat": ["delight_customers"],
    "ces": ["nps"],  # a driver with data under a KPI without
}
RESPONSES_FILE = Path("surveys") / "responses_2026-10.csv"
TICKETS_FILE = Path("support") / "tickets_2026-10.jsonl"

# What the night must say of each goal and KPI without data, worked out from the data:
# 12 survey responses, none with an NPS; no ticket at all.
NO_DATA = {
    "nps": (
        "no data: none of the 12 rows of survey_responses counts for it "
        "(what it measures is empty, or its filters leave no row)"
    ),
    "first_contact_resolution": "no data: tickets has no rows",
    "median_hours_to_close": "no data: tickets has no rows",
    "satisfaction_and_resolution": (
        "no data: its formula uses first_contact_resolution, without data"
    ),
    "fix_support_fast": (
        "no data: none of the KPIs below it has data "
        "(first_contact_resolution, median_hours_to_close)"
    ),
}
WITH_DATA = {"csat", "ces", "on_time_delivery", "service_index", "delight_customers"}


def catalog_yaml() -> str:
    documents = [d for d in yaml.safe_load_all(KPIS + EXTRA) if d]
    for document in documents:
        if document["id"] in PARENTS:
            document["parents"] = PARENTS[document["id"]]
    return yaml.safe_dump_all(documents, sort_keys=False)


def write_landing_without_tickets_or_nps(landing: Path) -> None:
    """The hand-made landing files, with an empty help-desk export and the survey export's
    NPS column left blank on every response."""
    write_landing(landing)
    (landing / TICKETS_FILE).write_text("")
    rows = list(csv.DictReader(io.StringIO((landing / RESPONSES_FILE).read_text())))
    for row in rows:
        row["NPS"] = ""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    (landing / RESPONSES_FILE).write_text(text.getvalue())


class Console(logging.Handler):
    """The gate's log lines, as the console shows them (warning and above)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, pipeline.RunResult, list]:
    settings = settings_with_catalog(tmp_path_factory.mktemp("no_data"), catalog_yaml())
    write_landing_without_tickets_or_nps(settings.landing_dir)
    console = Console()
    logger = logging.getLogger("cxkpi.gate")
    logger.addHandler(console)
    try:
        result = pipeline.run_all(settings, pipeline.RunContext.new("no-data", "2026-10-31"))
    finally:
        logger.removeHandler(console)
    return settings, result, console.lines


def rows(database: Path, sql: str) -> list[dict]:
    con = duckdb.connect(str(database), read_only=True)
    try:
        cursor = con.execute(sql)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
    finally:
        con.close()


def test_the_night_loads_no_ticket_and_no_nps_and_publishes(night) -> None:
    settings, result, _ = night
    assert result.error is None
    assert result.stages["gate"]["failed"] == 0
    assert result.stages["publish"]["version"] == 1
    loaded = rows(settings.warehouse_path, "select count(*) as n from raw.tickets")
    answered = rows(
        settings.warehouse_path,
        "select count(*) as n, count(nps) as nps from raw.survey_responses",
    )
    assert loaded == [{"n": 0}] and answered == [{"n": 12, "nps": 0}]


def test_the_catalog_says_which_goals_and_kpis_have_no_data_and_why(night) -> None:
    settings, *_ = night
    catalog = {
        r["kpi_id"]: r
        for r in rows(
            settings.published_path,
            "select kpi_id, has_data, no_data_reason from kpi_catalog",
        )
    }
    assert {k: r["no_data_reason"] for k, r in catalog.items() if r["has_data"] is False} == (
        NO_DATA
    )
    assert {k for k, r in catalog.items() if r["has_data"]} == WITH_DATA


def test_kpis_without_data_have_no_value_rather_than_zero_or_a_hundred(night) -> None:
    settings, *_ = night
    valued = {
        r["kpi_id"] for r in rows(settings.published_path, "select distinct kpi_id from kpi_values")
    }
    assert valued == WITH_DATA - {"delight_customers"}  # a goal without a type has no values


def test_the_tree_shows_no_data_and_rolls_up_only_what_has_data(night) -> None:
    settings, *_ = night
    tree = {r["kpi_id"]: r for r in rows(settings.published_path, "select * from kpi_tree")}
    for kpi_id in NO_DATA:
        assert tree[kpi_id]["latest_status"] == "no_data", kpi_id
    for kpi_id in set(NO_DATA) - {"nps"}:
        assert tree[kpi_id]["rolled_up_status"] == "no_data", kpi_id
        assert tree[kpi_id]["rolled_up_score"] is None, kpi_id
    # nps has no data of its own: like a goal without a type, it shows its children's
    # roll-up, ces at risk (3.45 against 3, at risk up to 3.5)
    assert tree["ces"]["latest_status"] == "at_risk"
    assert (tree["nps"]["rolled_up_from"], tree["nps"]["rolled_up_status"]) == (
        "children",
        "at_risk",
    )
    # delight_customers: csat off track (54.5 against 80, score 0) and nps through ces
    # (0.5), one weight each; the derived KPI without data weighs nothing instead of
    # counting as off track
    assert tree["csat"]["latest_status"] == "off_track"
    delight = tree["delight_customers"]
    assert (delight["rolled_up_from"], delight["rolled_up_score"]) == ("children", 0.25)
    assert delight["rolled_up_status"] == "off_track"


def test_the_alignment_report_lists_each_no_data_with_its_reason(night) -> None:
    settings, *_ = night
    findings = rows(
        settings.published_path,
        "select finding_type, kpi_id, detail from kpi_alignment_report",
    )
    no_data = {f["kpi_id"]: f["detail"] for f in findings if f["finding_type"] == "no_data"}
    assert no_data == NO_DATA
    assert "kpi_without_values" not in {f["finding_type"] for f in findings}


def test_effectiveness_and_roadmap_leave_no_data_out(night) -> None:
    settings, *_ = night
    links = {
        r["kpi_link_id"]
        for r in rows(settings.published_path, "select kpi_link_id from fct_kpi_effectiveness")
    }
    # of the six links, the only one with data at both ends (ces>nps, with store values
    # below and none above, is left out rather than called too_little_data)
    assert links == {"csat>delight_customers"}
    items = rows(settings.published_path, "select item_type, linked_kpi_id from roadmap")
    assert {i["linked_kpi_id"] for i in items if i["item_type"] == "kpi_off_target"} == {
        "csat",
        "on_time_delivery",
        "service_index",
        "ces",
    }
    assert not {i["linked_kpi_id"] for i in items} & set(NO_DATA)


def test_the_gate_passes_and_names_the_kpis_without_data(night) -> None:
    settings, result, console = night
    evidence = json.loads(
        (result.ctx.run_dir(settings) / "gate" / "gate.json").read_text(encoding="utf-8")
    )
    [present] = [r for r in evidence["results"] if r["check"] == "kpis_present(top level)"]
    assert present["success"]
    no_data_kpis = {k for k in NO_DATA if k != "fix_support_fast"}  # kind kpi only
    assert set(present["observed"]["kpis_without_data"]) == no_data_kpis
    assert present["observed"]["kpis_without_value"] == []
    [note] = [line for line in console if line.startswith("quality gate note:")]
    assert "kpis_present(top level)" in note
    for kpi_id in no_data_kpis:
        assert f"{kpi_id} ({NO_DATA[kpi_id]})" in note


def test_a_kpi_with_data_that_lost_its_values_still_fails_the_gate(night, tmp_path) -> None:
    """The night's warehouse, with csat's HQ values gone (as a broken model would lose
    them): csat has observations, so kpis_present fails, naming it."""
    settings, *_ = night
    warehouse = tmp_path / "cx.duckdb"
    shutil.copy(settings.warehouse_path, warehouse)
    con = duckdb.connect(str(warehouse))
    try:
        con.execute("delete from marts.kpi_values where kpi_id = 'csat' and org_level = 'hq'")
    finally:
        con.close()
    with pytest.raises(GateFailed) as failed:
        gate.run_gate(warehouse, settings.expectations_dir, tmp_path / "gate")
    [present] = [r for r in failed.value.report.errors if r.check == "kpis_present(top level)"]
    assert present.message.startswith("1 of 4 KPIs have no value at the top level: csat; ")


def test_the_summary_shows_headline_kpis_without_data(night) -> None:
    settings, *_ = night
    summary = {r["kpi_id"]: r for r in pipeline.kpi_summary(settings.published_path)}
    assert (summary["nps"]["status"], summary["nps"]["value"], summary["nps"]["n"]) == (
        "no_data",
        None,
        0,
    )
    assert summary["csat"]["status"] == "off_track"


def test_without_a_benchmarks_export_nothing_is_ranked(night) -> None:
    settings, *_ = night
    assert rows(settings.published_path, "select count(*) as n from kpi_benchmark_position") == [
        {"n": 0}
    ]
    counts = rows(settings.published_path, "select distinct benchmark_count from kpi_catalog")
    assert counts == [{"benchmark_count": 0}]


def test_a_benchmark_of_an_id_the_catalog_lacks_is_flagged_not_used(night, tmp_path) -> None:
    """A copy of the night gets a benchmarks export: two competitors of csat and one row
    for 'csat_typo'. Loaded and built (the benchmarks' models and what reads them), csat
    is ranked in a field of three; the typo is named by a dbt warning and used nowhere."""
    settings, *_ = night
    project = shutil.copytree(settings.published_path.parents[1], tmp_path / "project")
    copy = make_settings(
        project,
        kpi_definitions_dir=project / "kpi_definitions",
        dbt_project_dir=project / "dbt_project",
        expectations_dir=project / "expectations",
    )
    (copy.landing_dir / "benchmarks").mkdir()
    (copy.landing_dir / "benchmarks" / "benchmarks.csv").write_text(
        "kpi,benchmark,kind,period,value,source\n"
        "csat,Rival A,competitor,2026,60,Study\n"
        "csat,Rival B,competitor,2026,40,Study\n"
        "csat_typo,Rival C,competitor,2026,99,Study\n"
    )
    loaded = pipeline.load(copy, pipeline.RunContext.new("benchmarks", "2026-10-31"), "o")
    assert loaded["rows_loaded"] == 3 and loaded["rows_rejected"] == 0
    outcome = dbt_runner.build(copy, "stg_market__benchmarks+")
    [warning] = [w for w in outcome.warnings if "stg_market__benchmarks" in w["name"]]
    assert warning["name"].startswith("relationships_stg_market__benchmarks_kpi_id")
    assert warning["failures"] == 1
    ranked = rows(
        copy.warehouse_path,
        """select kpi_id, benchmark_name, our_rank, field_size, our_rank_label
           from marts.kpi_benchmark_position order by benchmark_name""",
    )
    # csat is 54.5 %: behind Rival A (60), ahead of Rival B (40)
    assert ranked == [
        {
            "kpi_id": "csat",
            "benchmark_name": name,
            "our_rank": 2,
            "field_size": 3,
            "our_rank_label": "2nd of 3",
        }
        for name in ("Rival A", "Rival B")
    ]
    counted = rows(
        copy.warehouse_path,
        "select kpi_id, benchmark_count from marts.kpi_catalog where benchmark_count > 0",
    )
    assert counted == [{"kpi_id": "csat", "benchmark_count": 2}]
