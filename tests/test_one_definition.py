"""One definition per concept: each test fails when one copy changes without the others.

Settings, enumerations and the columns analysts may use are defined once in Python
(``cxkpi.config``, ``cxkpi.vocabulary``, ``cxkpi.kpi_sources``); the dbt project and the
quality suites either receive them (dbt vars) or must agree with them (tests below).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import duckdb
import pytest
import yaml
from conftest import REPO, make_settings

from cxkpi import dbt_runner, loader, package_macros, vocabulary
from cxkpi.config import DEFAULT_MIN_SAMPLE
from cxkpi.kpi_sources import BOOLEAN, NUMBER, SOURCES, TEXT, TIMESTAMP

MARTS_YML = REPO / "dbt_project" / "models" / "marts" / "_marts.yml"
INTERMEDIATE_YML = REPO / "dbt_project" / "models" / "intermediate" / "_intermediate.yml"


def _model_columns(path: Path, model: str) -> dict[str, dict]:
    models = yaml.safe_load(path.read_text(encoding="utf-8"))["models"]
    (found,) = [m for m in models if m["name"] == model]
    return {c["name"]: c for c in found.get("columns", [])}


def _accepted_values(column: dict) -> set[str]:
    for test in column.get("data_tests", []):
        if isinstance(test, dict) and "accepted_values" in test:
            return set(test["accepted_values"]["arguments"]["values"])
    raise AssertionError(f"{column['name']} has no accepted_values test")


def _suite_value_set(suite: str, column: str) -> set[str]:
    checks = yaml.safe_load((REPO / "expectations" / suite).read_text(encoding="utf-8"))["checks"]
    sets = [
        set(c["value_set"])
        for c in checks
        if c.get("expect") == "column_values_to_be_in_set" and c.get("column") == column
    ]
    assert len(sets) == 1, f"{suite}: one value set for {column}"
    return sets[0]


# --- min_sample: one setting, passed to dbt ----------------------------------------------


def test_dbt_projects_min_sample_default_is_the_settings_default() -> None:
    project = yaml.safe_load((REPO / "dbt_project" / "dbt_project.yml").read_text())
    assert project["vars"]["min_sample"] == DEFAULT_MIN_SAMPLE


def test_the_reporting_time_zone_is_one_setting_passed_to_dbt(tmp_path: Path) -> None:
    from cxkpi.config import Settings
    from cxkpi.dbt_runner import dbt_vars

    project = yaml.safe_load((REPO / "dbt_project" / "dbt_project.yml").read_text())
    default = next(
        f.default for f in dataclasses.fields(Settings) if f.name == "reporting_timezone"
    )
    assert project["vars"]["reporting_timezone"] == default
    settings = make_settings(tmp_path, reporting_timezone="America/Sao_Paulo")
    assert dbt_vars(settings)["reporting_timezone"] == "America/Sao_Paulo"


def test_no_model_takes_the_date_of_a_utc_timestamp() -> None:
    """A day or month of a stored (UTC) timestamp is taken in the reporting time zone:
    reporting_date()/reporting_time() (macros/reporting_time.sql), never a bare cast."""
    bare = re.compile(r"cast\(\s*[\w.]*_at\s+as\s+date\)|date_trunc\('\w+',\s*'[\w.]*_at'\)")
    for folder in ("dbt_project/models", "src/cxkpi/templates"):
        for path in (REPO / folder).rglob("*.sql"):
            assert not bare.search(path.read_text(encoding="utf-8")), path


def test_no_model_spells_a_sample_size() -> None:
    """The marts read var('min_sample'); a literal n threshold would ignore cxkpi.yml."""
    for path in (REPO / "dbt_project" / "models").rglob("*.sql"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"_n\s*>=\s*\d", text), path


def test_the_airflow_dag_passes_the_setting_to_dbt(tmp_path: Path) -> None:
    from cxkpi.dbt_runner import dbt_vars
    from cxkpi.orchestration import cosmos_configs

    settings = make_settings(tmp_path, min_sample=7)
    assert cosmos_configs(settings)["project_config"].dbt_vars == dbt_vars(settings)
    assert dbt_vars(settings)["min_sample"] == 7


@pytest.mark.integration
def test_the_runner_passes_min_sample_to_every_dbt_model(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, min_sample=7)
    settings.warehouse_path.parent.mkdir(parents=True)
    outcome = dbt_runner.invoke(settings, ["compile", "--select", "fct_experience_by_delivery"])
    assert outcome.success
    compiled = next(settings.dbt_target_dir.rglob("fct_experience_by_delivery.sql"))
    text = compiled.read_text(encoding="utf-8")
    assert "nps_n >= 7" in text and "nps_n >= 30" not in text


# --- enumerations: defined in cxkpi.vocabulary ------------------------------------------


def test_kpi_values_statuses_agree_everywhere() -> None:
    statuses = set(vocabulary.VALUE_STATUSES)
    assert _accepted_values(_model_columns(MARTS_YML, "kpi_values")["status"]) == statuses
    assert _suite_value_set("kpi_values.yml", "status") == statuses
    sql = (REPO / "dbt_project" / "models" / "marts" / "kpi_values.sql").read_text()
    block = re.search(r"case\n((?:\s+(?:when|else)[^\n]*\n)+)\s+end as status", sql)
    assert block, "kpi_values.sql decides status in one case expression"
    assert set(re.findall(r"(?:then|else) '([a-z_]+)'", block.group(1))) == statuses


def test_the_tree_shows_every_kpi_status_but_an_unreliable_one() -> None:
    """kpi_tree.latest_status is the status of the latest reliable value (so never
    not_reliable) or no_data; its roll-up is a scored status or no_data."""
    tree = _model_columns(REPO / "dbt_project" / "models" / "marts" / "_framework.yml", "kpi_tree")
    latest = set(vocabulary.KPI_STATUSES) - {"not_reliable"}
    assert _accepted_values(tree["latest_status"]) == latest
    scored = {"on_track", "at_risk", "off_track"}
    assert _accepted_values(tree["rolled_up_status"]) == scored | {vocabulary.NO_DATA}
    sql = (REPO / "dbt_project" / "models" / "marts" / "kpi_tree.sql").read_text()
    block = re.search(r"case\n((?:\s+when[^\n]*\n)+)\s+end as rolled_up_status", sql)
    assert block, "kpi_tree.sql decides rolled_up_status in one case expression"
    assert set(re.findall(r"then '([a-z_]+)'", block.group(1))) == scored | {vocabulary.NO_DATA}


def test_kpi_values_time_grains_agree_everywhere() -> None:
    grains = set(vocabulary.TIME_GRAINS)
    assert _accepted_values(_model_columns(MARTS_YML, "kpi_values")["period_grain"]) == grains
    assert _suite_value_set("kpi_values.yml", "period_grain") == grains


# The demo's level names: a company declares its own (cxkpi.yml org_levels).
DEMO_LEVELS = ("hq", "region", "store", "advisor")


def test_no_shipped_model_macro_or_suite_names_an_org_level() -> None:
    """Org levels are declared per company: models and macros read var('org_levels'), the
    suites check against the org tree. A level name written into one of them would hold
    for the demo only."""
    levels = "|".join(DEMO_LEVELS)
    quoted = rf"'({levels})'|\b({levels})_id\b|value_set: \[[^]]*\b({levels})\b"
    hand_written = [
        path
        for folder in ("models", "macros")
        for path in (REPO / "dbt_project" / folder).rglob("*.sql")
        if "Generated by `cxkpi compile`" not in path.read_text(encoding="utf-8")
    ] + sorted((REPO / "expectations").glob("*.yml"))
    named = {
        str(path.relative_to(REPO))
        for path in hand_written
        if re.search(quoted, path.read_text(encoding="utf-8"))
    }
    assert named == set()


def test_the_compiled_grouping_sets_use_the_vocabulary() -> None:
    sql = (REPO / "dbt_project" / "models" / "kpis" / "int_kpi__values_base.sql").read_text()
    for grain in vocabulary.TIME_GRAINS:
        assert f"{grain}_start" in sql
    assert "org_level, org_unit_id" in sql  # every set is of one org unit
    for breakdown in vocabulary.BREAKDOWNS:
        assert f"by_all_{breakdown}s" in sql


# --- the columns analysts may use --------------------------------------------------------

_DUCKDB_TYPES = {
    NUMBER: {"INTEGER", "BIGINT", "DOUBLE", "DECIMAL", "HUGEINT", "FLOAT", "SMALLINT"},
    TEXT: {"VARCHAR"},
    BOOLEAN: {"BOOLEAN"},
    TIMESTAMP: {"TIMESTAMP", "TIMESTAMP WITH TIME ZONE"},
}


def test_kpi_source_columns_are_documented_on_their_models() -> None:
    for source in SOURCES.values():
        documented = set(_model_columns(INTERMEDIATE_YML, source.model))
        missing = set(source.columns) - documented
        assert not missing, f"{source.model}: {sorted(missing)} not in _intermediate.yml"


@pytest.mark.integration
def test_kpi_source_columns_exist_in_the_built_models_with_their_types(tmp_path: Path) -> None:
    """Build staging and intermediate on empty raw tables (views: seconds) and compare
    each source's declared columns with what the model really returns."""
    settings = make_settings(tmp_path)
    settings.warehouse_path.parent.mkdir(parents=True)
    con = duckdb.connect(str(settings.warehouse_path))
    try:
        loader.ensure_raw_schema(con)
    finally:
        con.close()
    outcome = dbt_runner.invoke(
        settings, ["run", "--select", "+" + " +".join(s.model for s in SOURCES.values())]
    )
    assert outcome.success
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        for source in SOURCES.values():
            actual = {
                name: kind.split("(")[0]
                for name, kind, *_ in con.execute(
                    f"describe intermediate.{source.model}"
                ).fetchall()
            }
            for column, logical in source.columns.items():
                assert column in actual, f"{source.model}.{column} does not exist"
                assert actual[column] in _DUCKDB_TYPES[logical], (
                    f"{source.model}.{column} is {actual[column]}, declared {logical}"
                )
    finally:
        con.close()


# --- the headline slice, the org roll-up and the KPI tree walk: one macro each ----------

MACROS = REPO / "dbt_project" / "macros"
SRC = REPO / "src" / "cxkpi"


def _sql_and_python_files() -> list[Path]:
    """Every file of the project that could spell SQL: models, macros, Python, package SQL."""
    return sorted(
        [*(REPO / "dbt_project" / "models").rglob("*.sql"), *MACROS.rglob("*.sql")]
        + [*SRC.rglob("*.py"), *(SRC / "sql").glob("*.sql")]
    )


def _spelled_in(pattern: str) -> set[str]:
    return {
        str(path.relative_to(REPO))
        for path in _sql_and_python_files()
        if re.search(pattern, path.read_text(encoding="utf-8"))
    }


def test_the_headline_slice_is_one_row_per_kpi_and_month_at_hq_without_breakdown() -> None:
    """The macro (rendered as Python renders it) over every grain, level and breakdown."""
    con = duckdb.connect()
    values = {
        "period_grain": vocabulary.TIME_GRAINS,
        "org_level": DEMO_LEVELS,
        **{breakdown: ("all", "web") for breakdown in vocabulary.BREAKDOWNS},
    }
    con.execute(
        "create table kpi_values as select * from "
        + " cross join ".join(f"(select unnest({list(v)!r}) as {c})" for c, v in values.items())
    )
    # the depth of each level, as kpi_values carries it (1: the top)
    con.execute(
        "create table published as select *, list_position("
        f"{list(DEMO_LEVELS)!r}, org_level) as org_level_depth from kpi_values"
    )
    all_breakdowns = ("all",) * len(vocabulary.BREAKDOWNS)
    for level in DEMO_LEVELS:
        where = package_macros.call("headline_slice.sql", f"headline_slice({level!r})")
        assert con.execute(
            f"select * exclude (org_level_depth) from published where {where}"
        ).fetchall() == [("month", level, *all_breakdowns)]
    headline = con.execute(
        f"select * exclude (org_level_depth) from published where {package_macros.headline_slice()}"
    )
    assert headline.fetchall() == [("month", "hq", *all_breakdowns)]


def test_no_model_or_module_spells_the_headline_slice_but_its_macro() -> None:
    """The marts, the KPI summary and the gate's kpi_movement check call headline_slice();
    a copy of its conjuncts anywhere else is a second definition. ("channel = 'all' or
    ..." is kpi_values' own test of a declared breakdown, not the slice.)"""
    the_macro = {"src/cxkpi/sql/headline_slice.sql", "dbt_project/macros/cxkpi/headline_slice.sql"}
    assert _spelled_in(r"period_grain\s*=\s*'month'") == the_macro
    breakdowns = "|".join(vocabulary.BREAKDOWNS)
    assert _spelled_in(rf"\b({breakdowns})\s*=\s*'all'(?!\s+or\b)") == set()


def test_the_headline_readers_call_the_macro() -> None:
    callers = _spelled_in(r"headline_slice\(")
    for model in ("kpi_tree", "kpi_maturity", "kpi_benchmark_position"):
        assert f"dbt_project/models/marts/{model}.sql" in callers
    for model in ("roadmap", "fct_kpi_trends", "fct_kpi_effectiveness"):
        assert f"dbt_project/models/diagnostics/{model}.sql" in callers
    assert {"src/cxkpi/pipeline.py", "src/cxkpi/gate/checks/kpi_movement.py"} <= callers


def _placed(call: str, facts_sql: str) -> list[tuple]:
    """place_at_org_levels rendered (ref and var stubbed: levels hq > region > store) and
    run over ``facts``."""
    macros = (MACROS / "place_at_org_levels.sql").read_text(encoding="utf-8")
    sql = package_macros.render_call(
        macros, call, ref=lambda model: model, var={"org_levels": ["hq", "region", "store"]}.get
    )
    con = duckdb.connect()
    con.execute(
        "create table int_org_units as select * from (values"
        " ('H', 1, 'H', null, null), ('R1', 2, 'H', 'R1', null), ('S1', 3, 'H', 'R1', 'S1'),"
        " ('S2', 3, 'H', 'R1', 'S2'))"
        " as t(org_unit_id, level_depth, hq_id, region_id, store_id)"
    )
    con.execute(f"create table facts as {facts_sql}")
    return con.execute(
        f"select org_level, org_unit_id, fact_id from ({sql}) order by all"
    ).fetchall()


def test_the_org_roll_up_places_each_row_at_every_declared_level() -> None:
    """A row counts at its unit and every unit above it; a row of a region counts at the
    region and the top; a row without a unit (or of a unit not in the tree) at the top."""
    facts = (
        "select * from (values ('f1', 'S1'), ('f2', 'R1'), ('f3', null), ('f4', 'X9'))"
        " as t(fact_id, row_unit_id)"
    )
    assert _placed("place_at_org_levels('facts')", facts) == [
        ("hq", "H", "f1"),
        ("hq", "H", "f2"),
        ("hq", "H", "f3"),
        ("hq", "H", "f4"),
        ("region", "R1", "f1"),
        ("region", "R1", "f2"),
        ("store", "S1", "f1"),
    ]


def test_a_row_listed_once_per_unit_counts_once_where_its_units_meet() -> None:
    """multi_unit_orders: each_line lists a fact once per unit: with distinct it counts at
    each store, and once at their common region and the top."""
    facts = "select * from (values ('f1', 'S1'), ('f1', 'S2')) as t(fact_id, row_unit_id)"
    call = "place_at_org_levels('facts', columns=['fact_id'], distinct=true)"
    assert _placed(call, facts) == [
        ("hq", "H", "f1"),
        ("region", "R1", "f1"),
        ("store", "S1", "f1"),
        ("store", "S2", "f1"),
    ]


def test_no_model_spells_the_org_roll_up_but_its_macro() -> None:
    """A fact placed at an org level by hand ('store' as org_level ... union all ...) is a
    second copy of the roll-up; the roll-up marts call place_at_org_levels."""
    levels = "|".join(DEMO_LEVELS)
    assert _spelled_in(rf"'({levels}|{{{{ level }}}}|{{{{ levels\[0\] }}}})'\s+as\s+org_level") == {
        "dbt_project/macros/place_at_org_levels.sql"
    }
    assert _spelled_in(r"place_at_org_levels\('") == {
        "dbt_project/models/marts/fct_experience_by_delivery.sql",
        "dbt_project/models/marts/fct_outcomes_by_nps_category.sql",
        "dbt_project/models/marts/fct_ticket_experience.sql",
        "dbt_project/models/marts/fct_case_backlog.sql",
        "dbt_project/models/marts/fct_outer_loop.sql",
        "dbt_project/models/diagnostics/int_factor_gap_inputs.sql",
    }
    assert _spelled_in(r"place_at_org_levels\(\s+'verbatims'") == {
        "dbt_project/models/marts/fct_topic_trends.sql",
    }
    # the KPI values place their (summed, deduplicated or per-observation) rows with it too
    for rows in ("additive_rows", "distinct_rows", "percentile_rows"):
        assert _spelled_in(rf"place_at_org_levels\(\s+'{rows}'") == {
            "dbt_project/models/kpis/int_kpi__values_base.sql",
        }


def test_the_kpi_tree_walk_down_finds_every_descendant_and_survives_a_cycle() -> None:
    macros = (MACROS / "kpi_descendants.sql").read_text(encoding="utf-8")
    cte = package_macros.render_call(macros, "kpi_descendants('edges')")
    con = duckdb.connect()
    con.execute(
        "create table edges as select * from (values ('g', 'a'), ('a', 'b'), ('b', 'a'))"
        " as t(parent_id, child_id)"
    )
    pairs = con.execute(f"with recursive {cte} select * from descendants order by all")
    assert pairs.fetchall() == [
        ("a", "a"),
        ("a", "b"),
        ("b", "a"),
        ("b", "b"),
        ("g", "a"),
        ("g", "b"),
    ]


def test_no_model_walks_the_kpi_tree_down_but_its_macro() -> None:
    """(int_org_units walks the org tree up: another tree.)"""
    assert _spelled_in(r"\bdescendants\s+as\s*\(|\bas\s+ancestor_id\b") == {
        "dbt_project/macros/kpi_descendants.sql",
        "dbt_project/models/intermediate/int_org_units.sql",
    }
    assert _spelled_in(r"kpi_descendants\('") == {
        "dbt_project/models/marts/kpi_tree.sql",
        "dbt_project/models/marts/kpi_alignment_report.sql",
        "dbt_project/models/intermediate/int_kpi__data_status.sql",
    }


RETIRED_NAMES = {
    # each meant a second thing next to a word we keep (docs/data-engineer.md, "Words
    # with one meaning each")
    "cxkpi.analysis": "the Python package is cxkpi.methods",
    "models/analysis": "the dbt folder is models/diagnostics",
    "driver_importance": "a factor's derived importance is factor_importance",
    "DriverImportance": "FactorImportance",
    "nps_drivers": "nps_factors",
}


def test_retired_names_do_not_come_back() -> None:
    tracked = [
        p
        for folder in ("src", "dags", "dbt_project", "expectations", "docs", "bench", "tests")
        for p in (REPO / folder).rglob("*")
        if p.suffix in {".py", ".sql", ".yml", ".md"} and "target" not in p.parts
    ] + [REPO / "README.md"]
    this_file = Path(__file__).resolve()
    for path in tracked:
        if path.resolve() == this_file:
            continue
        text = path.read_text(encoding="utf-8")
        for name, instead in RETIRED_NAMES.items():
            assert name not in text, f"{path.relative_to(REPO)} says {name}: {instead}"
    assert not (REPO / "dbt_project" / "analyses").exists()
