"""Case rules: which survey responses or tickets open a follow-up case (the inner loop).

A team lead writes them in ``case_rules/*.yml`` (the folder is ``case_rules_dir``)::

    case_rules:
      - id: detractor_callback
        label: Call back a detractor
        source: survey_responses
        when: nps <= 6
        priority: high
        owner_level: store
        sla_hours: {first_contact: 48, close: 168}
        carries: [nps, comment, order_id]
        effective_from: 2026-01-01
        recovery_window_days: 90

``when`` is a checked condition over the source's columns (the KPI language,
:mod:`cxkpi.kpi_expr`), plus ``has_topic('delivery_delay')`` for a topic of the topic
rules and a few history columns (:data:`HISTORY_COLUMNS`: e.g. how many detractor answers
the same person gave in the 30 days before). A case belongs to the unit at ``owner_level``
that the row lies in; its first contact and its closure are due ``sla_hours`` after the
row's time. ``carries`` lists what the case may hand to the ticketing tool: only columns
of :data:`CARRIABLE`, never a person's contact data (comments are masked by the loader).

A case's id is derived from the rule and the source row, so a rerun, a backfill or a
corrected file finds the same case again. A rule applies to rows from ``effective_from``
on: a changed rule with a new date leaves the cases of earlier rows as they were. For a
rule on survey responses, ``recovery_window_days`` (default 90) is how long after the
answer the loop's recovery looks for the customer's next answer and next order.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cxkpi import kpi_expr
from cxkpi.config import Settings
from cxkpi.errors import ConfigError
from cxkpi.kpi_sources import BOOLEAN, NUMBER, SOURCES, TEXT, TIMESTAMP
from cxkpi.kpi_yaml import Document, FieldReader, Problem, read_rule_lists, suggest
from cxkpi.topics import TopicCatalog, load_topics

MAX_RULES = 100
RULE_ID = re.compile(r"[a-z][a-z0-9_]{0,62}")
PRIORITIES = ("low", "medium", "high", "urgent")
DEFAULT_RECOVERY_WINDOW_DAYS = 90

# What a rule may watch: the source, and the columns it adds to the source's own.
HISTORY_COLUMNS: dict[str, dict[str, str]] = {
    "survey_responses": {
        # answers of the same person in the 30 days before this one (this one not counted)
        "earlier_responses_30d": NUMBER,
        "earlier_detractor_responses_30d": NUMBER,
    },
    "tickets": {
        # tickets of the same person opened in the 30 days before this one
        "earlier_tickets_30d": NUMBER,
    },
}
CASE_SOURCES = tuple(HISTORY_COLUMNS)
# What a case may hand to the ticketing tool, per source (the comment is the masked one).
CARRIABLE: dict[str, dict[str, str]] = {
    "survey_responses": {
        "customer_id": TEXT,
        "order_id": TEXT,
        "channel": TEXT,
        "touchpoint": TEXT,
        "nps": NUMBER,
        "nps_category": TEXT,
        "csat": NUMBER,
        "ces": NUMBER,
        "comment": TEXT,
    },
    "tickets": {
        "customer_id": TEXT,
        "order_id": TEXT,
        "channel": TEXT,
        "category": TEXT,
        "reopened": BOOLEAN,
        "hours_to_close": NUMBER,
    },
}
# Every column a case may carry, in the order the outbox writes them.
CARRIED_COLUMNS: tuple[str, ...] = tuple(
    dict.fromkeys(c for source in CARRIABLE.values() for c in source)
)
HAS_TOPIC = re.compile(r"has_topic\s*\(\s*'([^']*)'\s*\)", re.IGNORECASE)
TOPIC_COLUMN_PREFIX = "has_topic__"


@dataclass(frozen=True)
class CaseRule:
    rule_id: str
    label: str
    source: str
    when: str  # as written
    condition: kpi_expr.Expression  # checked, over rule_columns (has_topic as has_topic__<id>)
    topics: tuple[str, ...]  # the topics ``when`` names
    priority: str
    owner_level: str
    first_contact_hours: float
    close_hours: float
    carries: tuple[str, ...]
    effective_from: dt.date
    declared_in: str  # file:line
    # days after the answer in which recovery looks for the next answer and order
    # (survey rules; None for ticket rules)
    recovery_window_days: int | None = None

    @property
    def entry_id(self) -> str:
        return self.rule_id

    @property
    def source_key(self) -> str:
        return SOURCES[self.source].key

    @property
    def time_column(self) -> str:
        return SOURCES[self.source].date_column


@dataclass
class CaseRuleSet:
    rules: list[CaseRule]

    @property
    def topics(self) -> list[str]:
        return sorted({t for r in self.rules for t in r.topics})


def rule_columns(source: str, topic_ids: Iterable[str]) -> dict[str, str]:
    """Column -> logical type of what ``when`` may name for rules on ``source``."""
    return {
        **SOURCES[source].columns,
        **HISTORY_COLUMNS[source],
        **{TOPIC_COLUMN_PREFIX + t: BOOLEAN for t in topic_ids},
    }


def _condition(
    reader: FieldReader, path: tuple, value: object, source: str, topic_ids: set[str]
) -> tuple[str, kpi_expr.Expression, tuple[str, ...]] | None:
    text = reader.text(path, value)
    if text is None:
        reader.problem(path, "a case rule needs a condition, when: e.g. nps <= 6")
        return None
    named = [m.group(1) for m in HAS_TOPIC.finditer(text)]
    for topic in named:
        if topic not in topic_ids:
            known = ", ".join(sorted(topic_ids)) or "none: topics_dir holds no topic rules"
            reader.problem(path, f"has_topic('{topic}'): no such topic", suggest(topic, topic_ids)
                           or f"known topics: {known}")  # fmt: skip
            return None
    rewritten = HAS_TOPIC.sub(lambda m: TOPIC_COLUMN_PREFIX + m.group(1), text)
    columns = rule_columns(source, topic_ids)
    try:
        expression = kpi_expr.parse(rewritten, set(columns))
    except kpi_expr.ExpressionError as exc:
        reader.problem(path, f"when: {exc}", exc.hint)
        return None
    booleans = {c for c, kind in columns.items() if kind == BOOLEAN}
    if not expression.is_predicate(booleans):
        reader.problem(path, f"when: {text!r} is not a condition", "e.g. nps <= 6 or csat <= 2")
        return None
    timestamps = [c for c in expression.columns if columns.get(c) == TIMESTAMP]
    if timestamps:
        reader.problem(
            path,
            f"when: {timestamps[0]} is a time; a rule watches scores, flags and history",
            "the row's time decides when the case opens and when it is due",
        )
        return None
    return text, expression, tuple(dict.fromkeys(named))


_RULE_KEYS = {
    "id": "letters, digits and _",
    "label": "text",
    "description": "text",
    "source": "survey_responses or tickets",
    "when": "a condition",
    "priority": "low, medium, high or urgent",
    "owner_level": "an org level",
    "sla_hours": "first_contact and close, in hours",
    "carries": "columns the case hands to the ticketing tool",
    "effective_from": "a date",
    "recovery_window_days": "days after the answer (survey rules)",
}


def _hours(reader: FieldReader, path: tuple, value: object) -> float | None:
    hours = reader.number(path, value)
    if hours is not None and not 0 < hours <= 24 * 366:
        reader.problem(path, f"{path[-1]} must be more than 0 and at most a year of hours")
        return None
    return hours


def _rule(
    doc: Document,
    index: int,
    value: object,
    problems: list[Problem],
    org_levels: tuple[str, ...],
    topic_ids: set[str],
) -> CaseRule | None:
    reader = FieldReader(doc, problems)
    path: tuple = ("case_rules", index)
    data = reader.mapping_keys(path, value, _RULE_KEYS)
    if not data:
        if value is None or isinstance(value, dict):
            reader.problem(path, "a case rule needs at least id, source, when and owner_level")
        return None
    rule_id = data.get("id")
    if not isinstance(rule_id, str) or not RULE_ID.fullmatch(rule_id):
        reader.problem(
            (*path, "id"),
            f"case rule id {rule_id!r} must start with a letter and hold only a-z, 0-9 and _",
        )
        return None
    label = reader.text((*path, "label"), data.get("label")) or rule_id.replace("_", " ")
    source = reader.choice((*path, "source"), data.get("source"), CASE_SOURCES)
    if source is None:
        if data.get("source") is None:
            reader.problem((*path, "source"), "source is required: survey_responses or tickets")
        return None
    condition = _condition(reader, (*path, "when"), data.get("when"), source, topic_ids)
    priority = reader.choice((*path, "priority"), data.get("priority", "medium"), PRIORITIES)
    owner_level = reader.choice((*path, "owner_level"), data.get("owner_level"), org_levels)
    if data.get("owner_level") is None:
        reader.problem(
            (*path, "owner_level"),
            "owner_level is required: the org level whose unit follows the case up",
            "one of " + ", ".join(org_levels),
        )
    sla = data.get("sla_hours")
    sla_path = (*path, "sla_hours")
    if not isinstance(sla, dict) or set(sla) != {"first_contact", "close"}:
        reader.problem(sla_path, "sla_hours needs first_contact and close, in hours",
                       "e.g. sla_hours: {first_contact: 48, close: 168}")  # fmt: skip
        first_contact = close = None
    else:
        first_contact = _hours(reader, (*sla_path, "first_contact"), sla["first_contact"])
        close = _hours(reader, (*sla_path, "close"), sla["close"])
        if first_contact is not None and close is not None and close < first_contact:
            reader.problem(sla_path, "the close SLA is shorter than the first-contact SLA")
    carries: list[str] = []
    for position, column in enumerate(reader.list_of((*path, "carries"), data.get("carries"))):
        allowed = CARRIABLE[source]
        if column not in allowed:
            reader.problem(
                (*path, "carries", position),
                f"a {source} case cannot carry {column!r}",
                "it may carry " + ", ".join(allowed) + " (never contact data)",
            )
        elif column not in carries:
            carries.append(column)
    if data.get("effective_from") is None:
        reader.problem(
            (*path, "effective_from"),
            "effective_from is required: the first day whose rows the rule opens cases for",
            "a changed rule gets a new date, so cases of earlier rows stay as they were",
        )
        effective_from = None
    else:
        effective_from = reader.date((*path, "effective_from"), data.get("effective_from"))
    window = _recovery_window(reader, (*path, "recovery_window_days"), data, source)
    if not reader.ok or condition is None:
        return None
    assert priority and owner_level and first_contact and close and effective_from
    text, expression, topics = condition
    line, _ = doc.at(path)
    return CaseRule(
        rule_id, label, source, text, expression, topics, priority, owner_level,
        first_contact, close, tuple(carries), effective_from, f"{doc.file.name}:{line}",
        window,
    )  # fmt: skip


def _recovery_window(reader: FieldReader, path: tuple, data: dict, source: str) -> int | None:
    """The recovery window of a survey rule: whole days, 1 to 366 (default 90)."""
    value = data.get("recovery_window_days")
    if source != "survey_responses":
        if value is not None:
            reader.problem(path, "recovery_window_days is for rules on survey_responses",
                           "recovery is measured on the customer's next answer")  # fmt: skip
        return None
    if value is None:
        return DEFAULT_RECOVERY_WINDOW_DAYS
    days = reader.number(path, value, integer=True)
    if days is None:
        return None
    if not 1 <= days <= 366:
        reader.problem(path, "recovery_window_days must be 1 to 366 days")
        return None
    return int(days)


def load_case_rules(
    folders: Iterable[Path], org_levels: tuple[str, ...], topic_ids: Iterable[str]
) -> CaseRuleSet:
    """Every case rule under ``folders``, checked against the project's org levels and
    topics; raise ConfigError naming file:line of each problem."""
    topics = set(topic_ids)

    def parse(doc: Document, index: int, value: object, problems: list[Problem]):
        return _rule(doc, index, value, problems, org_levels, topics)

    rules = read_rule_lists(folders, "case_rules", "case rule", parse, MAX_RULES, "case rules")
    return CaseRuleSet(rules)


@dataclass(frozen=True)
class LoopRules:
    topics: TopicCatalog
    case_rules: CaseRuleSet


def load_loop_rules(settings: Settings) -> LoopRules:
    """A project's topic rules and case rules (which may name topics), checked: a
    ConfigError lists the problems of both, file:line each. What ``cxkpi validate`` checks
    and ``cxkpi compile`` compiles."""
    problems: list[str] = []
    topic_catalog = TopicCatalog()
    try:
        topic_catalog = load_topics([settings.topics_dir])
    except ConfigError as exc:
        problems.append(str(exc))
    topic_ids = [t.topic_id for t in topic_catalog.topics]
    rules = CaseRuleSet([])
    try:
        rules = load_case_rules([settings.case_rules_dir], settings.org_levels, topic_ids)
    except ConfigError as exc:
        problems.append(str(exc))
    if problems:
        raise ConfigError("\n".join(problems))
    return LoopRules(topic_catalog, rules)
