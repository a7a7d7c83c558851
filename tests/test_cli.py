"""The command line: clean configuration validates; problems are named, exit 1."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import REPO

from cxkpi.cli import main


def test_validate_passes_on_the_repository(capsys: pytest.CaptureFixture) -> None:
    assert main(["--config", str(REPO / "cxkpi.yml"), "validate"]) == 0
    out = capsys.readouterr().out
    assert "ok    sources: 8 source declarations" in out
    assert "ok    kpi definitions: 2 goals, 33 KPIs, 6 factors, 0 problems" in out


def _config_with_sources(tmp_path: Path, sources: Path) -> Path:
    """A copy of the repository's cxkpi.yml in ``tmp_path`` reading ``sources``."""
    config = tmp_path / "cxkpi.yml"
    config.write_text(
        (REPO / "cxkpi.yml")
        .read_text()
        .replace("sources_dir: sources", f"sources_dir: {sources}")
        .replace(
            "kpi_definitions_dir: kpi_definitions",
            f"kpi_definitions_dir: {REPO / 'kpi_definitions'}",
        )
        .replace("expectations_dir: expectations", f"expectations_dir: {REPO / 'expectations'}")
    )
    return config


def test_validate_names_a_broken_declaration(tmp_path: Path, capsys) -> None:
    sources = tmp_path / "sources"
    shutil.copytree(REPO / "sources", sources)
    broken = sources / "demo" / "orders.yml"
    broken.write_text(broken.read_text().replace("entity: orders", "entity: ordres"))
    config = _config_with_sources(tmp_path, sources)
    assert main(["--config", str(config), "validate"]) == 1
    out = capsys.readouterr().out
    assert f"{broken}:2:9: entity 'ordres' unknown" in out
    assert "error sources: 7 source declarations, 1 problems" in out


def test_validate_reports_every_hostile_declaration_with_its_place(tmp_path: Path, capsys) -> None:
    sources = tmp_path / "sources"
    sources.mkdir()
    for entry in sorted((REPO / "tests" / "source_corpus").glob("*.yml")):
        shutil.copy(entry, sources / entry.name)
    config = _config_with_sources(tmp_path, sources)
    assert main(["--config", str(config), "validate"]) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    entries = sorted(sources.glob("*.yml"))
    assert f"error sources: 0 source declarations, {len(entries)} problems" in captured.out
    for entry in entries:
        assert f"{entry}:" in captured.out, entry.name


def test_errors_print_without_traceback(tmp_path: Path, capsys) -> None:
    assert main(["--config", str(tmp_path / "missing.yml"), "summary"]) == 1
    assert "Traceback" not in capsys.readouterr().err


def test_run_refuses_a_dbt_target_the_pipeline_does_not_use(tmp_path: Path, capsys) -> None:
    code = main(["--config", str(REPO / "cxkpi.yml"), "run", "--target", "postgres",
                 "--published-dir", str(tmp_path / "published")])  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    assert "dbt_target 'postgres' is not supported" in err and "Traceback" not in err
    assert not (tmp_path / "published").exists()


def test_validate_notes_the_links_a_switched_off_kpi_changed(tmp_path, capsys) -> None:
    from cxkpi.cli import main

    (tmp_path / "a.yml").write_text(
        "kind: goal\nid: grow\n---\nid: loyalty\nparents: [grow]\nenabled: false\n"
        "type: nps\nsource: survey_responses\nmeasure: nps\n---\nid: csat\n"
        "parents: [loyalty]\ntype: top_box\nsource: survey_responses\nmeasure: csat\n",
        encoding="utf-8",
    )
    assert main(["validate", str(tmp_path / "a.yml")]) == 0
    out = capsys.readouterr().out
    assert "note: " in out and "csat: parent 'loyalty' is switched off; linked to grow" in out
    assert "1 goals, 1 KPIs, 0 factors, 0 problems, 1 switched off" in out


def test_validate_reads_each_landing_files_header(tmp_path: Path, capsys) -> None:
    """A renamed export column is named by validate, with the file, before a night runs;
    CSV headers, Parquet schemas and JSON-lines keys are all read."""
    from cxkpi import demo

    landing = tmp_path / "landing"
    demo.generate(landing, scale=0.02)
    config = _config_with_sources(tmp_path, REPO / "sources")
    config.write_text(config.read_text().replace("landing_dir: landing", f"landing_dir: {landing}"))
    assert main(["--config", str(config), "validate"]) == 0
    out = capsys.readouterr().out
    formats = {p.suffix for p in landing.rglob("*") if p.is_file()}
    assert {".csv", ".parquet", ".jsonl"} <= formats
    assert "ok    landing files: " in out and "headers checked, 0 problems" in out

    [export] = sorted(landing.rglob("*.csv"))[:1]
    lines = export.read_text(encoding="utf-8").split("\n", 1)
    first_column = lines[0].split(",")[0]
    export.write_text(f"Renamed{lines[0][len(first_column) :]}\n{lines[1]}", encoding="utf-8")
    assert main(["--config", str(config), "validate"]) == 1
    out = capsys.readouterr().out
    [problem] = [line for line in out.splitlines() if "lacks mapped column" in line]
    assert str(export.relative_to(landing)) in problem and repr(first_column) in problem
    assert "error landing files: " in out and "1 problems" in out
