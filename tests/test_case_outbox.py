"""The nightly case outbox: which night hands over which case, the files, personal data.

Unit tests on a DuckDB holding the two tables the outbox reads (the compiled case
candidates and rules); tests/test_case_nights.py runs the real nights."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest

from cxkpi import outbox
from cxkpi.case_rules import CARRIED_COLUMNS
from cxkpi.errors import PublishError


def _warehouse(cases: list[tuple[str, str, str]]):
    """cases: (case_id, rule_id, opened_on)."""
    con = duckdb.connect()
    con.execute("create schema intermediate")
    con.execute(
        "create table intermediate.int_case__rules as select * from (values "
        "('callback', 'Call back', 'nps,comment'), ('ticket', 'Ticket', 'category')) "
        "as t(rule_id, rule_label, carries)"
    )
    carried = ", ".join(
        f"cast(null as {'double' if c in ('nps', 'csat', 'ces', 'hours_to_close') else 'boolean' if c == 'reopened' else 'varchar'}) as {c}"  # noqa: E501
        for c in CARRIED_COLUMNS
    )
    con.execute(
        f"""create table intermediate.int_case__candidates as
            select case_id, rule_id, 'survey_responses' as source, 'R' || case_id as source_key,
                cast(opened_on as timestamp) + interval 9 hour as opened_at,
                cast(opened_on as date) as opened_on, 'P1' as person_id, 'S1' as org_unit_id,
                'store' as owner_level, 'S1' as owner_unit_id, 'high' as priority,
                cast(opened_on as timestamp) + interval 57 hour as first_contact_due_at,
                cast(opened_on as timestamp) + interval 177 hour as close_due_at, {carried}
            from (select unnest(?) as case_id, unnest(?) as rule_id, unnest(?) as opened_on)""",
        [[c[0] for c in cases], [c[1] for c in cases], [c[2] for c in cases]],
    )
    con.execute(
        "update intermediate.int_case__candidates set nps = 3, comment = 'slow, "
        "write to [email]', category = 'billing'"
    )
    return con


def _handed(con, night: str, version: int) -> list[str]:
    box = outbox.Outbox(
        date.fromisoformat(night), outbox.night_cases(con, date.fromisoformat(night))
    )
    outbox.record(con, box, f"run-{night}", version)
    return [c["case_id"] for c in box.cases]


def test_each_case_is_handed_over_by_one_night_only() -> None:
    con = _warehouse([("a", "callback", "2026-10-01"), ("b", "callback", "2026-10-03")])
    assert _handed(con, "2026-10-02", 1) == ["a"]  # b opens after the night
    assert _handed(con, "2026-10-04", 2) == ["b"]
    assert _handed(con, "2026-10-04", 3) == ["b"]  # a rerun: its own cases again
    assert _handed(con, "2026-10-02", 4) == ["a"]  # a rerun of the earlier night
    assert _handed(con, "2026-10-01", 5) == []  # a backfill: a was handed over on the 2nd
    con.execute("insert into intermediate.int_case__candidates select * replace "
                "('c' as case_id, date '2026-09-20' as opened_on) "
                "from intermediate.int_case__candidates limit 1")  # fmt: skip
    assert _handed(con, "2026-10-05", 6) == ["c"]  # a late row opens a case the next night
    ledger = dict(con.execute("select case_id, night::varchar from loop.cases_emitted").fetchall())
    assert ledger == {"a": "2026-10-02", "b": "2026-10-04", "c": "2026-10-05"}


def test_a_case_whose_row_no_longer_qualifies_stays_handed_over() -> None:
    con = _warehouse([("a", "callback", "2026-10-01")])
    _handed(con, "2026-10-02", 1)
    con.execute("delete from intermediate.int_case__candidates")  # corrected: not a detractor
    assert _handed(con, "2026-10-03", 2) == []
    assert con.execute("select count(*) from loop.cases_emitted").fetchone() == (1,)


def test_the_files_carry_only_what_the_rule_carries_in_a_fixed_form() -> None:
    con = _warehouse([("b", "ticket", "2026-10-01"), ("a", "callback", "2026-10-01")])
    cases = outbox.night_cases(con, date(2026, 10, 2))
    assert [c["carried"] for c in cases] == [
        {"nps": 3.0, "comment": "slow, write to [email]"},
        {"category": "billing"},
    ]
    assert cases[0]["opened_at"] == "2026-10-01T09:00:00Z"
    lines = outbox.jsonl_text(cases).splitlines()
    assert lines[0].startswith(
        '{"carried":{"comment":"slow, write to [email]","nps":3.0},"case_id":"a"'
    )
    text = outbox.csv_text(cases)
    assert text.splitlines()[0].startswith("case_id,rule_id,rule_label,priority,")
    assert '"slow, write to [email]"' in text  # quoted: it holds a comma
    assert outbox.jsonl_text(cases) == outbox.jsonl_text(outbox.night_cases(con, date(2026, 10, 2)))


def test_personal_data_in_a_carried_column_stops_the_outbox() -> None:
    con = _warehouse([("a", "callback", "2026-10-01")])
    con.execute(
        "update intermediate.int_case__candidates set comment = 'call me: +49 151 23456789'"
    )
    settings = type("S", (), {"pii_phone_regions": ("DE",)})()
    with pytest.raises(PublishError, match=r"personal data \(a\.comment: phone\)"):
        outbox.prepare(con, settings, date(2026, 10, 2))


def test_a_project_without_case_models_hands_over_nothing() -> None:
    con = duckdb.connect()
    assert outbox.night_cases(con, date(2026, 10, 2)) == []


def test_every_handler_gets_the_notice_and_a_failing_one_stops_nothing(caplog) -> None:
    received = []

    def broken(notice: outbox.OutboxNotice) -> None:
        raise ConnectionError("ticketing API down")

    notice = outbox.OutboxNotice(
        "2026-10-02", 7, [{"case_id": "a", "rule_id": "callback"}], {"outbox.jsonl": "/x"}
    )
    outbox.hand_over(notice, [broken, received.append])
    assert received == [notice]
    assert "case handler" in caplog.text and "ticketing API down" in caplog.text
    assert notice.text == (
        "cxkpi case outbox of 2026-10-02 (version 7): 1 new case(s) (callback 1); files: /x"
    )


def test_an_id_is_scanned_as_an_id_and_an_email_as_customer_id_is_found() -> None:
    # an md5 case id holds digit runs that pass a card's checksum: not personal data
    case = {f: None for f in outbox.CASE_FIELDS}
    case.update(case_id="a4e0d522ca6ccce5c533450687460785", rule_id="callback", carried={})
    assert outbox.personal_data([case], ("DE",)) == []
    case["carried"] = {"customer_id": "jane.doe@example.com"}
    assert outbox.personal_data([case], ("DE",)) == [
        "a4e0d522ca6ccce5c533450687460785.customer_id: email"
    ]
