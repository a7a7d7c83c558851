"""Benchmark the nightly pipeline: per-stage wall time and rows/s at several scales.

    python bench/pipeline_bench.py [--scale 1 --scale 10] [--keep DIR]

Each scale runs in a fresh temporary project (demo data, warehouse, published file), once
cold (everything new) and once warm (nothing new to load: the nightly no-op cost).
Not a test: it asserts nothing, it prints numbers.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from cxkpi import demo, pipeline
from cxkpi.config import scratch_settings


def bench(scale: float, workdir: Path) -> None:
    settings = scratch_settings(REPO / "cxkpi.yml", workdir)
    started = time.perf_counter()
    written = demo.generate(settings.landing_dir, scale=scale)
    generate_s = time.perf_counter() - started
    rows = sum(written.values())
    print(f"\nscale {scale:g}: {rows:,} landing rows; demo-data {generate_s:.2f}s")
    for label in ("cold", "warm"):
        result = pipeline.run_all(settings, pipeline.RunContext.new(f"bench-{label}"))
        total = sum(result.seconds.values())
        loaded = result.stages["load_x"]["rows_read"] + result.stages["load_o"]["rows_read"]
        print(f"  {label}: total {total:7.2f}s")
        for stage, seconds in result.seconds.items():
            extra = ""
            if stage.startswith("load") and seconds > 0:
                read = result.stages[stage]["rows_read"]
                extra = f"  {read:>10,} rows  {read / seconds:>12,.0f} rows/s"
            print(f"    {stage:<10} {seconds:7.2f}s{extra}")
            if stage == "publish" and result.stages[stage].get("scopes_written") is not None:
                publish = result.stages[stage]
                print(
                    f"      of which scopes {publish['scopes_seconds']:7.2f}s  "
                    f"({publish['scopes_written']} written, {publish['scopes_reused']} reused)"
                )
        if label == "cold":
            print(
                f"    => load {loaded / (result.seconds['load_x'] + result.seconds['load_o']):,.0f}"
                f" rows/s; end to end {rows / total:,.0f} landing rows/s"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, action="append")
    parser.add_argument("--keep", help="work in this folder instead of a temporary one")
    args = parser.parse_args()
    for scale in args.scale or [1.0, 10.0]:
        if args.keep:
            bench(scale, Path(args.keep) / f"scale-{scale:g}")
        else:
            with tempfile.TemporaryDirectory(prefix="cxkpi-bench-") as tmp:
                bench(scale, Path(tmp))


if __name__ == "__main__":
    main()
