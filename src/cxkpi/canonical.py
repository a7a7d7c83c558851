"""The canonical data model: the one place that knows every entity, column, type and rule.

Sources are mapped onto these entities in YAML; the loader validates each row against the
rules here; the dbt sources read the resulting ``raw.<entity>`` tables. Nothing else in the
code base spells out the canonical columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CHANNELS = ("store", "web", "app", "call_centre", "delivery", "support")
TEXT_CLASSES = ("free", "label", "id")
EXPERIENCE_FACTORS = ("product", "service", "relationship", "convenience", "brand_image", "price")
# What a benchmark compares us with (seed 003: competitors, the industry, adjacent
# industries, or our own internal reference).
BENCHMARK_KINDS = ("competitor", "industry", "adjacent_industry", "internal")


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # duckdb/ansi type name: varchar, integer, double, boolean, timestamp
    required: bool = False
    min: float | None = None
    max: float | None = None
    allowed: tuple[str, ...] | None = None
    description: str = ""
    # What a varchar holds, for personal data (cxkpi.pii): "free" text (a verbatim) and
    # "label" values (channel, segment...) are masked on load; an "id" cannot be masked
    # without breaking joins, so a row with personal data in one is rejected.
    text: str | None = None

    def __post_init__(self) -> None:
        if (self.type == "varchar") != (self.text in TEXT_CLASSES):
            raise ValueError(f"column {self.name}: a varchar needs text= one of {TEXT_CLASSES}")


@dataclass(frozen=True)
class Entity:
    name: str
    kind: str  # "x" (experience) or "o" (operational)
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    description: str = ""
    column_names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "column_names", tuple(c.name for c in self.columns))

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")


# Columns every raw table carries besides its canonical ones: where each row came from.
LOAD_METADATA_COLUMNS = (
    Column(
        "_batch_id", "varchar", description="Load batch (run) that inserted the row.", text="id"
    ),
    Column(
        "_source_name", "varchar", description="Source declaration the row came through.", text="id"
    ),
    Column(
        "_source_file",
        "varchar",
        description="Path of the landing file, relative to landing_dir.",
        text="id",
    ),
    Column("_file_sha256", "varchar", description="Checksum of the landing file.", text="id"),
    Column("_source_record", "bigint", description="1-based record number inside the file."),
    Column("_loaded_at", "timestamp", description="UTC time the row was loaded."),
)


# What a case event says happened. A case is open from its first event; `contacted` is the
# first contact with the customer; `closed` ends it, `reopened` opens it again.
CASE_STATUSES = ("opened", "contacted", "closed", "reopened")

ENTITIES: dict[str, Entity] = {
    e.name: e
    for e in (
        Entity(
            "survey_responses",
            "x",
            (
                Column(
                    "response_id",
                    "varchar",
                    required=True,
                    description="Survey response id.",
                    text="id",
                ),
                Column("survey_id", "varchar", description="Survey (questionnaire) id.", text="id"),
                Column("customer_id", "varchar", description="Responding customer.", text="id"),
                Column(
                    "order_id", "varchar", description="Order the response is about.", text="id"
                ),
                Column(
                    "org_unit_id",
                    "varchar",
                    description="Most specific org unit that served (e.g. the advisor); empty: "
                    "the unit of its order",
                    text="id",
                ),
                Column(
                    "channel",
                    "varchar",
                    required=True,
                    allowed=CHANNELS,
                    description="Channel of the experience.",
                    text="label",
                ),
                Column(
                    "touchpoint",
                    "varchar",
                    description="Touchpoint within the channel.",
                    text="label",
                ),
                Column("responded_at", "timestamp", required=True, description="UTC time."),
                Column("nps", "integer", min=0, max=10, description="Likelihood to recommend."),
                Column("csat", "integer", min=1, max=5, description="Satisfaction, 1-5."),
                Column("ces", "integer", min=1, max=7, description="Customer effort, 1-7."),
                Column(
                    "comment",
                    "varchar",
                    description="Free-text verbatim (may hold PII).",
                    text="free",
                ),
                Column("language", "varchar", description="Language of the comment.", text="label"),
                Column("consent", "boolean", description="Consent to follow-up contact."),
            ),
            ("response_id",),
            "One row per survey response (X-data).",
        ),
        Entity(
            "factor_ratings",
            "x",
            (
                Column(
                    "response_id",
                    "varchar",
                    required=True,
                    description="Survey response.",
                    text="id",
                ),
                Column(
                    "factor",
                    "varchar",
                    required=True,
                    description="Experience factor.",
                    text="label",
                ),
                Column("experience", "double", min=0, max=10, description="How it was, 0-10."),
                Column(
                    "expectation", "double", min=0, max=10, description="How it should be, 0-10."
                ),
                Column(
                    "importance", "double", min=0, max=10, description="How much it matters, 0-10."
                ),
            ),
            ("response_id", "factor"),
            "One row per response and experience factor (X-data).",
        ),
        Entity(
            "customers",
            "o",
            (
                Column(
                    "customer_id", "varchar", required=True, description="Customer id.", text="id"
                ),
                Column(
                    "person_id",
                    "varchar",
                    description="Person behind the customer id (one person, many customer ids); "
                    "retention, churn and repeat purchase count persons.",
                    text="id",
                ),
                Column("segment", "varchar", description="Customer segment.", text="label"),
                Column("signed_up_at", "timestamp", description="UTC time of sign-up."),
            ),
            ("customer_id",),
            "One row per customer (O-data).",
        ),
        Entity(
            "orders",
            "o",
            (
                Column("order_id", "varchar", required=True, description="Order id.", text="id"),
                Column(
                    "customer_id",
                    "varchar",
                    required=True,
                    description="Ordering customer.",
                    text="id",
                ),
                Column(
                    "org_unit_id",
                    "varchar",
                    description="Org unit that sold; empty: the unit of its lines "
                    "(multi_unit_orders)",
                    text="id",
                ),
                Column(
                    "person_id",
                    "varchar",
                    description="Person behind the customer id, when customer ids are per order.",
                    text="id",
                ),
                Column(
                    "channel",
                    "varchar",
                    allowed=CHANNELS,
                    description="Sales channel.",
                    text="label",
                ),
                Column("ordered_at", "timestamp", required=True, description="UTC time."),
                Column("amount", "double", min=0, description="Order value."),
            ),
            ("order_id",),
            "One row per order (O-data).",
        ),
        Entity(
            "deliveries",
            "o",
            (
                Column(
                    "delivery_id", "varchar", required=True, description="Delivery id.", text="id"
                ),
                Column(
                    "order_id", "varchar", required=True, description="Delivered order.", text="id"
                ),
                Column("promised_at", "timestamp", required=True, description="Promised UTC time."),
                Column(
                    "delivered_at",
                    "timestamp",
                    description="Actual UTC time; empty while not delivered.",
                ),
            ),
            ("delivery_id",),
            "One row per delivery (O-data).",
        ),
        Entity(
            "tickets",
            "o",
            (
                Column("ticket_id", "varchar", required=True, description="Ticket id.", text="id"),
                Column("customer_id", "varchar", description="Customer.", text="id"),
                Column("order_id", "varchar", description="Order concerned.", text="id"),
                Column(
                    "org_unit_id",
                    "varchar",
                    description="Most specific org unit handling it; empty: the unit of its order",
                    text="id",
                ),
                Column(
                    "channel",
                    "varchar",
                    allowed=CHANNELS,
                    description="Contact channel.",
                    text="label",
                ),
                Column("category", "varchar", description="Ticket category.", text="label"),
                Column("opened_at", "timestamp", required=True, description="UTC time."),
                Column("closed_at", "timestamp", description="UTC time; empty while open."),
                Column(
                    "first_contact_resolution",
                    "boolean",
                    description="Resolved at the first contact.",
                ),
                Column("reopened", "boolean", description="Reopened after closing."),
            ),
            ("ticket_id",),
            "One row per support ticket (O-data).",
        ),
        Entity(
            "org_units",
            "o",
            (
                Column(
                    "org_unit_id", "varchar", required=True, description="Org unit id.", text="id"
                ),
                Column(
                    "level",
                    "varchar",
                    required=True,
                    description="One of the org_levels declared in cxkpi.yml.",
                    text="label",
                ),
                Column(
                    "parent_id",
                    "varchar",
                    description="Parent org unit (empty for the top level); a parent no row "
                    "declares is created one level up.",
                    text="id",
                ),
                Column("name", "varchar", description="Display name.", text="label"),
            ),
            ("org_unit_id",),
            "One row per org unit at one of the declared org_levels (O-data).",
        ),
        Entity(
            "order_lines",
            "o",
            (
                Column("line_id", "varchar", required=True, description="Line id.", text="id"),
                Column("order_id", "varchar", required=True, description="Order.", text="id"),
                Column(
                    "org_unit_id",
                    "varchar",
                    description="Org unit that sold the line (e.g. the seller).",
                    text="id",
                ),
                Column("line_number", "integer", min=0, description="Position in the order."),
                Column("product_id", "varchar", description="Product.", text="id"),
                Column("amount", "double", min=0, description="Line value."),
            ),
            ("line_id",),
            "One row per order line: gives orders without a unit theirs (O-data).",
        ),
        Entity(
            "payments",
            "o",
            (
                Column(
                    "payment_id", "varchar", required=True, description="Payment id.", text="id"
                ),
                Column("order_id", "varchar", required=True, description="Order paid.", text="id"),
                Column("amount", "double", min=0, description="Amount paid."),
                Column("method", "varchar", description="Payment method.", text="label"),
            ),
            ("payment_id",),
            "One row per payment: an order without an amount is worth their sum (O-data).",
        ),
        Entity(
            "case_events",
            # the ticketing tool's history of the follow-up cases the outbox handed over
            "o",
            (
                Column("event_id", "varchar", required=True, description="Event id.", text="id"),
                Column(
                    "case_id",
                    "varchar",
                    required=True,
                    description="The case id the outbox handed over (cxkpi's, not the tool's).",
                    text="id",
                ),
                Column("event_at", "timestamp", required=True, description="UTC time."),
                Column(
                    "status",
                    "varchar",
                    required=True,
                    allowed=CASE_STATUSES,
                    description="What happened: " + ", ".join(CASE_STATUSES) + ".",
                    text="label",
                ),
                Column(
                    "resolution",
                    "varchar",
                    description="How a closed case ended (e.g. resolved, unreachable).",
                    text="label",
                ),
                Column(
                    "root_cause",
                    "varchar",
                    description="Root-cause category the agent chose (the outer loop).",
                    text="label",
                ),
                Column("agent_id", "varchar", description="Agent who logged it.", text="id"),
            ),
            ("event_id",),
            "One row per event of a follow-up case in the ticketing tool (O-data).",
        ),
        Entity(
            "benchmarks",
            # loaded with the O-data: external reference values, not customers' answers
            "o",
            (
                Column(
                    "kpi_id",
                    "varchar",
                    required=True,
                    description="Goal or KPI of the catalog the value compares with.",
                    text="id",
                ),
                Column(
                    "benchmark_name",
                    "varchar",
                    required=True,
                    description="Who or what is compared (a competitor, an industry study).",
                    text="label",
                ),
                Column(
                    "benchmark_kind",
                    "varchar",
                    required=True,
                    allowed=BENCHMARK_KINDS,
                    description="competitor, industry, adjacent_industry or internal.",
                    text="label",
                ),
                Column(
                    "period",
                    "varchar",
                    required=True,
                    description="Period the value is for, as published (e.g. 2026, 2026-Q1).",
                    text="label",
                ),
                Column(
                    "value", "double", required=True, description="The value, in the KPI's unit."
                ),
                Column(
                    "benchmark_source",
                    "varchar",
                    description="Where the value comes from (study, publisher).",
                    text="label",
                ),
            ),
            ("kpi_id", "benchmark_name", "period"),
            "One row per KPI, benchmark and period: comparison values (O-data).",
        ),
    )
}


def entity(name: str) -> Entity:
    try:
        return ENTITIES[name]
    except KeyError:
        known = ", ".join(sorted(ENTITIES))
        raise KeyError(f"unknown canonical entity {name!r}; known: {known}") from None
