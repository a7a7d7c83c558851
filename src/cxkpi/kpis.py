"""KPI definitions: the analysts' YAML in ``kpi_definitions/``, read and checked.

Each YAML document is one KPI (several per file allowed, separated by ``---``). The
definitions land in the warehouse table ``raw.kpi_definitions`` before dbt runs, so targets,
thresholds and minimum samples in ``kpi_values`` always come from the YAML of that night.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from cxkpi.errors import ConfigError
from cxkpi.warehouse import connect, writer_lock

LEVELS = ("goal", "outcome", "driver", "operational")
DIRECTIONS = ("higher", "lower")
UNITS = ("points", "percent", "score", "count", "currency", "days", "hours")


@dataclass(frozen=True)
class KpiDefinition:
    id: str
    label: str
    description: str = ""
    owner: str = ""
    level: str = "outcome"
    unit: str = "percent"
    direction: str = "higher"
    target: float | None = None
    at_risk_margin: float | None = None
    min_sample: int = 30
    declared_in: str = ""


# Column name -> (type, description) of raw.kpi_definitions; dbt's source reads this.
TABLE_COLUMNS: dict[str, tuple[str, str]] = {
    "id": ("varchar", "KPI id, unique across all definitions."),
    "label": ("varchar", "Display name."),
    "description": ("varchar", "What the KPI measures and why."),
    "owner": ("varchar", "Accountable person or team."),
    "level": ("varchar", "goal, outcome, driver or operational."),
    "unit": ("varchar", "Unit of the value (points, percent, score, ...)."),
    "direction": ("varchar", "higher or lower is better."),
    "target": ("double", "Target value; empty when none is set."),
    "at_risk_margin": ("double", "Distance short of target still counted as at risk."),
    "min_sample": ("integer", "Minimum n for a reliable value."),
    "declared_in": ("varchar", "YAML file that declares the KPI."),
}


def _parse(doc: Any, where: Path) -> KpiDefinition:
    if not isinstance(doc, dict):
        raise ConfigError(f"{where}: a KPI definition must be a mapping")
    allowed = {f.name for f in fields(KpiDefinition)} - {"declared_in"}
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {unknown}; allowed: {sorted(allowed)}")
    for key in ("id", "label"):
        if not doc.get(key):
            raise ConfigError(f"{where}: missing required field '{key}'")
    checks = (("level", LEVELS), ("direction", DIRECTIONS), ("unit", UNITS))
    for key, options in checks:
        if key in doc and doc[key] not in options:
            raise ConfigError(f"{where}: {doc['id']}: {key} must be one of {list(options)}")
    for key in ("target", "at_risk_margin", "min_sample"):
        if doc.get(key) is not None and not isinstance(doc[key], int | float):
            raise ConfigError(f"{where}: {doc['id']}: {key} must be a number")
    return KpiDefinition(**doc, declared_in=str(where))


def load_definitions(directory: Path) -> list[KpiDefinition]:
    definitions: list[KpiDefinition] = []
    for path in sorted([*directory.rglob("*.yml"), *directory.rglob("*.yaml")]):
        try:
            docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        definitions.extend(_parse(doc, path) for doc in docs)
    seen: dict[str, str] = {}
    for d in definitions:
        if d.id in seen:
            raise ConfigError(f"{d.declared_in}: KPI id {d.id!r} also defined in {seen[d.id]}")
        seen[d.id] = d.declared_in
    if not definitions:
        raise ConfigError(f"no KPI definitions found in {directory}")
    return definitions


def write_definitions(warehouse: Path, definitions: list[KpiDefinition]) -> int:
    """Replace ``raw.kpi_definitions`` with ``definitions`` in one transaction."""
    columns = ", ".join(f"{name} {kind}" for name, (kind, _) in TABLE_COLUMNS.items())
    placeholders = ", ".join("?" for _ in TABLE_COLUMNS)
    with writer_lock(warehouse):
        con = connect(warehouse)
        try:
            con.execute("create schema if not exists raw")
            con.execute("begin")
            con.execute(f"create or replace table raw.kpi_definitions ({columns})")
            con.executemany(
                f"insert into raw.kpi_definitions values ({placeholders})",
                [[asdict(d)[name] for name in TABLE_COLUMNS] for d in definitions],
            )
            con.execute("commit")
        finally:
            con.close()
    return len(definitions)
