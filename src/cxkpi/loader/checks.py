"""Typing and checking: ``src`` becomes the temp table ``staged``, the canonical columns
typed, each row with its reject reason (empty when valid) and reason code."""

from __future__ import annotations

import duckdb

from cxkpi.canonical import Column, entity
from cxkpi.errors import LoadError
from cxkpi.sources import SourceSpec
from cxkpi.warehouse import quote_ident, quote_literal


def _typed(col: Column, text: str, spec: SourceSpec) -> str:
    if col.type == "varchar":
        return text
    if col.type == "integer":
        as_double = f"try_cast({text} as double)"
        whole = f"{as_double} = floor({as_double})"
        return f"(case when {whole} then try_cast({as_double} as integer) end)"
    if col.type == "double":
        as_double = f"try_cast({text} as double)"
        return f"(case when isfinite({as_double}) then {as_double} end)"
    if col.type == "boolean":
        return f"try_cast({text} as boolean)"
    if col.type == "timestamp":
        fmt = spec.timestamp_format
        if fmt is None:
            # The parse connection's TimeZone is the source's: offset-less text is local time.
            return f"timezone('UTC', try_cast({text} as timestamptz))"
        parsed = f"try_strptime({text}, {quote_literal(fmt)})"
        if "%z" in fmt or "%Z" in fmt:
            return f"timezone('UTC', {parsed})"
        return f"timezone('UTC', timezone({quote_literal(spec.timezone)}, {parsed}))"
    raise LoadError(f"canonical type {col.type} not handled")


def _mapped_text(col: Column, spec: SourceSpec, present: set[str]) -> str:
    if col.name in spec.constants:
        return quote_literal(spec.constants[col.name]) + "::varchar"
    source_column = spec.columns.get(col.name)
    if source_column is None or source_column not in present:
        return "null::varchar"
    text = f"nullif(trim(cast(src.{quote_ident(source_column)} as varchar)), '')"
    mapping = spec.values.get(col.name)
    if not mapping:
        return text
    whens = " ".join(f"when {quote_literal(k)} then {_value_sql(v)}" for k, v in mapping.items())
    return f"(case {text} {whens} else {text} end)"


def _value_sql(value: object) -> str:
    if value is None:
        return "null::varchar"
    return quote_literal(str(value).lower() if isinstance(value, bool) else value)


def _checks(col: Column, text: str, typed: str, spec: SourceSpec) -> list[tuple[str, str]]:
    """Per check, an SQL expression giving a reason (or NULL) and the check's reason code
    (REASON_CODES); every piece of text in them, declared or canonical, goes through
    quote_literal."""
    name = col.name
    shown = f"'''' || {text} || ''''"
    checks = []
    if col.required:
        message = quote_literal(f"{name}: required value missing")
        checks.append((f"case when {text} is null then {message} end", "required"))
    if col.type != "varchar":
        what = col.type
        if col.type == "timestamp" and spec.timestamp_format:
            what = f"timestamp in format {spec.timestamp_format}"
        if spec.values.get(col.name):
            what += " nor a value of its values: map"
        checks.append(
            (
                (
                    f"case when {text} is not null and {typed} is null "
                    f"then {quote_literal(name + ': ')} || {shown} "
                    f"|| {quote_literal(' is not a valid ' + what)} end"
                ),
                "type",
            )
        )
    if col.min is not None:
        checks.append(
            (
                (
                    f"case when {typed} < {float(col.min)!r} then {quote_literal(name + ': ')} "
                    f"|| {typed} || {quote_literal(f' is below the minimum {col.min:g}')} end"
                ),
                "range",
            )
        )
    if col.max is not None:
        checks.append(
            (
                (
                    f"case when {typed} > {float(col.max)!r} then {quote_literal(name + ': ')} "
                    f"|| {typed} || {quote_literal(f' is above the maximum {col.max:g}')} end"
                ),
                "range",
            )
        )
    if col.allowed:
        allowed = ", ".join(quote_literal(a) for a in col.allowed)
        checks.append(
            (
                (
                    f"case when {typed} is not null and {typed} not in ({allowed}) "
                    f"then {quote_literal(name + ': ')} || {shown} "
                    f"|| {quote_literal(' is not one of ' + ', '.join(col.allowed))} end"
                ),
                "allowed",
            )
        )
    return checks


def stage(con: duckdb.DuckDBPyConnection, spec: SourceSpec, present: list[str]) -> None:
    ent = entity(spec.entity)
    present_set = set(present)
    missing = [s for s in dict.fromkeys(spec.columns.values()) if s not in present_set]
    selects: list[str] = []
    checks: list[tuple[str, str]] = []
    if missing:
        message = quote_literal(
            f"file lacks mapped column(s) {missing}; found {present}. "
            f"Did the export change? Update {spec.declared_in}"
        )
        checks.append((message, "missing_column"))
    for col in ent.columns:
        text = _mapped_text(col, spec, present_set)
        typed = _typed(col, text, spec)
        selects.append(f"{typed} as {col.name}")
        checks.extend(_checks(col, text, typed, spec))
    if spec.format == "jsonl":
        line, raw = "src._source_record", "to_json({'line': src._line})"
    else:
        line = "null::bigint"
        fields = ", ".join(f"{quote_literal(c)}: src.{quote_ident(c)}" for c in present)
        raw = f"to_json({{{fields}}})" if present else "'{}'"
    # the code of the first check that gives a reason, as the reason names it first
    codes = (
        "coalesce("
        + ", ".join(f"case when ({r}) is not null then {quote_literal(c)} end" for r, c in checks)
        + ")"
        if checks
        else "null::varchar"
    )
    con.execute(
        f"""create temp table staged as
            select {", ".join(selects)},
                   src._source_record, {line} as _source_line,
                   {raw}::varchar as _raw_values,
                   concat_ws('; ', {", ".join(r for r, _ in checks) or "null"}) as _reason,
                   {codes} as _reason_code
            from src"""
    )
    key = ", ".join(ent.primary_key)
    key_text = " || ', ' || ".join(f"coalesce({k}::varchar, '')" for k in ent.primary_key)
    con.execute(
        f"""update staged set _reason = 'duplicate {key} ' || {key_text} ||
                   ' within the file (first at record ' || first_record || ')',
                   _reason_code = 'duplicate_in_file'
            from (select _source_record as rec,
                         min(_source_record) over (partition by {key}) as first_record
                  from staged where _reason = '') dupes
            where staged._source_record = dupes.rec and dupes.rec <> dupes.first_record"""
    )
