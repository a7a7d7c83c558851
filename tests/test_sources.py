"""Source declarations: mistakes are reported with the file and the field."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import duckdb
import pytest
import yaml
from conftest import REPO

from cxkpi.errors import ConfigError
from cxkpi.sources import check_sources, load_sources, parse_source
from cxkpi.warehouse import quote_ident, quote_literal

BASE = {
    "name": "s",
    "entity": "orders",
    "path": "o/*.csv",
    "columns": {"order_id": "id", "customer_id": "c", "ordered_at": "ts"},
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"entity": "ordres"}, "entity 'ordres' unknown"),
        ({"format": "xlsx"}, "format 'xlsx' unsupported"),
        ({"columns": {"order_id": "id"}}, "required canonical column(s) not mapped"),
        ({"columns": {**BASE["columns"], "amout": "a"}}, "'amout' is not a column of orders"),
        ({"values": {"channel": {"W": "web"}}}, "values: 'channel' is not a mapped column"),
        ({"timestamps": {"timezone": "Mars/Olympus"}}, "not an IANA time zone"),
        ({"csv": {"encoding": "klingon"}}, "not a known encoding"),
        ({"csv": {"delimiter": ";;"}}, "single character"),
        ({"csv": {"header": False}}, "must have a header row"),
        ({"colums": {}}, "unknown key(s) ['colums']"),
        ({"name": "bad name!"}, "letters, digits and underscores"),
        (
            {"columns": {**BASE["columns"], "channel": {"value": "web"}}},
            "columns.channel: a mapping here must be {const: <value>}",
        ),
        (
            {"columns": {**BASE["columns"], "channel": {"const": ["web", "app"]}}},
            "columns.channel: const must be one value",
        ),
        (
            {
                "columns": {**BASE["columns"], "channel": {"const": "web"}},
                "values": {"channel": {"W": "web"}},
            },
            "values: 'channel' is not a mapped column",
        ),
    ],
)
def test_declaration_errors_name_the_field(change: dict, message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        parse_source({**BASE, **change}, tmp_path / "s.yml")
    assert message in str(error.value)
    assert str(tmp_path / "s.yml") in str(error.value)


def test_unquoted_yes_no_value_keys_are_refused(tmp_path: Path) -> None:
    source = yaml.safe_load(
        """
name: s
entity: survey_responses
path: s.csv
columns: {response_id: id, channel: ch, responded_at: ts, consent: ok}
values:
  consent: {yes: true, no: false}
"""
    )
    with pytest.raises(ConfigError, match="quote the source value"):
        parse_source(source, tmp_path / "s.yml")


def test_repository_sources_parse_and_cover_every_entity() -> None:
    specs = load_sources(REPO / "sources")
    assert {s.entity for s in specs} == {
        "survey_responses",
        "factor_ratings",
        "customers",
        "orders",
        "deliveries",
        "tickets",
        "org_units",
        "benchmarks",
    }


def test_duplicate_source_names_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text(yaml.safe_dump(BASE))
    (tmp_path / "b.yml").write_text(yaml.safe_dump(BASE))
    with pytest.raises(ConfigError, match="also declared in"):
        load_sources(tmp_path)


# --- the hostile corpus: one problem per file, with its place ------------------------------

CORPUS = REPO / "tests" / "source_corpus"
_EXPECT = re.compile(r"# expect (?:(\d+):(\d+)|-): (.+)")


def _corpus() -> list[Path]:
    return sorted(CORPUS.glob("*.yml"))


def test_corpus_is_large_and_every_entry_says_what_it_expects() -> None:
    entries = _corpus()
    assert len(entries) >= 25
    for entry in entries:
        first = entry.read_bytes().split(b"\n", 1)[0].decode()
        assert _EXPECT.fullmatch(first), entry.name


@pytest.mark.parametrize("entry", _corpus(), ids=lambda p: p.stem)
def test_corpus_entry_is_refused_with_file_line_column_and_field(
    entry: Path, tmp_path: Path
) -> None:
    expected = _EXPECT.fullmatch(entry.read_bytes().split(b"\n", 1)[0].decode())
    assert expected is not None
    line, column, fragment = expected.groups()
    shutil.copy(entry, tmp_path / entry.name)
    specs, problems = check_sources(tmp_path, REPO / "dbt_project")
    assert specs == []
    assert len(problems) == 1, problems
    place = f"{tmp_path / entry.name}:{line}:{column}: " if line else f"{tmp_path / entry.name}: "
    assert problems[0].startswith(place), problems[0]
    assert fragment in problems[0]
    # load_sources (what `prepare` and the loads use) refuses it the same way
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        load_sources(tmp_path)


def test_all_problems_of_a_folder_are_reported_at_once(tmp_path: Path) -> None:
    for entry in _corpus()[:3]:
        shutil.copy(entry, tmp_path / entry.name)
    with pytest.raises(ConfigError, match="3 problems in source declarations") as error:
        load_sources(tmp_path)
    assert all(entry.name in str(error.value) for entry in _corpus()[:3])


def test_apostrophes_percent_and_odd_names_that_are_valid_data_pass(tmp_path: Path) -> None:
    spec = parse_source(
        {
            **BASE,
            "columns": {**BASE["columns"], "store_id": 'Store "main"', "channel": "O'Brien"},
            "values": {"channel": {"it's web": "web", "Ch'\\": None}},
            "timestamps": {"format": "%d %b '%y %H:%M", "timezone": "Europe/Berlin"},
            "csv": {"delimiter": "'", "quote": '"', "escape": "\\", "encoding": "UTF8"},
        },
        tmp_path / "s.yml",
    )
    assert spec.timestamp_format == "%d %b '%y %H:%M"
    assert spec.csv.encoding == "utf-8"


@pytest.mark.parametrize(
    ("encoding", "canonical"),
    [("latin1", "latin-1"), ("ISO-8859-1", "latin-1"), ("utf_16", "utf-16"), ("cp1252", "cp1252")],
)
def test_encodings_are_named_canonically(encoding: str, canonical: str, tmp_path: Path) -> None:
    spec = parse_source({**BASE, "csv": {"encoding": encoding}}, tmp_path / "s.yml")
    assert spec.csv.encoding == canonical


def test_dbt_model_names_are_reserved(tmp_path: Path) -> None:
    (tmp_path / "roadmap.yml").write_text(yaml.safe_dump({**BASE, "name": "roadmap"}))
    _, problems = check_sources(tmp_path, REPO / "dbt_project")
    assert "name 'roadmap' is taken" in problems[0]


def test_source_names_clash_case_insensitively(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text(yaml.safe_dump({**BASE, "name": "Shop"}))
    (tmp_path / "b.yml").write_text(yaml.safe_dump({**BASE, "name": "shop"}))
    with pytest.raises(ConfigError, match="also declared in"):
        load_sources(tmp_path)


def test_a_symlink_out_of_landing_dir_is_refused_when_files_are_listed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_text("id,c,ts\n")
    landing = tmp_path / "landing"
    (landing / "o").mkdir(parents=True)
    (landing / "o" / "fine.csv").write_text("id,c,ts\n")
    (landing / "o" / "link.csv").symlink_to(outside / "secret.csv")
    spec = parse_source(BASE, tmp_path / "s.yml")
    with pytest.raises(ConfigError, match="resolves to .*outside landing_dir"):
        spec.files(landing)
    # a link that stays inside landing_dir is fine
    (landing / "o" / "link.csv").unlink()
    (landing / "o" / "alias.csv").symlink_to(landing / "o" / "fine.csv")
    assert [p.name for p in spec.files(landing)] == ["alias.csv", "fine.csv"]


@pytest.mark.parametrize("text", ["a\x00b", "x'\x00; drop table t"])
def test_quoting_refuses_nul_bytes(text: str) -> None:
    with pytest.raises(ValueError, match="NUL"):
        quote_literal(text)
    with pytest.raises(ValueError, match="NUL"):
        quote_ident(text)


@pytest.mark.parametrize(
    "text", ["plain", "it's", "''", "back\\slash\\", "'; drop table x; --", "é\n\t"]
)
def test_quoting_round_trips_through_duckdb(text: str) -> None:
    con = duckdb.connect()
    try:
        assert con.execute(f"select {quote_literal(text)}").fetchone() == (text,)
        con.execute(f"create table t ({quote_ident(text)} varchar)")
        assert con.execute("select column_name from information_schema.columns").fetchone() == (
            text,
        )
    finally:
        con.close()
