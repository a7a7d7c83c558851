"""Source declarations: mistakes are reported with the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import REPO

from cxkpi.errors import ConfigError
from cxkpi.sources import load_sources, parse_source

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
    }


def test_duplicate_source_names_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text(yaml.safe_dump(BASE))
    (tmp_path / "b.yml").write_text(yaml.safe_dump(BASE))
    with pytest.raises(ConfigError, match="also declared in"):
        load_sources(tmp_path)
