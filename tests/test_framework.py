"""The measurement framework: the worked example of DOMAIN.md through the CLI and the
marts, and on demo data the analysis finds what the generator planted (and nothing else)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import duckdb
import pytest
from conftest import REPO, DemoNight, make_settings, query
from handmade import KPIS, write_landing

from cxkpi import demo, pipeline
from cxkpi.cli import main

# The Hong Kong electronics retailer of seed 002 (DOMAIN.md): blank = not given.
WORKED_EXAMPLE = {
    # factor: (experience, expectation, importance, ideal)
    "price": (7, 7, None, 7),
    "brand_image": (7, 7, None, 7),
    "service": (6, None, None, 6),
    "product": (6, 7, None, 6),
    "convenience": (5, 7, 9, 10),
    "relationship": (4, None, None, 4),
}
EXPECTED = {
    # factor: (satisfaction gap 2c, weighted gap 3, experience gap 4b)
    "price": (0, None, 0),
    "brand_image": (0, None, 0),
    "service": (0, None, 0),
    "product": (-1, None, 0),
    "convenience": (-2, -18, -5),
    "relationship": (0, None, 0),
}


def test_worked_example_through_the_cli(tmp_path: Path, capsys) -> None:
    source = tmp_path / "example.csv"
    with open(source, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["factor", "experience", "expectation", "importance", "ideal"])
        for factor, values in WORKED_EXAMPLE.items():
            writer.writerow([factor, *("" if v is None else v for v in values)])
    output = tmp_path / "gaps.csv"
    assert main(["gap", "--input", str(source), "--output", str(output)]) == 0
    assert "convenience" in capsys.readouterr().out.splitlines()[1]
    with open(output, newline="") as handle:
        rows = {r["factor"]: r for r in csv.DictReader(handle)}
    for factor, (gap, weighted, experience_gap) in EXPECTED.items():
        row = rows[factor]
        assert float(row["satisfaction_gap"]) == gap, factor
        assert (float(row["weighted_gap"]) if row["weighted_gap"] else None) == weighted
        assert float(row["experience_gap"]) == experience_gap, factor
    assert rows["convenience"]["gap_rank"] == "1"
    assert rows["convenience"]["is_key_experience"] == "true"
    assert rows["product"]["gap_rank"] == "2"
    assert rows["service"]["expectation_assumed"] == "true"


def test_gap_cli_names_a_bad_cell(tmp_path: Path, capsys) -> None:
    source = tmp_path / "bad.csv"
    source.write_text("factor,experience,expectation\nprice,seven,7\n")
    assert main(["gap", "--input", str(source)]) == 1
    assert f"{source}:2: experience 'seven' is not a number" in capsys.readouterr().err


def test_a_factor_at_its_slices_mean_is_not_below_it() -> None:
    """The quadrant compares each factor with its slice's means, which are sums of doubles:
    (0.1 + 0.2 + 0.3) / 3 is 0.20000000000000004, and whether 0.2 lies below it depended
    on the engine's summation order (DuckDB and PostgreSQL disagreed on the same night)."""
    from cxkpi.methods import gap

    rows = [
        {"factor": f, "experience": e, "expectation": None, "importance": i, "ideal": None}
        for f, e, i in (("a", 0.1, 0.1), ("b", 0.2, 0.2), ("c", 0.3, 0.3))
    ]
    quadrants = {r["factor"]: r["quadrant"] for r in gap.analyse(rows)}
    # b is at both means: important enough, and not performing below the mean
    assert quadrants == {
        "a": "low_priority", "b": "keep_up_the_good_work", "c": "keep_up_the_good_work",
    }  # fmt: skip


@pytest.mark.integration
def test_worked_example_through_the_marts(tmp_path: Path) -> None:
    """One respondent rates the six factors as in the example; the published gap mart and
    roadmap must give the example's numbers and put convenience first."""
    kpi_dir = tmp_path / "kpi_definitions"
    kpi_dir.mkdir()
    factors = "".join(
        f"---\nid: {factor}\nkind: factor\nideal: {values[3]}\nmin_sample: 1\n"
        for factor, values in WORKED_EXAMPLE.items()
    )
    (kpi_dir / "catalog.yml").write_text(KPIS + factors)
    dbt_dir = shutil.copytree(
        REPO / "dbt_project",
        tmp_path / "dbt_project",
        ignore=shutil.ignore_patterns("target", "logs"),
    )
    suites = shutil.copytree(REPO / "expectations", tmp_path / "expectations")
    (suites / "factor_importance.yml").unlink()  # one respondent: no regression to audit
    settings = make_settings(
        tmp_path, kpi_definitions_dir=kpi_dir, dbt_project_dir=dbt_dir, expectations_dir=suites
    )
    write_landing(settings.landing_dir)
    lines = ["response_id,factor,experience,expectation,importance"]
    for factor, (experience, expectation, importance, _) in WORKED_EXAMPLE.items():
        cells = [experience, expectation, importance]
        lines.append(f"R00,{factor}," + ",".join("" if c is None else str(c) for c in cells))
    (settings.landing_dir / "surveys" / "factor_ratings_2026-10.csv").write_text(
        "\n".join(lines) + "\n"
    )
    pipeline.run_all(settings, pipeline.RunContext.new("worked-example", "2026-10-31"))

    gaps = {
        row[0]: row[1:]
        for row in query(
            settings.published_path,
            """select factor, satisfaction_gap, weighted_gap, experience_gap, gap_rank,
                      is_key_experience
               from fct_factor_gaps where org_level = 'hq'""",
        )
    }
    for factor, (gap, weighted, experience_gap) in EXPECTED.items():
        assert gaps[factor][:3] == (gap, weighted, experience_gap), factor
    assert gaps["convenience"][3:] == (1, True)
    roadmap = query(
        settings.published_path,
        "select priority, item_type, subject_id from roadmap order by priority",
    )
    assert roadmap[0] == (1, "factor_gap", "convenience")


@pytest.fixture
def demo_published(demo_night: DemoNight) -> Path:
    """The session's demo night (read only)."""
    return demo_night.settings.published_path


@pytest.mark.integration
def test_demo_key_weakness_is_found(demo_published: Path) -> None:
    planted = demo.PLANTED["key_weakness_factor"]
    key = query(
        demo_published,
        """
        select factor, count(*) from fct_factor_gaps
        where org_level = 'hq' and is_key_experience group by factor order by 2 desc""",
    )
    assert key[0][0] == planted  # the key experience in most months
    factor_items = query(
        demo_published,
        "select subject_id from roadmap where item_type = 'factor_gap' order by priority",
    )
    assert factor_items[0] == (planted,)  # the first experience to fix on the roadmap


@pytest.mark.integration
def test_demo_derived_importance_finds_the_planted_factors_and_not_the_placebo(
    demo_published,
) -> None:
    rows = query(
        demo_published,
        """
        select factor, rank, relative_weight, ci_low, beta_p_value
        from factor_importance where outcome = 'nps' order by rank""",
    )
    factors = [r[0] for r in rows]
    assert set(factors[:3]) == set(demo.PLANTED["nps_factors"])
    placebo = next(r for r in rows if r[0] == demo.PLANTED["placebo_factor"])
    assert placebo[1] >= 4 and placebo[2] < 0.01 and placebo[3] < 0.01 and placebo[4] > 0.01


@pytest.mark.integration
def test_demo_changes_are_flagged_only_when_significant(demo_published: Path) -> None:
    con = duckdb.connect(str(demo_published), read_only=True)
    try:
        unreliable_flagged = con.execute(
            "select count(*) from kpi_values where change_is_significant and not is_reliable"
        ).fetchone()[0]
        shares = con.execute(
            "select avg(case when change_is_significant then 1.0 else 0.0 end) "
            "from kpi_values where change_is_significant is not null"
        ).fetchone()[0]
        inside = con.execute(
            "select bool_and(ci_low <= value and value <= ci_high) from kpi_values "
            "where standard_error is not null"
        ).fetchone()[0]
    finally:
        con.close()
    assert unreliable_flagged == 0
    assert inside
    # stable demo KPIs: month-to-month noise is rarely called a change (a few % by chance)
    assert 0 < shares < 0.15
