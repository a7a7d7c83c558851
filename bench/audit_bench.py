"""Benchmark the audit (the "A" of write-audit-publish): seconds per million staged rows.

    python bench/audit_bench.py [--scale 10]

Builds a temporary project at the given demo scale (one full night, untimed), then times
the two halves of the audit separately: the in-database checks (`dbt test`: keys, ranges,
relationships on staging and intermediate tables, which is where the row volume is) and
the gate (Great Expectations on pandas batches of the marts, plus cxkpi's SQL checks),
and divides by the rows staged in the warehouse's raw tables.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from cxkpi import dbt_runner, demo, pipeline
from cxkpi.config import scratch_settings
from cxkpi.warehouse import connect


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cxkpi-audit-bench-") as name:
        tmp = Path(name)
        settings = scratch_settings(REPO / "cxkpi.yml", tmp)
        demo.generate(settings.landing_dir, scale=args.scale)
        ctx = pipeline.RunContext.new("audit-bench", "2026-10-31")
        pipeline.run_all(settings, ctx)
        con = connect(settings.warehouse_path, read_only=True)
        try:
            tables = [
                r[0]
                for r in con.execute(
                    "select table_name from information_schema.tables where table_schema = 'raw' "
                    "and table_name not in ('load_rejects', 'load_files')"
                ).fetchall()
            ]
            staged = sum(con.execute(f"select count(*) from raw.{t}").fetchone()[0] for t in tables)
            marts = con.execute(
                "select sum(estimated_size) from duckdb_tables() where schema_name = 'marts'"
            ).fetchone()[0]
        finally:
            con.close()
        started = time.perf_counter()
        outcome = dbt_runner.invoke(settings, ["test"])
        in_database = time.perf_counter() - started
        started = time.perf_counter()
        summary = pipeline.audit(settings, ctx)
        gate = time.perf_counter() - started
    millions = staged / 1e6
    print(f"demo scale {args.scale:g}: {staged:,} staged rows, ~{marts:,} mart rows")
    print(
        f"  in-database checks (dbt test, {outcome.summary()}): {in_database:6.2f}s "
        f"= {in_database / millions:6.2f} s per million staged rows"
    )
    print(f"  gate ({summary}): {gate:6.2f}s = {gate / millions:6.2f} s per million staged rows")
    print(f"  audit total: {(in_database + gate) / millions:6.2f} s per million staged rows")


if __name__ == "__main__":
    main()
