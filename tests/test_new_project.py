"""`cxkpi init`: a new company project from the starter shipped in the package, in an
empty folder only; it validates as written, and a survey export is all it needs for a
first published CSAT."""

from __future__ import annotations

import csv
import filecmp
import re
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path

import duckdb
import pytest
from conftest import REPO

from cxkpi import kpi_spec, new_project, packs
from cxkpi.cli import main
from cxkpi.config import KNOWN_KEYS, load_settings
from cxkpi.errors import CxkpiError
from cxkpi.sources import check_sources, load_sources

TEMPLATES = ("deliveries", "factor_ratings", "orders", "org_units", "survey_responses", "tickets")


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def test_init_writes_a_project_that_validates(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "acme"
    assert main(["init", str(folder), "--packs", "ecommerce"]) == 0
    out = capsys.readouterr().out
    assert (
        f"created {folder}: packs core, ecommerce (not chosen: retail, support, loop); 28 KPIs "
        "(1 goals, 6 factors) compiled into its dbt project"
    ) in out
    assert out.endswith((folder / "NEXT_STEPS.md").read_text(encoding="utf-8"))

    files = _files(folder)
    assert {"cxkpi.yml", "NEXT_STEPS.md", "kpi_definitions/kpi.schema.json"} <= files
    assert {f"sources/{name}.yml.example" for name in TEMPLATES} == {
        f for f in files if f.startswith("sources/")
    }
    assert {p.name for p in (folder / "kpi_definitions").iterdir() if p.is_dir()} == {
        "core",
        "ecommerce",
    }
    assert not filecmp.dircmp(folder / "expectations", REPO / "expectations").diff_files
    assert _files(folder / "expectations") == _files(REPO / "expectations")
    assert list((folder / "landing").iterdir()) == []
    assert not (folder / "dbt_project" / "target").exists()
    # its own dbt project, compiled for its own catalog: no models of the packs not chosen
    kpi_models = {p.name for p in (folder / "dbt_project" / "models" / "kpis").iterdir()}
    assert "int_kpi_obs__orders.sql" in kpi_models
    assert "int_kpi_obs__tickets.sql" not in kpi_models
    definitions = (folder / "dbt_project/models/kpis/int_kpi__definitions.sql").read_text()
    assert "'kpi_definitions/ecommerce/goals/retain_active_customers.yml:" in definitions
    assert "'satisfaction_ranking'" not in definitions

    settings = load_settings(folder / "cxkpi.yml")
    for key in ("landing_dir", "sources_dir", "kpi_definitions_dir", "dbt_project_dir"):
        assert getattr(settings, key).is_relative_to(folder), key

    assert main(["--config", str(folder / "cxkpi.yml"), "validate"]) == 0
    out = capsys.readouterr().out
    assert "ok    kpi definitions: 1 goals, 27 KPIs, 6 factors, 0 problems" in out
    assert "links into packs not chosen: retail" in out
    assert "ok    sources: 0 source declarations, 0 problems (none yet" in out
    suites = len(list((REPO / "expectations").glob("*.yml")))
    assert f"ok    expectations: {suites} suites" in out


def test_core_is_always_there_and_only_the_packs_chosen(tmp_path: Path) -> None:
    alone = new_project.init_project(tmp_path / "survey_only", [])
    assert alone.packs == ("core",)
    assert alone.compiled["goals"] == 0
    assert [p.name for p in (alone.folder / "kpi_definitions").iterdir() if p.is_dir()] == ["core"]
    every = new_project.init_project(tmp_path / "all", ["support", "retail", "ecommerce", "loop"])
    assert every.packs == tuple(packs.PACKS)
    # every pack together is the demo's catalog, compiled to the demo's models
    ours = every.folder / "dbt_project" / "models" / "kpis"
    demo = REPO / "dbt_project" / "models" / "kpis"
    assert {p.name for p in ours.iterdir()} == {p.name for p in demo.iterdir()}
    # ...but for the org levels (a new project has declared none yet: one HQ) and the
    # case rules (a new project has none yet: the demo's name its stores and advisors)
    by_project = {
        "int_kpi__org_levels.sql",
        "_org_marts.yml",
        "_kpis.yml",
        "int_case__rules.sql",
        "int_case__candidates.sql",
    }
    for model in ours.iterdir():
        if model.name not in by_project:
            assert model.read_text() == (demo / model.name).read_text(), model.name
    assert "where 1 = 0" in (ours / "int_case__candidates.sql").read_text()
    levels = (ours / "int_kpi__org_levels.sql").read_text()
    assert "'hq', 1)" in levels and "'store'" not in levels and "'region'" not in levels


@pytest.mark.parametrize("content", ["file", "hidden file", "folder"])
def test_init_refuses_a_folder_that_is_not_empty(tmp_path: Path, content: str, capsys) -> None:
    folder = tmp_path / "taken"
    folder.mkdir()
    if content == "file":
        (folder / "cxkpi.yml").write_text("landing_dir: elsewhere\n")
    elif content == "hidden file":
        (folder / ".git").write_text("gitdir: ../x\n")
    else:
        (folder / "kpi_definitions").mkdir()
    before = {p: p.stat().st_mtime_ns for p in folder.rglob("*")}
    assert main(["init", str(folder)]) == 1
    assert "is not empty" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*")} == before


def test_init_takes_an_empty_folder_and_refuses_a_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert new_project.init_project(empty).folder == empty
    assert (empty / "cxkpi.yml").is_file()
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    with pytest.raises(CxkpiError, match="is a file"):
        new_project.init_project(a_file)


def test_an_unknown_pack_creates_nothing(tmp_path: Path, capsys) -> None:
    assert main(["init", str(tmp_path / "p"), "--packs", "core,shops"]) == 1
    assert "unknown pack(s) shops; the packs are: core, retail, ecommerce, support" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize("existed", [False, True])
def test_a_failed_init_leaves_the_folder_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, existed: bool
) -> None:
    folder = tmp_path / "p"
    if existed:
        folder.mkdir()

    def fail(folder: Path) -> dict:
        raise OSError("disk full")

    monkeypatch.setattr(new_project, "_compile", fail)
    with pytest.raises(OSError, match="disk full"):
        new_project.init_project(folder, ["support"])
    assert folder.exists() == existed
    assert not existed or list(folder.iterdir()) == []


def test_source_templates_are_valid_once_renamed_and_inactive_until(tmp_path: Path) -> None:
    folder = new_project.init_project(tmp_path / "p").folder
    settings = load_settings(folder / "cxkpi.yml")
    assert check_sources(settings.sources_dir) == ([], [])
    with pytest.raises(CxkpiError, match="no source declarations"):
        load_sources(settings.sources_dir)  # a night needs one
    for template in sorted(settings.sources_dir.glob("*.yml.example")):
        template.rename(template.with_suffix(""))
    specs, problems = check_sources(settings.sources_dir, settings.dbt_project_dir)
    assert problems == []
    assert sorted(s.entity for s in specs) == sorted(TEMPLATES)
    formats = {s.entity: s.format for s in specs}
    assert (formats["survey_responses"], formats["tickets"], formats["orders"]) == (
        "csv",
        "jsonl",
        "parquet",
    )


def test_the_starter_is_the_demo_project_s_folders() -> None:
    """In a checkout the starter's packs, suites and dbt project are the demo's folders
    (one copy of each file): what a new project copies is what the demo runs."""
    starter = resources.files("cxkpi").joinpath(packs.STARTER)
    for name in ("kpi_definitions", "expectations", "dbt_project"):
        with resources.as_file(starter.joinpath(name)) as path:
            assert path.resolve() == (REPO / name).resolve(), name


def test_the_starter_settings_name_every_setting() -> None:
    """Each setting a company may change is in the new project's cxkpi.yml, set or
    commented: the file is where a company learns what it can set."""
    text = resources.files("cxkpi").joinpath("starter", "cxkpi.yml").read_text()
    written = set(re.findall(r"^#? ?([a-z_]+):", text, flags=re.MULTILINE))
    internal = {"dbt_target_dir", "max_record_bytes"}  # defaults no project needs to see
    internal.add("dbt_target")  # follows the warehouse setting
    assert {*KNOWN_KEYS, "warehouse"} - internal <= written


# --- end to end: init, one survey export, one night --------------------------------------

# A month of made-up answers to the satisfaction question (1-5): 36 responses.
CSAT_ANSWERS = [5, 4, 4, 3, 5, 2, 4, 5, 1, 4, 3, 5, 4, 4, 2, 5, 3, 4]
CSAT_ANSWERS = CSAT_ANSWERS + CSAT_ANSWERS[::-1]
SURVEY_SOURCE = """\
name: web_survey
entity: survey_responses
path: surveys/*.csv
format: csv
columns:
  response_id: ResponseId
  responded_at: RecordedDate
  csat: Q2
  channel: {const: web}
timestamps: {format: "%Y-%m-%d %H:%M:%S", timezone: UTC}
"""


def _switch_off_all_kpis_but_csat(kpi_definitions: Path) -> list[str]:
    """What a company with only a satisfaction question does: `enabled: false` in every
    KPI it has no data for (the gate expects a value of every enabled KPI)."""
    catalog = kpi_spec.load_catalog([kpi_definitions])
    switched = sorted(d.id for d in catalog.kpis if d.id != "csat")
    for file in kpi_definitions.rglob("*.yml"):
        text = file.read_text(encoding="utf-8")
        for kpi_id in switched:
            text = text.replace(f"\nid: {kpi_id}\n", f"\nid: {kpi_id}\nenabled: false\n")
        file.write_text(text, encoding="utf-8")
    assert [d.id for d in kpi_spec.load_catalog([kpi_definitions]).kpis] == ["csat"]
    return switched


@pytest.mark.integration
def test_a_new_project_publishes_csat_from_one_survey_export(tmp_path: Path) -> None:
    from cxkpi import pipeline

    folder = new_project.init_project(tmp_path / "acme").folder
    settings = load_settings(folder / "cxkpi.yml")
    switched = _switch_off_all_kpis_but_csat(settings.kpi_definitions_dir)
    assert "nps" in switched and "csat" not in switched
    (settings.sources_dir / "web_survey.yml").write_text(SURVEY_SOURCE, encoding="utf-8")
    export = settings.landing_dir / "surveys" / "responses_2026-09.csv"
    export.parent.mkdir()
    first = datetime(2026, 9, 1, 9, 30)
    with export.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ResponseId", "RecordedDate", "Q2"])
        for number, answer in enumerate(CSAT_ANSWERS):
            answered = first + timedelta(hours=19 * number)
            writer.writerow([f"R_{number:04d}", f"{answered:%Y-%m-%d %H:%M:%S}", answer])
    assert main(["--config", str(folder / "cxkpi.yml"), "validate"]) == 0

    # CSAT top-2-box by hand: 4s and 5s among all answers, in percent
    assert len(CSAT_ANSWERS) == 36 and answered.month == 9
    top_two = sum(answer >= 4 for answer in CSAT_ANSWERS)
    assert top_two == 24
    expected = 100 * 24 / 36

    pipeline.run_all(settings, pipeline.RunContext.new(logical_date="2026-09-30"))
    with duckdb.connect(str(settings.published_path), read_only=True) as con:
        value, n = con.execute(
            """select value, n from kpi_values
               where kpi_id = 'csat' and org_level = 'hq' and period_grain = 'month'
                 and period_start = date '2026-09-01' and channel = 'all'
                 and segment = 'all' and touchpoint = 'all' and topic = 'all'"""
        ).fetchone()
    assert n == 36
    assert value == pytest.approx(expected)
