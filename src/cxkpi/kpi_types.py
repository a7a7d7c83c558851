"""The KPI types, one entry each: everything that differs from one type to the next.

Validation (``kpi_check``), the compiler's observation SQL (``kpi_compile``), the
Semantic Layer export (``kpi_semantic``), the scaffold (``cxkpi new``) and the types table
in docs/analysts.md all read this registry, so adding a type is adding one entry here
(``tests/test_kpi_types.py`` fails when one of those places misses a type).

An observation turns one source row into additive parts: ``numerator`` and
``denominator`` (summed, then divided for ratio aggregation), ``measure_value`` (for
percentiles) and ``distinct_key`` (for distinct counts). Each part is a small SQL
template rendered with the compiler's delimiters (``<< >>``, so dbt's ``{{ }}`` passes
through): ``<< measure >>`` is the checked expression as SQL, ``<< numerator_number >>``
an expression counted 1/0 where it is a condition, and ``number`` formats a bound.
"""

from __future__ import annotations

from dataclasses import dataclass

# How values of a type roll up, and the Semantic Layer measure each one is (agg, column);
# ratio and derived become MetricFlow ratio and derived metrics instead of one measure.
AGGREGATIONS = ("ratio", "sum", "distinct", "percentile", "derived")
SEMANTIC_MEASURES = {
    "sum": ("sum", "numerator"),
    "distinct": ("count_distinct", "distinct_key"),
    "percentile": ("percentile", "measure_value"),
}
# Units in which a share of rows or a ratio is shown times 100.
HUNDREDFOLD_UNITS = ("percent", "points")


@dataclass(frozen=True)
class Observation:
    """SQL templates for the parts one source row contributes."""

    numerator: str = "1"
    denominator: str = "1"
    measure_value: str = "null"
    distinct_key: str = "null"
    # the expression a row must have (not null) to count, if any
    counted_when_present: str | None = "measure"


@dataclass(frozen=True)
class KpiType:
    name: str
    needs: tuple[str, ...]  # expression fields the type requires
    unit: str  # default unit
    aggregation: str
    summary: str  # what the value is (docs)
    observation: Observation | None  # None: computed from other KPIs, not from rows
    options: tuple[str, ...] = ()  # type-specific settings it accepts
    needs_note: str = ""  # said after the needed fields in the docs
    hundredfold: bool = False  # x100 in percent or points units
    bounds: tuple[float, float] | None = None  # always bounded by
    percent_bounds: bool = False  # 0..100 when shown in percent
    scale_bounds: bool = False  # within the measured column's answer scale
    answer_scale: tuple[float, float] | None = None  # the measure must use this scale
    numeric_measure: bool = True  # the measure must be a number
    direction: str = "higher"  # default direction


_BOX = "case when << measure >> {} << ({}) | number >> then 1 else 0 end"

KPI_TYPES: dict[str, KpiType] = {
    t.name: t
    for t in (
        KpiType(
            "nps",
            ("measure",),
            "points",
            "ratio",
            "% promoters (9-10) − % detractors (0-6)",
            Observation(
                numerator="case when << measure >> >= 9 then 1 "
                "when << measure >> <= 6 then -1 else 0 end"
            ),
            needs_note="(0-10 answer)",
            hundredfold=True,
            bounds=(-100.0, 100.0),
            answer_scale=(0.0, 10.0),
        ),
        KpiType(
            "top_box",
            ("measure",),
            "percent",
            "ratio",
            "% of answers in the top box",
            Observation(numerator=_BOX.format(">=", "scale_high - box + 1")),
            options=("scale", "box"),
            hundredfold=True,
            percent_bounds=True,
        ),
        KpiType(
            "bottom_box",
            ("measure",),
            "percent",
            "ratio",
            "% of answers in the bottom box",
            Observation(numerator=_BOX.format("<=", "scale_low + box - 1")),
            options=("scale", "box"),
            hundredfold=True,
            percent_bounds=True,
            direction="lower",
        ),
        KpiType(
            "mean",
            ("measure",),
            "score",
            "ratio",
            "sum / count",
            Observation(numerator="<< measure >>"),
            scale_bounds=True,
        ),
        KpiType(
            "ratio",
            ("numerator", "denominator"),
            "percent",
            "ratio",
            "Σ numerator / Σ denominator (×100 in percent or points)",
            Observation(
                numerator="<< numerator_number >>",
                denominator="<< denominator_number >>",
                counted_when_present="denominator",
            ),
            hundredfold=True,
        ),
        KpiType(
            "share",
            ("condition",),
            "percent",
            "ratio",
            "% of rows where the condition is true",
            Observation(
                numerator="case when << condition >> then 1 else 0 end",
                counted_when_present=None,
            ),
            hundredfold=True,
            percent_bounds=True,
        ),
        KpiType("count", (), "count", "sum", "rows", Observation(counted_when_present=None)),
        KpiType(
            "count_distinct",
            ("measure",),
            "count",
            "distinct",
            "distinct values",
            Observation(distinct_key="<< measure >>"),
            numeric_measure=False,
        ),
        KpiType(
            "sum", ("measure",), "count", "sum", "Σ measure", Observation(numerator="<< measure >>")
        ),
        KpiType(
            "percentile",
            ("measure",),
            "score",
            "percentile",
            "continuous percentile",
            Observation(measure_value="<< measure >>"),
            options=("percentile",),
            scale_bounds=True,
        ),
        KpiType(
            "derived",
            ("formula",),
            "score",
            "derived",
            "the formula on their values in the same slice",
            None,
            needs_note="over other KPI ids",
        ),
    )
}
TYPES = tuple(KPI_TYPES)
# Every expression field some type needs, in the order the docs list them.
EXPRESSION_FIELDS = ("measure", "numerator", "denominator", "condition", "formula")
# Type-specific settings, each accepted only by the types that list it in ``options``.
TYPE_OPTIONS = ("scale", "box", "percentile")

assert {f for t in KPI_TYPES.values() for f in t.needs} <= set(EXPRESSION_FIELDS)
assert {o for t in KPI_TYPES.values() for o in t.options} <= set(TYPE_OPTIONS)
assert {t.aggregation for t in KPI_TYPES.values()} <= set(AGGREGATIONS)


def multiplier(type_name: str | None, unit: str | None) -> float:
    """What numerator / denominator is multiplied by: 100 for a share shown in percent."""
    kpi_type = KPI_TYPES.get(type_name or "")
    return 100.0 if kpi_type and kpi_type.hundredfold and unit in HUNDREDFOLD_UNITS else 1.0


def docs_table() -> str:
    """The types table of docs/analysts.md (a test keeps the page equal to it)."""
    rows = ["| type | needs | value | default unit |", "|---|---|---|---|"]
    for t in KPI_TYPES.values():
        needs = ", ".join(f"`{n}`" for n in (*t.needs, *t.options)) or "—"
        if t.needs_note:
            needs += f" {t.needs_note}"
        rows.append(f"| `{t.name}` | {needs} | {t.summary} | {t.unit} |")
    return "\n".join(rows) + "\n"
