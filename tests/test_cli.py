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
    assert "ok    sources: 9 source declarations" in out
    assert "ok    kpi definitions: 2 goals, 44 KPIs, 6 factors, 0 problems" in out


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
    assert "error sources: 8 source declarations, 1 problems" in out


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


SURVEY_DECLARATION = """name: one_channel_survey
entity: survey_responses
path: q/*.csv
csv: {header_rows: 3}
columns:
  response_id: ResponseId
  responded_at: RecordedDate
  nps: Q1_NPS
  comment: {expr: "concat_ws(' - ', Q2_Title, Q2_Text)"}
  channel: {const: wechat_mini_program}
"""
QUALTRICS_EXPORT = (
    "ResponseId,RecordedDate,Q1_NPS,Q2_Title,Q2_Text\n"
    'Response ID,Recorded Date,"How likely are you to recommend us?",Title,"Anything\nelse?"\n'
    '"{""ImportId"":""_recordId""}",x,"{""ImportId"":""QID1""}",y,z\n'
    "R_1,2026-07-01 10:00:00,9,Fine,Really\n"
)


def _project_with_survey(tmp_path: Path, config_lines: str = "") -> tuple[Path, Path]:
    """A project reading only SURVEY_DECLARATION, with a Qualtrics export in its landing."""
    sources = tmp_path / "sources"
    sources.mkdir()
    declaration = sources / "survey.yml"
    declaration.write_text(SURVEY_DECLARATION, encoding="utf-8")
    landing = tmp_path / "landing"
    (landing / "q").mkdir(parents=True)
    (landing / "q" / "export.csv").write_text(QUALTRICS_EXPORT, encoding="utf-8")
    config = _config_with_sources(tmp_path, sources)
    config.write_text(
        config.read_text().replace("landing_dir: landing", f"landing_dir: {landing}") + config_lines
    )
    return config, declaration


def test_validate_checks_a_constant_against_the_configured_channels(tmp_path: Path, capsys) -> None:
    """Before, a constant outside the channels passed validate and every row was rejected
    at night."""
    config, declaration = _project_with_survey(tmp_path)
    assert main(["--config", str(config), "validate"]) == 1
    out = capsys.readouterr().out
    assert (
        f"{declaration}:10:12: columns.channel: const 'wechat_mini_program' would reject every "
        "row at load (channel: 'wechat_mini_program' is not one of store, web, app, "
        "call_centre, delivery, support); if 'wechat_mini_program' is one of yours, add it to "
        "channels in cxkpi.yml"
    ) in out
    config.write_text(
        config.read_text() + "channels: [store, web, app, call_centre, wechat_mini_program]\n"
    )
    assert main(["--config", str(config), "validate"]) == 0
    assert "ok    sources: 1 source declarations, 0 problems" in capsys.readouterr().out


def test_validate_reads_the_first_of_several_header_rows_and_expression_columns(
    tmp_path: Path, capsys
) -> None:
    config, _ = _project_with_survey(tmp_path, "channels: [web, wechat_mini_program]\n")
    assert main(["--config", str(config), "validate"]) == 0
    assert "ok    landing files: 1 files' headers checked, 0 problems" in capsys.readouterr().out

    export = tmp_path / "landing" / "q" / "export.csv"
    export.write_text(QUALTRICS_EXPORT.replace("Q2_Title,", "Q2_Headline,", 1), encoding="utf-8")
    assert main(["--config", str(config), "validate"]) == 1
    [problem] = [line for line in capsys.readouterr().out.splitlines() if "lacks" in line]
    assert problem.endswith(
        "source one_channel_survey: q/export.csv lacks mapped column(s) ['Q2_Title'] (read by "
        "columns.comment); it has ['ResponseId', 'RecordedDate', 'Q1_NPS', 'Q2_Headline', "
        "'Q2_Text']. Did the export change? Update the declaration's columns."
    )
