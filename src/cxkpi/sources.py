"""Source declarations: how a landing export maps onto the canonical model, in YAML.

A user brings a new export by writing one YAML file in ``sources/``; no code changes.
Every mistake in a declaration is reported with the file and the offending field.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from cxkpi.canonical import ENTITIES, entity
from cxkpi.errors import ConfigError

FORMATS = ("csv", "parquet", "jsonl")
# Encodings DuckDB decodes natively (others would need an extension download); any other
# codec Python knows (cp1252, iso-8859-15, shift_jis, ...) is transcoded to UTF-8 first.
NATIVE_ENCODINGS = ("utf-8", "utf-16", "latin-1")
_SOURCE_KEYS = {
    "name",
    "entity",
    "description",
    "path",
    "format",
    "csv",
    "columns",
    "values",
    "timestamps",
    "required",
}
_CSV_KEYS = {"delimiter", "quote", "escape", "encoding", "header"}


@dataclass(frozen=True)
class CsvOptions:
    delimiter: str = ","
    quote: str = '"'
    escape: str = '"'
    encoding: str = "utf-8"


@dataclass(frozen=True)
class SourceSpec:
    name: str
    entity: str
    path: str  # glob, relative to the landing directory
    format: str
    columns: dict[str, str]  # canonical column -> source column/key
    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    timestamp_format: str | None = None
    timezone: str = "UTC"
    csv: CsvOptions = CsvOptions()
    required: bool = True
    description: str = ""
    declared_in: Path | None = None

    @property
    def kind(self) -> str:
        return entity(self.entity).kind

    def files(self, landing_dir: Path) -> list[Path]:
        return sorted(p for p in landing_dir.glob(self.path) if p.is_file())


def _fail(where: Path, message: str) -> ConfigError:
    return ConfigError(f"{where}: {message}")


def parse_source(data: Any, where: Path) -> SourceSpec:
    if not isinstance(data, dict):
        raise _fail(where, "a source declaration must be a mapping")
    unknown = sorted(set(data) - _SOURCE_KEYS)
    if unknown:
        raise _fail(where, f"unknown key(s) {unknown}; allowed: {sorted(_SOURCE_KEYS)}")
    for key in ("name", "entity", "path", "columns"):
        if key not in data:
            raise _fail(where, f"missing required key '{key}'")
    name = str(data["name"])
    if not name.replace("_", "").isalnum():
        raise _fail(where, f"name {name!r} must be letters, digits and underscores")
    if data["entity"] not in ENTITIES:
        raise _fail(where, f"entity {data['entity']!r} unknown; known: {sorted(ENTITIES)}")
    target = entity(data["entity"])
    fmt = data.get("format") or Path(str(data["path"])).suffix.lstrip(".") or "csv"
    if fmt not in FORMATS:
        raise _fail(where, f"format {fmt!r} unsupported; use one of {list(FORMATS)}")

    columns = data["columns"]
    if not isinstance(columns, dict) or not columns:
        raise _fail(where, "columns must map canonical columns to source columns")
    for canonical in columns:
        if canonical not in target.column_names:
            raise _fail(
                where,
                f"columns: {canonical!r} is not a column of {target.name}; "
                f"known: {list(target.column_names)}",
            )
    missing_required = [c.name for c in target.columns if c.required and c.name not in columns]
    if missing_required:
        raise _fail(where, f"columns: required canonical column(s) not mapped: {missing_required}")

    values = data.get("values") or {}
    if not isinstance(values, dict):
        raise _fail(where, "values must map a canonical column to {source value: value}")
    for canonical, mapping in values.items():
        if canonical not in columns:
            raise _fail(where, f"values: {canonical!r} is not a mapped column")
        if not isinstance(mapping, dict):
            raise _fail(where, f"values.{canonical} must be a mapping of source value to value")
        for key in mapping:
            if isinstance(key, bool) or key is None:
                raise _fail(
                    where,
                    f"values.{canonical}: key {key!r} is what YAML makes of an unquoted "
                    'yes/no/on/off/true/false/null; quote the source value, e.g. "Yes": true',
                )

    timestamps = data.get("timestamps") or {}
    timezone = str(timestamps.get("timezone", "UTC"))
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise _fail(where, f"timestamps.timezone {timezone!r} is not an IANA time zone") from None

    csv_data = data.get("csv") or {}
    unknown_csv = sorted(set(csv_data) - _CSV_KEYS)
    if unknown_csv:
        raise _fail(where, f"csv: unknown key(s) {unknown_csv}; allowed: {sorted(_CSV_KEYS)}")
    if csv_data.get("header", True) is not True:
        raise _fail(where, "csv.header: files must have a header row (columns are mapped by name)")
    csv_options = CsvOptions(
        delimiter=str(csv_data.get("delimiter", ",")),
        quote=str(csv_data.get("quote", '"')),
        escape=str(csv_data.get("escape", csv_data.get("quote", '"'))),
        encoding=str(csv_data.get("encoding", "utf-8")).lower().replace("utf8", "utf-8"),
    )
    try:
        codecs.lookup(csv_options.encoding)
    except LookupError:
        raise _fail(
            where, f"csv.encoding {csv_options.encoding!r} is not a known encoding"
        ) from None
    if len(csv_options.delimiter) != 1:
        raise _fail(where, "csv.delimiter must be a single character")

    return SourceSpec(
        name=name,
        entity=target.name,
        path=str(data["path"]),
        format=fmt,
        columns={str(k): str(v) for k, v in columns.items()},
        values={str(k): dict(v) for k, v in values.items()},
        timestamp_format=timestamps.get("format"),
        timezone=timezone,
        csv=csv_options,
        required=bool(data.get("required", True)),
        description=str(data.get("description", "")),
        declared_in=where,
    )


def load_sources(sources_dir: Path) -> list[SourceSpec]:
    """Every declaration in ``sources_dir`` (``*.yml``/``*.yaml``, one or more per file)."""
    if not sources_dir.is_dir():
        raise ConfigError(f"sources directory {sources_dir} does not exist")
    specs: list[SourceSpec] = []
    for path in sorted([*sources_dir.rglob("*.yml"), *sources_dir.rglob("*.yaml")]):
        try:
            documents = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
        except yaml.YAMLError as exc:
            raise _fail(path, f"not valid YAML: {exc}") from None
        specs.extend(parse_source(doc, path) for doc in documents)
    seen: dict[str, Path | None] = {}
    for spec in specs:
        if spec.name in seen:
            raise _fail(
                spec.declared_in or sources_dir,
                f"source name {spec.name!r} also declared in {seen[spec.name]}",
            )
        seen[spec.name] = spec.declared_in
    if not specs:
        raise ConfigError(f"no source declarations (*.yml) found in {sources_dir}")
    return specs
