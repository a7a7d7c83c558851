"""kpi_values against numbers computed by hand from a tiny data set (real loader + dbt)."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest
from conftest import make_settings, settings_with_catalog
from handmade import EXPECTED_HQ_STATUS, EXPECTED_MONTH, KPIS, RESPONSES, write_landing

from cxkpi import pipeline

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    settings = settings_with_catalog(tmp_path_factory.mktemp("handmade"), KPIS)
    write_landing(settings.landing_dir)
    result = pipeline.run_all(settings, pipeline.RunContext.new("handmade", "2026-10-31"))
    assert result.stages["load_x"]["rows_rejected"] == 0
    assert result.stages["load_o"]["rows_rejected"] == 0
    return settings.published_path


def month_values(published: Path) -> dict[tuple, tuple]:
    con = duckdb.connect(str(published), read_only=True)
    try:
        rows = con.execute(
            """select kpi_id, org_level, org_unit_id, channel, value, n, status
               from kpi_values
               where period_grain = 'month' and period_start = date '2026-10-01'
                 and segment = 'all' and touchpoint = 'all'"""
        ).fetchall()
    finally:
        con.close()
    return {tuple(r[:4]): r[4:] for r in rows}


def test_month_values_match_hand_computation(published: Path) -> None:
    actual = month_values(published)
    for key, (value, n) in EXPECTED_MONTH.items():
        assert key in actual, f"missing {key}"
        assert actual[key][0] == pytest.approx(value, abs=1e-9), key
        assert actual[key][1] == n, key


def test_status_against_targets(published: Path) -> None:
    actual = month_values(published)
    for kpi, status in EXPECTED_HQ_STATUS.items():
        assert actual[(kpi, "hq", "HQ", "all")][2] == status, kpi


def test_day_and_week_grains(published: Path) -> None:
    con = duckdb.connect(str(published), read_only=True)
    try:
        rows = {
            tuple(r[:2]): r[2]
            for r in con.execute(
                """select period_grain, period_start::varchar, value from kpi_values
                   where kpi_id = 'on_time_delivery' and org_unit_id = 'S1'
                     and channel = 'all' and period_grain in ('day', 'week')"""
            ).fetchall()
        }
        weeks = con.execute(
            """select distinct period_start::varchar from kpi_values
               where kpi_id = 'nps' and period_grain = 'week'"""
        ).fetchall()
    finally:
        con.close()
    # D1 arrived on time on 3 Oct, D2 late on 4 Oct; both in the ISO week of 28 Sep.
    assert rows == {
        ("day", "2026-10-03"): 100.0,
        ("day", "2026-10-04"): 0.0,
        ("week", "2026-09-28"): 50.0,
    }
    assert weeks == [("2026-10-05",)]


def test_small_samples_are_marked_not_reliable(published: Path) -> None:
    actual = month_values(published)
    # service_index needs n >= 4: S1 has 2 on-time deliveries behind it, HQ has 4
    assert actual[("service_index", "store", "S1", "all")][2] == "not_reliable"
    assert actual[("service_index", "hq", "HQ", "all")][2] == "off_track"
    con = duckdb.connect(str(published), read_only=True)
    try:
        assert con.execute(
            "select bool_and(is_reliable = (n >= min_sample)) from kpi_values"
        ).fetchone() == (True,)
    finally:
        con.close()


def test_an_analyst_adds_a_kpi_with_one_yaml_file(published: Path, tmp_path: Path) -> None:
    """One new YAML file, one run: the KPI is compiled, computed and published."""
    project = shutil.copytree(published.parents[1], tmp_path / "project")
    settings = make_settings(
        project,
        kpi_definitions_dir=project / "kpi_definitions",
        dbt_project_dir=project / "dbt_project",
        expectations_dir=project / "expectations",
    )
    (settings.kpi_definitions_dir / "web_nps.yml").write_text(
        "id: web_nps\n"
        "label: NPS of web customers\n"
        "type: nps\n"
        "source: survey_responses\n"
        "measure: nps\n"
        "filters: [\"channel = 'web'\"]\n"
        "min_sample: 1\n"
    )
    pipeline.run_all(settings, pipeline.RunContext.new("with-web-nps", "2026-10-31"))
    actual = month_values(settings.published_path)
    # web answers: S1 10, 9, 8, 3 and S3 9, 9 -> 4 promoters, 1 detractor of 6
    assert actual[("web_nps", "hq", "HQ", "all")][:2] == (pytest.approx(50.0), 6)
    assert actual[("web_nps", "store", "S3", "all")][:2] == (pytest.approx(100.0), 2)
    generated = settings.dbt_project_dir / "models" / "kpis" / "int_kpi_obs__survey_responses.sql"
    assert "-- web_nps: NPS of web customers" in generated.read_text()


def _counts(scores: list[int]) -> tuple[int, int, int]:
    return (
        sum(s >= 9 for s in scores),
        sum(7 <= s <= 8 for s in scores),
        sum(s <= 6 for s in scores),
    )


@pytest.mark.parametrize(
    ("org_level", "org_unit", "channel", "keep"),
    [
        ("hq", "HQ", "all", lambda store, channel: True),
        ("store", "S3", "all", lambda store, channel: store == "S3"),
        ("hq", "HQ", "web", lambda store, channel: channel == "web"),
    ],
)
def test_published_nps_uncertainty_matches_the_textbook(
    published: Path, org_level: str, org_unit: str, channel: str, keep
) -> None:
    """The SQL's standard error, interval and significance are checked against
    cxkpi.methods.stats (textbook NPS variance, Rocks 2016), on hand-made answers.

    The SQL's delta-method error divides by n - 1 (the unbiased sample variance of the
    +1/0/-1 scores); the textbook's maximum-likelihood variance divides by n, so the two
    differ by exactly sqrt(n / (n - 1)).
    """
    import math

    from cxkpi.methods import stats

    scores = [nps for store, ch, nps, _, _ in RESPONSES if keep(store, ch)]
    promoters, passives, detractors = _counts(scores)
    n = len(scores)
    con = duckdb.connect(str(published), read_only=True)
    try:
        value, standard_error, ci_low, ci_high = con.execute(
            """select value, standard_error, ci_low, ci_high from kpi_values
               where kpi_id = 'nps' and period_grain = 'month'
                 and period_start = date '2026-10-01' and org_level = ? and org_unit_id = ?
                 and channel = ? and segment = 'all' and touchpoint = 'all'""",
            [org_level, org_unit, channel],
        ).fetchone()
    finally:
        con.close()
    assert value == pytest.approx(stats.nps_from_counts(promoters, passives, detractors))
    textbook = stats.nps_standard_error(promoters, passives, detractors)
    assert standard_error == pytest.approx(textbook * math.sqrt(n / (n - 1)), rel=1e-9)
    assert ci_low == pytest.approx(value - 1.96 * standard_error, rel=1e-9)
    assert ci_high == pytest.approx(value + 1.96 * standard_error, rel=1e-9)
