"""Checking one definition document: every field, every rule, every problem at once.

:class:`DefinitionChecker` reads a document field by field (``kpi_yaml.FieldReader``) into
a :class:`~cxkpi.kpi_language.Definition`; what a type needs, accepts and defaults to comes
from ``kpi_types``. Links between definitions (parents, formulas, cycles) are checked
over the whole catalog in ``kpi_spec``.
"""

from __future__ import annotations

import re
from typing import Any

from cxkpi.kpi_language import (
    _NESTED_KEYS,
    DIMENSIONS,
    EFFORTS,
    FIELDS,
    ID_PATTERN,
    KINDS,
    LEVELS,
    RETIRED_FIELDS,
    Definition,
    Milestone,
)
from cxkpi.kpi_sources import BOOLEAN, NUMBER, SOURCES
from cxkpi.kpi_types import EXPRESSION_FIELDS, KPI_TYPES, TYPE_OPTIONS, TYPES
from cxkpi.kpi_yaml import Document, FieldReader, Path_, Problem, label, suggest
from cxkpi.vocabulary import DIRECTIONS, TOPIC_BREAKDOWN, UNITS


class DefinitionChecker(FieldReader):
    """Turns one document into a Definition, collecting problems instead of stopping."""

    def __init__(
        self,
        doc: Document,
        problems: list[Problem],
        default_min_sample: int,
        org_levels: tuple[str, ...] | None,
    ):
        super().__init__(doc, problems)
        self.default_min_sample = default_min_sample
        self.org_levels = org_levels

    def check(self) -> Definition | None:
        data = self.doc.data
        if not isinstance(data, dict):
            self.problem((), "a definition must be a mapping of fields, e.g. 'id: nps'")
            return None
        kind = self.choice(("kind",), data.get("kind", "kpi"), KINDS) or "kpi"
        for key in data:
            spec = FIELDS.get(key)
            if key in RETIRED_FIELDS:
                self.key_problem((key,), f"'{key}' is no longer a field", RETIRED_FIELDS[key])
            elif spec is None:
                self.key_problem((key,), f"unknown field '{key}'", suggest(str(key), FIELDS))
            elif kind not in spec.kinds:
                self.key_problem((key,), f"'{key}' does not apply to a {kind}")
        raw_id = data.get("id")
        if raw_id is None:
            self.problem((), "missing 'id'", "every definition needs an id, e.g. id: nps")
            return None
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
            enabled=self.flag(("enabled",), data.get("enabled"), True),
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
            KPI_TYPES[d.type].direction if d.type else "higher"
        )
        d.effort = self.choice(("effort",), data.get("effort"), EFFORTS)
        d.actions = [
            a
            for i, a in enumerate(self.list_of(("actions",), data.get("actions")))
            if self.text(("actions", i), a) is not None
        ]
        min_sample = self.number(("min_sample",), data.get("min_sample"), integer=True)
        d.min_sample = int(min_sample) if min_sample is not None else self.default_min_sample
        if min_sample is not None and min_sample < 1:
            self.problem(("min_sample",), "min_sample must be at least 1")
        if d.type is None:
            if "type" not in data:
                for key in (*EXPRESSION_FIELDS, "source"):
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
        kpi_type = KPI_TYPES[d.type]
        needed = kpi_type.needs
        d.unit = self.choice(("unit",), data.get("unit"), UNITS) or kpi_type.unit
        for key in EXPRESSION_FIELDS:
            if key in data and key not in needed:
                self.problem(
                    (key,),
                    f"'{key}' does not apply to type {d.type}",
                    "it needs " + (", ".join(needed) or "no expression"),
                )
        for key in needed:
            if key not in data:
                self.problem((), f"type {d.type} needs '{key}'")
        if kpi_type.observation is None:
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
            paths: list[Path_] = [("filters",)]
        else:
            filters = self.list_of(("filters",), filters)
            paths = [("filters", i) for i in range(len(filters))]
        for path, text in zip(paths, filters, strict=True):
            expression = self.expression(path, text, columns)
            if expression is not None:
                if not expression.is_predicate(booleans):
                    self.problem(
                        path,
                        f"{label(path)}: '{expression.text}' is not a condition",
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
        if "box" in kpi_type.options:
            self._box(data, d)
        if "percentile" in kpi_type.options:
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
        for key in TYPE_OPTIONS:
            if key in data and key not in kpi_type.options:
                self.problem((key,), f"'{key}' does not apply to type {d.type}")
        self._dimensions(data.get("dimensions"), d)
        if TOPIC_BREAKDOWN in d.breakdowns and source.verbatim_key is None:
            with_verbatims = [name for name, s in SOURCES.items() if s.verbatim_key]
            self.problem(
                ("dimensions", "breakdowns"),
                f"{source_name} has no verbatims to break down by topic",
                "the topic breakdown is for " + " and ".join(with_verbatims),
            )
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
        kpi_type = KPI_TYPES[str(d.type)]
        if key in ("measure", "numerator", "denominator") and (
            key != "measure" or kpi_type.numeric_measure
        ):
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
        wanted = kpi_type.answer_scale
        if wanted and column in source.scales and source.scales[column] != wanted:
            low, high = source.scales[column]
            self.problem(
                (key,),
                f"measure: {d.type} needs a {wanted[0]:g}-{wanted[1]:g} answer; "
                f"'{column}' runs {low:g}-{high:g}",
                "use top_box or mean for this scale",
            )

    def _parents(self, value: Any) -> list[tuple[str, float]]:
        parents = []
        for i, item in enumerate(self.list_of(("parents",), value)):
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
        listed = value.get("org_levels") if isinstance(value, dict) else None
        # org_levels None: any level name (the shipped packs, read without a project)
        any_level = tuple(map(str, listed)) if isinstance(listed, list) else ()
        allowed = {**DIMENSIONS, "org_levels": self.org_levels or any_level}
        value = self.mapping_keys(("dimensions",), value, allowed)
        for key, options in allowed.items():
            assert options is not None
            if key not in value:
                continue
            items = self.list_of(("dimensions", key), value[key])
            chosen = []
            for i, item in enumerate(items):
                if key == "org_levels" and item not in options:  # a pack's level: left out
                    levels = f"(cxkpi.yml org_levels: {', '.join(options)}): left out"
                    self.note(("dimensions", key, i), f"org level {item!r} {levels}")
                elif self.choice(("dimensions", key, i), item, options):
                    chosen.append(item)
            if key != "breakdowns" and not chosen:
                self.problem(
                    ("dimensions", key), f"{key} needs at least one of {', '.join(options)}"
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
                self.list_of(("target", "milestones"), target.get("milestones"))
            ):
                milestone: Path_ = ("target", "milestones", i)
                item = self.mapping_keys(milestone, item, _NESTED_KEYS["milestone"])
                when = self.date((*milestone, "date"), item.get("date"))
                value = self.number((*milestone, "value"), item.get("value"))
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
        bounds = value_bounds(d)
        checks: list[tuple[Path_, float | None]] = [
            (("target",) if not isinstance(target, dict) else ("target", "value"), d.target)
        ]
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


def value_bounds(d: Definition) -> tuple[float, float] | None:
    """The range a KPI's values can take, where its type bounds it (targets are checked
    against it here; the gate checks published values against it: kpi_catalog)."""
    kpi_type = KPI_TYPES.get(d.type or "")
    if kpi_type is None:
        return None
    if kpi_type.bounds:
        return kpi_type.bounds
    if kpi_type.percent_bounds and d.unit == "percent":
        return (0.0, 100.0)
    if kpi_type.scale_bounds and d.source:
        measure = d.expressions.get("measure")
        scales = SOURCES[d.source].scales
        if (
            measure is not None
            and measure.columns == [measure.tree.unnest().name]
            and (measure.columns[0] in scales)
        ):
            return scales[measure.columns[0]]
    return None
