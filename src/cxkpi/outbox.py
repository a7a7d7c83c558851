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


# What the ledger keeps of each case besides which night handed it over: enough for
# fct_cases to keep a case whose row or rule later stops calling for it.
LEDGER_CASE_FIELDS = ("source", "source_key", "owner_level", "owner_unit_id", "priority",
                      "opened_at", "first_contact_due_at", "close_due_at")  # fmt: skip


def ensure_ledger(con, prefix: str = "") -> None:
    """The ledger, created with the warehouse's raw tables (dbt reads it as a source);
    ``prefix``: ``<catalog>.`` when the warehouse is attached under a name."""
    con.execute(f"create schema if not exists {prefix}loop")
    con.execute(
        f"""create table if not exists {prefix}{LEDGER} (
            case_id varchar primary key,
            rule_id varchar not null,
            night date not null,
            run_id varchar not null,
            version integer not null,
            emitted_at timestamp not null
        )"""
    )
    for column, kind in (
        *((c, "varchar") for c in LEDGER_CASE_FIELDS[:5]),
        *((c, "timestamp") for c in LEDGER_CASE_FIELDS[5:]),
    ):
        con.execute(f"alter table {prefix}{LEDGER} add column if not exists {column} {kind}")


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


# Identifiers: personal data counts in them as a token of its own (an e-mail address used as
# a customer id), not digits of an opaque id that pass a card checksum by chance (an md5
# case id). Every other field is text, scanned whole.
IDENTIFIER_FIELDS = frozenset(
    {"case_id", "rule_id", "source_key", "owner_unit_id", "customer_id", "order_id"}
)


def personal_data(cases: list[dict[str, Any]], phone_regions: tuple[str, ...]) -> list[str]:
    """Where the outbox would carry personal data: 'case_id.field: kinds' (the same
    detector as the loader and the gate's check of the published tables)."""
    detector = pii.detector(phone_regions)
    found = []
    for case in cases:
        values = {**{f: case[f] for f in CASE_FIELDS}, **case["carried"]}
        for field, value in values.items():
            if not isinstance(value, str) or not pii.may_hold_pii(value):
                continue
            scan = detector.identifier_kinds if field in IDENTIFIER_FIELDS else detector.kinds
            kinds = sorted({k for part in value.split("|") for k in scan(part)})
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

    def moment(value: Any) -> Any:  # the outbox's ISO text with a Z, back to UTC
        return value[:-1] if isinstance(value, str) and value.endswith("Z") else value

    rows = [
        (case["case_id"], case["rule_id"], outbox.night, run_id, version,
         *(moment(case[f]) for f in LEDGER_CASE_FIELDS))
        for case in outbox.cases
    ]  # fmt: skip
    if rows:
        columns = ", ".join(LEDGER_CASE_FIELDS)
        marks = ", ".join("?" for _ in LEDGER_CASE_FIELDS)
        con.executemany(
            f"""insert into {LEDGER} (case_id, rule_id, night, run_id, version, emitted_at,
                    {columns})
                values (?, ?, ?, ?, ?, current_timestamp, {marks})
                on conflict (case_id) do nothing""",
            rows,
        )
    return len(rows)


def record_published(con, version_folder: Path, manifest: dict[str, Any]) -> int:
    """Record the outbox of a published version the ledger lacks (a publish killed between
    its commit and its ledger write): read back from the version's own JSON lines file."""
    notice = published_notice(version_folder, manifest)
    if notice is None:
        return 0
    box = Outbox(date.fromisoformat(notice.night), notice.cases)
    return record(con, box, str(manifest.get("run_id")), manifest["version"])


# --- handing the cases over: pluggable, after the publish ------------------------------


@dataclass(frozen=True)
class OutboxNotice:
    """What a case handler receives after a night published its outbox."""

    night: str
    version: int
    cases: list[dict[str, Any]]
    files: dict[str, str]  # file name -> path in the published version

    @property
    def text(self) -> str:
        by_rule: dict[str, int] = {}
        for case in self.cases:
            by_rule[case["rule_id"]] = by_rule.get(case["rule_id"], 0) + 1
        rules = ", ".join(f"{rule} {n}" for rule, n in sorted(by_rule.items())) or "none"
        return (
            f"cxkpi case outbox of {self.night} (version {self.version}): "
            f"{len(self.cases)} new case(s) ({rules}); files: {', '.join(self.files.values())}"
        )


Handler = Callable[[OutboxNotice], None]


def log_handler(notice: OutboxNotice) -> None:
    """The default handler: one log record."""
    log.info("%s", notice.text)


# Every callable here receives each published outbox. Add yours at deploy time, e.g. in the
# DAG file:  outbox.HANDLERS.append(outbox.webhook_handler(os.environ["CXKPI_CASES_URL"]))
HANDLERS: list[Handler] = [log_handler]


def hand_over(notice: OutboxNotice, handlers: list[Handler] | None = None) -> list[str]:
    """Give ``notice`` to every handler; what failed ('handler: error'), after all were
    tried. The cases are in the published outbox whatever a ticketing API does, and
    case_id lets a handler that runs again (a retry, a rerun) update, not duplicate."""
    failures = []
    for handler in HANDLERS if handlers is None else handlers:
        try:
            handler(notice)
        except Exception as exc:
            log.exception("case handler %r failed", handler)
            failures.append(f"{getattr(handler, '__qualname__', handler)}: {exc}")
    return failures


def published_notice(version_folder: Path, manifest: dict[str, Any]) -> OutboxNotice | None:
    """The notice of a published version's outbox (None when it has none)."""
    entry = manifest.get("outbox")
    if not entry:
        return None
    files = {name: str(version_folder / meta["file"]) for name, meta in entry["files"].items()}
    text = Path(files[JSONL]).read_text(encoding="utf-8")
    cases = [json.loads(line) for line in text.splitlines()]
    return OutboxNotice(entry["night"], manifest["version"], cases, files)


def webhook_handler(url: str, batch_size: int = 500, timeout_s: float = 30.0) -> Handler:
    """A handler that POSTs the cases as JSON, ``{"night", "version", "cases": [...]}``, in
    batches of ``batch_size`` (a ticketing tool's import endpoint; case_id is the key)."""

    def post(notice: OutboxNotice) -> None:
        import urllib.request

        for start in range(0, len(notice.cases), batch_size):
            body = json.dumps(
                {
                    "night": notice.night,
                    "version": notice.version,
                    "cases": notice.cases[start : start + batch_size],
                },
                ensure_ascii=False,
            ).encode("utf-8")
            request = urllib.request.Request(
                url, data=body, headers={"Content-Type": "application/json"}, method="POST"
            )
            with urllib.request.urlopen(request, timeout=timeout_s):
                pass

    return post


def email_handler(smtp_host: str, sender: str, recipients: list[str], port: int = 25) -> Handler:
    """A handler that e-mails a summary of the night's new cases (counts per rule, where
    the files are); the cases themselves stay in the published outbox."""

    def send(notice: OutboxNotice) -> None:
        if not notice.cases:
            return
        import smtplib
        from email.message import EmailMessage

        message = EmailMessage()
        message["Subject"] = f"cxkpi: {len(notice.cases)} new case(s) for {notice.night}"
        message["From"], message["To"] = sender, ", ".join(recipients)
        message.set_content(notice.text)
        with smtplib.SMTP(smtp_host, port, timeout=30) as smtp:
            smtp.send_message(message)

    return send
