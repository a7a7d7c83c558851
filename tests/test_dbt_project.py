"""The dbt project itself: generated sources are current, best-practice rules hold."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO, make_settings

from cxkpi import dbt_runner, dbt_sources, kpi_compile, kpi_spec, package_macros, pipeline
from cxkpi.config import load_settings
from cxkpi.errors import ConfigError

RULES = REPO.parent / "shared" / "tools" / "dbt_project_rules.py"
REPO_LEVELS = load_settings(REPO / "cxkpi.yml").org_levels


def test_committed_sources_file_matches_the_canonical_model() -> None:
    committed = (REPO / "dbt_project" / dbt_sources.SOURCES_FILE).read_text(encoding="utf-8")
    vocabularies = load_settings(REPO / "cxkpi.yml").vocabularies
    assert committed == dbt_sources.render(vocabularies), "run `cxkpi compile` and commit it"


def test_the_sources_file_tests_the_configured_channels_and_touchpoints(tmp_path: Path) -> None:
    """accepted_values follow cxkpi.yml; a DAG's prepare refuses a file compiled before the
    channels changed (its dbt test would fail every row of the new channel)."""
    dbt_dir = shutil.copytree(
        REPO / "dbt_project", tmp_path / "dbt_project", ignore=shutil.ignore_patterns("target")
    )
    channels = ["store", "web", "wechat_mini_program"]
    settings = make_settings(
        tmp_path, dbt_project_dir=dbt_dir, channels=channels, touchpoints="checkout,delivery"
    )
    rendered = yaml.safe_load(dbt_sources.render(settings.vocabularies))
    accepted = {
        (table["name"], column["name"]): test["accepted_values"]["arguments"]["values"]
        for source in rendered["sources"]
        for table in source["tables"]
        for column in table["columns"]
        for test in column.get("data_tests", [])
        if isinstance(test, dict) and "accepted_values" in test
    }
    assert accepted[("survey_responses", "channel")] == channels
    assert accepted[("orders", "channel")] == accepted[("tickets", "channel")] == channels
    assert accepted[("survey_responses", "touchpoint")] == ["checkout", "delivery"]
    with pytest.raises(ConfigError, match="differs from what canonical.py and cxkpi.yml"):
        pipeline.compile_catalog(settings, write=False)
    dbt_sources.write(dbt_dir, settings.vocabularies)
    pipeline.compile_catalog(settings, write=False)


@pytest.mark.integration
def test_project_follows_the_dbt_project_evaluator_rules(tmp_path: Path) -> None:
    if not RULES.exists():
        pytest.skip(f"{RULES} is not beside this checkout")
    settings = make_settings(tmp_path, dbt_target_dir=tmp_path / "project" / "target")
    dbt_runner.parse(settings)
    done = subprocess.run(
        [sys.executable, str(RULES), str(tmp_path / "project")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout
    assert "0 problems" in done.stdout


@pytest.mark.integration
def test_published_models_are_tagged_and_contracted(tmp_path: Path) -> None:
    import json

    settings = make_settings(tmp_path)
    dbt_runner.parse(settings)
    names = {m["name"] for m in dbt_runner.published_models(settings)}
    assert {
        "kpi_values",
        "kpi_catalog",
        "dim_org_units",
        "kpi_tree",
        "roadmap",
        "fct_factor_gaps",
        "kpi_benchmark_position",
    } <= names
    manifest = json.loads(settings.dbt_manifest_path.read_text())
    for node in manifest["nodes"].values():
        if node["resource_type"] == "model" and "published" in node.get("tags", []):
            assert node["config"]["contract"]["enforced"], node["name"]
            assert all(c.get("data_type") for c in node["columns"].values()), node["name"]
        if node["resource_type"] == "model" and node["config"]["contract"]["enforced"]:
            types = {c.get("data_type") for c in node["columns"].values()}
            assert types <= PORTABLE_CONTRACT_TYPES, (node["name"], types - PORTABLE_CONTRACT_TYPES)
            if node["config"]["materialized"] == "incremental":
                # later nights compare the SQL's types with the table's (on PostgreSQL a
                # string expression is text, the contract's varchar is not): cast to them
                assert "contract_columns(" in node["raw_code"], node["name"]


# Contract types are standard names that mean the same on DuckDB and PostgreSQL (and pass
# dbt's type aliasing unchanged). Not dbt's type macros: a properties file is rendered
# without macros ("'dbt' is undefined"), and `dbt.type_float()` is `float`, 4 bytes on
# DuckDB but 8 on PostgreSQL. `double` alone is DuckDB's; PostgreSQL has no such type.
PORTABLE_CONTRACT_TYPES = {
    "bigint", "boolean", "date", "double precision", "integer", "timestamp", "varchar",
}  # fmt: skip


def test_committed_kpi_models_match_the_catalog() -> None:
    """The generated KPI, topic and case models in the repository are what `cxkpi compile`
    produces now: the Airflow DAG renders its tasks from them, so they must never lag the
    YAML."""
    from cxkpi.case_rules import load_case_rules
    from cxkpi.topics import load_topics

    catalog = kpi_spec.load_catalog([REPO / "kpi_definitions"], org_levels=REPO_LEVELS)
    assert not catalog.problems
    topics = load_topics([REPO / "topics"])
    rules = load_case_rules([REPO / "case_rules"], REPO_LEVELS, [t.topic_id for t in topics.topics])
    rendered = kpi_compile.render(catalog, REPO, topics, rules)
    directory = REPO / "dbt_project" / kpi_compile.GENERATED_DIR
    on_disk = {p.name for p in directory.iterdir() if p.suffix in (".sql", ".yml")}
    assert on_disk == set(rendered), "run `cxkpi compile` and commit dbt_project/models/kpis"
    for name, content in rendered.items():
        assert (directory / name).read_text(encoding="utf-8") == content, name


def test_committed_macro_copies_match_the_package() -> None:
    """The dbt project's macros/cxkpi/ is the package's cxkpi/sql/ (one definition, used by
    `cxkpi gap` and the fct_factor_gaps mart alike) under a "generated" header."""
    assert package_macros.stale(REPO / "dbt_project") == [], (
        "run `cxkpi compile` and commit dbt_project/macros/cxkpi"
    )
    directory = REPO / "dbt_project" / package_macros.GENERATED_DIR
    assert sorted(p.name for p in directory.glob("*.sql")) == sorted(package_macros.MACROS)
    for name in package_macros.MACROS:
        assert not (REPO / "dbt_project" / "macros" / name).exists(), f"a second {name}"


def test_a_stale_macro_copy_is_refused_then_rewritten(tmp_path: Path) -> None:
    dbt_dir = shutil.copytree(
        REPO / "dbt_project", tmp_path / "dbt_project", ignore=shutil.ignore_patterns("target")
    )
    copy = dbt_dir / package_macros.GENERATED_DIR / "factor_gap_steps.sql"
    copy.write_text(copy.read_text(encoding="utf-8").replace("gap_rank", "rank"))
    (copy.parent / "retired.sql").write_text("{% macro retired() %}1{% endmacro %}\n")
    settings = make_settings(tmp_path, dbt_project_dir=dbt_dir)
    with pytest.raises(ConfigError, match="factor_gap_steps.sql"):
        pipeline.compile_catalog(settings, write=False)
    assert package_macros.write(dbt_dir) == ["factor_gap_steps.sql", "retired.sql"]
    assert package_macros.stale(dbt_dir) == []
    assert not (copy.parent / "retired.sql").exists()
    pipeline.compile_catalog(settings, write=False)


def test_compilation_is_deterministic(tmp_path: Path) -> None:
    first = kpi_compile.render(
        kpi_spec.load_catalog([REPO / "kpi_definitions"], org_levels=REPO_LEVELS), REPO
    )
    shutil.copytree(REPO / "kpi_definitions", tmp_path / "kpi_definitions")
    again = kpi_compile.render(
        kpi_spec.load_catalog([tmp_path / "kpi_definitions"], org_levels=REPO_LEVELS), tmp_path
    )
    assert first == again


@pytest.mark.integration
def test_the_dbt_unit_tests_pass(demo_project) -> None:
    """dbt's unit tests check the project's SQL on fixtures; a night does not run them
    (dbt_runner.NIGHTLY_EXCLUDE, and the DAG's producer builds models and data tests only),
    the test suite does, on a copy of a built demo warehouse."""
    outcome = dbt_runner.invoke(demo_project, ["test", "--select", "test_type:unit"])
    unit_tests = [r for r in outcome.results if r["resource_type"] == "unit_test"]
    assert outcome.success, outcome.failures
    assert len(unit_tests) >= 13
    assert all(r["status"] == "pass" for r in unit_tests)


def _compiled_inline(settings, sql: str) -> str:
    from dbt.cli.main import dbtRunner

    project = str(settings.dbt_project_dir)
    with dbt_runner._environment(dbt_runner.dbt_env(settings)):
        result = dbtRunner().invoke(
            ["compile", "--quiet", "--inline", sql, "--project-dir", project,
             "--profiles-dir", project, "--target-path", str(settings.dbt_target_dir),
             "--vars", json.dumps(dbt_runner.dbt_vars(settings))]
        )  # fmt: skip
    assert result.success, result.exception
    return result.result.results[0].node.compiled_code


@pytest.mark.integration
def test_uniqueness_tests_find_exactly_the_duplicated_keys(demo_project) -> None:
    """dbt's `unique` (overridden on DuckDB) and unique_combination_of_columns group the
    keys' hashes first and then the exact keys among the suspects: the result is still
    every duplicated key with its count, nulls skipped by `unique` and grouped by the
    combination test, as dbt's own SQL gives."""
    import duckdb

    rows = (
        "(select * from (values ('a', 1, 'x'), ('a', 2, 'x'), ('b', 3, 'x'), (null, 4, 'y'),"
        " (null, 5, 'y'), ('c', 6, null), ('c', 7, null), ('c', 8, null)) as t(k, v, w))"
    )
    unique = _compiled_inline(demo_project, f'{{{{ test_unique("{rows}", "k") }}}}')
    combination = _compiled_inline(
        demo_project,
        f'{{{{ test_unique_combination_of_columns("{rows}", ["k", "w"]) }}}}',
    )
    assert "hash(" in unique and "hash(" in combination  # the two-step query ran
    con = duckdb.connect()
    assert sorted(con.execute(unique).fetchall()) == [("a", 2), ("c", 3)]
    assert sorted(con.execute(combination).fetchall(), key=str) == sorted(
        [("a", "x", 2), ("c", None, 3), (None, "y", 2)], key=str
    )
