"""Typing and checking: ``src`` becomes the temp table ``staged``, the canonical columns
typed, each row with its reject reason (empty when valid) and reason code."""

from __future__ import annotations

from dataclasses import replace

import duckdb

from cxkpi.canonical import Column, entity
from cxkpi.errors import LoadError
from cxkpi.source_expressions import column_text, evaluated_sql
from cxkpi.sources import SourceSpec
from cxkpi.warehouse import connect, quote_ident, quote_literal


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
        full = _timestamp(text, spec)
        if spec.date_format is None:
            return full
        # A date alone is tried first: it is midnight local time (the default parse would
        # read it so too), or for end_of_day columns the last instant of that local day.
        local = f"try_strptime({text}, {quote_literal(spec.date_format)})"
        if col.name in spec.end_of_day:
            local = f"({local} + interval 1 day - interval 1 microsecond)"
        as_date = f"timezone('UTC', timezone({quote_literal(spec.timezone)}, {local}))"
        return f"coalesce({as_date}, {full})"
    raise LoadError(f"canonical type {col.type} not handled")


def _timestamp(text: str, spec: SourceSpec) -> str:
    fmt = spec.timestamp_format
    if fmt is None:
        # The parse connection's TimeZone is the source's: offset-less text is local time.
        return f"timezone('UTC', try_cast({text} as timestamptz))"
    parsed = f"try_strptime({text}, {quote_literal(fmt)})"
    if "%z" in fmt or "%Z" in fmt:
        return f"timezone('UTC', {parsed})"
    return f"timezone('UTC', timezone({quote_literal(spec.timezone)}, {parsed}))"


def _mapped_text(col: Column, spec: SourceSpec, present: set[str]) -> str:
    if col.name in spec.constants:
        return quote_literal(spec.constants[col.name]) + "::varchar"
    expression = spec.expressions.get(col.name)
    if expression is not None:
        if not set(expression.columns) <= present:
            return "null::varchar"  # the file lacks a column: every row is rejected so
        text = f"nullif(trim({evaluated_sql(expression)}), '')"
    else:
        source_column = spec.columns.get(col.name)
        if source_column is None or source_column not in present:
            return "null::varchar"
        text = column_text(source_column)
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
        if col.type == "timestamp" and spec.date_format:
            what += f" or date in format {spec.date_format}"
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
    allowed_values = spec.allowed_values(col)
    if allowed_values:
        allowed = ", ".join(quote_literal(a) for a in allowed_values)
        checks.append(
            (
                (
                    f"case when {typed} is not null and {typed} not in ({allowed}) "
                    f"then {quote_literal(name + ': ')} || {shown} "
                    f"|| {quote_literal(' is not one of ' + ', '.join(allowed_values))} end"
                ),
                "allowed",
            )
        )
    return checks


def _expression_check(col: Column, spec: SourceSpec, present: set[str]) -> list[tuple[str, str]]:
    """A row on whose values the column's expression fails (a cast of text that is not a
    number) is rejected, naming the values it read."""
    expression = spec.expressions.get(col.name)
    if expression is None or not set(expression.columns) <= present:
        return []
    apostrophe = quote_literal("'")
    inputs = ", ".join(
        f"{quote_literal(c + ' ')} || coalesce({apostrophe} || {column_text(c)} || {apostrophe}, "
        "'empty')"
        for c in expression.columns
    )
    reason = quote_literal(f"{col.name}: cannot compute {expression.text} from ")
    values = f"concat_ws(', ', {inputs or quote_literal('nothing')})"
    return [
        (
            f"case when {evaluated_sql(expression)} is null then {reason} || {values} end",
            "expression",
        )
    ]


def declared_value_reasons(spec: SourceSpec, values: list[tuple[str, str]]) -> list[str | None]:
    """For each (canonical column, value) that ``spec`` declares (a constant, the value of a
    ``values:`` map), the reason the loader would reject a row holding it, or None."""
    if not values:
        return []
    ent = entity(spec.entity)
    as_mapped = replace(spec, values={})  # the value is already mapped: check it as it is
    reasons = []
    for column_name, value in values:
        col = ent.column(column_name)
        literal = quote_literal(value) + "::varchar"
        typed = _typed(col, literal, as_mapped)
        parts = [r for r, code in _checks(col, literal, typed, as_mapped) if code != "required"]
        reasons.append(f"nullif(concat_ws('; ', {', '.join(parts) or 'null'}), '')")
    con = connect()
    try:
        con.execute(f"set TimeZone = {quote_literal(spec.timezone)}")
        row = con.execute(f"select {', '.join(reasons)}").fetchone()
    finally:
        con.close()
    assert row is not None
    return list(row)


def stage(con: duckdb.DuckDBPyConnection, spec: SourceSpec, present: list[str]) -> None:
    ent = entity(spec.entity)
    present_set = set(present)
    missing = [s for s in spec.source_columns if s not in present_set]
    selects: list[str] = []
    checks: list[tuple[str, str]] = []
    if missing:
        readers = sorted({f for s in missing for f in spec.fields_reading(s)})
        message = quote_literal(
            f"file lacks mapped column(s) {missing} (read by {', '.join(readers)}); found "
            f"{present}. Did the export change? Update {spec.declared_in}"
        )
        checks.append((message, "missing_column"))
    for col in ent.columns:
        text = _mapped_text(col, spec, present_set)
        typed = _typed(col, text, spec)
        selects.append(f"{typed} as {col.name}")
        checks.extend(_expression_check(col, spec, present_set))
        checks.extend(_checks(col, text, typed, spec))
    if spec.format == "jsonl":
        line, raw = "src._source_record", "to_json({'line': src._line})"
    else:
        line = "null::bigint"
        # json_object's keys are values: a struct literal's keys ({'a': ...}) came out as
        # numbers now and then (DuckDB 1.5) when the select repeats column expressions
        fields = ", ".join(f"{quote_literal(c)}, src.{quote_ident(c)}" for c in present)
        raw = f"json_object({fields})" if present else "'{}'"
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
