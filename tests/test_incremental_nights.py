"""Incremental nights publish what a full rebuild publishes.

One project runs nights whose data arrives the way exports do - new days, a late file
(rows of an earlier day arriving later), a corrected file (same name, changed rows) - and
each night dbt recomputes only the periods touched. A fresh warehouse then runs one
night with ``full_refresh`` on the same final landing files: every published table must
hold the same rows. Then a night with nothing new must do no dbt work, and a changed KPI
definition must rebuild everything.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from conftest import REPO, copy_tree, make_settings, query

from cxkpi import demo, pipeline
from cxkpi.config import Settings
from cxkpi.demo.nights import correct_month, deliver, take_responses

pytestmark = pytest.mark.integration

SCALE = 0.15
NEW_DAYS = ("2026-10-30", "2026-10-31")
LATE_DAY = "2026-09-12"  # a day with responses in the demo at this scale
CORRECTED_MONTH = "2026-08"


def project_settings(folder: Path) -> Settings:
    """Settings of a project with its own copy of the KPI definitions and the dbt project
    (a night compiles into it, and a test changes a definition)."""
    folder.mkdir(parents=True)
    dbt_dir = shutil.copytree(
        REPO / "dbt_project",
        folder / "dbt_project",
        ignore=shutil.ignore_patterns("target", "logs"),
    )
    definitions = shutil.copytree(REPO / "kpi_definitions", folder / "kpi_definitions")
    return make_settings(folder, kpi_definitions_dir=definitions, dbt_project_dir=dbt_dir)


def night(settings: Settings, name: str, day: str, **options: bool) -> pipeline.RunResult:
    return pipeline.run_all(settings, pipeline.RunContext.new(name, day), **options)


# What a publish holds besides its data: history of the nights themselves. The publish log
# names the runs; a case handed over and later withdrawn (a corrected row) is the ledger's
# record of what an earlier night did (docs/closed-loop.md).
NIGHT_HISTORY = {
    "fct_cases": "select * exclude (is_withdrawn) from fct_cases where not is_withdrawn",
}


def published_rows(settings: Settings) -> dict[str, list[tuple]]:
    """Every published table's rows, but the nights' own history (NIGHT_HISTORY)."""
    con = duckdb.connect(str(settings.published_path), read_only=True)
    try:
        tables = [row[0] for row in con.execute("show tables").fetchall()]
        return {
            table: con.execute(NIGHT_HISTORY.get(table, f'select * from "{table}"')).fetchall()
            for table in tables
            if table != "publish_log"
        }
    finally:
        con.close()


def _sort_key(row: tuple) -> tuple:
    # floats rounded well above 1e-9 so that two equal rows sort alike; None first
    return tuple(
        (value is not None, round(value, 6) if isinstance(value, float) else str(value))
        for value in row
    )


def _same_value(left: object, right: object) -> bool:
    if isinstance(left, float) and isinstance(right, float):
        return (math.isnan(left) and math.isnan(right)) or math.isclose(
            left, right, rel_tol=1e-9, abs_tol=1e-9
        )
    return left == right


def same_rows(left: list[tuple], right: list[tuple]) -> bool:
    """The same rows in any order, floats equal within 1e-9."""
    return len(left) == len(right) and all(
        len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b, strict=True))
        for a, b in zip(sorted(left, key=_sort_key), sorted(right, key=_sort_key), strict=True)
    )


def differing_tables(left: dict[str, list[tuple]], right: dict[str, list[tuple]]) -> list[str]:
    """The tables of either publish whose rows differ (or that the other lacks)."""
    return sorted(
        table
        for table in left.keys() | right.keys()
        if table not in left or table not in right or not same_rows(left[table], right[table])
    )


@dataclass
class Nights:
    incremental: Settings
    runs: dict[str, pipeline.RunResult]
    touched: list[tuple]  # int_kpi__touched_periods after the last incremental night
    published: dict[str, list[tuple]]  # the incremental nights' last publish
    rebuilt: dict[str, list[tuple]]  # the full rebuild's publish of the same data


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> Nights:
    root = tmp_path_factory.mktemp("incremental")
    generated = root / "generated"
    demo.generate(generated, scale=SCALE)
    settings = project_settings(root / "incremental")
    surveys = copy_tree(generated, settings.landing_dir) / "surveys"
    first_day, second_day = (take_responses(surveys, day) for day in NEW_DAYS)
    late = take_responses(surveys, LATE_DAY)
    # each night must bring rows, or it proves nothing
    assert all(len(held["responses"]) for held in (first_day, second_day, late))
    runs = {"cold": night(settings, "cold", "2026-10-29")}

    deliver(surveys, first_day, NEW_DAYS[0])
    deliver(surveys, late, f"late_{LATE_DAY}")
    runs["new day and late file"] = night(settings, "new-day-late-file", NEW_DAYS[0])

    deliver(surveys, second_day, NEW_DAYS[1])
    correct_month(surveys, CORRECTED_MONTH)
    runs["corrected month"] = night(settings, "corrected-month", NEW_DAYS[1])
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        touched = con.execute(
            "select kpi_id, period_grain, period_start::varchar "
            "from intermediate.int_kpi__touched_periods"
        ).fetchall()
    finally:
        con.close()

    rebuilt = make_settings(
        root / "rebuilt",
        kpi_definitions_dir=settings.kpi_definitions_dir,
        dbt_project_dir=settings.dbt_project_dir,
    )
    copy_tree(settings.landing_dir, rebuilt.landing_dir)
    runs["full rebuild"] = night(rebuilt, "full-rebuild", NEW_DAYS[1], full_refresh=True)
    return Nights(settings, runs, touched, published_rows(settings), published_rows(rebuilt))


def test_incremental_nights_publish_what_a_full_rebuild_publishes(nights: Nights) -> None:
    modes = {name: run.stages["dbt_build"]["mode"] for name, run in nights.runs.items()}
    assert modes == {
        "cold": "full refresh: no earlier build of this warehouse",
        "new day and late file": "incremental",
        "corrected month": "incremental",
        "full rebuild": "full refresh: requested",
    }
    assert len(nights.published) >= 15
    assert differing_tables(nights.published, nights.rebuilt) == []


def test_an_incremental_night_recomputes_only_the_periods_it_touched(nights: Nights) -> None:
    """The corrected month's night: its new day and the corrected month, with their weeks
    and months, not the months nobody touched."""
    periods = {(grain, start) for _, grain, start in nights.touched}
    assert ("day", NEW_DAYS[1]) in periods
    assert ("month", f"{CORRECTED_MONTH}-01") in periods
    assert ("day", f"{CORRECTED_MONTH}-28") in periods  # the day a response moved to
    assert not {start for grain, start in periods if grain == "month"} & {
        "2026-01-01",
        "2026-05-01",
        "2026-09-01",
    }


def test_a_night_with_nothing_new_does_no_dbt_work(nights: Nights) -> None:
    """Nor a full gate, nor a new version: only the checks that depend on the night (its
    date, its loads) run, and the current version stays current."""
    version_before = query(
        nights.incremental.published_path, "select max(version) from publish_log"
    )
    result = night(nights.incremental, "nothing-new", NEW_DAYS[1])
    assert result.stages["prepare"]["prepare"].startswith("skipped: nothing changed since")
    assert result.stages["dbt_build"]["dbt"].startswith("skipped: nothing new since build")
    assert result.stages["analyze"]["factor_importance"].startswith("skipped")
    assert result.stages["gate"]["scope"].startswith("night checks only: nothing new since build")
    checked = json.loads(
        (result.ctx.run_dir(nights.incremental) / "gate" / "gate.json").read_text()
    )
    kinds = {r["check"].split("(")[0] for r in checked["results"]}
    assert kinds == {"load_rejects", "empty_files", "freshness"}
    assert result.stages["publish"]["skipped"].startswith("nothing new since build")
    assert query(nights.incremental.published_path, "select max(version) from publish_log") == (
        version_before
    )
    assert differing_tables(published_rows(nights.incremental), nights.published) == []


def test_a_changed_kpi_definition_rebuilds_everything(nights: Nights) -> None:
    definition = nights.incremental.kpi_definitions_dir / "core/outcomes/voice_of_customer.yml"
    text = definition.read_text(encoding="utf-8")
    definition.write_text(text.replace("target: 30\n", "target: 35\n", 1), encoding="utf-8")
    result = night(nights.incremental, "definition-changed", NEW_DAYS[1])
    assert result.stages["dbt_build"]["mode"].startswith(
        "full refresh: the dbt project, definitions or settings changed"
    )
    targets = query(
        nights.incremental.published_path,
        "select distinct target from kpi_values where kpi_id = 'nps'",
    )
    assert targets == [(35.0,)]
