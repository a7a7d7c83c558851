"""The demo generator: deterministic, loadable through sources/demo without a reject, and
carrying the planted relationships, measured here from the loaded raw tables with SQL of
our own (nothing from demo.py's internals but ``generate`` and ``PLANTED``)."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from cxkpi import demo
from cxkpi.canonical import ENTITIES, EXPERIENCE_FACTORS
from cxkpi.loader import load
from cxkpi.sources import load_sources

REPO = Path(__file__).resolve().parents[1]
SCALE = 0.3  # ~14k rows: a few seconds to generate and load
WINDOW = ("2025-11-01", "2026-11-01")  # default end_date 2026-10-31, 12 months


def checksums(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    landing = tmp_path_factory.mktemp("demo") / "landing"
    return landing, demo.generate(landing, scale=SCALE)


@pytest.fixture(scope="module")
def loaded(generated, tmp_path_factory: pytest.TempPathFactory):
    landing, counts = generated
    warehouse = tmp_path_factory.mktemp("demo_wh") / "wh.duckdb"
    report = load(warehouse, landing, load_sources(REPO / "sources" / "demo"), "demo-1")
    return report, warehouse, counts


@pytest.fixture(scope="module")
def sql(loaded):
    _, warehouse, _ = loaded
    con = duckdb.connect(str(warehouse), read_only=True)
    yield lambda query: con.execute(query).fetchall()
    con.close()


# --- determinism and size ---------------------------------------------------------------


def test_same_arguments_give_byte_identical_files(generated, tmp_path: Path) -> None:
    landing, counts = generated
    again = demo.generate(tmp_path / "again", scale=SCALE)
    first, second = checksums(landing), checksums(tmp_path / "again")
    assert again == counts
    assert len(first) > 50  # monthly files of every source, not just a handful
    assert first == second


def test_another_seed_gives_other_data(generated, tmp_path: Path) -> None:
    landing, _ = generated
    demo.generate(tmp_path / "other", scale=SCALE, seed=7)
    first, other = checksums(landing), checksums(tmp_path / "other")
    changed = [name for name in first if first[name] != other.get(name)]
    assert "surveys/responses_2026-10.csv" in changed


def test_scale_two_roughly_doubles_every_count_but_the_organisation(tmp_path: Path) -> None:
    one = demo.generate(tmp_path / "x1", scale=1)
    two = demo.generate(tmp_path / "x2", scale=2)
    assert set(one) == set(two)
    # a store retailer's orders carry their store and amount: no line or payment exports
    assert set(ENTITIES) - set(one) == {"order_lines", "payments"}
    assert two["org_units"] == one["org_units"] == 124  # 1 + 3 + 20 + 100
    assert two["benchmarks"] == one["benchmarks"] == 15  # one study's competitors
    for name in set(one) - {"org_units", "benchmarks"}:
        assert 1.9 <= two[name] / one[name] <= 2.1, (name, one[name], two[name])
    assert (one["survey_responses"], one["tickets"]) == (4_000, 2_500)
    # 10,000 orders plus the repurchases of detractors reached in time (planted recovery)
    assert 10_050 <= one["orders"] <= 10_250
    # same files (months) at both sizes, only bigger
    assert checksums(tmp_path / "x1").keys() == checksums(tmp_path / "x2").keys()


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="scale"):
        demo.generate(tmp_path, scale=0)
    with pytest.raises(ValueError, match="months"):
        demo.generate(tmp_path, months=0)


# --- loading through the repository's declarations ---------------------------------------


@pytest.mark.integration
def test_every_file_loads_with_zero_rejects(loaded, generated) -> None:
    report, _, counts = loaded
    landing, _ = generated
    assert report.failed == []
    assert all(f.status == "loaded" for f in report.files)
    assert [f.source_file for f in report.files if f.rows_rejected] == []
    # every generated file was picked up by some declaration, none twice
    loaded_files = sorted(f.source_file for f in report.files)
    assert loaded_files == sorted(checksums(landing))
    read, written = Counter(), Counter()
    for f in report.files:
        read[f.entity] += f.rows_read
        written[f.entity] += f.rows_loaded
    assert dict(read) == counts
    assert dict(written) == counts


@pytest.mark.integration
def test_raw_tables_hold_exactly_what_was_written(loaded, sql) -> None:
    _, _, counts = loaded
    for name, expected in counts.items():
        assert sql(f"select count(*) from raw.{name}") == [(expected,)], name
    assert sql("select count(*) from raw.load_rejects") == [(0,)]


@pytest.mark.integration
def test_data_stays_in_the_window_and_keys_connect(sql) -> None:
    start, end = WINDOW
    for table, column in (
        ("orders", "ordered_at"),
        ("survey_responses", "responded_at"),
        ("tickets", "opened_at"),
    ):
        [(lo, hi)] = sql(f"select min({column}), max({column}) from raw.{table}")
        assert str(lo) >= start and str(hi) < end, (table, lo, hi)
    assert sql(
        """select count(*) from raw.survey_responses s
           where s.order_id is not null
             and s.order_id not in (select order_id from raw.orders)"""
    ) == [(0,)]
    assert sql(
        """select count(*) from raw.orders o
           where o.customer_id not in (select customer_id from raw.customers)
              or o.org_unit_id not in (select org_unit_id from raw.org_units)"""
    ) == [(0,)]


# --- the planted relationships --------------------------------------------------------


@pytest.mark.integration
def test_late_deliveries_lower_nps(sql) -> None:
    rows = sql(
        """select d.delivered_at > d.promised_at as late, count(*), avg(s.nps), avg(s.csat)
           from raw.survey_responses s join raw.deliveries d using (order_id)
           where d.delivered_at is not null and s.nps is not null
           group by 1"""
    )
    by_late = {late: (n, nps, csat) for late, n, nps, csat in rows}
    (n_late, nps_late, csat_late), (n_ok, nps_ok, csat_ok) = by_late[True], by_late[False]
    assert n_late >= 50 and n_ok >= 200
    assert 0.08 <= n_late / (n_late + n_ok) <= 0.30  # ~15% late
    assert nps_late <= nps_ok - 1.0
    assert nps_late >= nps_ok - 3.5  # about -2, not a wreck
    assert csat_late < csat_ok - 0.3
    assert demo.PLANTED["late_nps_delta"] < -1.0


@pytest.mark.integration
def test_detractors_repurchase_less_than_promoters(sql) -> None:
    window = demo.PLANTED["repurchase_window_days"]
    rows = sql(
        f"""with followed as (
              -- only responses whose whole {window}-day window lies inside the data
              select s.nps,
                     exists (select 1 from raw.orders o
                             where o.customer_id = s.customer_id
                               and o.ordered_at > s.responded_at
                               and o.ordered_at <= s.responded_at + interval {window} day)
                       as again
              from raw.survey_responses s
              where s.nps is not null and s.customer_id is not null
                and s.responded_at <= timestamp '{WINDOW[1]}' - interval {window} day)
            select case when nps <= 6 then 'detractor' when nps >= 9 then 'promoter' end,
                   count(*), avg(again::int)
            from followed where nps <= 6 or nps >= 9 group by 1"""
    )
    share = {group: (n, rate) for group, n, rate in rows}
    (n_det, det), (n_pro, pro) = share["detractor"], share["promoter"]
    assert n_det >= 100 and n_pro >= 100
    assert det < 0.75 * pro  # planted: about half
    assert pro - det > 0.15


@pytest.mark.integration
def test_convenience_has_the_most_negative_weighted_gap(sql) -> None:
    rows = sql(
        """select factor, avg((experience - expectation) * importance) as weighted_gap,
                  avg(experience - expectation) as gap
           from raw.factor_ratings
           where experience is not null and expectation is not null and importance is not null
           group by factor order by weighted_gap"""
    )
    factors = [r[0] for r in rows]
    assert set(factors) == set(EXPERIENCE_FACTORS)
    weighted = {f: w for f, w, _ in rows}
    gap = {f: g for f, _, g in rows}
    assert factors[0] == demo.PLANTED["key_weakness_factor"] == "convenience"
    assert weighted["convenience"] < 1.5 * weighted[factors[1]]  # clearly, not by a hair
    assert -2.5 < gap["convenience"] < -1.5
    assert -1.5 < gap["product"] < -0.5


@pytest.mark.integration
def test_brand_image_is_a_placebo_and_the_planted_factors_move_nps(sql) -> None:
    rows = sql(
        """select f.factor, corr(f.experience, s.nps), count(*)
           from raw.factor_ratings f join raw.survey_responses s using (response_id)
           where f.experience is not null and s.nps is not null
           group by f.factor"""
    )
    corr = {factor: (r, n) for factor, r, n in rows}
    r_brand, n_brand = corr[demo.PLANTED["placebo_factor"]]
    assert n_brand >= 500
    assert abs(r_brand) < 0.1
    # the placebo result means something only because the real drivers do show
    for factor in demo.PLANTED["nps_factors"]:
        assert corr[factor][0] > 0.3, factor
