"""The marketplace example end to end: its generated landing files through one night with
its own cxkpi.yml, sources and KPI catalog, and the shipped quality suites; the published
figures at HQ, state and seller, per Sao Paulo month, equal the oracle's plain-Python
reading of the same files (tests/marketplace_oracle.py).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import date

import pytest
from conftest import REPO, query
from marketplace_oracle import BUCKETS, FILES, HQ, Figure, Key, Marketplace

from cxkpi import pipeline
from cxkpi.config import Settings, scratch_settings
from cxkpi.demo import marketplace

EXAMPLE = REPO / "examples" / "marketplace"
LOGICAL_DATE = "2026-10-31"  # the generator's default end date: the night after the snapshot
KPIS = (
    "csat",
    "csat_after_late_delivery",
    "on_time_delivery",
    "repeat_purchase_rate",
    "churn_rate",
    "retain_active_customers",
    "average_order_value",
    "revenue",
    "order_count",
)

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Night:
    """The example's published night and the oracle over its landing files."""

    settings: Settings
    result: pipeline.RunResult
    market: Marketplace

    def published(self, sql: str) -> list[tuple]:
        return query(self.settings.published_path, sql)

    def warehouse(self, sql: str) -> list[tuple]:
        return query(self.settings.warehouse_path, sql)


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> Night:
    folder = tmp_path_factory.mktemp("marketplace_night")
    # compiling the catalog writes models into the dbt project: a copy, not the repository's
    dbt_dir = shutil.copytree(
        REPO / "dbt_project",
        folder / "dbt_project",
        ignore=shutil.ignore_patterns("target", "logs"),
    )
    settings = scratch_settings(EXAMPLE / "cxkpi.yml", folder, dbt_project_dir=dbt_dir)
    marketplace.generate(settings.landing_dir)
    result = pipeline.run_all(settings, pipeline.RunContext.new("marketplace-1", LOGICAL_DATE))
    return Night(settings, result, Marketplace(settings.landing_dir))


def test_the_night_publishes_through_the_shipped_suites(night: Night) -> None:
    assert night.settings.expectations_dir == REPO / "expectations"
    assert night.settings.kpi_definitions_dir == EXAMPLE / "kpi_definitions"
    assert night.result.stages["gate"]["failed"] == 0
    assert night.published("select count(*) from publish_log") == [(1,)]


def test_every_landing_file_loads_whole(night: Night) -> None:
    rows = night.warehouse(
        "select source_file, source_name, status, rows_read, rows_loaded, rows_rejected "
        "from raw.load_files order by source_file, source_name"
    )
    expected = night.market.row_counts
    assert sorted({file for file, *_ in rows}) == sorted(FILES)
    # orders.csv feeds orders and deliveries: read twice
    assert sorted(name for file, name, *_ in rows if file == "orders/orders.csv") == [
        "olist_deliveries",
        "olist_orders",
    ]
    for file, name, status, read, loaded, rejected in rows:
        assert (status, read, loaded, rejected) == ("loaded", expected[file], read, 0), name


def published_figures(night: Night, kpi_id: str) -> dict[Key, Figure]:
    rows = night.published(
        f"""select org_level, org_unit_id, period_start, value, n
            from kpi_values
            where kpi_id = '{kpi_id}' and period_grain = 'month'
              and channel = 'all' and segment = 'all' and touchpoint = 'all' and topic = 'all'"""
    )
    figures = {}
    for level, unit, period_start, value, n in rows:
        key = (level, HQ if level == "hq" else unit, f"{period_start:%Y-%m}")
        assert key not in figures, key
        figures[key] = Figure(value, n)
    return figures


@pytest.mark.parametrize("kpi_id", KPIS)
def test_monthly_kpi_values_equal_the_oracle_at_every_level(night: Night, kpi_id: str) -> None:
    expected = night.market.figures()[kpi_id]
    published = published_figures(night, kpi_id)
    assert {level for level, _, _ in expected} == {"hq", "state", "seller"}
    assert sorted(published) == sorted(expected)
    wrong = {
        key: (published[key], figure)
        for key, figure in expected.items()
        if published[key].n != figure.n or published[key].value != pytest.approx(figure.value)
    }
    assert wrong == {}


def test_every_kpi_has_data_and_none_is_in_the_roadmap_for_lack_of_it(night: Night) -> None:
    with_values = night.published(
        "select distinct kpi_id from kpi_values where org_level = 'hq' and n > 0"
    )
    assert sorted(kpi_id for (kpi_id,) in with_values) == sorted(KPIS)
    # the catalog fits the company: no KPI without data, so none to keep off the roadmap
    assert night.published("select kpi_id from kpi_catalog where not has_data") == []
    assert night.published("select count(*) from roadmap")[0][0] > 0
    assert (
        night.published(
            "select subject_id from roadmap where subject_id in "
            "(select kpi_id from kpi_catalog where not has_data)"
        )
        == []
    )


def test_delivery_experience_at_hq_equals_the_oracle(night: Night) -> None:
    rows = night.published(
        """select month_start, delivery_punctuality, csat_top2_box, csat_n
           from fct_experience_by_delivery
           where org_level = 'hq'"""
    )
    published = {(f"{month:%Y-%m}", bucket): (top_box, n) for month, bucket, top_box, n in rows}
    expected = night.market.delivery_buckets()
    assert {bucket for _, bucket in expected} == set(BUCKETS)
    assert sorted(published) == sorted(expected)
    for key, (top_box, n) in expected.items():
        assert published[key] == (pytest.approx(top_box), n), key


def test_verbatims_keep_title_and_message(night: Night) -> None:
    rows = night.published("select response_id, comment from fct_verbatims")
    published = dict(rows)
    assert len(published) == len(rows)
    expected = night.market.verbatims()
    both = [
        r for r in night.market.reviews if r["review_comment_title"] and r["review_comment_message"]
    ]
    assert len(both) > 100
    assert published == expected


def test_months_are_sao_paulo_months(night: Night) -> None:
    """The orders of the last evening of October (already November in UTC) are October's,
    and no order is counted in November."""
    months = night.published(
        """select period_start, value from kpi_values
           where kpi_id = 'order_count' and org_level = 'hq' and period_grain = 'month'
             and channel = 'all' and segment = 'all' and touchpoint = 'all' and topic = 'all'
           order by period_start"""
    )
    assert [period_start for period_start, _ in months] == [date(2026, m, 1) for m in range(5, 11)]
    october = sum(
        1
        for order in night.market.orders.values()
        if order["order_purchase_timestamp"].startswith("2026-10")
    )
    assert months[-1][1] == october


def test_every_seller_gets_its_own_extract_and_report(night: Night) -> None:
    """A company unlike the demo (levels hq / state / seller, no factors, no tickets, no
    cases): its access file gives every state and every seller a scope; a seller's extract
    holds its own rows and its state's and the marketplace's aggregates, no other seller's."""
    manifest = json.loads((night.settings.published_dir / "latest.json").read_text())
    assert manifest["scope_problems"] == []
    sellers = night.market.state  # seller -> its state
    hq = night.published("select org_unit_id from dim_org_units where org_level = 'hq'")[0][0]
    levels = [entry["level"] for entry in manifest["scopes"].values()]
    assert sorted(set(levels)) == ["hq", "seller", "state"]
    assert levels.count("seller") == len(sellers) and levels.count("state") == 4
    for seller, state in sellers.items():
        extract = night.settings.published_dir / "scopes" / seller / "cx.duckdb"
        units = {u for (u,) in query(extract, "select distinct org_unit_id from kpi_values")}
        assert seller in units and units <= {seller, state, hq}, seller
        owners = query(extract, "select distinct org_unit_id from fct_verbatims")
        assert owners in ([], [(seller,)]), seller
    page = (night.settings.published_dir / "scopes" / "SP" / "report.html").read_text()
    assert 'data-kpi-id="csat"' in page and "No factor ratings in this scope." in page
    assert page.count('href="../') == 1 + sum(1 for s in sellers.values() if s == "SP")
