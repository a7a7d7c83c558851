"""The nightly case outbox: the cases a night hands to the team's ticketing tool.

The case rules (``cxkpi.case_rules``) compile to ``int_case__candidates``: every case the
data calls for, each with an id derived from its rule and source row. A night's outbox is
the candidates opened up to its logical date that no *other* night has handed over; the
ledger ``loop.cases_emitted`` in the warehouse records which night handed over which case.
So:

- a rerun of a night hands over the same cases again, as the same bytes;
- a later night never hands over a case again, and a backfill of an earlier night does not
  take a case a later night already handed over (nor one opened after its date);
- a corrected file that still opens a case gives the same id: nothing new is handed over;
- a case handed over stays in the ledger when its row or rule changes later: history is
  not reopened, and nothing is lost.

The outbox is written into the version the night publishes (``outbox.jsonl`` and
``outbox.csv`` beside its Parquet files, listed with their SHA-256 in the manifest), so it becomes
visible with the published tables, at the same commit, or not at all. The ledger is
written right after the commit; a kill between the two is repaired by the next publish,
which records the current version's outbox first (:func:`record_published`). A ticketing
integration should still treat ``case_id`` as its idempotency key.

Every text value is scanned by the personal-data detector the gate uses on the published
tables; an outbox that would carry personal data fails the publish.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from cxkpi import pii
from cxkpi.case_rules import CARRIED_COLUMNS
from cxkpi.config import Settings
from cxkpi.errors import PublishError
from cxkpi.warehouse import quote_literal

log = logging.getLogger(__name__)

LEDGER = "loop.cases_emitted"
CANDIDATES = "intermediate.int_case__candidates"
RULES = "intermediate.int_case__rules"
JSONL = "outbox.jsonl"
CSV = "outbox.csv"
# What every case says, before the columns its rule carries.
CASE_FIELDS = (
    "case_id",
    "rule_id",
    "rule_label",
    "priority",
    "source",
    "source_key",
    "owner_level",
    "owner_unit_id",
    "opened_at",
    "first_contact_due_at",
    "close_due_at",
)


def ensure_ledger(con) -> None:
    con.execute("create schema if not exists loop")
    con.execute(
        f"""create table if not exists {LEDGER} (
            case_id varchar primary key,
            rule_id varchar not null,
            night date not null,
            run_id varchar not null,
            version integer not null,
            emitted_at timestamp not null
        )"""
    )


def _has_candidates(con) -> bool:
    found = con.execute(
        "select count(*) from information_schema.tables "
        "where table_schema = 'intermediate' and table_name = 'int_case__candidates'"
    ).fetchone()
    return bool(found and found[0])


def _iso(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds") + "Z"  # stored UTC, without a zone
    if isinstance(value, date):
        return value.isoformat()
    return value


def night_cases(con, night: date) -> list[dict[str, Any]]:
    """The cases night ``night`` hands over, ordered by case id: each with its rule's
    fields and only the columns the rule carries (``carried``)."""
    ensure_ledger(con)
    if not _has_candidates(con):
        return []
    columns = ", ".join(f"cases.{c}" for c in CARRIED_COLUMNS)
    rows = con.execute(
        f"""select cases.case_id, cases.rule_id, rules.rule_label, cases.priority,
                cases.source, cases.source_key, cases.owner_level, cases.owner_unit_id,
                cases.opened_at, cases.first_contact_due_at, cases.close_due_at,
                rules.carries, {columns}
            from {CANDIDATES} as cases
            inner join {RULES} as rules on cases.rule_id = rules.rule_id
            left join {LEDGER} as ledger on cases.case_id = ledger.case_id
            where cases.opened_on <= cast({quote_literal(night.isoformat())} as date)
              and (ledger.case_id is null or ledger.night = cast(
                  {quote_literal(night.isoformat())} as date))
            order by cases.case_id"""
    ).fetchall()
    cases = []
    for row in rows:
        record = {field: _iso(value) for field, value in zip(CASE_FIELDS, row, strict=False)}
        carries = [c for c in (row[len(CASE_FIELDS)] or "").split(",") if c]
        values = dict(zip(CARRIED_COLUMNS, row[len(CASE_FIELDS) + 1 :], strict=True))
        record["carried"] = {c: _iso(values[c]) for c in carries}
        cases.append(record)
    return cases


def jsonl_text(cases: list[dict[str, Any]]) -> str:
    """One JSON object per line, keys sorted: the same cases give the same bytes."""
    return "".join(
        json.dumps(case, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n"
        for case in cases
    )


def csv_text(cases: list[dict[str, Any]]) -> str:
    """One row per case: the case's fields, then every carriable column (empty where the
    rule does not carry it)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*CASE_FIELDS, *CARRIED_COLUMNS])
    for case in cases:
        carried = case["carried"]
        writer.writerow(
            [
                *("" if case[f] is None else case[f] for f in CASE_FIELDS),
                *("" if carried.get(c) is None else carried[c] for c in CARRIED_COLUMNS),
            ]
        )
    return out.getvalue()


def personal_data(cases: list[dict[str, Any]], phone_regions: tuple[str, ...]) -> list[str]:
    """Where the outbox would carry personal data: 'case_id.field: kinds' (the same
    detector as the gate's check of the published tables)."""
    detector = pii.detector(phone_regions)
    found = []
    for case in cases:
        values = {**{f: case[f] for f in CASE_FIELDS}, **case["carried"]}
        for field, value in values.items():
            if not isinstance(value, str) or not pii.may_hold_pii(value):
                continue
            kinds = sorted({k for part in value.split("|") for k in detector.kinds(part)})
            if kinds:
                found.append(f"{case['case_id']}.{field}: {', '.join(kinds)}")
    return found


@dataclass(frozen=True)
class Outbox:
    night: date
    cases: list[dict[str, Any]]

    def write(self, folder: Path, fsync: Callable[[Path], None]) -> dict[str, Any]:
        """Write the outbox files into ``folder`` (a staged version); their manifest entry."""
        from cxkpi.loader import file_sha256

        files = {}
        for name, text in ((JSONL, jsonl_text(self.cases)), (CSV, csv_text(self.cases))):
            path = folder / name
            path.write_bytes(text.encode("utf-8"))
            fsync(path)
            files[name] = {"file": name, "sha256": file_sha256(path)}
        return {"night": self.night.isoformat(), "cases": len(self.cases), "files": files}


def prepare(con, settings: Settings, night: date) -> Outbox:
    """The night's outbox, checked for personal data (PublishError naming where)."""
    cases = night_cases(con, night)
    leaks = personal_data(cases, settings.pii_phone_regions)
    if leaks:
        shown = "; ".join(leaks[:5]) + (f"; and {len(leaks) - 5} more" if len(leaks) > 5 else "")
        raise PublishError(
            f"the case outbox of {night} would carry personal data ({shown}): a case rule "
            "carries a column the loader did not mask; remove it from the rule's carries"
        )
    return Outbox(night, cases)


def record(con, outbox: Outbox, run_id: str, version: int) -> int:
    """Record in the ledger that ``outbox``'s night handed its cases over (idempotent)."""
    ensure_ledger(con)
    rows = [
        (case["case_id"], case["rule_id"], outbox.night, run_id, version) for case in outbox.cases
    ]
    if rows:
        con.executemany(
            f"""insert into {LEDGER} values (?, ?, ?, ?, ?, current_timestamp)
                on conflict (case_id) do nothing""",
            rows,
        )
    return len(rows)


def record_published(con, version_folder: Path, manifest: dict[str, Any]) -> int:
    """Record the outbox of a published version the ledger lacks (a publish killed between
    its commit and its ledger write): read back from the version's own JSON lines file."""
    entry = manifest.get("outbox")
    if not entry:
        return 0
    path = version_folder / entry["files"][JSONL]["file"]
    cases = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    night = date.fromisoformat(entry["night"])
    return record(con, Outbox(night, cases), str(manifest.get("run_id")), manifest["version"])
