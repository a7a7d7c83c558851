"""The project configuration: one file, ``cxkpi.yml``, overridable by environment and CLI.

Precedence, lowest first: built-in defaults < ``cxkpi.yml`` < ``CXKPI_*`` environment
variables < explicit overrides (CLI flags). Relative paths resolve against the directory of
the config file, so the project works from any working directory.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any
from zoneinfo import available_timezones

import yaml

from cxkpi import org
from cxkpi.canonical import CHANNELS, Column
from cxkpi.errors import ConfigError
from cxkpi.warehouse import PASSWORD_ENV, WAREHOUSE_TYPES, PostgresTarget, Warehouse

CONFIG_FILE_NAME = "cxkpi.yml"
# Below this many observations a value is not reliable: the one default for the KPI
# definitions, the dbt marts (var min_sample, passed by the runner and the DAG) and docs.
DEFAULT_MIN_SAMPLE = 30
CONFIG_ENV = "CXKPI_CONFIG"
# Nothing about a company's org is assumed: without org_levels it is one HQ.
DEFAULT_ORG_LEVELS: tuple[str, ...] = ("hq",)
# Canonical columns whose allowed values a project sets in cxkpi.yml: column -> setting.
# The loader's allowed-value check, the declarations' check of constants and values: maps,
# and the dbt sources' accepted_values tests all use the setting when it is set.
VOCABULARY_SETTINGS = {"channel": "channels", "touchpoint": "touchpoints"}


def allowed_values(
    column: Column, vocabularies: Mapping[str, tuple[str, ...]]
) -> tuple[str, ...] | None:
    """The values ``column`` may hold: the project's vocabulary for it
    (``Settings.vocabularies``), else canonical.py's ``allowed`` (None: any value)."""
    return vocabularies.get(column.name, column.allowed)


@dataclass(frozen=True)
class Settings:
    root: Path
    landing_dir: Path
    warehouse_path: Path
    published_dir: Path
    runs_dir: Path
    sources_dir: Path
    kpi_definitions_dir: Path
    expectations_dir: Path
    topics_dir: Path
    case_rules_dir: Path
    access_file: Path  # who sees which scope (cxkpi.access); none: no scoped extracts
    dbt_project_dir: Path
    dbt_target_dir: Path
    dbt_target: str = "duckdb"
    # where the night runs: the embedded DuckDB file (warehouse_path) or a PostgreSQL
    # server (postgres); cxkpi.yml's ``warehouse:`` or CXKPI_WAREHOUSE sets both
    warehouse_type: str = "duckdb"
    postgres: PostgresTarget | None = None
    min_sample: int = DEFAULT_MIN_SAMPLE
    keep_versions: int = 5
    keep_runs: int = 30
    # Largest CSV record / JSON line the loader parses; larger ones are rejected with a reason.
    max_record_bytes: int = 8 * 1024 * 1024
    # regions whose national phone numbers the PII detector recognises (cxkpi.pii);
    # numbers written with +<country code> are recognised for every country
    pii_phone_regions: tuple[str, ...] = ("CN", "DE", "US", "GB", "BR", "FR")
    # The time zone days, ISO weeks and months are counted in (storage stays UTC): dbt's
    # var reporting_timezone, passed by the runner and the DAG.
    reporting_timezone: str = "UTC"
    # The channels (and touchpoints) a row may name; touchpoints None: any label.
    channels: tuple[str, ...] = CHANNELS
    touchpoints: tuple[str, ...] | None = None

    # The org hierarchy's levels, top-down (1 to 6): KPI values are computed at each. The
    # top level holds one unit (created when no org source names one).
    org_levels: tuple[str, ...] = DEFAULT_ORG_LEVELS
    # Where an order sold by several org units counts (cxkpi.org.MULTI_UNIT_RULES).
    multi_unit_orders: str = "largest_line"
    # The org level whose units' monthly values are correlated to test the theory of
    # change (fct_kpi_effectiveness): one with many units; empty: the lowest level.
    effectiveness_org_level: str = ""

    def __post_init__(self) -> None:
        if self.dbt_target != self.warehouse_type:
            raise ConfigError(
                f"dbt_target {self.dbt_target!r} is not supported with warehouse type "
                f"{self.warehouse_type!r}: the loader, analyze stage, gate and publisher use "
                f"the warehouse, so dbt must build there too; set the warehouse instead "
                f"(warehouse: {{type: {' | '.join(SUPPORTED_DBT_TARGETS)}}} in cxkpi.yml, or "
                "CXKPI_WAREHOUSE), which picks dbt's target"
            )
        if self.effectiveness_org_level and self.effectiveness_org_level not in self.org_levels:
            raise ConfigError(
                f"effectiveness_org_level {self.effectiveness_org_level!r} is not one of the "
                f"org_levels {list(self.org_levels)}"
            )

    @property
    def warehouse(self) -> Warehouse:
        """The warehouse every stage opens (cxkpi.warehouse.Warehouse)."""
        return Warehouse(self.warehouse_path, self.warehouse_type, self.postgres)

    @property
    def effectiveness_level(self) -> str:
        return self.effectiveness_org_level or self.org_levels[-1]

    @property
    def vocabularies(self) -> dict[str, tuple[str, ...]]:
        """Canonical column -> the allowed values this project sets for it (an org unit's
        level: one of the declared org levels)."""
        chosen = {column: getattr(self, key) for column, key in VOCABULARY_SETTINGS.items()}
        chosen["level"] = self.org_levels
        return {column: values for column, values in chosen.items() if values is not None}

    @property
    def published_path(self) -> Path:
        return self.published_dir / "cx.duckdb"

    @property
    def dbt_manifest_path(self) -> Path:
        return self.dbt_target_dir / "manifest.json"

    def with_overrides(self, **overrides: Any) -> Settings:
        clean = {k: v for k, v in overrides.items() if v is not None}
        return replace(self, **_coerce(self.root, clean))


_PATH_FIELDS = {
    "landing_dir",
    "warehouse_path",
    "published_dir",
    "runs_dir",
    "sources_dir",
    "kpi_definitions_dir",
    "expectations_dir",
    "topics_dir",
    "case_rules_dir",
    "access_file",
    "dbt_project_dir",
    "dbt_target_dir",
}
_INT_FIELDS = {"min_sample", "keep_versions", "keep_runs", "max_record_bytes"}
_LIST_FIELDS = {"pii_phone_regions"}
_NAME_LIST_FIELDS = {"org_levels"}
_VOCABULARY_FIELDS = set(VOCABULARY_SETTINGS.values())
# dbt targets whose warehouse the whole pipeline (load, analyze, gate, publish) uses: a
# target dbt builds elsewhere would publish the embedded warehouse's stale marts.
SUPPORTED_DBT_TARGETS = WAREHOUSE_TYPES
_DEFAULTS: dict[str, Any] = {
    "landing_dir": "landing",
    "warehouse_path": "warehouse/cx.duckdb",
    "published_dir": "published",
    "runs_dir": "runs",
    "sources_dir": "sources",
    "kpi_definitions_dir": "kpi_definitions",
    "expectations_dir": "expectations",
    "topics_dir": "topics",
    "case_rules_dir": "case_rules",
    "access_file": "access/access.yml",
    "dbt_project_dir": "dbt_project",
    "dbt_target_dir": "dbt_project/target",
    "dbt_target": "duckdb",
    "min_sample": DEFAULT_MIN_SAMPLE,
    "keep_versions": 5,
    "keep_runs": 30,
    "max_record_bytes": 8 * 1024 * 1024,
    "pii_phone_regions": ["CN", "DE", "US", "GB", "BR", "FR"],
    "org_levels": list(DEFAULT_ORG_LEVELS),
    "multi_unit_orders": "largest_line",
    "effectiveness_org_level": "",
}
# warehouse_type and postgres are set through ``warehouse`` (one setting, not three)
KNOWN_KEYS = tuple(
    f.name for f in fields(Settings) if f.name not in ("root", "warehouse_type", "postgres")
)


def _coerce(root: Path, values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key in _PATH_FIELDS:
            path = Path(os.path.expanduser(str(value)))
            out[key] = path if path.is_absolute() else (root / path).resolve()
        elif key in _INT_FIELDS:
            try:
                out[key] = int(value)
            except (TypeError, ValueError):
                raise ConfigError(f"{key} must be a whole number, got {value!r}") from None
        elif key in _LIST_FIELDS:
            items = value.split(",") if isinstance(value, str) else value
            if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
                raise ConfigError(f"{key} must be a list of names, got {value!r}")
            out[key] = tuple(i.strip().upper() for i in items if i.strip())
        elif key in _NAME_LIST_FIELDS:
            items = value.split(",") if isinstance(value, str) else value
            if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
                raise ConfigError(f"{key} must be a list of names, got {value!r}")
            out[key] = tuple(i.strip() for i in items if i.strip())
        elif key == "postgres":
            out[key] = value  # a PostgresTarget, made by _warehouse
        elif key in _VOCABULARY_FIELDS:
            if value is not None:  # an empty key in cxkpi.yml keeps the default
                out[key] = _vocabulary(key, value)
        else:
            out[key] = str(value)
    zone = out.get("reporting_timezone")
    # the default needs no look-up of the time zone database (settings load per task)
    if zone is not None and zone != "UTC" and zone not in available_timezones():
        close = difflib.get_close_matches(zone, sorted(available_timezones()), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"reporting_timezone {zone!r} is not an IANA time zone (e.g. Europe/Berlin){hint}"
        )
    if "org_levels" in out:
        org.check_levels(out["org_levels"])
    if "multi_unit_orders" in out:
        org.check_multi_unit_rule(out["multi_unit_orders"])
    target = out.get("dbt_target")
    if target is not None and target not in SUPPORTED_DBT_TARGETS:
        raise ConfigError(
            f"dbt_target {target!r} is not supported: the loader, analyze stage, gate and "
            f"publisher run in the warehouse, which is {' or '.join(SUPPORTED_DBT_TARGETS)} "
            "(the warehouse setting); docs/data-engineer.md says what another engine needs"
        )
    return out


_POSTGRES_KEYS = {
    "host": str,
    "port": int,
    "database": str,
    "user": str,
    "published_schema": str,
    "role_prefix": str,
}
WAREHOUSE_ENV = "CXKPI_WAREHOUSE"


def _warehouse(value: Any, where: str) -> dict[str, Any]:
    """``warehouse:`` of cxkpi.yml (a mapping) or CXKPI_WAREHOUSE (``duckdb``,
    ``duckdb:<path>``, ``postgres`` or ``postgresql://user@host:port/database``) as the
    settings warehouse_type, warehouse_path, postgres and dbt_target."""
    if isinstance(value, str):
        value = _warehouse_text(value.strip(), where)
    if not isinstance(value, dict) or value.get("type") not in WAREHOUSE_TYPES:
        raise ConfigError(
            f"{where}: warehouse must be {{type: duckdb, path: ...}} or {{type: postgres, "
            f"host, port, database, user}} (the password: the environment variable "
            f"{PASSWORD_ENV}), got {value!r}"
        )
    kind = value["type"]
    allowed = {"type", "path"} if kind == "duckdb" else {"type", "path", *_POSTGRES_KEYS}
    unknown = sorted(set(value) - allowed)
    if unknown:
        hint = f"; the password comes from {PASSWORD_ENV} only" if "password" in unknown else ""
        raise ConfigError(
            f"{where}: unknown warehouse key(s) {unknown} for type {kind}; known: "
            f"{sorted(allowed)}{hint}"
        )
    out: dict[str, Any] = {"warehouse_type": kind, "dbt_target": kind}
    if value.get("path"):
        out["warehouse_path"] = value["path"]
    if kind == "postgres":
        parts = {}
        for key, kind_of in _POSTGRES_KEYS.items():
            if value.get(key) is None:
                continue
            try:
                parts[key] = kind_of(value[key])
            except (TypeError, ValueError):
                raise ConfigError(f"{where}: warehouse {key} must be a number") from None
        out["postgres"] = PostgresTarget(**parts)
    return out


def _warehouse_text(text: str, where: str) -> dict[str, Any]:
    from urllib.parse import unquote, urlsplit

    if text in WAREHOUSE_TYPES:
        return {"type": text}
    if text.startswith("duckdb:"):
        return {"type": "duckdb", "path": text.removeprefix("duckdb:")}
    url = urlsplit(text)
    if url.scheme not in ("postgres", "postgresql"):
        raise ConfigError(
            f"{where}: {text!r} is not a warehouse: use duckdb, duckdb:<path>, postgres or "
            "postgresql://user@host:port/database"
        )
    if url.password is not None:
        raise ConfigError(
            f"{where}: the warehouse URL holds a password; put it in {PASSWORD_ENV} instead, "
            "so no config or log holds it"
        )
    found: dict[str, Any] = {"type": "postgres"}
    for key, part in (("host", url.hostname), ("port", url.port), ("user", url.username)):
        if part:
            found[key] = unquote(str(part))
    if url.path.strip("/"):
        found["database"] = unquote(url.path.strip("/"))
    return found


def _vocabulary(key: str, value: Any) -> tuple[str, ...]:
    """``channels``/``touchpoints``: a list of values (a comma-separated text from the
    environment), each once."""
    items = [i.strip() for i in value.split(",")] if isinstance(value, str) else value
    example = "[store, web, app]" if key == "channels" else "[post_purchase, delivery]"
    if (
        not isinstance(items, list | tuple)
        or not items
        or not all(isinstance(i, str) and i.strip() and "\x00" not in i for i in items)
    ):
        raise ConfigError(
            f"{key} must be a list of one or more values, e.g. {key}: {example}, got {value!r}"
            + ("; leave touchpoints out to accept any touchpoint" if key == "touchpoints" else "")
        )
    repeated = sorted({i for i in items if items.count(i) > 1})
    if repeated:
        raise ConfigError(f"{key} lists {repeated} more than once")
    return tuple(i.strip() for i in items)


def find_config(start: Path | None = None) -> Path:
    """The config file: $CXKPI_CONFIG, else cxkpi.yml in the working directory or above."""
    if os.environ.get(CONFIG_ENV):
        path = Path(os.environ[CONFIG_ENV]).expanduser().resolve()
        if not path.is_file():
            raise ConfigError(f"{CONFIG_ENV} points to {path}, which does not exist")
        return path
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / CONFIG_FILE_NAME
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"no {CONFIG_FILE_NAME} found in {here} or its parents; "
        f"run from the project folder or set {CONFIG_ENV}"
    )


def load_settings(config_path: Path | None = None, **overrides: Any) -> Settings:
    path = (config_path or find_config()).resolve()
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings")
    unknown = sorted(set(data) - {*KNOWN_KEYS, "warehouse"})
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s) {unknown}; known: {list(KNOWN_KEYS)}")
    merged: dict[str, Any] = dict(_DEFAULTS)
    if "warehouse" in data:
        merged.update(_warehouse(data.pop("warehouse"), str(path)))
    merged.update(data)
    for key in KNOWN_KEYS:
        env_value = os.environ.get(f"CXKPI_{key.upper()}")
        if env_value:
            merged[key] = env_value
    if os.environ.get(WAREHOUSE_ENV):
        chosen = _warehouse(os.environ[WAREHOUSE_ENV], WAREHOUSE_ENV)
        if os.environ[WAREHOUSE_ENV].strip() == "postgres" and merged.get("postgres"):
            del chosen["postgres"]  # the type alone: cxkpi.yml's server stays
        merged.update(chosen)
    merged.update({k: v for k, v in overrides.items() if v is not None})
    root = path.parent
    return Settings(root=root, **_coerce(root, merged))


def scratch_settings(config_path: Path, folder: Path, **overrides: Any) -> Settings:
    """The project's settings with every path a run writes (landing files, warehouse,
    published files, run logs, dbt target) under ``folder``: for tests and benchmarks."""
    paths: dict[str, Any] = {
        "landing_dir": folder / "landing",
        "warehouse_path": folder / "warehouse" / "cx.duckdb",
        "published_dir": folder / "published",
        "runs_dir": folder / "runs",
        "dbt_target_dir": folder / "dbt_target",
    }
    paths.update(overrides)
    return load_settings(config_path, **paths)
