"""The measurement-framework marts (align, assess, analyze; X+O fusion) on demo data, read
from the published file as BI tools read them."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from conftest import DemoNight, query

pytestmark = pytest.mark.integration

STATUSES = {"on_track", "at_risk", "off_track", None}


@pytest.fixture
def published(demo_night: DemoNight) -> Path:
    """The session's demo night (read only)."""
    return demo_night.settings.published_path


def rows(published: Path, sql: str) -> list[dict]:
    """Run ``sql`` on the published file; rows as dicts by column name."""
    con = duckdb.connect(str(published), read_only=True)
    try:
        cursor = con.execute(sql)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
    finally:
        con.close()


def test_kpi_tree_places_every_catalog_node_under_its_goal(published: Path) -> None:
    tree = {r["kpi_id"]: r for r in rows(published, "select * from kpi_tree")}
    catalog = {r[0] for r in query(published, "select kpi_id from kpi_catalog")}
    assert set(tree) == catalog
    for node in tree.values():
        assert node["rolled_up_status"] in STATUSES
        if node["kind"] == "goal":
            assert (node["depth"], node["goal_id"], node["path_to_goal"]) == (
                0,
                node["kpi_id"],
                node["kpi_id"],
            )
        elif node["kind"] == "kpi":
            assert node["goal_id"] is not None, node["kpi_id"]
            steps = node["path_to_goal"].split(" > ")
            assert steps[0] == node["kpi_id"] and steps[-1] == node["goal_id"]
            assert node["depth"] == len(steps) - 1 >= 1
            assert tree[node["goal_id"]]["kind"] == "goal"
    assert tree["nps"]["path_to_goal"] == "nps > retain_active_customers"
    # csat moves both goals; its heavier edge (weight 2) makes satisfaction_ranking primary
    assert tree["csat"]["parent_id"] == "satisfaction_ranking"
    assert set(tree["csat"]["parent_ids"].split(",")) == {
        "satisfaction_ranking",
        "retain_active_customers",
    }
    # a node without a measured status of its own takes its children's
    for node in tree.values():
        if node["latest_status"] in ("on_track", "at_risk", "off_track"):
            assert node["rolled_up_from"] == "own"
            assert node["rolled_up_status"] == node["latest_status"]


def test_late_deliveries_cost_nps_at_hq(published: Path) -> None:
    pooled = dict(
        query(
            published,
            """
            select delivery_punctuality, 100.0 * (sum(promoters) - sum(detractors)) / sum(nps_n)
            from fct_experience_by_delivery
            where org_level = 'hq'
            group by delivery_punctuality
            """,
        )
    )
    assert pooled["late"] < pooled["on_time"] - 1
    gaps = query(
        published,
        "select avg(nps_points_gap) from fct_experience_delivery_gap where org_level = 'hq'",
    )
    assert gaps[0][0] < 0


def test_orders_never_delivered_have_their_own_bucket(demo_night: DemoNight) -> None:
    """The buckets at HQ count the responses plain SQL on the raw tables counts: on time,
    late, and not delivered (none of the order's deliveries arrived). The demo invites no
    one about an order that never arrived, so its not_delivered bucket is empty; the dbt
    unit test delivery_outcome_of_a_response (_intermediate.yml) covers that bucket."""
    settings = demo_night.settings
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        expected = dict(
            con.execute(
                """with outcome as (
                       select order_id, bool_or(delivered_at is not null) as arrived,
                              bool_or(delivered_at > promised_at) as late
                       from raw.deliveries group by order_id)
                   select case when not o.arrived then 'not_delivered'
                               when o.late then 'late' else 'on_time' end, count(*)
                   from raw.survey_responses r inner join outcome o using (order_id)
                   group by 1"""
            ).fetchall()
        )
    finally:
        con.close()
    published = dict(
        query(
            settings.published_path,
            """select delivery_punctuality, sum(responses_n) from fct_experience_by_delivery
               where org_level = 'hq' group by 1""",
        )
    )
    assert set(expected) == {"on_time", "late"}  # the demo's invitations (see above)
    assert published == expected


def test_detractors_repurchase_less_than_promoters_at_hq(published: Path) -> None:
    rates = dict(
        query(
            published,
            """
            select nps_category, 1.0 * sum(repurchased_n) / sum(observable_n)
            from fct_outcomes_by_nps_category
            where org_level = 'hq'
            group by nps_category
            """,
        )
    )
    assert rates["detractor"] < rates["promoter"]


def test_satisfaction_ranking_is_near_14th_of_16(published: Path) -> None:
    field = rows(
        published,
        "select * from kpi_benchmark_position where kpi_id = 'satisfaction_ranking'",
    )
    assert len(field) == 15
    ours = {(r["our_value"], r["our_rank"], r["field_size"], r["our_rank_label"]) for r in field}
    assert len(ours) == 1
    value, rank, size, label = ours.pop()
    assert size == 16 and 12 <= rank <= 16
    assert rank == 1 + sum(r["benchmark_value"] > value for r in field)
    assert label.endswith(" of 16") and label.startswith(str(rank))
    for r in field:
        assert r["gap"] == pytest.approx(value - r["benchmark_value"])


def test_kpi_classification_separates_kpis_from_metrics(published: Path) -> None:
    classified = {r["kpi_id"]: r for r in rows(published, "select * from kpi_classification")}
    criteria = ("has_goal_link", "has_owner", "has_target", "has_direction", "has_timely_data")
    for r in classified.values():
        is_kpi = all(r[c] for c in criteria)
        assert r["classification"] == ("kpi" if is_kpi else "metric")
        assert (r["reasons"] == "") == is_kpi
    assert {r["classification"] for r in classified.values()} in ({"kpi", "metric"}, {"kpi"})
    assert classified["nps"]["classification"] == "kpi"
    # active_customers has no target in the starter catalog: a tracking metric
    assert classified["active_customers"]["classification"] == "metric"
    assert "no target" in classified["active_customers"]["reasons"]


def test_kpi_maturity_scores_follow_the_criteria(published: Path) -> None:
    criteria = (
        "is_defined",
        "has_owner",
        "has_target",
        "has_benchmark",
        "has_goal_link",
        "is_fresh",
        "is_tested",
        "is_sample_reliable",
    )
    scored = rows(published, "select * from kpi_maturity")
    assert scored
    for r in scored:
        met = sum(bool(r[c]) for c in criteria)
        assert r["criteria_met"] == met
        assert 1 <= r["maturity_score"] <= 5
        assert r["maturity_score"] == 1 + met * 4 // 8
        assert (r["missing"] == "") == (met == 8)
    by_id = {r["kpi_id"]: r for r in scored}
    assert by_id["satisfaction_ranking"]["has_benchmark"]


def test_every_starter_goal_and_kpi_has_data_on_demo_data(published: Path) -> None:
    """The demo delivers every source the starter catalog uses: nothing is no_data."""
    status = dict(
        query(published, "select kpi_id, has_data from kpi_catalog where kind <> 'factor'")
    )
    assert status and set(status.values()) == {True}
    factors = query(published, "select distinct has_data from kpi_catalog where kind = 'factor'")
    assert factors == [(None,)]


def test_alignment_report_has_no_gap_in_the_starter_catalog(published: Path) -> None:
    findings = rows(published, "select * from kpi_alignment_report")
    # the starter catalog is aligned and measured; its satisfaction goal is measured like
    # CSAT on purpose (to rank it against the benchmarks), which the report points out
    assert {f["finding_type"] for f in findings} <= {"duplicated_measure"}
    flagged = {f["kpi_id"] for f in findings}
    for f in findings:
        twins = f["detail"].split(" as ", 1)[1].split(" (", 1)[0].split(", ")
        assert set(twins) <= flagged


def test_ticket_experience_compares_reopened_tickets(published: Path) -> None:
    groups = dict(
        query(
            published,
            """
            select ticket_group, sum(csat_n)
            from fct_ticket_experience
            where org_level = 'hq'
            group by ticket_group
            """,
        )
    )
    assert set(groups) == {"reopened", "not_reopened"}
    assert all(n > 0 for n in groups.values())
