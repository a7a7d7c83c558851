"""Case rules: the YAML a team lead writes, checked with file and line, and what it
compiles to."""

from __future__ import annotations

from pathlib import Path

import pytest

from cxkpi import kpi_compile, kpi_spec
from cxkpi.case_rules import load_case_rules
from cxkpi.errors import ConfigError

LEVELS = ("hq", "region", "store", "advisor")
TOPICS = ("delivery_delay", "rude_staff")
RULE = """\
case_rules:
  - id: detractor_callback
    source: survey_responses
    when: nps <= 6
    priority: high
    owner_level: store
    sla_hours: {first_contact: 48, close: 168}
    carries: [nps, comment]
    effective_from: 2026-01-01
"""


def _load(tmp_path: Path, text: str):
    (tmp_path / "rules.yml").write_text(text, encoding="utf-8")
    return load_case_rules([tmp_path], LEVELS, TOPICS)


def _problems(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as error:
        _load(tmp_path, text)
    return str(error.value)


def test_a_rule_is_read_with_its_condition_owner_and_sla(tmp_path: Path) -> None:
    (rule,) = _load(tmp_path, RULE).rules
    assert rule.rule_id == "detractor_callback"
    assert rule.condition.sql() == "nps <= 6"
    assert (rule.owner_level, rule.priority) == ("store", "high")
    assert (rule.first_contact_hours, rule.close_hours) == (48, 168)
    assert rule.carries == ("nps", "comment")
    assert rule.declared_in == "rules.yml:2"


def test_recovery_looks_90_days_ahead_unless_the_rule_says_otherwise(tmp_path: Path) -> None:
    (rule,) = _load(tmp_path, RULE).rules
    assert rule.recovery_window_days == 90
    (rule,) = _load(tmp_path, RULE + "    recovery_window_days: 30\n").rules
    assert rule.recovery_window_days == 30
    ticket_rule = RULE.replace("survey_responses", "tickets").replace("nps <= 6", "reopened")
    ticket_rule = ticket_rule.replace("[nps, comment]", "[category]")
    (rule,) = _load(tmp_path, ticket_rule).rules
    assert rule.recovery_window_days is None
    problems = _problems(tmp_path, ticket_rule + "    recovery_window_days: 30\n")
    assert "recovery_window_days is for rules on survey_responses" in problems


def test_a_topic_and_history_can_open_a_case(tmp_path: Path) -> None:
    text = RULE.replace(
        "when: nps <= 6",
        "when: csat <= 2 and (has_topic('delivery_delay') or earlier_detractor_responses_30d >= 1)",
    )
    (rule,) = _load(tmp_path, text).rules
    assert rule.topics == ("delivery_delay",)
    assert "has_topic__delivery_delay" in rule.condition.sql()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("id: detractor_callback", "id: Detractor"), "rules.yml:2:"),
        (("source: survey_responses", "source: orders"), "'orders' is not one of"),
        (("when: nps <= 6", "when: nps + 1"), "is not a condition"),
        (("when: nps <= 6", "when: score <= 6"), "unknown column 'score'"),
        (("when: nps <= 6", "when: has_topic('refunds')"), "has_topic('refunds'): no such topic"),
        (("when: nps <= 6", "when: responded_at > '2026-01-01'"), "is a time"),
        (("when: nps <= 6", "when: nps <= 6; drop table x"), "';' would end"),
        (("when: nps <= 6", "when: regexp_matches(comment, '(a+)+$')"), "is not allowed"),
        (("when: nps <= 6", "when: \"{{ run_query('x') }}\""), "Jinja"),
        (("owner_level: store", "owner_level: country"), "'country' is not one of"),
        (("priority: high", "priority: asap"), "'asap' is not one of"),
        (("{first_contact: 48, close: 168}", "{first_contact: 48}"), "needs first_contact"),
        (("{first_contact: 48, close: 168}", "{first_contact: 48, close: 24}"), "shorter"),
        (("{first_contact: 48, close: 168}", "{first_contact: 0, close: 24}"), "more than 0"),
        (("carries: [nps, comment]", "carries: [nps, email]"), "cannot carry 'email'"),
        (("carries: [nps, comment]", "carries: [category]"), "cannot carry 'category'"),
        (("effective_from: 2026-01-01", "effective_from: soon"), "must be a date"),
        (("    effective_from: 2026-01-01\n", ""), "effective_from is required"),
        (("    owner_level: store\n", ""), "owner_level is required"),
        (("    priority: high\n", "    priorty: high\n"), "unknown key 'priorty'"),
        (
            (
                "effective_from: 2026-01-01",
                "effective_from: 2026-01-01\n    recovery_window_days: 0",
            ),
            "1 to 366 days",
        ),
        (
            (
                "effective_from: 2026-01-01",
                "effective_from: 2026-01-01\n    recovery_window_days: 9.5",
            ),
            "must be a whole number",
        ),
    ],
)
def test_bad_rules_are_refused_with_file_and_line(
    tmp_path: Path, change: tuple[str, str], expected: str
) -> None:
    assert expected in _problems(tmp_path, RULE.replace(*change))


def test_a_rule_declared_twice_names_both_places(tmp_path: Path) -> None:
    twice = RULE + RULE.removeprefix("case_rules:\n")
    assert "rules.yml:10:9: case rule detractor_callback is already declared at rules.yml:2" in (
        _problems(tmp_path, twice)
    )


def test_rules_compile_to_one_case_query_each_with_only_their_carried_columns(
    tmp_path: Path,
) -> None:
    text = (
        RULE
        + """\
  - id: repeated_ticket
    source: tickets
    when: earlier_tickets_30d >= 1 and category = 'it''s {{ late }}'
    owner_level: advisor
    sla_hours: {first_contact: 24, close: 120.5}
    carries: [category]
    effective_from: 2026-03-01
"""
    )
    rules = _load(tmp_path, text)
    catalog = kpi_spec.load_catalog([], org_levels=LEVELS)
    files = kpi_compile.render(catalog, case_rules=rules)
    sql = files["int_case__candidates.sql"]
    assert sql.count("union all") == 1
    assert "cast(watched.nps as double precision) as nps" in sql
    assert "cast(null as double precision) as csat" in sql
    assert "dbt.dateadd('minute', 7230, 'watched.opened_at')" in sql  # 120.5 hours
    assert ">= cast('2026-03-01' as date)" in sql
    # the analyst's text reaches the file as data: no Jinja opener survives
    assert "{{ late }}" not in sql and "'it''s {' || '{ late }}'" in sql
    assert "'repeated_ticket'" in files["int_case__rules.sql"]
    empty = kpi_compile.render(catalog)["int_case__candidates.sql"]
    assert "where 1 = 0" in empty


def test_the_repository_rules_are_valid() -> None:
    from conftest import REPO

    rules = load_case_rules([REPO / "case_rules"], LEVELS, ["delivery_delay"])
    assert {r.rule_id for r in rules.rules} >= {"detractor_callback", "repeated_ticket"}
