"""The KPI language's words: the fields a definition may have, and what it becomes.

``FIELDS`` is the single description of the language: validation (``kpi_check``), the
JSON Schema for editors (``kpi_schema``) and the docs all come from it; the types and
what differs between them are in ``kpi_types``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from cxkpi import kpi_expr
from cxkpi.config import DEFAULT_MIN_SAMPLE
from cxkpi.kpi_sources import SOURCES
from cxkpi.kpi_types import KPI_TYPES, TYPES, multiplier
from cxkpi.vocabulary import BREAKDOWNS, DIRECTIONS, TIME_GRAINS, UNITS

KINDS = ("kpi", "goal", "factor")
LEVELS = ("goal", "outcome", "driver", "operational")
EFFORTS = ("low", "medium", "high")
ID_PATTERN = "^[a-z][a-z0-9_]{0,59}$"


@dataclass(frozen=True)
class FieldSpec:
    type: str  # str, number, integer, bool, list, mapping, expression, date, id
    description: str
    enum: tuple[str, ...] | None = None
    kinds: tuple[str, ...] = ("kpi", "goal")


FIELDS: dict[str, FieldSpec] = {
    "kind": FieldSpec("str", "What the document declares (default kpi).", KINDS, KINDS),
    "id": FieldSpec("id", "Unique id: lowercase letters, digits, underscores.", None, KINDS),
    "label": FieldSpec("str", "Display name (default: from the id).", None, KINDS),
    "enabled": FieldSpec(
        "bool",
        "false switches it off: not computed or published; KPIs that name it as a parent "
        "are linked to its parents instead (default true).",
        None,
        KINDS,
    ),
    "description": FieldSpec("str", "What it measures and why it matters.", None, KINDS),
    "owner": FieldSpec("str", "Accountable person or team.", None, KINDS),
    "level": FieldSpec(
        "str", "Place in the theory of change (default: goal for goals, else outcome).", LEVELS
    ),
    "parents": FieldSpec("list", "Goals/KPIs this one moves: ids, or {id, weight}."),
    "source": FieldSpec("str", "Table the KPI is computed from.", tuple(SOURCES)),
    "type": FieldSpec("str", "How values are computed.", TYPES),
    "measure": FieldSpec(
        "expression",
        "The measured expression (nps, top_box, bottom_box, "
        "mean, sum, count_distinct, percentile).",
    ),
    "numerator": FieldSpec("expression", "Numerator of a ratio (summed)."),
    "denominator": FieldSpec("expression", "Denominator of a ratio (summed)."),
    "condition": FieldSpec("expression", "For share: rows meeting it over all rows."),
    "formula": FieldSpec("expression", "For derived: arithmetic over other KPI ids."),
    "scale": FieldSpec("list", "For top_box/bottom_box: [min, max] of the answer scale."),
    "box": FieldSpec("integer", "For top_box/bottom_box: answers in the box (default 2)."),
    "percentile": FieldSpec("number", "For percentile: which one, between 0 and 1."),
    "filters": FieldSpec("list", "Conditions (SQL fragments) every counted row meets."),
    "date": FieldSpec("str", "Timestamp column that places a row in time (default: the source's)."),
    "dimensions": FieldSpec("mapping", "time_grains, org_levels and breakdowns to compute."),
    "unit": FieldSpec("str", "Unit of the value (default by type).", UNITS),
    "direction": FieldSpec("str", "higher or lower is better (default higher).", DIRECTIONS),
    "target": FieldSpec(
        "number_or_mapping", "A number, or {value, by, milestones: [{date, value}]}."
    ),
    "thresholds": FieldSpec(
        "mapping", "{on_track: value, at_risk: value}; on_track defaults to the target in force."
    ),
    "min_sample": FieldSpec(
        "integer",
        f"Minimum n for a reliable value (default {DEFAULT_MIN_SAMPLE}, or cxkpi.yml's).",
        None,
        KINDS,
    ),
    "effort": FieldSpec("str", "Effort to move it, for the roadmap.", EFFORTS),
    "actions": FieldSpec("list", "Actions that move it, for the roadmap."),
    "ideal": FieldSpec("number", "Ideal experience level of the factor (0-10).", None, ("factor",)),
    "internal_rating": FieldSpec(
        "number",
        "The brand's own rating of the factor (0-10), for the perception gap.",
        None,
        ("factor",),
    ),
}
# Fields the language no longer has, each with where its content lives now: a definition
# that still writes one gets this as its problem, not a bare "unknown field".
RETIRED_FIELDS: dict[str, str] = {
    "benchmarks": (
        "benchmarks now come from a benchmarks export, loaded like any source into the "
        "canonical entity benchmarks (kpi_id, benchmark_name, benchmark_kind, period, value, "
        "benchmark_source): move these rows there, see docs/analysts.md, section Benchmarks"
    ),
}
# The dimensions a KPI declares, each with its choices (the vocabulary's; org_levels are
# the levels the project declares in cxkpi.yml, checked by the DefinitionChecker).
DIMENSIONS: dict[str, tuple[str, ...] | None] = {
    "time_grains": TIME_GRAINS,
    "org_levels": None,
    "breakdowns": BREAKDOWNS,
}
# nested mapping -> its keys, each with its allowed values (None: any)
_NESTED_KEYS: dict[str, dict[str, tuple[str, ...] | None]] = {
    "dimensions": dict(DIMENSIONS),
    "target": {"value": None, "by": None, "milestones": None},
    "thresholds": {"on_track": None, "at_risk": None},
    "milestone": {"date": None, "value": None},
    "parent": {"id": None, "weight": None},
}


@dataclass
class Milestone:
    date: dt.date
    value: float


@dataclass
class Definition:
    """A goal, KPI or factor after validation and defaults."""

    kind: str
    id: str
    label: str
    description: str = ""
    owner: str = ""
    level: str = "outcome"
    parents: list[tuple[str, float]] = field(default_factory=list)
    source: str | None = None
    type: str | None = None
    expressions: dict[str, kpi_expr.Expression] = field(default_factory=dict)
    scale: tuple[float, float] | None = None
    box: int = 2
    percentile: float | None = None
    filters: list[kpi_expr.Expression] = field(default_factory=list)
    date: str | None = None
    time_grains: tuple[str, ...] = TIME_GRAINS
    # empty: every level the project declares
    org_levels: tuple[str, ...] = ()
    breakdowns: tuple[str, ...] = ("channel",)
    unit: str | None = None
    direction: str = "higher"
    target: float | None = None
    target_by: dt.date | None = None
    milestones: list[Milestone] = field(default_factory=list)
    on_track: float | None = None
    at_risk: float | None = None
    min_sample: int = DEFAULT_MIN_SAMPLE
    effort: str | None = None
    actions: list[str] = field(default_factory=list)
    ideal: float | None = None
    internal_rating: float | None = None
    enabled: bool = True
    file: Path | None = None
    line: int = 0

    @property
    def measurable(self) -> bool:
        return self.type is not None

    @property
    def aggregation(self) -> str | None:
        return KPI_TYPES[self.type].aggregation if self.type else None

    @property
    def multiplier(self) -> float:
        return multiplier(self.type, self.unit)

    @property
    def declared_at(self) -> str:
        return f"{self.file}:{self.line}" if self.file else ""
