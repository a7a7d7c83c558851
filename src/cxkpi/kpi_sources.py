"""The tables a KPI can be computed from: the dbt model behind each, and its columns.

A KPI names a ``source``; its expressions and filters may use only that source's columns.
Every source has the columns the KPI engine needs to slice values: a timestamp for the
time grains, the org unit for the roll-up through the declared org levels (its own, else
through its order: org_unit_order_id), the person behind the customer, and the channel,
customer segment and touchpoint dimensions (empty where a source has none).
"""

from __future__ import annotations

from dataclasses import dataclass

# Logical types of source columns, as the KPI language sees them.
NUMBER, TEXT, BOOLEAN, TIMESTAMP = "number", "text", "boolean", "timestamp"


@dataclass(frozen=True)
class KpiSource:
    name: str
    model: str  # dbt model name
    description: str
    date_column: str  # default timestamp for the time grains
    key: str  # the model's primary key: one observation per KPI and key
    columns: dict[str, str]  # column -> logical type
    # (low, high) of a bounded numeric column: targets of means are checked against it
    scales: dict[str, tuple[float, float]]
    # the column naming the survey response whose verbatim's topics a row has (the
    # topic breakdown); None for a source without verbatims
    verbatim_key: str | None = None

    @property
    def timestamp_columns(self) -> list[str]:
        return [c for c, t in self.columns.items() if t == TIMESTAMP]


# Columns every source carries for slicing; the engine reads them, expressions may too.
SLICE_COLUMNS = {
    "org_unit_id": TEXT,
    "org_unit_order_id": TEXT,
    "person_id": TEXT,
    "channel": TEXT,
    "segment": TEXT,
    "touchpoint": TEXT,
}

SOURCES: dict[str, KpiSource] = {
    s.name: s
    for s in (
        KpiSource(
            "survey_responses",
            "int_survey_responses_enriched",
            "One row per survey response, joined to its order, delivery and customer.",
            "responded_at",
            "response_id",
            {
                "response_id": TEXT,
                "customer_id": TEXT,
                "order_id": TEXT,
                **SLICE_COLUMNS,
                "responded_at": TIMESTAMP,
                "nps": NUMBER,
                "csat": NUMBER,
                "ces": NUMBER,
                "nps_category": TEXT,
                "order_amount": NUMBER,
                "has_delivery": BOOLEAN,
                "delivery_was_late": BOOLEAN,
                "repurchased_within_90d": BOOLEAN,
            },
            {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)},
            verbatim_key="response_id",
        ),
        KpiSource(
            "factor_ratings",
            "int_factor_ratings_enriched",
            "One row per response and experience factor, with the response's context.",
            "responded_at",
            "factor_rating_id",
            {
                "response_id": TEXT,
                "customer_id": TEXT,
                **SLICE_COLUMNS,
                "responded_at": TIMESTAMP,
                "factor": TEXT,
                "experience": NUMBER,
                "expectation": NUMBER,
                "importance": NUMBER,
                "satisfaction_gap": NUMBER,
                "nps": NUMBER,
            },
            {"experience": (0, 10), "expectation": (0, 10), "importance": (0, 10)},
            verbatim_key="response_id",
        ),
        KpiSource(
            "orders",
            "int_order_history",
            "One row per order with the customer's purchase history up to it.",
            "ordered_at",
            "order_id",
            {
                "order_id": TEXT,
                "customer_id": TEXT,
                **SLICE_COLUMNS,
                "ordered_at": TIMESTAMP,
                "amount": NUMBER,
                "order_number": NUMBER,
                "is_repeat_purchase": BOOLEAN,
                "days_since_previous_order": NUMBER,
                "customer_tenure_days": NUMBER,
                "repurchased_within_90d": BOOLEAN,
                "is_observable_90d": BOOLEAN,
            },
            {},
        ),
        KpiSource(
            "deliveries",
            "int_deliveries_enriched",
            "One row per delivery with its order's store and channel.",
            "promised_at",
            "delivery_id",
            {
                "delivery_id": TEXT,
                "order_id": TEXT,
                "customer_id": TEXT,
                **SLICE_COLUMNS,
                "promised_at": TIMESTAMP,
                "delivered_at": TIMESTAMP,
                "is_delivered": BOOLEAN,
                "is_on_time": BOOLEAN,
                "hours_late": NUMBER,
            },
            {},
        ),
        KpiSource(
            "tickets",
            "int_tickets_enriched",
            "One row per support ticket with resolution times.",
            "opened_at",
            "ticket_id",
            {
                "ticket_id": TEXT,
                "customer_id": TEXT,
                "order_id": TEXT,
                **SLICE_COLUMNS,
                "category": TEXT,
                "opened_at": TIMESTAMP,
                "closed_at": TIMESTAMP,
                "is_closed": BOOLEAN,
                "first_contact_resolution": BOOLEAN,
                "reopened": BOOLEAN,
                "hours_to_close": NUMBER,
            },
            {},
        ),
        KpiSource(
            "cases",
            "int_case__loop",
            "One row per follow-up case of the closed loop (case_rules/), at the unit that "
            "owns it, with its SLA outcomes and, for survey cases, its recovery.",
            "opened_at",
            "case_id",
            {
                "case_id": TEXT,
                "rule_id": TEXT,
                "source": TEXT,
                "priority": TEXT,
                "owner_level": TEXT,
                **SLICE_COLUMNS,
                "opened_at": TIMESTAMP,
                "first_contact_at": TIMESTAMP,
                "closed_at": TIMESTAMP,
                "is_withdrawn": BOOLEAN,
                "is_closed": BOOLEAN,
                "is_open": BOOLEAN,
                "is_contacted": BOOLEAN,
                "first_contact_met": BOOLEAN,
                "close_met": BOOLEAN,
                "is_overdue": BOOLEAN,
                "hours_to_first_contact": NUMBER,
                "hours_to_close": NUMBER,
                "open_age_hours": NUMBER,
                "reopen_count": NUMBER,
                "is_detractor_case": BOOLEAN,
                "reached_in_time": BOOLEAN,
                "has_next_answer": BOOLEAN,
                "is_recovered": BOOLEAN,
                "is_repurchase_observable": BOOLEAN,
                "repurchased": BOOLEAN,
            },
            {},
        ),
    )
}
