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
- ``kpi_schema``: the JSON Schema for editors.

The names callers use are re-exported here, so ``kpi_spec.load_catalog``,
``kpi_spec.Definition`` and ``kpi_spec.FIELDS`` stay the one way in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cxkpi import kpi_expr
from cxkpi.config import DEFAULT_MIN_SAMPLE
from cxkpi.kpi_check import DefinitionChecker
from cxkpi.kpi_language import FIELDS, ID_PATTERN, KINDS, Benchmark, Definition, Milestone
from cxkpi.kpi_schema import json_schema, json_schema_text
from cxkpi.kpi_types import TYPES
from cxkpi.kpi_yaml import Document, Path_, Problem, read_documents, suggest

__all__ = [
    "FIELDS",
    "ID_PATTERN",
    "KINDS",
    "TYPES",
    "Benchmark",
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
        definition = DefinitionChecker(doc, problems, default_min_sample).check()
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
        doc = doc_of.get((d.file, d.line)) if d.file else None
        line, column = doc.at(path) if doc else (d.line, 1)
        problems.append(Problem(d.file or Path("?"), line, column, message, hint))

    for d in definitions:
        for i, (parent, _) in enumerate(d.parents):
            if parent not in by_id:
                report(
                    d,
                    ("parents", i),
                    f"unknown parent '{parent}'",
                    suggest(parent, by_id) or "parents are ids of goals or KPIs",
                )
            elif by_id[parent].kind == "factor":
                report(d, ("parents", i), f"parent '{parent}' is a factor, not a goal or KPI")
        formula = d.expressions.get("formula")
        if formula is None:
            continue
        for name in formula.columns:
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
