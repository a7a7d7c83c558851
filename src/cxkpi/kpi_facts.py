"""What the catalog declares, as tables of facts with one row each.

Definitions, milestones, parent links, the inputs of formulas, the time grains, org levels
and breakdowns each KPI is published at, and its actions: the compiler writes each table
as literal values (``templates/kpi_facts.sql``) and the marts join them, so no SQL parses
a list or JSON text back. ``FACT_TABLES`` names each table's columns and types once; the
dbt properties in ``templates/kpis.yml`` must agree (``tests/test_kpi_types.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from cxkpi.case_rules import CaseRuleSet
from cxkpi.kpi_check import value_bounds
from cxkpi.kpi_spec import Definition
from cxkpi.topics import TopicCatalog
from cxkpi.vocabulary import BREAKDOWNS, TIME_GRAINS

SQL_TYPES = {
    "string": "{{ dbt.type_string() }}",
    "double": "double precision",
    "integer": "integer",
    "date": "date",
    "boolean": "boolean",
}


@dataclass(frozen=True)
class FactTable:
    description: str  # the model's comment
    columns: tuple[tuple[str, str], ...]  # (name, kind of _SQL_TYPES)
    materialized_as_table: bool = False


FACT_TABLES = {
    "int_topic__topics": FactTable(
        "One row per topic of the topic rules (topics_dir).",
        (
            ("topic_id", "string"),
            ("topic_label", "string"),
            ("topic_description", "string"),
            ("declared_in", "string"),
        ),
    ),
    "int_case__rules": FactTable(
        "One row per case rule of the case rules (case_rules_dir).",
        (
            ("rule_id", "string"),
            ("rule_label", "string"),
            ("source", "string"),
            ("condition_text", "string"),
            ("priority", "string"),
            ("owner_level", "string"),
            ("first_contact_sla_hours", "double"),
            ("close_sla_hours", "double"),
            ("effective_from", "date"),
            ("carries", "string"),
            ("recovery_window_days", "double"),
            ("declared_in", "string"),
        ),
    ),
    "int_topic__keywords": FactTable(
        "One row per keyword and exclusion of a topic, normalised as verbatims are.",
        (
            ("topic_id", "string"),
            ("language", "string"),
            ("phrase", "string"),
            ("normalized", "string"),
            ("match_mode", "string"),
            ("is_exclusion", "boolean"),
        ),
    ),
    "int_kpi__definitions": FactTable(
        "One row per goal, KPI and factor.",
        (
            ("kpi_id", "string"),
            ("kind", "string"),
            ("kpi_label", "string"),
            ("kpi_description", "string"),
            ("owner", "string"),
            ("kpi_level", "string"),
            ("source", "string"),
            ("kpi_type", "string"),
            ("unit", "string"),
            ("direction", "string"),
            ("aggregation", "string"),
            ("multiplier", "double"),
            ("percentile", "double"),
            ("target", "double"),
            ("target_by", "date"),
            ("on_track", "double"),
            ("at_risk", "double"),
            ("min_sample", "integer"),
            ("value_min", "double"),
            ("value_max", "double"),
            ("effort", "string"),
            ("actions", "string"),
            ("parents", "string"),
            ("ideal", "double"),
            ("internal_rating", "double"),
            ("definition_sql", "string"),
            ("declared_in", "string"),
        ),
        materialized_as_table=True,
    ),
    "int_kpi__milestones": FactTable(
        "Targets in force: each KPI's milestones in due order, then its final target.",
        (
            ("kpi_id", "string"),
            ("due_order", "integer"),
            ("due_date", "date"),
            ("target_value", "double"),
        ),
    ),
    "int_kpi__edges": FactTable(
        "The theory-of-change tree: child -> parent links with weights.",
        (
            ("child_id", "string"),
            ("parent_id", "string"),
            ("weight", "double"),
            ("parent_order", "integer"),
        ),
    ),
    "int_kpi__formula_inputs": FactTable(
        "The KPIs each derived KPI's formula uses.",
        (("kpi_id", "string"), ("input_id", "string")),
    ),
    "int_kpi__time_grains": FactTable(
        "The time grains each goal, KPI and factor is published at.",
        (("kpi_id", "string"), ("period_grain", "string"), ("display_order", "integer")),
    ),
    "int_kpi__org_levels": FactTable(
        "The org levels each goal, KPI and factor is published at (top level first).",
        (("kpi_id", "string"), ("org_level", "string"), ("display_order", "integer")),
    ),
    "int_kpi__breakdowns": FactTable(
        "The breakdowns each goal, KPI and factor is published by.",
        (("kpi_id", "string"), ("breakdown", "string"), ("display_order", "integer")),
    ),
    "int_kpi__actions": FactTable(
        "The actions that move each KPI, in declared order.",
        (("kpi_id", "string"), ("action_order", "integer"), ("action", "string")),
    ),
}


def _definition_sql(d: Definition) -> str:
    parts = [f"{k}: {e.sql()}" for k, e in d.expressions.items()]
    parts += [f"filter: {f.sql()}" for f in d.filters]
    return "; ".join(parts)


def _definition_row(d: Definition) -> tuple:
    return (
        d.id,
        d.kind,
        d.label,
        d.description,
        d.owner,
        d.level,
        d.source,
        d.type,
        d.unit,
        d.direction,
        d.aggregation,
        d.multiplier,
        d.percentile,
        d.target,
        d.target_by.isoformat() if d.target_by else None,
        d.on_track,
        d.at_risk,
        d.min_sample,
        *(value_bounds(d) or (None, None)),
        d.effort,
        # shown as written in kpi_catalog; SQL joins int_kpi__actions and int_kpi__edges
        json.dumps(d.actions, ensure_ascii=False),
        json.dumps([{"id": p, "weight": w} for p, w in d.parents]),
        d.ideal,
        d.internal_rating,
        _definition_sql(d),
        d.declared_at,
    )


def _listed(definitions: list[Definition], attribute: str, vocabulary: tuple[str, ...]) -> list:
    """One row per definition and declared member, ordered as the vocabulary orders them."""
    return [
        (d.id, member, vocabulary.index(member) + 1)
        for d in definitions
        for member in getattr(d, attribute)
    ]


def fact_rows(
    definitions: list[Definition], kpis: list[Definition], org_levels: tuple[str, ...]
) -> dict[str, list]:
    """The rows of every fact table; ``org_levels`` are the project's, top-down."""
    milestone_rows = []
    for d in kpis:
        dated: list[tuple[str | None, float]] = [
            (m.date.isoformat(), m.value) for m in d.milestones
        ]
        if d.target is not None:
            dated.append((d.target_by.isoformat() if d.target_by else None, d.target))
        milestone_rows += [(d.id, i, due, value) for i, (due, value) in enumerate(dated, 1)]
    return {
        "int_kpi__definitions": [_definition_row(d) for d in definitions],
        "int_kpi__milestones": milestone_rows,
        "int_kpi__edges": [
            (d.id, parent, weight, order)
            for d in kpis
            for order, (parent, weight) in enumerate(d.parents, 1)
        ],
        "int_kpi__formula_inputs": [
            (d.id, input_id)
            for d in kpis
            if "formula" in d.expressions
            for input_id in d.expressions["formula"].columns
        ],
        "int_kpi__time_grains": _listed(definitions, "time_grains", TIME_GRAINS),
        "int_kpi__org_levels": _listed(definitions, "org_levels", org_levels),
        "int_kpi__breakdowns": _listed(definitions, "breakdowns", BREAKDOWNS),
        "int_kpi__actions": [
            (d.id, order, action) for d in kpis for order, action in enumerate(d.actions, 1)
        ],
    }


def topic_fact_rows(topics: TopicCatalog) -> dict[str, list]:
    """The rows of the topic tables: the topics, and their keywords as matched."""
    return {
        "int_topic__topics": [
            (t.topic_id, t.label, t.description, t.declared_in) for t in topics.topics
        ],
        "int_topic__keywords": [
            (k.topic_id, k.language, k.phrase, k.normalized, k.mode, k.is_exclusion)
            for t in topics.topics
            for k in t.keywords
        ],
    }


def case_rule_rows(rules: CaseRuleSet) -> list[tuple]:
    """The rows of int_case__rules: one per case rule, as declared."""
    return [
        (
            r.rule_id,
            r.label,
            r.source,
            r.when,
            r.priority,
            r.owner_level,
            r.first_contact_hours,
            r.close_hours,
            r.effective_from.isoformat(),
            ",".join(r.carries),
            r.recovery_window_days,
            r.declared_in,
        )
        for r in rules.rules
    ]
