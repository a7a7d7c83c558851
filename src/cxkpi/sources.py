"""Source declarations: how a landing export maps onto the canonical model, in YAML.

A user brings a new export by writing one YAML file in ``sources/``; no code changes.
Every mistake in a declaration is reported with the file and the offending field.
The checks of single fields, and ``Location`` (where a field is written), are in
``cxkpi.source_fields``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from cxkpi.canonical import ENTITIES, Column, Entity, entity
from cxkpi.config import VOCABULARY_SETTINGS, allowed_values
from cxkpi.errors import ConfigError
from cxkpi.kpi_expr import Expression, ExpressionError
from cxkpi.kpi_spec import Document, Problem, read_documents
from cxkpi.source_expressions import bind_problem, parse_expression
from cxkpi.source_fields import (
    Location,
    check_csv_char,
    check_date_format,
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
SOURCE_KEYS = {
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
CSV_KEYS = {"delimiter", "quote", "escape", "encoding", "header", "header_rows"}
TIMESTAMP_KEYS = {"format", "timezone", "date_format", "end_of_day"}
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
    # Rows at the top of the file before the data: the first holds the column names, the
    # others (a survey tool's question texts, import ids) are skipped.
    header_rows: int = 1


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
    # canonical column -> SQL over the file's own columns ({expr: "a || '-' || b"})
    expressions: dict[str, Expression] = field(default_factory=dict)
    timestamp_format: str | None = None
    timezone: str = "UTC"
    # a value written as a date alone: midnight local, or for the canonical columns in
    # end_of_day the last instant of that local day
    date_format: str | None = None
    end_of_day: tuple[str, ...] = ()
    csv: CsvOptions = CsvOptions()
    required: bool = True
    description: str = ""
    declared_in: Path | None = None
    # canonical column -> the allowed values cxkpi.yml sets for it (channels, touchpoints)
    vocabularies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return entity(self.entity).kind

    @property
    def source_columns(self) -> list[str]:
        """Every column of the file the declaration reads: mapped, or used by an
        expression; each file must have them all."""
        used = list(self.columns.values())
        for expression in self.expressions.values():
            used.extend(expression.columns)
        return list(dict.fromkeys(used))

    def fields_reading(self, source_column: str) -> list[str]:
        """The declaration's fields that read ``source_column`` (``columns.<canonical>``)."""
        return [
            f"columns.{canonical}"
            for canonical in entity(self.entity).column_names
            if self.columns.get(canonical) == source_column
            or (
                canonical in self.expressions
                and source_column in self.expressions[canonical].columns
            )
        ]

    def allowed_values(self, column: Column) -> tuple[str, ...] | None:
        return allowed_values(column, self.vocabularies)

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
    the declaration is read and when rows load (type, range, allowed values)."""
    value = spec["const"]
    if value is None or isinstance(value, dict | list):
        raise fail(
            at.at("columns", canonical),
            f"columns.{canonical}: const must be one value (text or a number), got {value!r}",
        )
    text = str(value).lower() if isinstance(value, bool) else str(value)
    check_text(at, text, "columns", canonical)
    return text


def _expression(at: Location, canonical: str, spec: dict) -> Expression:
    """``{expr: SQL}``: the value computed from the file's own columns (see
    ``cxkpi.source_expressions``), checked like a mapped value when rows load."""
    field_at = at.at("columns", canonical, "expr")
    text = check_text(at, spec["expr"], "columns", canonical, "expr")
    try:
        expression = parse_expression(text)
    except ExpressionError as exc:
        hint = f"; {exc.hint}" if exc.hint else ""
        raise fail(
            field_at,
            f"columns.{canonical}.expr: {exc} (at character {exc.offset + 1} of {text!r}){hint}",
        ) from None
    for name in expression.columns:
        _check_source_column(at, canonical, name, ("columns", canonical, "expr"))
    problem = bind_problem(expression)
    if problem:
        hint = (
            " (in an expression every column of the file is text: cast(<column> as double) "
            "to compute with it)"
            if "No function matches" in problem or "explicit cast" in problem
            else ""
        )
        raise fail(
            field_at, f"columns.{canonical}.expr {text!r} is refused by DuckDB: {problem}{hint}"
        )
    return expression


def _check_source_column(
    at: Location, canonical: str, source_column: str, field_path: tuple[str, ...]
) -> None:
    if not source_column:
        raise fail(at.at(*field_path), f"columns.{canonical}: a column name is empty")
    if source_column != source_column.strip():
        raise fail(
            at.at(*field_path),
            f"columns.{canonical}: {source_column!r} has leading or trailing spaces "
            "(header names are compared trimmed)",
        )
    if source_column in _INTERNAL_COLUMNS:
        raise fail(
            at.at(*field_path),
            f"columns.{canonical}: {source_column!r} is a name the loader uses itself",
        )


def parse_source(
    data: Any,
    where: Path,
    document: Document | None = None,
    reserved_names: Iterable[str] = (),
    vocabularies: Mapping[str, tuple[str, ...]] | None = None,
) -> SourceSpec:
    """One declaration, checked field by field; ConfigError names file (line:column when
    ``document`` gives positions) and field of the first problem. ``vocabularies``: the
    allowed values cxkpi.yml sets per canonical column (``Settings.vocabularies``);
    columns without one keep canonical.py's."""
    at = Location(where, document)
    if not isinstance(data, dict):
        raise fail(at, "a source declaration must be a mapping")
    unknown = sorted(set(map(str, data)) - SOURCE_KEYS)
    if unknown:
        raise fail(at.at(unknown[0]), f"unknown key(s) {unknown}; allowed: {sorted(SOURCE_KEYS)}")
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
    expressions: dict[str, Expression] = {}
    for canonical, source_column in columns.items():
        if canonical not in target.column_names:
            raise fail(
                at.at("columns", canonical),
                f"columns: {canonical!r} is not a column of {target.name}; "
                f"known: {list(target.column_names)}",
            )
        if isinstance(source_column, dict):
            if set(map(str, source_column)) not in ({"const"}, {"expr"}):
                raise fail(
                    at.at("columns", canonical),
                    f"columns.{canonical}: a mapping here must be {{const: <value>}} or "
                    f"{{expr: <SQL over the file's columns>}}, got {source_column!r}",
                )
            if "const" in source_column:
                constants[canonical] = _constant(at, canonical, source_column)
                continue
            expressions[canonical] = _expression(at, canonical, source_column)
            read = expressions[canonical].columns
        elif not isinstance(source_column, str):
            raise fail(
                at.at("columns", canonical),
                f"columns.{canonical} must be the source column's name as text, got "
                f'{source_column!r} (quote it: "{source_column}")',
            )
        else:
            check_text(at, source_column, "columns", canonical)
            _check_source_column(at, canonical, source_column, ("columns", canonical))
            read = [source_column]
        for read_column in read:
            other = by_lower.setdefault(read_column.lower(), read_column)
            if other != read_column:
                raise fail(
                    at.at("columns", canonical),
                    f"columns.{canonical}: {read_column!r} and {other!r} differ only in case; "
                    "DuckDB matches column names case-insensitively, so they cannot be told "
                    "apart",
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
    unknown_ts = sorted(set(map(str, timestamps)) - TIMESTAMP_KEYS)
    if unknown_ts:
        raise fail(
            at.at("timestamps", unknown_ts[0]),
            f"timestamps: unknown key(s) {unknown_ts}; allowed: {sorted(TIMESTAMP_KEYS)}",
        )
    timestamp_format = None
    if timestamps.get("format") is not None:
        timestamp_format = check_timestamp_format(at, timestamps["format"])
    date_format = None
    if timestamps.get("date_format") is not None:
        date_format = check_date_format(at, timestamps["date_format"])
    end_of_day = _end_of_day(at, timestamps, target, columns, date_format)
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
    if csv_data and fmt != "csv":
        raise fail(
            at.at("csv"),
            f"csv options apply to CSV files; this source's format is {fmt} (remove csv:)",
        )
    unknown_csv = sorted(set(map(str, csv_data)) - CSV_KEYS)
    if unknown_csv:
        raise fail(
            at.at("csv", unknown_csv[0]),
            f"csv: unknown key(s) {unknown_csv}; allowed: {sorted(CSV_KEYS)}",
        )
    header_rows = csv_data.get("header_rows", 1)
    if csv_data.get("header", True) is not True:
        contradiction = (
            f"; it contradicts csv.header_rows: {header_rows}" if "header_rows" in csv_data else ""
        )
        raise fail(
            at.at("csv", "header"),
            f"csv.header: files must have a header row (columns are mapped by name){contradiction}",
        )
    if isinstance(header_rows, bool) or not isinstance(header_rows, int) or header_rows < 1:
        raise fail(
            at.at("csv", "header_rows"),
            f"csv.header_rows must be a whole number of at least 1, got {header_rows!r}: the "
            "first row holds the column names (columns are mapped by name), the others are "
            "skipped (e.g. 3 for a Qualtrics export)",
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

    spec = SourceSpec(
        name=name,
        entity=target.name,
        path=path,
        format=fmt,
        columns={k: v for k, v in columns.items() if k not in constants and k not in expressions},
        constants=constants,
        expressions=expressions,
        values={str(k): {str(sv): v for sv, v in m.items()} for k, m in values.items()},
        timestamp_format=timestamp_format,
        timezone=timezone,
        date_format=date_format,
        end_of_day=end_of_day,
        csv=CsvOptions(delimiter, quote, escape, encoding, header_rows),
        required=required,
        description=description,
        declared_in=where,
        vocabularies=dict(vocabularies or {}),
    )
    _check_declared_values(at, spec)
    return spec


def _end_of_day(
    at: Location, timestamps: dict, target: Entity, columns: dict, date_format: str | None
) -> tuple[str, ...]:
    """``timestamps.end_of_day``: timestamp columns the source maps whose date-only values
    mean the end of that day (a promised delivery date: on time all day long)."""
    listed = timestamps.get("end_of_day")
    if listed is None:
        return ()
    mapped = [c.name for c in target.columns if c.type == "timestamp" and c.name in columns]
    if not isinstance(listed, list) or not all(isinstance(c, str) for c in listed):
        raise fail(
            at.at("timestamps", "end_of_day"),
            f"timestamps.end_of_day must be a list of canonical columns, e.g. {mapped[:1]}",
        )
    if date_format is None:
        raise fail(
            at.at("timestamps", "end_of_day"),
            "timestamps.end_of_day needs timestamps.date_format: only values written as a "
            'date alone (in date_format, e.g. "%Y-%m-%d") are moved to the end of their day',
        )
    for index, column in enumerate(listed):
        if column not in mapped:
            raise fail(
                at.at("timestamps", "end_of_day", index),
                f"timestamps.end_of_day: {column!r} is not a timestamp column this source "
                f"maps; it maps {mapped}",
            )
    return tuple(dict.fromkeys(listed))


def _check_declared_values(at: Location, spec: SourceSpec) -> None:
    """Constants and the values of ``values:`` maps, checked as the loader checks a row's
    value (type, range, allowed values), so that one that would reject rows every night
    is named now, with its field."""
    # the loader's own checks: one definition of what a valid value is
    from cxkpi.loader.checks import declared_value_reasons

    declared: list[tuple[tuple[str, ...], str, str]] = [
        (("columns", canonical), canonical, text) for canonical, text in spec.constants.items()
    ]
    for canonical, mapping in spec.values.items():
        for source_value, value in mapping.items():
            if value is not None:
                text = str(value).lower() if isinstance(value, bool) else str(value)
                declared.append((("values", canonical, source_value), canonical, text))
    reasons = declared_value_reasons(spec, [(column, text) for _, column, text in declared])
    for (field_path, canonical, text), reason in zip(declared, reasons, strict=True):
        if reason is None:
            continue
        what = "const" if field_path[0] == "columns" else "value"
        rows = "every row" if field_path[0] == "columns" else "every row with this value"
        setting = VOCABULARY_SETTINGS.get(canonical)
        allowed = spec.allowed_values(entity(spec.entity).column(canonical)) or ()
        fix = ""
        if setting and text not in allowed:
            fix = f"; if {text!r} is one of yours, add it to {setting} in cxkpi.yml"
        raise fail(
            at.at(*field_path),
            f"{'.'.join(field_path)}: {what} {text!r} would reject {rows} at load ({reason}){fix}",
        )


def dbt_model_names(dbt_project_dir: Path) -> set[str]:
    """Names of the dbt project's models (``models/**/*.sql``)."""
    return {p.stem for p in (dbt_project_dir / "models").rglob("*.sql")}


def check_sources(
    sources_dir: Path,
    dbt_project_dir: Path | None = None,
    vocabularies: Mapping[str, tuple[str, ...]] | None = None,
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
                specs.append(parse_source(document.data, path, document, reserved, vocabularies))
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


def load_sources(
    sources_dir: Path,
    dbt_project_dir: Path | None = None,
    vocabularies: Mapping[str, tuple[str, ...]] | None = None,
) -> list[SourceSpec]:
    """Every declaration in ``sources_dir``; ConfigError listing every problem if any, or
    if there is none: a folder without declarations is a project not yet set up (``cxkpi
    validate`` passes it), and a night with nothing to load must not run."""
    specs, problems = check_sources(sources_dir, dbt_project_dir, vocabularies)
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
