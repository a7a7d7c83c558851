"""Source declarations: how a landing export maps onto the canonical model, in YAML.

A user brings a new export by writing one YAML file in ``sources/``; no code changes.
Every mistake in a declaration is reported with the file and the offending field.
The checks of single fields, and ``Location`` (where a field is written), are in
``cxkpi.source_fields``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from cxkpi.canonical import ENTITIES, entity
from cxkpi.errors import ConfigError
from cxkpi.kpi_spec import Document, Problem, read_documents
from cxkpi.source_fields import (
    Location,
    check_csv_char,
    check_encoding,
    check_text,
    check_timestamp_format,
    duckdb_time_zones,
    fail,
    scalar_text,
)

FORMATS = ("csv", "parquet", "jsonl")
# Encodings DuckDB decodes natively (others would need an extension download); any other
# text codec Python knows (utf-16, cp1252, iso-8859-15, shift_jis, ...) is transcoded to
# UTF-8 first, so the loader's own record count reads bytes it understands.
NATIVE_ENCODINGS = ("utf-8", "latin-1")
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
_TIMESTAMP_KEYS = {"format", "timezone"}
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,62}")
# Objects the loader and dbt create: a source named like one of them would be mistaken for
# it in raw._source_name, logs and the gate's evidence. dbt model names of a project are
# added by load_sources(dbt_project_dir=...); its layer prefixes are reserved outright.
_GENERATED_NAMES = {"raw", "main", "temp", "load_rejects", "load_files", "publish_log", *ENTITIES}
_GENERATED_PREFIXES = ("stg_", "int_", "fct_", "dim_", "kpi_", "raw_", "load_")
# Columns the loader adds to a parsed file: a source column of that name would clash.
_INTERNAL_COLUMNS = {"_source_record", "_source_line", "_line", "_raw_values", "_reason"}


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
    # canonical column -> the one value every row of the source has ({const: web})
    constants: dict[str, str] = field(default_factory=dict)
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
        """The landing files ``path`` matches, refusing any that resolves outside
        ``landing_dir`` (a symlink to elsewhere): ConfigError naming the file and its target."""
        root = landing_dir.resolve()
        found = []
        for match in sorted(landing_dir.glob(self.path)):
            if not match.is_file():
                continue
            target = match.resolve()
            if not target.is_relative_to(root):
                raise ConfigError(
                    f"{self.declared_in}: path {self.path!r} matches {match}, which resolves "
                    f"to {target}, outside landing_dir {root}; cxkpi only reads files inside "
                    "landing_dir (copy the file in instead of linking it)"
                )
            found.append(match)
        return found


def _constant(at: Location, canonical: str, spec: dict) -> str:
    """``{const: value}``: the export has no such column, every row has this value (a
    shop with one channel: ``channel: {const: web}``). Checked like a mapped value when
    rows load (type, allowed values)."""
    if set(spec) != {"const"}:
        raise fail(
            at.at("columns", canonical),
            f"columns.{canonical}: a mapping here must be {{const: <value>}}, got {spec!r}",
        )
    value = spec["const"]
    if value is None or isinstance(value, dict | list):
        raise fail(
            at.at("columns", canonical),
            f"columns.{canonical}: const must be one value (text or a number), got {value!r}",
        )
    text = str(value).lower() if isinstance(value, bool) else str(value)
    check_text(at, text, "columns", canonical)
    return text


def parse_source(
    data: Any,
    where: Path,
    document: Document | None = None,
    reserved_names: Iterable[str] = (),
) -> SourceSpec:
    """One declaration, checked field by field; ConfigError names file (line:column when
    ``document`` gives positions) and field of the first problem."""
    at = Location(where, document)
    if not isinstance(data, dict):
        raise fail(at, "a source declaration must be a mapping")
    unknown = sorted(set(map(str, data)) - _SOURCE_KEYS)
    if unknown:
        raise fail(at.at(unknown[0]), f"unknown key(s) {unknown}; allowed: {sorted(_SOURCE_KEYS)}")
    for key in ("name", "entity", "path", "columns"):
        if key not in data:
            raise fail(at, f"missing required key '{key}'")
    name = data["name"]
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise fail(
            at.at("name"),
            f"name {name!r} must be letters, digits and underscores, starting with a letter "
            "(at most 63 characters)",
        )
    reserved = {n.lower() for n in (*_GENERATED_NAMES, *reserved_names)}
    if name.lower() in reserved or name.lower().startswith(_GENERATED_PREFIXES):
        raise fail(
            at.at("name"),
            f"name {name!r} is taken by a table or model cxkpi generates (raw tables, "
            f"load_rejects, load_files, dbt models; prefixes {', '.join(_GENERATED_PREFIXES)}): "
            "choose another, e.g. crm_customers",
        )
    if not isinstance(data["entity"], str) or data["entity"] not in ENTITIES:
        raise fail(at.at("entity"), f"entity {data['entity']!r} unknown; known: {sorted(ENTITIES)}")
    target = entity(data["entity"])
    path = check_text(at, data["path"], "path")
    pure = PurePosixPath(path)
    if pure.is_absolute() or path.startswith("~") or re.match(r"[A-Za-z]:", path):
        raise fail(at.at("path"), f"path {path!r} must be relative to landing_dir, not absolute")
    if "\\" in path:
        raise fail(at.at("path"), f"path {path!r}: use / to separate folders")
    if ".." in pure.parts:
        raise fail(at.at("path"), f"path {path!r} must stay inside landing_dir (no '..')")
    fmt = data.get("format") or pure.suffix.lstrip(".") or "csv"
    if fmt not in FORMATS:
        field_at = at.at("format" if "format" in data else "path")
        raise fail(field_at, f"format {fmt!r} unsupported; use one of {list(FORMATS)}")

    columns = data["columns"]
    if not isinstance(columns, dict) or not columns:
        raise fail(at.at("columns"), "columns must map canonical columns to source columns")
    by_lower: dict[str, str] = {}
    constants: dict[str, str] = {}
    for canonical, source_column in columns.items():
        if canonical not in target.column_names:
            raise fail(
                at.at("columns", canonical),
                f"columns: {canonical!r} is not a column of {target.name}; "
                f"known: {list(target.column_names)}",
            )
        if isinstance(source_column, dict):
            constants[canonical] = _constant(at, canonical, source_column)
            continue
        if not isinstance(source_column, str):
            raise fail(
                at.at("columns", canonical),
                f"columns.{canonical} must be the source column's name as text, got "
                f'{source_column!r} (quote it: "{source_column}")',
            )
        check_text(at, source_column, "columns", canonical)
        if source_column != source_column.strip():
            raise fail(
                at.at("columns", canonical),
                f"columns.{canonical}: {source_column!r} has leading or trailing spaces "
                "(header names are compared trimmed)",
            )
        if source_column in _INTERNAL_COLUMNS:
            raise fail(
                at.at("columns", canonical),
                f"columns.{canonical}: {source_column!r} is a name the loader uses itself",
            )
        other = by_lower.setdefault(source_column.lower(), source_column)
        if other != source_column:
            raise fail(
                at.at("columns", canonical),
                f"columns.{canonical}: {source_column!r} and {other!r} differ only in case; "
                "DuckDB matches column names case-insensitively, so they cannot be told apart",
            )
    missing_required = [c.name for c in target.columns if c.required and c.name not in columns]
    if missing_required:
        raise fail(
            at.at("columns"),
            f"columns: required canonical column(s) not mapped: {missing_required}",
        )

    values = data.get("values") or {}
    if not isinstance(values, dict):
        raise fail(at.at("values"), "values must map a canonical column to {source value: value}")
    for canonical, mapping in values.items():
        if canonical not in columns or canonical in constants:
            raise fail(at.at("values", canonical), f"values: {canonical!r} is not a mapped column")
        if not isinstance(mapping, dict):
            raise fail(
                at.at("values", canonical),
                f"values.{canonical} must be a mapping of source value to value",
            )
        for key, value in mapping.items():
            if isinstance(key, bool) or key is None:
                raise fail(
                    at.at("values", canonical),
                    f"values.{canonical}: key {key!r} is what YAML makes of an unquoted "
                    'yes/no/on/off/true/false/null; quote the source value, e.g. "Yes": true',
                )
            if not scalar_text(key) or "\x00" in str(key):
                raise fail(
                    at.at("values", canonical),
                    f"values.{canonical}: key {key!r} must be a source value (text or number)",
                )
            if not (value is None or isinstance(value, bool) or scalar_text(value)):
                raise fail(
                    at.at("values", canonical, key),
                    f"values.{canonical}.{key}: {value!r} must be one value (text, number, "
                    "true/false, or null for no value)",
                )
            if isinstance(value, str) and "\x00" in value:
                raise fail(at.at("values", canonical, key), f"values.{canonical}.{key}: NUL byte")

    timestamps = data.get("timestamps") or {}
    if not isinstance(timestamps, dict):
        raise fail(
            at.at("timestamps"), "timestamps must be a mapping: {format: ..., timezone: ...}"
        )
    unknown_ts = sorted(set(map(str, timestamps)) - _TIMESTAMP_KEYS)
    if unknown_ts:
        raise fail(
            at.at("timestamps", unknown_ts[0]),
            f"timestamps: unknown key(s) {unknown_ts}; allowed: {sorted(_TIMESTAMP_KEYS)}",
        )
    timestamp_format = None
    if timestamps.get("format") is not None:
        timestamp_format = check_timestamp_format(at, timestamps["format"])
    timezone = check_text(at, timestamps.get("timezone", "UTC"), "timestamps", "timezone")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise fail(
            at.at("timestamps", "timezone"),
            f"timestamps.timezone {timezone!r} is not an IANA time zone",
        ) from None
    if timezone not in duckdb_time_zones():
        raise fail(
            at.at("timestamps", "timezone"),
            f"timestamps.timezone {timezone!r} is not a time zone DuckDB knows",
        )

    csv_data = data.get("csv") or {}
    if not isinstance(csv_data, dict):
        raise fail(at.at("csv"), "csv must be a mapping, e.g. {delimiter: ';', encoding: cp1252}")
    unknown_csv = sorted(set(map(str, csv_data)) - _CSV_KEYS)
    if unknown_csv:
        raise fail(
            at.at("csv", unknown_csv[0]),
            f"csv: unknown key(s) {unknown_csv}; allowed: {sorted(_CSV_KEYS)}",
        )
    if csv_data.get("header", True) is not True:
        raise fail(
            at.at("csv", "header"),
            "csv.header: files must have a header row (columns are mapped by name)",
        )
    delimiter = check_csv_char(at, csv_data, "delimiter", ",")
    quote = check_csv_char(at, csv_data, "quote", '"')
    escape = check_csv_char(at, csv_data, "escape", quote)
    if quote == delimiter:
        raise fail(at.at("csv", "quote"), f"csv.quote and csv.delimiter are both {quote!r}")
    if escape == delimiter:
        raise fail(at.at("csv", "escape"), f"csv.escape and csv.delimiter are both {escape!r}")
    encoding = check_encoding(at, csv_data.get("encoding", "utf-8"))
    required = data.get("required", True)
    if not isinstance(required, bool):
        raise fail(at.at("required"), f"required must be true or false, got {required!r}")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise fail(at.at("description"), "description must be text")

    return SourceSpec(
        name=name,
        entity=target.name,
        path=path,
        format=fmt,
        columns={k: v for k, v in columns.items() if k not in constants},
        constants=constants,
        values={str(k): {str(sv): v for sv, v in m.items()} for k, m in values.items()},
        timestamp_format=timestamp_format,
        timezone=timezone,
        csv=CsvOptions(delimiter, quote, escape, encoding),
        required=required,
        description=description,
        declared_in=where,
    )


def dbt_model_names(dbt_project_dir: Path) -> set[str]:
    """Names of the dbt project's models (``models/**/*.sql``)."""
    return {p.stem for p in (dbt_project_dir / "models").rglob("*.sql")}


def check_sources(
    sources_dir: Path, dbt_project_dir: Path | None = None
) -> tuple[list[SourceSpec], list[str]]:
    """Every declaration in ``sources_dir`` (``*.yml``/``*.yaml``, one or more per file), and
    every problem found (one per declaration at most), each ``file:line:column: message``."""
    if not sources_dir.is_dir():
        return [], [f"sources directory {sources_dir} does not exist"]
    reserved = dbt_model_names(dbt_project_dir) if dbt_project_dir else set()
    specs: list[SourceSpec] = []
    problems: list[str] = []
    for path in sorted([*sources_dir.rglob("*.yml"), *sources_dir.rglob("*.yaml")]):
        yaml_problems: list[Problem] = []
        try:
            documents = read_documents(path, yaml_problems)
        except yaml.YAMLError as exc:  # e.g. a NUL byte: refused before parsing starts
            mark = getattr(exc, "problem_mark", None)
            where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
            problems.append(f"{where}: not valid YAML: {exc}")
            continue
        problems.extend(str(p) for p in yaml_problems)
        if yaml_problems:
            continue
        for document in documents:
            if document.data is None:
                continue
            try:
                specs.append(parse_source(document.data, path, document, reserved))
            except ConfigError as exc:
                problems.append(str(exc))
    seen: dict[str, SourceSpec] = {}
    for spec in specs:
        key = spec.name.lower()
        if key in seen:
            problems.append(
                f"{spec.declared_in}: source name {spec.name!r} also declared in "
                f"{seen[key].declared_in}"
            )
        seen.setdefault(key, spec)
    return specs, problems


def load_sources(sources_dir: Path, dbt_project_dir: Path | None = None) -> list[SourceSpec]:
    """Every declaration in ``sources_dir``; ConfigError listing every problem if any, or
    if there is none: a folder without declarations is a project not yet set up (``cxkpi
    validate`` passes it), and a night with nothing to load must not run."""
    specs, problems = check_sources(sources_dir, dbt_project_dir)
    if problems:
        if len(problems) == 1:
            raise ConfigError(problems[0])
        raise ConfigError(
            f"{len(problems)} problems in source declarations:\n" + "\n".join(problems)
        )
    if not specs:
        raise ConfigError(
            f"no source declarations (*.yml) found in {sources_dir}: declare your exports "
            "there (a new project has templates: rename a *.yml.example and edit it)"
        )
    return specs
