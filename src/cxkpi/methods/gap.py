"""`cxkpi gap`: the seven-step factor gap analysis on a small table, no warehouse needed.

Runs the very SQL of the ``fct_factor_gaps`` mart: the macro ``cxkpi/sql/factor_gap_steps.sql``
(package data; the dbt project uses a generated copy, see ``cxkpi.package_macros``) is
rendered with plain Jinja and executed on an in-memory DuckDB holding the CSV.
"""

from __future__ import annotations

import csv
from pathlib import Path

from cxkpi import package_macros
from cxkpi.errors import CxkpiError
from cxkpi.warehouse import connect

MACRO = "factor_gap_steps.sql"
INPUT_COLUMNS = ("factor", "experience", "expectation", "importance", "ideal")
OUTPUT_COLUMNS = (
    "factor",
    "experience",
    "expectation",
    "expectation_assumed",
    "satisfaction_gap",
    "importance",
    "weighted_gap",
    "ideal",
    "experience_gap",
    "gap_rank",
    "is_key_experience",
    "quadrant",
)


def gap_sql(input_relation: str) -> str:
    return package_macros.call(
        MACRO, "factor_gap_steps(input_relation)", input_relation=input_relation
    )


def read_input(path: Path) -> list[dict]:
    """Rows of the input CSV; blank cells become None; numbers are checked."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            header = [h.strip().lower() for h in reader.fieldnames or []]
            missing = [c for c in ("factor", "experience") if c not in header]
            if missing:
                raise CxkpiError(
                    f"{path}: needs columns factor, experience (and optionally expectation, "
                    f"importance, ideal); missing {missing}, found {header}"
                )
            rows = []
            for line, raw in enumerate(reader, start=2):
                record = {k.strip().lower(): (v or "").strip() for k, v in raw.items() if k}
                row: dict = {"factor": record.get("factor")}
                if not row["factor"]:
                    raise CxkpiError(f"{path}:{line}: factor is empty")
                for column in INPUT_COLUMNS[1:]:
                    text = record.get(column, "")
                    if text == "":
                        if column == "experience":
                            raise CxkpiError(f"{path}:{line}: experience is required")
                        row[column] = None
                        continue
                    try:
                        row[column] = float(text)
                    except ValueError:
                        raise CxkpiError(
                            f"{path}:{line}: {column} {text!r} is not a number"
                        ) from None
                rows.append(row)
    except OSError as exc:
        raise CxkpiError(f"cannot read {path}: {exc}") from None
    if not rows:
        raise CxkpiError(f"{path}: no factors to analyse")
    return rows


def analyse(rows: list[dict]) -> list[dict]:
    con = connect()
    try:
        con.execute(
            "create table gap_input (factor varchar, experience double, expectation double, "
            "importance double, ideal double)"
        )
        con.executemany(
            "insert into gap_input values (?, ?, ?, ?, ?)",
            [[row[c] for c in INPUT_COLUMNS] for row in rows],
        )
        cursor = con.execute(gap_sql("gap_input") + "\norder by gap_rank")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
    finally:
        con.close()


def write_output(results: list[dict], path: Path) -> None:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(OUTPUT_COLUMNS)
        for row in results:
            writer.writerow(["" if row[c] is None else _plain(row[c]) for c in OUTPUT_COLUMNS])


def _plain(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def render_table(results: list[dict]) -> str:
    header = (
        "rank",
        "factor",
        "exp.",
        "expect.",
        "gap",
        "import.",
        "weighted",
        "ideal",
        "exp.gap",
        "quadrant",
    )
    lines = ["  ".join(f"{h:>9}" if i else f"{h:>4}" for i, h in enumerate(header))]
    for r in results:
        cells = [
            r["gap_rank"],
            r["factor"],
            r["experience"],
            f"({_plain(r['expectation'])})" if r["expectation_assumed"] else r["expectation"],
            r["satisfaction_gap"],
            r["importance"],
            r["weighted_gap"],
            r["ideal"],
            r["experience_gap"],
            r["quadrant"] or "",
        ]
        text = [f"{'' if c is None else _plain(c):>9}" for c in cells[1:]]
        key = "  <- key experience" if r["is_key_experience"] else ""
        lines.append(f"{cells[0]:>4}  " + "  ".join(text) + key)
    return "\n".join(lines)
