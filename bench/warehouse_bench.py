"""Benchmark the same night on both warehouses: per-stage wall time, DuckDB beside PostgreSQL.

    python bench/warehouse_bench.py [--scale 1] [--access] [--postgres postgresql://...]

Each warehouse gets a fresh project with the same demo data and runs three nights: cold
(everything but the last day), next day (the last day's responses arrive: an incremental
build, what most nights cost) and warm (nothing new). PostgreSQL is a private server started
from Debian's packages on a free local port (tests/pg_server.py), or the server named by
``--postgres`` (password: CXKPI_PG_PASSWORD; its schemas are overwritten). ``--access``
publishes the demo's scopes too (extracts and reports; on PostgreSQL roles and policies).
Not a test: it asserts nothing, it prints numbers.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "tests"))

from cxkpi import demo, pipeline
from cxkpi.config import scratch_settings
from cxkpi.demo.nights import deliver, take_responses

LAST_DAY = "2026-10-31"
NIGHTS = ("cold", "next day", "warm")


def night_times(workdir: Path, scale: float, warehouse: str, access: bool) -> dict:
    os.environ["CXKPI_WAREHOUSE"] = warehouse
    extra = {} if access else {"access_file": workdir / "no-access.yml"}
    settings = scratch_settings(REPO / "cxkpi.yml", workdir, **extra)
    rows = sum(demo.generate(settings.landing_dir, scale=scale).values())
    surveys = settings.landing_dir / "surveys"
    held_back = take_responses(surveys, LAST_DAY)
    times: dict = {"rows": rows, "next day rows": sum(len(f) for f in held_back.values())}
    for label in NIGHTS:
        if label == "next day":
            deliver(surveys, held_back, LAST_DAY)
        day = "2026-10-30" if label == "cold" else LAST_DAY
        result = pipeline.run_all(settings, pipeline.RunContext.new(f"bench-{label}", day))
        if result.error:
            raise SystemExit(f"the {label} night failed: {result.error}")
        times[label] = result.seconds
        times[f"{label} dbt"] = result.stages["dbt_build"].get("mode") or result.stages[
            "dbt_build"
        ].get("dbt")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--access", action="store_true", help="publish the demo's scopes")
    parser.add_argument("--postgres", help="a server's URL instead of a private one")
    args = parser.parse_args()
    server = None
    if args.postgres:
        url = args.postgres
    else:
        from pg_server import start_server

        server = start_server(REPO / "build" / "postgres" / f"bench-{os.getpid()}")
        url = f"postgresql://cxkpi@127.0.0.1:{server.port}/cx"
    try:
        with tempfile.TemporaryDirectory(prefix="cxkpi-bench-") as tmp:
            duck = night_times(Path(tmp) / "duckdb", args.scale, "duckdb", args.access)
            pg = night_times(Path(tmp) / "postgres", args.scale, url, args.access)
    finally:
        if server is not None:
            server.stop()
            shutil.rmtree(server.folder, ignore_errors=True)
    print(
        f"\nscale {args.scale:g}: {duck['rows']:,} landing rows, of which the next day "
        f"brings {duck['next day rows']:,}; scopes: {args.access}"
    )
    for label in NIGHTS:
        print(f"  {label:<16} {'DuckDB':>9} {'PostgreSQL':>11} {'ratio':>7}")
        for stage in pipeline.STAGES:
            a, b = duck[label].get(stage, 0.0), pg[label].get(stage, 0.0)
            ratio = f"{b / a:6.1f}x" if a > 0.05 else ""
            print(f"    {stage:<14} {a:8.2f}s {b:10.2f}s {ratio:>7}")
        a, b = sum(duck[label].values()), sum(pg[label].values())
        print(f"    {'total':<14} {a:8.2f}s {b:10.2f}s {b / a:6.1f}x")
        print(f"    dbt: DuckDB {duck[f'{label} dbt']}; PostgreSQL {pg[f'{label} dbt']}")


if __name__ == "__main__":
    main()
