"""The KPI language: goals, KPIs and experience factors as YAML documents.

``load_catalog(paths)`` reads every document, checks everything it can, and returns the
catalog together with *all* problems found, each with file, line and column. This module
is the language's front door and checks what spans documents (parents, formulas,
cycles); the parts live beside it, one concern each:

- ``kpi_language``: the fields (``FIELDS``, the single description of the language) and
  the ``Definition`` a document becomes;
- ``kpi_types``: the KPI types and everything that differs between them;
- ``kpi_yaml``: reading YAML with positions, field by field;
- ``kpi_check``: checking one document;
- ``kpi_schema``: the JSON Schema for editors;
- ``packs``: the shipped catalog packs, read here for the parents a catalog names in a
  pack it does not hold.

The names callers use are re-exported here, so ``kpi_spec.load_catalog``,
``kpi_spec.Definition`` and ``kpi_spec.FIELDS`` stay the one way in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from cxkpi import kpi_expr, packs
from cxkpi.config import DEFAULT_MIN_SAMPLE, DEFAULT_ORG_LEVELS
from cxkpi.kpi_check import DefinitionChecker
from cxkpi.kpi_language import FIELDS, ID_PATTERN, KINDS, Definition, Milestone
from cxkpi.kpi_schema import json_schema, json_schema_text
from cxkpi.kpi_types import TYPES
from cxkpi.kpi_yaml import Document, Path_, Problem, read_documents, suggest

__all__ = [
    "FIELDS",
    "ID_PATTERN",
    "KINDS",
    "TYPES",
    "Catalog",
    "Definition",
    "Document",
    "Milestone",
    "Problem",
    "definition_files",
    "json_schema",
    "json_schema_text",
    "load_catalog",
    "read_documents",
]


@dataclass
class Catalog:
    definitions: list[Definition]  # the enabled ones: what is computed and published
    problems: list[Problem]
    switched_off: list[Definition] = field(default_factory=list)  # enabled: false
    notes: list[Problem] = field(default_factory=list)  # links switching off or a pack changed
    # id -> pack of each shipped definition the catalog links to but does not hold (a pack
    # the project did not choose): linked around like a switched-off one
    not_chosen: dict[str, str] = field(default_factory=dict)
    # the project's org levels, top-down (cxkpi.yml org_levels)
    org_levels: tuple[str, ...] = DEFAULT_ORG_LEVELS

    @property
    def kpis(self) -> list[Definition]:
        return [d for d in self.definitions if d.kind in ("kpi", "goal")]

    @property
    def factors(self) -> list[Definition]:
        return [d for d in self.definitions if d.kind == "factor"]

    def by_id(self) -> dict[str, Definition]:
        return {d.id: d for d in self.definitions}


def definition_files(paths: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix in (".yml", ".yaml")))
        else:
            files.append(path)
    return files


def load_catalog(
    paths: Iterable[Path],
    default_min_sample: int = DEFAULT_MIN_SAMPLE,
    org_levels: tuple[str, ...] | None = DEFAULT_ORG_LEVELS,
    *,
    link_packs: bool = True,
) -> Catalog:
    """Every definition under ``paths``, checked against the project's ``org_levels``
    (a definition without dimensions.org_levels is computed at all of them; None: any
    level name passes, for reading the shipped packs). With ``link_packs``, a parent or
    formula input the catalog lacks but a shipped pack defines (a pack the project did
    not choose) is linked around like a switched-off definition rather than reported
    unknown."""
    problems: list[Problem] = []
    definitions: list[Definition] = []
    first_seen: dict[str, Definition] = {}
    documents = []
    for file in definition_files(paths):
        documents.extend(read_documents(file, problems))
    level_notes: list[Problem] = []
    for doc in documents:
        checker = DefinitionChecker(doc, problems, default_min_sample, org_levels)
        definition = checker.check()
        level_notes += checker.notes
        if definition is None:
            continue
        definition.org_levels = definition.org_levels or tuple(org_levels or ())
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
    elsewhere = _in_packs_not_chosen(definitions) if link_packs else {}
    _check_links(definitions, documents, problems, elsewhere)
    switched_off = [d for d in definitions if not d.enabled]
    enabled = [d for d in definitions if d.enabled]
    off = {d.id: _Off(d, "is switched off", f"{d.id} on") for d in switched_off}
    for pack, d in elsewhere.values():
        off[d.id] = _Off(d, f"is in the {pack} pack, not in this catalog", f"add the {pack} pack")
    notes = level_notes + _relink_around(off, enabled, problems)
    not_chosen = {kpi_id: pack for kpi_id, (pack, _) in elsewhere.items()}
    return Catalog(
        enabled,
        problems,
        switched_off,
        notes,
        not_chosen=not_chosen,
        org_levels=tuple(org_levels or DEFAULT_ORG_LEVELS),
    )


@cache
def shipped_definitions() -> dict[str, tuple[str, Definition]]:
    """id -> (pack, definition) of every definition the installed package ships in its
    packs. Read once per process: package data does not change while it runs."""
    with packs.shipped_catalog() as folder:
        catalog = load_catalog([folder], org_levels=None, link_packs=False)
        return {d.id: (packs.pack_of(d.file, folder), d) for d in catalog.definitions if d.file}


def _in_packs_not_chosen(definitions: list[Definition]) -> dict[str, tuple[str, Definition]]:
    """The shipped definitions this catalog names (as parents or formula inputs, also
    through the parents of such a definition) without holding them."""
    held = {d.id for d in definitions}

    def named_by(d: Definition) -> list[str]:
        formula = d.expressions.get("formula")
        return [p for p, _ in d.parents] + (list(formula.columns) if formula else [])

    todo = [name for d in definitions for name in named_by(d) if name not in held]
    if not todo:
        return {}
    shipped = shipped_definitions()
    found: dict[str, tuple[str, Definition]] = {}
    while todo:
        name = todo.pop()
        if name in found or name not in shipped:
            continue
        found[name] = shipped[name]
        todo.extend(p for p, _ in shipped[name][1].parents if p not in held)
    return found


@dataclass(frozen=True)
class _Off:
    """A definition the catalog names but does not compute, and why."""

    definition: Definition
    reason: str  # "is switched off", "is in the ecommerce pack, not in this catalog"
    remedy: str  # what computes it again: "csat on", "add the core pack"


def _relink_around(
    off: dict[str, _Off], enabled: list[Definition], problems: list[Problem]
) -> list[Problem]:
    """A KPI whose parent is off (switched off, or in a pack the catalog does not hold:
    ``off`` maps its id to it and the reason) is linked to that parent's own parents
    (weights multiplied, through any chain of parents that are off), so the tree stays
    whole; a formula over a KPI that is off cannot be computed and is a problem. Returns a
    note per changed link, for ``cxkpi validate``."""
    notes: list[Problem] = []

    def enabled_ancestors(kpi_id: str, weight: float, seen: frozenset[str]) -> list:
        found: list[tuple[str, float]] = []
        for parent, w in off[kpi_id].definition.parents:
            if parent in seen:
                continue  # a cycle is reported by _check_links
            if parent in off:
                found += enabled_ancestors(parent, weight * w, seen | {parent})
            else:
                found.append((parent, weight * w))
        return found

    for d in enabled:
        formula = d.expressions.get("formula")
        for name in formula.columns if formula else []:
            if name in off:
                problems.append(
                    Problem(
                        d.file or Path("?"),
                        d.line,
                        1,
                        f"formula: '{name}' {off[name].reason}",
                        f"switch {d.id} off too (enabled: false), or {off[name].remedy}",
                    )
                )
        if not any(parent in off for parent, _ in d.parents):
            continue
        parents: dict[str, float] = {}
        for parent, weight in d.parents:
            if parent not in off:
                parents[parent] = max(parents.get(parent, 0.0), weight)
                continue
            relinked = enabled_ancestors(parent, weight, frozenset({parent}))
            for ancestor, w in relinked:
                parents[ancestor] = max(parents.get(ancestor, 0.0), w)
            to = ", ".join(a for a, _ in relinked) or "no goal or KPI (it has no parent now)"
            notes.append(
                Problem(
                    d.file or Path("?"),
                    d.line,
                    1,
                    f"{d.id}: parent '{parent}' {off[parent].reason}; linked to {to}",
                )
            )
        d.parents = list(parents.items())
    return notes


def _check_links(
    definitions: list[Definition],
    documents: list[Document],
    problems: list[Problem],
    elsewhere: dict[str, tuple[str, Definition]],
) -> None:
    """Parents and formula inputs exist, in the catalog or in a pack it does not hold
    (``elsewhere``: _relink_around links around those); formulas agree with their inputs'
    directions and units; no cycles."""
    by_id = {d.id: d for d in definitions}
    linkable = {kpi_id: d for kpi_id, (_, d) in elsewhere.items()} | by_id
    doc_of = {(doc.file, doc.line): doc for doc in documents}

    def report(d: Definition, path: Path_, message: str, hint: str = "") -> None:
        doc = doc_of.get((d.file, d.line)) if d.file else None
        line, column = doc.at(path) if doc else (d.line, 1)
        problems.append(Problem(d.file or Path("?"), line, column, message, hint))

    for d in definitions:
        for i, (parent, _) in enumerate(d.parents):
            if parent not in linkable:
                report(
                    d,
                    ("parents", i),
                    f"unknown parent '{parent}'",
                    suggest(parent, by_id) or "parents are ids of goals or KPIs",
                )
            elif linkable[parent].kind == "factor":
                report(d, ("parents", i), f"parent '{parent}' is a factor, not a goal or KPI")
        formula = d.expressions.get("formula")
        if formula is None:
            continue
        for name in formula.columns:
            if name in elsewhere:
                continue  # a problem of _relink_around: in a pack the catalog does not hold
            if name not in by_id:
                report(d, ("formula",), f"formula: unknown KPI '{name}'", suggest(name, by_id))
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
