"""The KPI type registry (kpi_types) and the places that read it.

Each test fails when one place forgets a type: every type validates, compiles to
observation SQL (or a derived step), is exported to the Semantic Layer, is offered by the
scaffold and is in the docs' types table. The compiler's templates ship with the package,
its fact tables agree with their dbt properties, and no SQL parses a list back.
"""

from __future__ import annotations

import ast
import re
from importlib import resources
from pathlib import Path

import pytest
import yaml
from conftest import REPO

from cxkpi import kpi_compile, kpi_spec, kpi_types, scaffold
from cxkpi.kpi_sources import SOURCES

# One working definition per type, on survey_responses (derived: over example_mean).
EXAMPLES = {
    "nps": {"measure": "nps"},
    "top_box": {"measure": "csat"},
    "bottom_box": {"measure": "ces", "scale": [1, 7], "box": 3},
    "mean": {"measure": "csat"},
    "ratio": {"numerator": "delivery_was_late", "denominator": "has_delivery"},
    "share": {"condition": "repurchased_within_90d"},
    "count": {},
    "count_distinct": {"measure": "customer_id"},
    "sum": {"measure": "order_amount"},
    "percentile": {"measure": "order_amount", "percentile": 0.9},
    "derived": {"formula": "example_mean * 2"},
}


def _write_examples(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for type_name, fields in EXAMPLES.items():
        document = {"id": f"example_{type_name}", "type": type_name, **fields}
        if type_name != "derived":
            document["source"] = "survey_responses"
        (folder / f"{type_name}.yml").write_text(yaml.safe_dump(document), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> kpi_spec.Catalog:
    catalog = kpi_spec.load_catalog([_write_examples(tmp_path_factory.mktemp("types"))])
    assert [str(p) for p in catalog.problems] == []
    return catalog


def test_every_type_has_an_example() -> None:
    assert set(EXAMPLES) == set(kpi_types.TYPES)


@pytest.mark.parametrize("type_name", kpi_types.TYPES)
def test_every_type_compiles_and_is_exported(type_name: str, examples: kpi_spec.Catalog) -> None:
    files = kpi_compile.render(examples)
    kpi_id = f"example_{type_name}"
    if kpi_types.KPI_TYPES[type_name].observation is None:
        assert f"'{kpi_id}' as kpi_id" in files["int_kpi__values_derived.sql"]
    else:
        assert f"'{kpi_id}' as kpi_id" in files["int_kpi_obs__survey_responses.sql"]
    metrics = yaml.safe_load(files["_semantic.yml"])["metrics"]
    assert kpi_id in {m["name"] for m in metrics}


def test_observation_parts_follow_the_registry(examples: kpi_spec.Catalog) -> None:
    sql = kpi_compile.render(examples)["int_kpi_obs__survey_responses.sql"]
    assert "case when nps >= 9 then 1 when nps <= 6 then -1 else 0 end" in sql
    assert "case when csat >= 4 then 1 else 0 end" in sql  # top 2 of 1-5
    assert "case when ces <= 3 then 1 else 0 end" in sql  # bottom 3 of 1-7
    assert "case when delivery_was_late then 1 else 0 end" in sql
    assert "cast(customer_id as {{ dbt.type_string() }}) as distinct_key" in sql


@pytest.mark.parametrize(
    ("type_name", "field"),
    [(t.name, f) for t in kpi_types.KPI_TYPES.values() for f in t.needs],
)
def test_a_needed_field_left_out_is_a_problem(type_name: str, field: str, tmp_path: Path) -> None:
    document = {"id": "broken", "type": type_name, **EXAMPLES[type_name]}
    del document[field]
    if type_name != "derived":
        document["source"] = "survey_responses"
    (tmp_path / "broken.yml").write_text(yaml.safe_dump(document), encoding="utf-8")
    problems = kpi_spec.load_catalog([tmp_path]).problems
    assert any(f"type {type_name} needs '{field}'" in p.message for p in problems)


@pytest.mark.parametrize(
    ("type_name", "option"),
    [(t, o) for t in kpi_types.TYPES for o in kpi_types.TYPE_OPTIONS],
)
def test_a_type_option_applies_only_to_its_types(
    type_name: str, option: str, tmp_path: Path
) -> None:
    if option in kpi_types.KPI_TYPES[type_name].options or type_name == "derived":
        return
    value = {"scale": [1, 5], "box": 2, "percentile": 0.5}[option]
    document = {"id": "odd", "type": type_name, "source": "survey_responses"}
    document |= {**EXAMPLES[type_name], option: value}
    (tmp_path / "odd.yml").write_text(yaml.safe_dump(document), encoding="utf-8")
    problems = kpi_spec.load_catalog([tmp_path]).problems
    assert any(f"'{option}' does not apply to type {type_name}" in p.message for p in problems)


def test_defaults_come_from_the_registry(examples: kpi_spec.Catalog) -> None:
    for d in examples.kpis:
        kpi_type = kpi_types.KPI_TYPES[str(d.type)]
        assert (d.unit, d.aggregation, d.direction) == (
            kpi_type.unit,
            kpi_type.aggregation,
            kpi_type.direction,
        )
        assert d.multiplier == (100.0 if kpi_type.hundredfold else 1.0), d.id


def test_the_scaffold_offers_every_type_and_source(tmp_path: Path) -> None:
    text = scaffold.new_definition("kpi", "new_one", tmp_path).read_text(encoding="utf-8")
    offered = set(re.findall(r"\b[a-z_]+\b", text))
    assert set(kpi_types.TYPES) <= offered
    assert set(SOURCES) <= offered


def test_the_docs_types_table_is_the_registry() -> None:
    guide = (REPO / "docs" / "analysts.md").read_text(encoding="utf-8")
    assert kpi_types.docs_table() in guide, "paste kpi_types.docs_table() into docs/analysts.md"


# --- the compiler's templates and outputs -------------------------------------------------


def test_every_template_ships_with_the_package_and_is_used() -> None:
    shipped = {p.name for p in resources.files("cxkpi").joinpath("templates").iterdir()}
    source = (REPO / "src" / "cxkpi" / "kpi_compile.py").read_text(encoding="utf-8")
    used = set(re.findall(r'_render\(\s*"([a-z_]+\.(?:sql|yml))"', source))
    assert used <= shipped, "a template the compiler renders is not in cxkpi/templates/"
    assert shipped <= used, "a template in cxkpi/templates/ is not rendered"


def test_the_compiler_writes_no_long_sql_fstrings() -> None:
    """SQL lives in the templates: an f-string in the compiler spans a line or two."""
    tree = ast.parse((REPO / "src" / "cxkpi" / "kpi_compile.py").read_text(encoding="utf-8"))
    long = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.JoinedStr) and (node.end_lineno or 0) - node.lineno > 1
    ]
    assert long == []


def test_fact_tables_agree_with_their_dbt_properties() -> None:
    generated = REPO / "dbt_project" / "models" / "kpis"
    models = {
        m["name"]: [c["name"] for c in m.get("columns", [])]
        for m in yaml.safe_load((generated / "_kpis.yml").read_text(encoding="utf-8"))["models"]
    }
    for name, table in kpi_compile.FACT_TABLES.items():
        assert models[name] == [c for c, _ in table.columns], name
        sql = (generated / f"{name}.sql").read_text(encoding="utf-8")
        assert re.findall(r"\) as (\w+),?\n", sql) == [c for c, _ in table.columns], name


SQL_FILES = sorted(
    str(p.relative_to(REPO))
    for folder in (
        "dbt_project/models",
        "dbt_project/macros",
        "src/cxkpi/templates",
        "src/cxkpi/sql",
    )
    for p in (REPO / folder).rglob("*.sql")
)


@pytest.mark.parametrize("path", SQL_FILES)
def test_no_sql_parses_a_declared_list(path: str) -> None:
    """Grains, levels, breakdowns, parents and actions are rows to join (int_kpi__*), not
    lists or JSON to take apart: the display lists in kpi_catalog are for people."""
    sql = (REPO / path).read_text(encoding="utf-8")
    for parsing in ("like '%", "string_split", "split_part", "from_json", "json_", "position("):
        assert parsing not in sql, parsing


@pytest.mark.parametrize(
    "module",
    sorted(
        p.name
        for p in (REPO / "src" / "cxkpi").glob("*.py")
        if p.name.startswith("kpi_") or p.name == "scaffold.py"
    ),
)
def test_the_kpi_modules_stay_short(module: str) -> None:
    lines = (REPO / "src" / "cxkpi" / module).read_text(encoding="utf-8").count("\n")
    assert lines <= 420, f"{module} has {lines} lines: split it by concern"
