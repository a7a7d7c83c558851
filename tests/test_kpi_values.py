"""kpi_values against numbers computed outside the SQL: by hand from a tiny data set (real
loader + dbt), and with cxkpi.methods.stats from the hand-made answers and from the demo
night's observations (standard errors, intervals, change significance, reliability)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import DemoNight, make_settings, settings_with_catalog
from handmade import EXPECTED_HQ_STATUS, EXPECTED_MONTH, KPIS, RESPONSES, write_landing

from cxkpi import dbt_runner, pipeline
from cxkpi.config import Settings
from cxkpi.methods import stats

pytestmark = pytest.mark.integration


# A ratio of two sums that both vary from row to row (a share's denominator is 1 per row),
# so that its published error is the delta-method error of a ratio of sums.
RATIO_KPI = """
---
id: recommendation_per_effort
label: Recommendation points per effort point
type: ratio
source: survey_responses
numerator: nps
denominator: ces
unit: ratio
min_sample: 1
"""


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    settings = settings_with_catalog(tmp_path_factory.mktemp("handmade"), KPIS + RATIO_KPI)
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
                 and segment = 'all' and touchpoint = 'all' and topic = 'all'"""
        ).fetchall()
    finally:
        con.close()
    return {tuple(r[:4]): r[4:] for r in rows}


def _hq_days(published: Path, kpi: str) -> list[str]:
    con = duckdb.connect(str(published), read_only=True)
    try:
        rows = con.execute(
            """select distinct period_start::varchar from kpi_values
               where kpi_id = ? and period_grain = 'day' and org_level = 'hq'
               order by 1""",
            [kpi],
        ).fetchall()
    finally:
        con.close()
    return [r[0] for r in rows]


def test_days_are_counted_in_the_reporting_time_zone(published: Path, tmp_path: Path) -> None:
    """The hand-made answers are given at Berlin noon (10:00 UTC) on 5-7 October; counted
    in Pacific/Kiritimati (UTC+14) they fall on 6-8 October. The observations are rebuilt
    by dbt on a copy of the night, with the setting passed as dbt's var."""
    assert _hq_days(published, "nps") == ["2026-10-05", "2026-10-06", "2026-10-07"]
    project = shutil.copytree(published.parents[1], tmp_path / "project")
    settings = make_settings(
        project,
        kpi_definitions_dir=project / "kpi_definitions",
        dbt_project_dir=project / "dbt_project",
        expectations_dir=project / "expectations",
        reporting_timezone="Pacific/Kiritimati",
    )
    outcome = dbt_runner.invoke(
        settings, ["run", "--select", "int_kpi_obs__survey_responses int_kpi__observations"]
    )
    assert outcome.success, outcome.results
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        days = con.execute(
            """select distinct metric_date::varchar from intermediate.int_kpi__observations
               where kpi_id = 'nps' order by 1"""
        ).fetchall()
    finally:
        con.close()
    assert [d[0] for d in days] == ["2026-10-06", "2026-10-07", "2026-10-08"]


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
    scores = [nps for store, ch, nps, _, _ in RESPONSES if keep(store, ch)]
    promoters, passives, detractors = _counts(scores)
    n = len(scores)
    con = duckdb.connect(str(published), read_only=True)
    try:
        value, standard_error, ci_low, ci_high = con.execute(
            """select value, standard_error, ci_low, ci_high from kpi_values
               where kpi_id = 'nps' and period_grain = 'month'
                 and period_start = date '2026-10-01' and org_level = ? and org_unit_id = ?
                 and channel = ? and segment = 'all' and touchpoint = 'all' and topic = 'all'""",
            [org_level, org_unit, channel],
        ).fetchone()
    finally:
        con.close()
    assert value == pytest.approx(stats.nps_from_counts(promoters, passives, detractors))
    textbook = stats.nps_standard_error(promoters, passives, detractors)
    assert standard_error == pytest.approx(textbook * math.sqrt(n / (n - 1)), rel=1e-9)
    _assert_interval(value, standard_error, ci_low, ci_high)


# Slices of the hand-made month: HQ, one store, HQ broken down by channel.
HANDMADE_SLICES = [
    ("HQ", "all", lambda store, channel: True),
    ("S1", "all", lambda store, channel: store == "S1"),
    ("HQ", "web", lambda store, channel: channel == "web"),
]
CSAT_SCORES = {
    "Very satisfied": 5,
    "Satisfied": 4,
    "Neutral": 3,
    "Dissatisfied": 2,
    "Very dissatisfied": 1,
}


def _month_uncertainty(published: Path, kpi_id: str, org_unit: str, channel: str) -> tuple:
    """(value, n, standard_error, ci_low, ci_high) of a hand-made KPI in October."""
    con = duckdb.connect(str(published), read_only=True)
    try:
        return con.execute(
            """select value, n, standard_error, ci_low, ci_high from kpi_values
               where kpi_id = ? and period_grain = 'month' and period_start = date '2026-10-01'
                 and org_unit_id = ? and channel = ? and segment = 'all'
                 and touchpoint = 'all' and topic = 'all'""",
            [kpi_id, org_unit, channel],
        ).fetchone()
    finally:
        con.close()


def _assert_interval(value: float, standard_error: float, ci_low: float, ci_high: float) -> None:
    """The published 95% interval is value -/+ 1.96 SE; stats uses z = 1.959964, hence the
    relative tolerance of 1e-4 on the interval's half width."""
    low, high = stats.normal_confidence_interval(value, standard_error)
    assert value - ci_low == pytest.approx(value - low, rel=1e-4)
    assert ci_high - value == pytest.approx(high - value, rel=1e-4)


@pytest.mark.parametrize(("org_unit", "channel", "keep"), HANDMADE_SLICES)
def test_published_ratio_uncertainty_matches_the_delta_method(
    published: Path, org_unit: str, channel: str, keep
) -> None:
    """A ratio of sums: its error is Cochran's linearised error of R = sum(y) / sum(x).

    By hand for S1: y = 10, 9, 8, 3 over x = 2, 3, 4, 6, R = 30 / 15 = 2, residuals
    y - 2x = 6, 3, 0, -9, SE = sqrt(126 / 3 / 4) / (15 / 4) = 0.864099.
    """
    pairs = [
        (nps, effort)
        for store, ch, nps, _, effort in RESPONSES
        if effort is not None and keep(store, ch)
    ]
    numerators = [float(y) for y, _ in pairs]
    denominators = [float(x) for _, x in pairs]
    value, n, standard_error, ci_low, ci_high = _month_uncertainty(
        published, "recommendation_per_effort", org_unit, channel
    )
    assert n == len(pairs)
    assert value == pytest.approx(sum(numerators) / sum(denominators), rel=1e-12)
    expected = stats.ratio_standard_error(numerators, denominators)
    assert standard_error == pytest.approx(expected, rel=1e-9)
    if org_unit == "S1" and channel == "all":
        assert standard_error == pytest.approx(0.864099, abs=1e-6)
    _assert_interval(value, standard_error, ci_low, ci_high)


@pytest.mark.parametrize(("org_unit", "channel", "keep"), HANDMADE_SLICES)
def test_published_top_box_and_mean_uncertainty_match_the_textbook(
    published: Path, org_unit: str, channel: str, keep
) -> None:
    """CSAT (share of 4-5 answers) and CES (mean effort) on the hand-made answers.

    The SQL's error is the sample standard deviation (divisor n - 1) over sqrt(n): for a
    mean that is the textbook error; for a share it is the Wald error sqrt(p (1 - p) / n)
    times sqrt(n / (n - 1)), the 0/1 answers' unbiased variance.
    """
    labels = [label for store, ch, _, label, _ in RESPONSES if label and keep(store, ch)]
    top_box = sum(CSAT_SCORES[label] >= 4 for label in labels)
    n = len(labels)
    value, published_n, standard_error, ci_low, ci_high = _month_uncertainty(
        published, "csat", org_unit, channel
    )
    assert (value, published_n) == (pytest.approx(100 * top_box / n), n)
    wald = 100 * stats.proportion_standard_error(top_box, n)
    assert standard_error == pytest.approx(wald * math.sqrt(n / (n - 1)), rel=1e-9)
    _assert_interval(value, standard_error, ci_low, ci_high)

    efforts = [float(e) for store, ch, _, _, e in RESPONSES if e is not None and keep(store, ch)]
    value, published_n, standard_error, ci_low, ci_high = _month_uncertainty(
        published, "ces", org_unit, channel
    )
    assert (value, published_n) == (pytest.approx(sum(efforts) / len(efforts)), len(efforts))
    assert standard_error == pytest.approx(stats.mean_standard_error(efforts), rel=1e-9)
    _assert_interval(value, standard_error, ci_low, ci_high)


# --- the demo night: every month value of every KPI type with a standard error -----------
#
# The demo's months are recomputed, at every org level and breakdown the KPIs publish, from
# the warehouse's int_kpi__observations (one row per counted source row: the value a row
# adds to the numerator and to the denominator, +1 / 0 / -1 for NPS, 1 / 0 for a share or
# box) with the textbook formulas of cxkpi.methods.stats.

TYPES_WITH_STANDARD_ERROR = ("nps", "top_box", "bottom_box", "share", "mean", "ratio")
SLICE = [
    "kpi_id", "period_start", "org_level", "org_unit_id", "channel", "segment", "touchpoint",
    "topic",
]  # fmt: skip
BREAKDOWNS = ("channel", "segment", "touchpoint", "topic")


def _declared_min_samples(settings: Settings) -> dict[str, int]:
    """min_sample of every KPI as its YAML file declares it, else the configured default."""
    declared = {}
    for path in sorted(settings.kpi_definitions_dir.rglob("*.yml")):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if isinstance(document, dict) and "id" in document:
                declared[document["id"]] = int(document.get("min_sample", settings.min_sample))
    return declared


def _textbook_estimate(
    kpi_type: str, unit: str, numerators: list[float], denominators: list[float]
) -> tuple[float, float]:
    """(value, standard error) of one slice from its observations.

    The SQL divides the variance of the per-row scores by n - 1; the textbook NPS and
    proportion errors divide by n, hence their factor sqrt(n / (n - 1)).
    """
    n = len(numerators)
    to_unbiased = math.sqrt(n / (n - 1)) if n > 1 else math.nan
    in_percent = 100.0 if unit in ("percent", "points") else 1.0
    if kpi_type == "nps":
        counts = (numerators.count(1.0), numerators.count(0.0), numerators.count(-1.0))
        return stats.nps_from_counts(*counts), stats.nps_standard_error(*counts) * to_unbiased
    if kpi_type == "mean":
        return math.fsum(numerators) / n, stats.mean_standard_error(numerators)
    if kpi_type == "ratio":
        value = math.fsum(numerators) / math.fsum(denominators)
        return in_percent * value, in_percent * stats.ratio_standard_error(numerators, denominators)
    successes = numerators.count(1.0)  # a share or box: 1 when the row counts, else 0
    standard_error = stats.proportion_standard_error(successes, n) * to_unbiased
    return in_percent * successes / n, in_percent * standard_error


@pytest.fixture(scope="module")
def demo_months(demo_night: DemoNight) -> pd.DataFrame:
    """The demo's published month rows of KPIs with a standard error, each beside its
    textbook recomputation (columns ``expected_*``) from the warehouse's observations."""
    settings = demo_night.settings
    con = duckdb.connect(str(settings.published_path), read_only=True)
    try:
        catalog = con.execute(
            "select kpi_id, kpi_type, unit from kpi_catalog where kpi_type in "
            f"{TYPES_WITH_STANDARD_ERROR}"
        ).df()
        # each unit's advisor, store and region (empty above its own level)
        paths = {
            unit: path
            for unit, *path in con.execute(
                "select org_unit_id, advisor_id, store_id, region_id from dim_org_units"
            ).fetchall()
        }
        (hq,) = con.execute(
            "select org_unit_id from dim_org_units where org_level = 'hq'"
        ).fetchone()
        published = con.execute(
            f"""select {", ".join(SLICE)}, value, n, standard_error, ci_low, ci_high,
                   is_reliable, min_sample, status, target, change_is_significant
                from kpi_values
                where period_grain = 'month'
                  and kpi_id in (select kpi_id from kpi_catalog
                                 where kpi_type in {TYPES_WITH_STANDARD_ERROR})"""
        ).df()
    finally:
        con.close()
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        observations = con.execute(
            """select kpi_id, cast(date_trunc('month', metric_date) as date) as period_start,
                   org_unit_id, channel, segment, touchpoint, topic, numerator, denominator
               from intermediate.int_kpi__observations"""
        ).df()
    finally:
        con.close()
    observations = observations.merge(catalog, on="kpi_id")
    for position, level in enumerate(("advisor", "store", "region")):
        observations[f"{level}_id"] = observations["org_unit_id"].map(
            lambda unit, at=position: paths.get(unit, (None, None, None))[at]
        )
    observations["hq_id"] = hq

    expected = []
    for org_level in ("advisor", "store", "region", "hq"):
        for breakdown in (None, *BREAKDOWNS):
            keys = ["kpi_id", "kpi_type", "unit", "period_start", f"{org_level}_id"]
            keys += [breakdown] if breakdown else []
            # a KPI's topic rows (once per topic of the verbatim) count by topic only
            by_topic = observations["topic"].notna()
            sliced = observations[by_topic if breakdown == "topic" else ~by_topic]
            for group, rows in sliced.groupby(keys):
                slice_of = dict(zip(keys, group, strict=True))
                numerators = rows["numerator"].tolist()
                value, standard_error = _textbook_estimate(
                    slice_of["kpi_type"], slice_of["unit"], numerators, rows["denominator"].tolist()
                )
                expected.append(
                    {
                        "kpi_id": slice_of["kpi_id"],
                        "period_start": slice_of["period_start"],
                        "org_level": org_level,
                        "org_unit_id": slice_of[f"{org_level}_id"],
                        **{b: slice_of.get(b, "all") for b in BREAKDOWNS},
                        "expected_n": len(numerators),
                        "expected_value": value,
                        "expected_standard_error": standard_error,
                    }
                )
    months = published.merge(pd.DataFrame(expected), on=SLICE, how="left")
    assert months["expected_n"].notna().all(), "a published value has no observations"
    min_samples = _declared_min_samples(settings)
    months["declared_min_sample"] = months["kpi_id"].map(min_samples)
    return months.sort_values(SLICE, ignore_index=True)


def _mismatches(
    months: pd.DataFrame, actual: pd.Series, expected: pd.Series, rtol: float = 1e-9
) -> pd.DataFrame:
    agree = np.isclose(actual, expected, rtol=rtol, atol=1e-9) | (actual.isna() & expected.isna())
    return months.loc[~agree, SLICE].assign(actual=actual[~agree], expected=expected[~agree])


def test_demo_standard_errors_and_intervals_match_the_textbook(demo_months: pd.DataFrame) -> None:
    months = demo_months
    assert set(months["org_level"]) == {"advisor", "store", "region", "hq"}
    assert {"nps", "csat", "ces", "on_time_delivery"} <= set(months["kpi_id"])
    assert (months["channel"] != "all").any() and (months["segment"] != "all").any()
    assert (months["topic"] != "all").any()
    assert (months["n"] == months["expected_n"]).all()
    wrong = _mismatches(months, months["value"], months["expected_value"])
    assert wrong.empty, f"values differ from the textbook:\n{wrong.head()}"
    # The SQL sums squares in one pass (sum y^2 - 2 R sum xy + R^2 sum x^2), which cancels
    # digits when the spread is small beside the mean (days of relationship duration):
    # up to 1e-6 relative on the demo, against the two-pass sums of statistics.stdev.
    # Dropping the n - 1 would be off by sqrt(n / (n - 1)) - 1 > 1e-4 even at n = 1000.
    wrong = _mismatches(
        months, months["standard_error"], months["expected_standard_error"], rtol=1e-5
    )
    assert wrong.empty, f"standard errors differ from the textbook:\n{wrong.head()}"
    # a value without an error has no interval; the others are value -/+ 1.959964 SE, up to
    # the SQL's rounded z of 1.96 (hence rtol 1e-4 on the half width)
    with_error = months[months["standard_error"].notna()]
    assert (with_error["standard_error"] > 0).mean() > 0.5  # most intervals have a width
    assert months.loc[months["standard_error"].isna(), ["ci_low", "ci_high"]].isna().all().all()
    low, high = stats.normal_confidence_interval(with_error["value"], with_error["standard_error"])
    for published_half, textbook_half in (
        (with_error["value"] - with_error["ci_low"], with_error["value"] - low),
        (with_error["ci_high"] - with_error["value"], high - with_error["value"]),
    ):
        agree = np.isclose(published_half, textbook_half, rtol=1e-4, atol=1e-9)
        assert agree.all(), f"intervals differ:\n{with_error.loc[~agree, SLICE].head()}"


def test_demo_reliability_follows_the_declared_min_sample(demo_months: pd.DataFrame) -> None:
    months = demo_months
    assert (months["min_sample"] == months["declared_min_sample"]).all()
    reliable = months["expected_n"] >= months["declared_min_sample"]
    assert (months["is_reliable"] == reliable).all()
    # both sides of the threshold occur, and values of exactly min_sample answers count
    assert reliable.any() and not reliable.all()
    assert (months["expected_n"] == months["declared_min_sample"]).any()
    targeted = months["target"].notna()
    assert (months.loc[~reliable & targeted, "status"] == "not_reliable").all()
    assert (months.loc[reliable, "status"] != "not_reliable").all()


def test_demo_change_significance_matches_the_z_test(demo_months: pd.DataFrame) -> None:
    """A change from the previous month of the same slice is significant when the z test of
    two independent estimates (stats.difference_z_test) rejects at 5% and both months are
    reliable; it cannot be tested without a previous month or without both errors."""
    months = demo_months.copy()
    months["reliable"] = months["expected_n"] >= months["declared_min_sample"]
    same_slice = months.groupby([c for c in SLICE if c != "period_start"], sort=False)
    for column in ("expected_value", "expected_standard_error", "reliable"):
        months[f"previous_{column}"] = same_slice[column].shift()
    checked = {True: 0, False: 0, None: 0}
    for row in months.itertuples():
        if (
            pd.isna(row.previous_expected_value)
            or math.isnan(row.expected_standard_error)
            or (pd.isna(row.previous_expected_standard_error))
        ):
            expected = None
        elif not (row.reliable and row.previous_reliable):
            expected = False
        else:
            z, p_value = stats.difference_z_test(
                row.expected_value,
                row.expected_standard_error,
                row.previous_expected_value,
                row.previous_expected_standard_error,
            )
            if abs(abs(z) - 1.96) < 1e-4:
                continue  # between the SQL's rounded 1.96 and z_0.975 = 1.959964
            expected = stats.is_significant_change(p_value)
        published = None if pd.isna(row.change_is_significant) else bool(row.change_is_significant)
        assert published == expected, row
        checked[expected] += 1
    # every outcome occurs, so that a rule stuck on one of them fails
    assert min(checked.values()) > 0, checked
