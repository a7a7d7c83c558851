"""The KPI language: goals, KPIs and experience factors as YAML documents.

``load_catalog(paths)`` reads every document, checks everything it can, and returns the
catalog together with *all* problems found, each with file, line and column. The field
table below is the single description of the language: validation, defaults, the JSON
Schema for editors (``json_schema()``) and the docs all come from it.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cxkpi import kpi_expr
from cxkpi.config import DEFAULT_MIN_SAMPLE
from cxkpi.kpi_sources import BOOLEAN, NUMBER, SOURCES
from cxkpi.vocabulary import BREAKDOWNS, DIRECTIONS, KPI_ORG_LEVELS, TIME_GRAINS, UNITS

KINDS = ("kpi", "goal", "factor")
LEVELS = ("goal", "outcome", "driver", "operational")
TYPES = (
    "nps",
    "top_box",
    "bottom_box",
    "mean",
    "ratio",
    "share",
    "count",
    "count_distinct",
    "sum",
    "percentile",
    "derived",
)
BENCHMARK_KINDS = ("competitor", "industry", "adjacent_industry", "internal")
EFFORTS = ("low", "medium", "high")
ID_PATTERN = "^[a-z][a-z0-9_]{0,59}$"

# type -> (expression fields it needs, default unit, how values aggregate)
TYPE_RULES: dict[str, tuple[tuple[str, ...], str, str]] = {
    "nps": (("measure",), "points", "ratio"),
    "top_box": (("measure",), "percent", "ratio"),
    "bottom_box": (("measure",), "percent", "ratio"),
    "mean": (("measure",), "score", "ratio"),
    "ratio": (("numerator", "denominator"), "percent", "ratio"),
    "share": (("condition",), "percent", "ratio"),
    "count": ((), "count", "sum"),
    "count_distinct": (("measure",), "count", "distinct"),
    "sum": (("measure",), "count", "sum"),
    "percentile": (("measure",), "score", "percentile"),
    "derived": (("formula",), "score", "derived"),
}
_EXPRESSION_FIELDS = ("measure", "numerator", "denominator", "condition", "formula")


@dataclass(frozen=True)
class FieldSpec:
    type: str  # str, number, integer, list, mapping, expression, date, id
    description: str
    enum: tuple[str, ...] | None = None
    kinds: tuple[str, ...] = ("kpi", "goal")


FIELDS: dict[str, FieldSpec] = {
    "kind": FieldSpec("str", "What the document declares (default kpi).", KINDS, KINDS),
    "id": FieldSpec("id", "Unique id: lowercase letters, digits, underscores.", None, KINDS),
    "label": FieldSpec("str", "Display name (default: from the id).", None, KINDS),
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
    "benchmarks": FieldSpec("list", "Comparison points: {name, kind, value, period, source}."),
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
_NESTED_KEYS = {
    "dimensions": {
        "time_grains": TIME_GRAINS,
        "org_levels": KPI_ORG_LEVELS,
        "breakdowns": BREAKDOWNS,
    },
    "target": {"value": None, "by": None, "milestones": None},
    "thresholds": {"on_track": None, "at_risk": None},
    "benchmark": {
        "name": None,
        "kind": BENCHMARK_KINDS,
        "value": None,
        "period": None,
        "source": None,
    },
    "milestone": {"date": None, "value": None},
    "parent": {"id": None, "weight": None},
}


# --- reading YAML with positions ---------------------------------------------------------


Path_ = tuple  # a path into a document: keys and list indexes


@dataclass
class Document:
    file: Path
    data: Any
    marks: dict[Path_, tuple[int, int]]  # path -> (line, column), 1-based
    line: int

    def at(self, path: Path_) -> tuple[int, int]:
        while path and path not in self.marks:
            path = path[:-1]
        return self.marks.get(path, (self.line, 1))


@dataclass(frozen=True)
class Problem:
    file: Path
    line: int
    column: int
    message: str
    hint: str = ""

    def __str__(self) -> str:
        hint = f" ({self.hint})" if self.hint else ""
        return f"{self.file}:{self.line}:{self.column}: {self.message}{hint}"


class _AliasFound(Exception):
    def __init__(self, node: yaml.Node) -> None:
        self.node = node


def _walk_marks(node: yaml.Node, path: Path_, marks: dict, seen: set[int]) -> None:
    # A node met twice is a YAML alias (*name): refused, so that a definition is what it
    # reads like and "billion laughs" documents cannot blow up the validator.
    if id(node) in seen:
        raise _AliasFound(node)
    seen.add(id(node))
    line, column = node.start_mark.line + 1, node.start_mark.column + 1
    if isinstance(node, yaml.ScalarNode) and node.style in ("'", '"'):
        column += 1  # positions inside a quoted value count from after the quote
    marks[path] = (line, column)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                marks[(*path, key.value, "<key>")] = (
                    key.start_mark.line + 1,
                    key.start_mark.column + 1,
                )
                _walk_marks(value, (*path, key.value), marks, seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk_marks(item, (*path, index), marks, seen)


def _duplicate_keys(node: yaml.Node, file: Path, problems: list[Problem]) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set = set()
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    problems.append(
                        Problem(
                            file,
                            key.start_mark.line + 1,
                            key.start_mark.column + 1,
                            f"'{key.value}' is given twice in this mapping",
                        )
                    )
                seen.add(key.value)
            _duplicate_keys(value, file, problems)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _duplicate_keys(item, file, problems)


def read_documents(file: Path, problems: list[Problem]) -> list[Document]:
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem(file, 1, 1, f"cannot read the file: {exc}"))
        return []
    documents = []
    try:
        for node in yaml.compose_all(text, Loader=yaml.SafeLoader):
            if node is None:
                continue
            marks: dict = {}
            try:
                _walk_marks(node, (), marks, set())
            except _AliasFound as alias:
                mark = alias.node.start_mark
                problems.append(
                    Problem(
                        file,
                        mark.line + 1,
                        mark.column + 1,
                        "YAML anchors and aliases (&name, *name) are not allowed",
                        "write the value out where it is used",
                    )
                )
                continue
            try:
                data = yaml.SafeLoader("").construct_document(node)
            except (ValueError, TypeError, yaml.YAMLError) as exc:
                mark = getattr(exc, "problem_mark", None) or node.start_mark
                problems.append(
                    Problem(
                        file,
                        mark.line + 1,
                        mark.column + 1,
                        f"a value cannot be read: {exc}",
                        "dates are YYYY-MM-DD; numbers are plain digits",
                    )
                )
                continue
            _duplicate_keys(node, file, problems)
            documents.append(Document(file, data, marks, node.start_mark.line + 1))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problems.append(
            Problem(
                file,
                line,
                column,
                f"not valid YAML: {exc.problem}",
                "check indentation, colons and quotes",
            )
        )
    return documents


# --- the catalog -----------------------------------------------------------------------


@dataclass
class Milestone:
    date: dt.date
    value: float


@dataclass
class Benchmark:
    name: str
    kind: str
    value: float
    period: str = ""
    source: str = ""


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
    org_levels: tuple[str, ...] = KPI_ORG_LEVELS
    breakdowns: tuple[str, ...] = ("channel",)
    unit: str | None = None
    direction: str = "higher"
    target: float | None = None
    target_by: dt.date | None = None
    milestones: list[Milestone] = field(default_factory=list)
    on_track: float | None = None
    at_risk: float | None = None
    benchmarks: list[Benchmark] = field(default_factory=list)
    min_sample: int = DEFAULT_MIN_SAMPLE
    effort: str | None = None
    actions: list[str] = field(default_factory=list)
    ideal: float | None = None
    internal_rating: float | None = None
    file: Path | None = None
    line: int = 0

    @property
    def measurable(self) -> bool:
        return self.type is not None

    @property
    def aggregation(self) -> str | None:
        return TYPE_RULES[self.type][2] if self.type else None

    @property
    def multiplier(self) -> float:
        if self.type in ("nps", "top_box", "bottom_box", "share", "ratio") and self.unit in (
            "percent",
            "points",
        ):
            return 100.0
        return 1.0

    @property
    def declared_at(self) -> str:
        return f"{self.file}:{self.line}" if self.file else ""


@dataclass
class Catalog:
    definitions: list[Definition]
    problems: list[Problem]

    @property
    def kpis(self) -> list[Definition]:
        return [d for d in self.definitions if d.kind in ("kpi", "goal")]

    @property
    def factors(self) -> list[Definition]:
        return [d for d in self.definitions if d.kind == "factor"]

    def by_id(self) -> dict[str, Definition]:
        return {d.id: d for d in self.definitions}


class _Checker:
    """Turns one document into a Definition, collecting problems instead of stopping."""

    def __init__(self, doc: Document, problems: list[Problem], default_min_sample: int):
        self.doc = doc
        self.problems = problems
        self.default_min_sample = default_min_sample
        self.ok = True

    def problem(self, path: Path_, message: str, hint: str = "", offset: int = 0) -> None:
        line, column = self.doc.at(path)
        self.problems.append(Problem(self.doc.file, line, column + offset, message, hint))
        self.ok = False

    def key_problem(self, path: Path_, message: str, hint: str = "") -> None:
        key_path = (*path, "<key>")
        line, column = self.doc.marks.get(key_path, self.doc.at(path))
        self.problems.append(Problem(self.doc.file, line, column, message, hint))
        self.ok = False

    def text(self, path: Path_, value: Any) -> str | None:
        """Free text: kept byte for byte (the compiler writes it as data, never as code),
        but no control character a table or a file could not hold or show."""
        if value is None:
            return None
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            text = str(value)
            bad = next((c for c in text if _is_forbidden_control(c)), None)
            if bad is not None:
                self.problem(
                    path,
                    f"{_label(path)} holds the control character U+{ord(bad):04X}",
                    "only tabs and line breaks are allowed in text",
                )
                return None
            return text
        self.problem(path, f"{_label(path)} must be text, got {type(value).__name__}")
        return None

    def number(self, path: Path_, value: Any, integer: bool = False) -> float | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            what = "a whole number" if integer else "a number"
            self.problem(path, f"{_label(path)} must be {what}, got {value!r}")
            return None
        if integer and not float(value).is_integer():
            self.problem(path, f"{_label(path)} must be a whole number, got {value!r}")
            return None
        return float(value)

    def choice(self, path: Path_, value: Any, options: tuple[str, ...]) -> str | None:
        if value is None:
            return None
        if value not in options:
            close = difflib.get_close_matches(str(value), options, n=1)
            hint = f"did you mean '{close[0]}'?" if close else "one of " + ", ".join(options)
            self.problem(path, f"{_label(path)} {value!r} is not one of {', '.join(options)}", hint)
            return None
        return str(value)

    def date(self, path: Path_, value: Any) -> dt.date | None:
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                pass
        self.problem(path, f"{_label(path)} must be a date like 2027-12-31, got {value!r}")
        return None

    def mapping_keys(self, path: Path_, value: Any, allowed: dict) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.problem(path, f"{_label(path)} must be a mapping with keys " + ", ".join(allowed))
            return {}
        for key in value:
            if key not in allowed:
                self.key_problem(
                    (*path, key),
                    f"unknown key '{key}' in {_label(path)}",
                    _suggest(str(key), allowed),
                )
        return value

    def expression(self, path: Path_, value: Any, columns: set[str] | None):
        try:
            return kpi_expr.parse(value, columns)
        except kpi_expr.ExpressionError as exc:
            self.problem(path, f"{_label(path)}: {exc}", exc.hint, exc.offset)
            return None

    # --- the document ---

    def check(self) -> Definition | None:
        data = self.doc.data
        if not isinstance(data, dict):
            self.problem((), "a definition must be a mapping of fields, e.g. 'id: nps'")
            return None
        kind = self.choice(("kind",), data.get("kind", "kpi"), KINDS) or "kpi"
        for key in data:
            spec = FIELDS.get(key)
            if spec is None:
                self.key_problem((key,), f"unknown field '{key}'", _suggest(str(key), FIELDS))
            elif kind not in spec.kinds:
                self.key_problem((key,), f"'{key}' does not apply to a {kind}")
        raw_id = data.get("id")
        if raw_id is None:
            self.problem((), "missing 'id'", "every definition needs an id, e.g. id: nps")
            return None
        import re

        if not isinstance(raw_id, str) or not re.match(ID_PATTERN, raw_id):
            self.problem(
                ("id",),
                f"id {raw_id!r} must be lowercase letters, digits and "
                "underscores, starting with a letter (at most 60)",
            )
            return None
        label = self.text(("label",), data.get("label")) or raw_id.replace("_", " ").capitalize()
        definition = Definition(
            kind=kind,
            id=raw_id,
            label=label,
            description=self.text(("description",), data.get("description")) or "",
            owner=self.text(("owner",), data.get("owner")) or "",
            file=self.doc.file,
            line=self.doc.line,
        )
        if kind == "factor":
            ideal = self.number(("ideal",), data.get("ideal"))
            if ideal is not None and not 0 <= ideal <= 10:
                self.problem(("ideal",), f"ideal {ideal:g} is outside the 0-10 rating scale")
            definition.ideal = ideal
            internal = self.number(("internal_rating",), data.get("internal_rating"))
            if internal is not None and not 0 <= internal <= 10:
                self.problem(("internal_rating",), f"internal_rating {internal:g} is outside 0-10")
            definition.internal_rating = internal
            definition.level = "driver"
            min_sample = self.number(("min_sample",), data.get("min_sample"), integer=True)
            definition.min_sample = (
                int(min_sample) if min_sample is not None else self.default_min_sample
            )
            return definition if self.ok else None
        self._check_kpi(data, definition)
        return definition if self.ok else None

    def _check_kpi(self, data: dict, d: Definition) -> None:
        d.level = self.choice(("level",), data.get("level"), LEVELS) or (
            "goal" if d.kind == "goal" else "outcome"
        )
        d.parents = self._parents(data.get("parents"))
        d.type = self.choice(("type",), data.get("type"), TYPES)
        d.direction = self.choice(("direction",), data.get("direction"), DIRECTIONS) or (
            "lower" if d.type == "bottom_box" else "higher"
        )
        d.effort = self.choice(("effort",), data.get("effort"), EFFORTS)
        d.actions = [
            a
            for i, a in enumerate(self._list(("actions",), data.get("actions")))
            if self.text(("actions", i), a) is not None
        ]
        min_sample = self.number(("min_sample",), data.get("min_sample"), integer=True)
        d.min_sample = int(min_sample) if min_sample is not None else self.default_min_sample
        if min_sample is not None and min_sample < 1:
            self.problem(("min_sample",), "min_sample must be at least 1")
        if d.type is None:
            if "type" not in data:
                for key in _EXPRESSION_FIELDS + ("source",):
                    if key in data:
                        self.problem(
                            (key,), f"'{key}' needs a 'type'", "one of " + ", ".join(TYPES)
                        )
                if d.kind == "kpi":
                    self.problem(
                        (),
                        f"KPI '{d.id}' has no 'type'",
                        "a KPI is measured: give a type (a goal may have none)",
                    )
            d.unit = self.choice(("unit",), data.get("unit"), UNITS)
            self._targets(data, d)
            return
        needed, default_unit, _ = TYPE_RULES[d.type]
        d.unit = self.choice(("unit",), data.get("unit"), UNITS) or default_unit
        if d.type == "ratio" and d.unit not in ("percent", "ratio", "points"):
            pass  # a ratio in e.g. currency per order: value = numerator / denominator
        for key in _EXPRESSION_FIELDS:
            if key in data and key not in needed:
                self.problem(
                    (key,),
                    f"'{key}' does not apply to type {d.type}",
                    "it needs " + (", ".join(needed) or "no expression"),
                )
        for key in needed:
            if key not in data:
                self.problem((), f"type {d.type} needs '{key}'")
        if d.type == "derived":
            if "source" in data:
                self.problem(
                    ("source",), "a derived KPI has no source: its formula uses other KPIs"
                )
            if "formula" in data:
                expression = self.expression(("formula",), data["formula"], None)
                if expression is not None:
                    d.expressions["formula"] = expression
            self._targets(data, d)
            self._dimensions(data.get("dimensions"), d)
            return
        source_name = self.choice(("source",), data.get("source"), tuple(SOURCES))
        if "source" not in data:
            self.problem((), f"type {d.type} needs a 'source'", "one of " + ", ".join(SOURCES))
        if source_name is None:
            return
        d.source = source_name
        source = SOURCES[source_name]
        columns = set(source.columns)
        booleans = {c for c, kind in source.columns.items() if kind == BOOLEAN}
        for key in needed:
            if key in data:
                expression = self.expression((key,), data[key], columns)
                if expression is not None:
                    d.expressions[key] = expression
                    self._check_kind(key, expression, d, source, booleans)
        filters = data.get("filters")
        if isinstance(filters, str):
            filters = [filters]
            paths = [("filters",)]
        else:
            filters = self._list(("filters",), filters)
            paths = [("filters", i) for i in range(len(filters))]
        for path, text in zip(paths, filters, strict=True):
            expression = self.expression(path, text, columns)
            if expression is not None:
                if not expression.is_predicate(booleans):
                    self.problem(
                        path,
                        f"{_label(path)}: '{expression.text}' is not a condition",
                        "a filter is true or false, e.g. amount > 0",
                    )
                d.filters.append(expression)
        d.date = data.get("date", source.date_column)
        if d.date not in source.timestamp_columns:
            self.problem(
                ("date",),
                f"date '{d.date}' is not a timestamp column of {source_name}",
                "one of " + ", ".join(source.timestamp_columns),
            )
        if d.type in ("top_box", "bottom_box"):
            self._box(data, d)
        if d.type == "percentile":
            p = self.number(("percentile",), data.get("percentile"))
            if p is None and "percentile" not in data:
                self.problem((), "type percentile needs 'percentile', e.g. 0.9")
            elif p is not None and not 0 < p < 1:
                self.problem(
                    ("percentile",),
                    f"percentile {p:g} must be between 0 and 1",
                    "0.9 is the 90th percentile",
                )
            d.percentile = p
        for key in ("scale", "box", "percentile"):
            if key in data and not (
                (key in ("scale", "box") and d.type in ("top_box", "bottom_box"))
                or (key == "percentile" and d.type == "percentile")
            ):
                self.problem((key,), f"'{key}' does not apply to type {d.type}")
        self._dimensions(data.get("dimensions"), d)
        self._targets(data, d)

    def _check_kind(self, key: str, expression, d: Definition, source, booleans) -> None:
        """Conditions must be true/false; measures numbers; an NPS a 0-10 answer."""
        column = expression.bare_column()
        kind = source.columns.get(column) if column else None
        if key == "condition":
            if not expression.is_predicate(booleans):
                self.problem(
                    (key,),
                    f"condition: '{expression.text}' is not a condition",
                    "share counts rows where it is true, e.g. amount > 100",
                )
            return
        if key in ("measure", "numerator", "denominator") and d.type != "count_distinct":
            if (
                kind is not None
                and kind not in (NUMBER,)
                and not (key != "measure" and kind == BOOLEAN)
            ):
                self.problem((key,), f"{key}: '{column}' is {kind}; type {d.type} needs a number")
                return
            if key == "measure" and expression.is_predicate(booleans):
                self.problem(
                    (key,),
                    f"measure: '{expression.text}' is a condition; type {d.type} needs a number",
                    "for a share of rows use type share with a condition",
                )
                return
        if d.type == "nps" and column in source.scales and source.scales[column] != (0, 10):
            low, high = source.scales[column]
            self.problem(
                (key,),
                f"measure: nps needs a 0-10 answer; '{column}' runs {low:g}-{high:g}",
                "use top_box or mean for this scale",
            )

    def _list(self, path: Path_, value: Any) -> list:
        if value is None:
            return []
        if not isinstance(value, list):
            self.problem(path, f"{_label(path)} must be a list")
            return []
        return value

    def _parents(self, value: Any) -> list[tuple[str, float]]:
        parents = []
        for i, item in enumerate(self._list(("parents",), value)):
            if isinstance(item, str):
                parents.append((item, 1.0))
            elif isinstance(item, dict):
                self.mapping_keys(("parents", i), item, _NESTED_KEYS["parent"])
                weight = self.number(("parents", i, "weight"), item.get("weight", 1.0))
                if weight is not None and weight <= 0:
                    self.problem(("parents", i, "weight"), "a weight must be positive")
                if not isinstance(item.get("id"), str):
                    self.problem(("parents", i), "a parent needs an 'id'")
                else:
                    parents.append((item["id"], weight or 1.0))
            else:
                self.problem(("parents", i), "a parent is an id or {id, weight}")
        return parents

    def _box(self, data: dict, d: Definition) -> None:
        box = self.number(("box",), data.get("box", 2), integer=True)
        d.box = int(box) if box is not None else 2
        scale = data.get("scale")
        if scale is None:
            measure = d.expressions.get("measure")
            bounds = SOURCES[d.source].scales if d.source else {}
            column = measure.bare_column() if measure is not None else None
            if column in bounds:
                d.scale = bounds[column]
            else:
                self.problem((), f"type {d.type} needs 'scale: [min, max]' for this measure")
            return
        if (
            not isinstance(scale, list)
            or len(scale) != 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in scale)
            or scale[0] >= scale[1]
        ):
            self.problem(("scale",), "scale must be [min, max] with min < max, e.g. [1, 5]")
            return
        d.scale = (float(scale[0]), float(scale[1]))
        if d.box < 1 or d.box > d.scale[1] - d.scale[0]:
            self.problem(("box",), f"box {d.box} does not fit the scale {list(scale)}")

    def _dimensions(self, value: Any, d: Definition) -> None:
        allowed = _NESTED_KEYS["dimensions"]
        value = self.mapping_keys(("dimensions",), value, allowed)
        for key, options in allowed.items():
            if key not in value:
                continue
            items = self._list(("dimensions", key), value[key])
            chosen = []
            for i, item in enumerate(items):
                if self.choice(("dimensions", key, i), item, options):
                    chosen.append(item)
            if key != "breakdowns" and not chosen:
                self.problem(
                    ("dimensions", key), f"{key} needs at least one of " + ", ".join(options)
                )
            setattr(d, key, tuple(o for o in options if o in chosen))

    def _targets(self, data: dict, d: Definition) -> None:
        target = data.get("target")
        if isinstance(target, dict):
            self.mapping_keys(("target",), target, _NESTED_KEYS["target"])
            d.target = self.number(("target", "value"), target.get("value"))
            if "value" not in target:
                self.problem(("target",), "target needs a 'value'")
            if "by" in target:
                d.target_by = self.date(("target", "by"), target["by"])
            for i, item in enumerate(
                self._list(("target", "milestones"), target.get("milestones"))
            ):
                path = ("target", "milestones", i)
                item = self.mapping_keys(path, item, _NESTED_KEYS["milestone"])
                when = self.date((*path, "date"), item.get("date"))
                value = self.number((*path, "value"), item.get("value"))
                if when is not None and value is not None:
                    d.milestones.append(Milestone(when, value))
            dates = [m.date for m in d.milestones]
            if dates != sorted(dates) or len(set(dates)) != len(dates):
                self.problem(
                    ("target", "milestones"), "milestones must be in date order, one per date"
                )
            if d.target_by and dates and dates[-1] > d.target_by:
                self.problem(
                    ("target", "milestones"),
                    f"a milestone ({dates[-1]}) falls after the target date {d.target_by}",
                )
        else:
            d.target = self.number(("target",), target)
        thresholds = self.mapping_keys(
            ("thresholds",), data.get("thresholds"), _NESTED_KEYS["thresholds"]
        )
        d.on_track = self.number(("thresholds", "on_track"), thresholds.get("on_track"))
        d.at_risk = self.number(("thresholds", "at_risk"), thresholds.get("at_risk"))
        if d.at_risk is not None:
            reference = d.on_track if d.on_track is not None else d.target
            if reference is None:
                self.problem(("thresholds", "at_risk"), "at_risk needs a target or on_track")
            elif (d.direction == "higher" and d.at_risk > reference) or (
                d.direction == "lower" and d.at_risk < reference
            ):
                self.problem(
                    ("thresholds", "at_risk"),
                    f"at_risk {d.at_risk:g} is on the "
                    f"wrong side of {reference:g} for direction {d.direction}",
                )
        bounds = _bounds(d)
        checks = [(("target",) if not isinstance(target, dict) else ("target", "value"), d.target)]
        checks += [
            (("target", "milestones", i, "value"), m.value) for i, m in enumerate(d.milestones)
        ]
        for path, value in checks:
            if value is not None and bounds and not bounds[0] <= value <= bounds[1]:
                self.problem(
                    path,
                    f"target {value:g} is outside the possible range "
                    f"{bounds[0]:g}..{bounds[1]:g} of this {d.unit} KPI",
                )
        for i, item in enumerate(self._list(("benchmarks",), data.get("benchmarks"))):
            path = ("benchmarks", i)
            item = self.mapping_keys(path, item, _NESTED_KEYS["benchmark"])
            name = self.text((*path, "name"), item.get("name"))
            value = self.number((*path, "value"), item.get("value"))
            kind = self.choice((*path, "kind"), item.get("kind", "competitor"), BENCHMARK_KINDS)
            if "name" not in item:
                self.problem(path, "a benchmark needs a 'name'")
            if "value" not in item:
                self.problem(path, "a benchmark needs a 'value'")
            period = self.text((*path, "period"), item.get("period", ""))
            source = self.text((*path, "source"), item.get("source", ""))
            if name is not None and value is not None and kind is not None:
                d.benchmarks.append(Benchmark(name, kind, value, period or "", source or ""))


def _bounds(d: Definition) -> tuple[float, float] | None:
    """The range a KPI's values can take, where it is bounded."""
    if d.type == "nps":
        return (-100.0, 100.0)
    if d.unit == "percent" and d.type in ("top_box", "bottom_box", "share"):
        return (0.0, 100.0)
    if d.type in ("mean", "percentile") and d.source:
        measure = d.expressions.get("measure")
        scales = SOURCES[d.source].scales
        if (
            measure is not None
            and measure.columns == [measure.tree.unnest().name]
            and (measure.columns[0] in scales)
        ):
            return scales[measure.columns[0]]
    return None


def _is_forbidden_control(character: str) -> bool:
    code = ord(character)
    return (code < 0x20 and character not in "\t\n\r") or 0x7F <= code <= 0x9F


def _label(path: Path_) -> str:
    """How a problem names the field: 'filters[0]', 'target.milestones[1].value'."""
    text = ""
    for part in path:
        if part == "<key>":
            continue
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "document"


def _suggest(name: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(options), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else ""


# --- the whole catalog -------------------------------------------------------------------


def definition_files(paths: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix in (".yml", ".yaml")))
        else:
            files.append(path)
    return files


def load_catalog(paths: Iterable[Path], default_min_sample: int = DEFAULT_MIN_SAMPLE) -> Catalog:
    problems: list[Problem] = []
    definitions: list[Definition] = []
    first_seen: dict[str, Definition] = {}
    documents = []
    for file in definition_files(paths):
        documents.extend(read_documents(file, problems))
    for doc in documents:
        definition = _Checker(doc, problems, default_min_sample).check()
        if definition is None:
            continue
        if definition.id in first_seen:
            other = first_seen[definition.id]
            problems.append(
                Problem(
                    doc.file,
                    *doc.at(("id",)),
                    f"id '{definition.id}' is already defined at {other.declared_at}",
                )
            )
            continue
        first_seen[definition.id] = definition
        definitions.append(definition)
    _check_links(definitions, documents, problems)
    return Catalog(definitions, problems)


def _check_links(
    definitions: list[Definition], documents: list[Document], problems: list[Problem]
) -> None:
    by_id = {d.id: d for d in definitions}
    doc_of = {(doc.file, doc.line): doc for doc in documents}

    def report(d: Definition, path: Path_, message: str, hint: str = "") -> None:
        doc = doc_of.get((d.file, d.line))
        line, column = doc.at(path) if doc else (d.line, 1)
        problems.append(Problem(d.file or Path("?"), line, column, message, hint))

    for d in definitions:
        for i, (parent, _) in enumerate(d.parents):
            if parent not in by_id:
                report(
                    d,
                    ("parents", i),
                    f"unknown parent '{parent}'",
                    _suggest(parent, by_id) or "parents are ids of goals or KPIs",
                )
            elif by_id[parent].kind == "factor":
                report(d, ("parents", i), f"parent '{parent}' is a factor, not a goal or KPI")
        formula = d.expressions.get("formula")
        if formula is None:
            continue
        for name in formula.columns:
            if name not in by_id:
                report(d, ("formula",), f"formula: unknown KPI '{name}'", _suggest(name, by_id))
            elif not by_id[name].measurable:
                report(d, ("formula",), f"formula: '{name}' has no values (no type)")
        known = [n for n in formula.columns if n in by_id and by_id[n].measurable]
        signs = kpi_expr.signs_of_references(formula.tree)
        for name in known:
            sign = signs.get(name, 1)
            moves = by_id[name].direction if sign > 0 else _opposite(by_id[name].direction)
            if sign != 0 and moves != d.direction:
                report(
                    d,
                    ("formula",),
                    f"formula: direction mismatch: {d.id} is {d.direction}-is-better but "
                    f"it moves with {name} ({by_id[name].direction}-is-better) the wrong "
                    "way",
                    f"subtract {name} (or use 100 - {name}) to turn it around",
                )
        for left, right in kpi_expr.added_pairs(formula.tree):
            if left in by_id and right in by_id and by_id[left].unit != by_id[right].unit:
                report(
                    d,
                    ("formula",),
                    f"formula: unit mismatch: adds {left} ({by_id[left].unit}) and "
                    f"{right} ({by_id[right].unit})",
                    "rescale one of them first",
                )
    _check_cycles(definitions, report)


def _opposite(direction: str) -> str:
    return "lower" if direction == "higher" else "higher"


def _check_cycles(definitions: list[Definition], report) -> None:
    by_id = {d.id: d for d in definitions}
    edges = {d.id: [p for p, _ in d.parents if p in by_id] for d in definitions}
    for d in definitions:
        if d.expressions.get("formula") is not None:
            edges[d.id] = edges[d.id] + [n for n in d.expressions["formula"].columns if n in by_id]
    state: dict[str, int] = {}
    reported: set[frozenset] = set()

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in edges.get(node, []):
            if state.get(nxt) == 1:
                cycle = trail[trail.index(nxt) :] + [nxt] if nxt in trail else [node, nxt]
                key = frozenset(cycle)
                if key not in reported:
                    reported.add(key)
                    report(
                        by_id[cycle[0]],
                        ("parents",),
                        "cycle in the KPI tree: " + " -> ".join(cycle),
                        "a KPI cannot be its own ancestor or compute from itself",
                    )
            elif state.get(nxt) is None:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for d in definitions:
        if state.get(d.id) is None:
            visit(d.id, [d.id])


# --- JSON Schema for editors ---------------------------------------------------------------


def json_schema() -> dict:
    """JSON Schema (draft 2020-12) of one definition document, from FIELDS."""
    simple = {
        "str": {"type": "string"},
        "number": {"type": "number"},
        "integer": {"type": "integer", "minimum": 1},
        "expression": {"type": ["string", "number"]},
        "id": {"type": "string", "pattern": ID_PATTERN},
    }
    properties: dict[str, Any] = {}
    for name, spec in FIELDS.items():
        if spec.type in simple:
            prop = dict(simple[spec.type])
        elif spec.type == "list":
            prop = {"type": ["array", "string"] if name == "filters" else "array"}
        elif spec.type == "number_or_mapping":
            prop = {
                "oneOf": [
                    {"type": "number"},
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["value"],
                        "properties": {
                            "value": {"type": "number"},
                            "by": {"type": "string", "format": "date"},
                            "milestones": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "required": ["date", "value"],
                                    "properties": {
                                        "date": {"type": "string", "format": "date"},
                                        "value": {"type": "number"},
                                    },
                                },
                            },
                        },
                    },
                ]
            }
        else:
            prop = {"type": "object"}
        if spec.enum:
            prop["enum"] = list(spec.enum)
        prop["description"] = spec.description
        properties[name] = prop
    properties["dimensions"].update(
        {
            "additionalProperties": False,
            "properties": {
                key: {"type": "array", "items": {"enum": list(options)}}
                for key, options in _NESTED_KEYS["dimensions"].items()
            },
        }
    )
    properties["thresholds"].update(
        {
            "additionalProperties": False,
            "properties": {"on_track": {"type": "number"}, "at_risk": {"type": "number"}},
        }
    )
    properties["parents"]["items"] = {
        "oneOf": [
            {"type": "string", "pattern": ID_PATTERN},
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["id"],
                "properties": {
                    "id": {"type": "string"},
                    "weight": {"type": "number", "exclusiveMinimum": 0},
                },
            },
        ]
    }
    properties["benchmarks"]["items"] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "value"],
        "properties": {
            "name": {"type": "string"},
            "kind": {"enum": list(BENCHMARK_KINDS)},
            "value": {"type": "number"},
            "period": {"type": ["string", "number"]},
            "source": {"type": "string"},
        },
    }
    properties["scale"].update({"items": {"type": "number"}, "minItems": 2, "maxItems": 2})
    properties["percentile"].update({"exclusiveMinimum": 0, "exclusiveMaximum": 1})
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "cxkpi goal, KPI or factor definition",
        "type": "object",
        "required": ["id"],
        "additionalProperties": False,
        "properties": properties,
    }


def json_schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=False) + "\n"
