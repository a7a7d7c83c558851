"""Benchmark nights that follow their data: what a night costs compared with a cold one.

    python bench/incremental_nights.py [--scale 10] [--keep DIR]

In a fresh temporary project (demo data up to 2026-10-31, the last day held back):

- cold: the first night, everything loaded and built;
- nothing new: the same night again (no dbt work);
- one new day: the held-back day's survey responses and factor ratings arrive;
- corrected month: August's responses export is delivered again with changed rows.

Prints each night's stages in seconds, its total and its share of the cold night. Not a
test: it asserts nothing, it prints numbers.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from cxkpi import demo, pipeline
from cxkpi.config import scratch_settings
from cxkpi.demo.nights import correct_month, deliver, take_responses

NEW_DAY = "2026-10-31"
CORRECTED_MONTH = "2026-08"


def bench(scale: float, workdir: Path) -> None:
    settings = scratch_settings(REPO / "cxkpi.yml", workdir)
    written = demo.generate(settings.landing_dir, scale=scale)
    surveys = settings.landing_dir / "surveys"
    new_day = take_responses(surveys, NEW_DAY)
    print(f"\nscale {scale:g}: {sum(written.values()):,} landing rows")

    def night(label: str, logical_date: str) -> float:
        result = pipeline.run_all(settings, pipeline.RunContext.new(f"bench-{label}", logical_date))
        total = sum(result.seconds.values())
        stages = "  ".join(f"{stage} {seconds:.2f}" for stage, seconds in result.seconds.items())
        print(f"  {label:<16} {total:7.2f}s  ({stages})")
        build = result.stages["dbt_build"]
        print(f"  {'':<16} dbt: {build['dbt']} ({build.get('mode', 'no build')})")
        return total

    cold = night("cold", "2026-10-30")
    totals = {"nothing new": night("nothing new", "2026-10-30")}
    rows = deliver(surveys, new_day, NEW_DAY)
    print(f"  (one new day: {rows} rows)")
    totals["one new day"] = night("one new day", NEW_DAY)
    rows = correct_month(surveys, CORRECTED_MONTH)
    print(f"  (corrected month {CORRECTED_MONTH}: {rows} rows changed)")
    totals["corrected month"] = night("corrected month", NEW_DAY)
    print(
        f"  cold {cold:.2f}s; "
        + ", ".join(f"{k} {v:.2f}s ({v / cold:.0%})" for k, v in totals.items())
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=10.0)
    parser.add_argument("--keep", help="work in this folder instead of a temporary one")
    args = parser.parse_args()
    if args.keep:
        bench(args.scale, Path(args.keep) / f"scale-{args.scale:g}")
    else:
        with tempfile.TemporaryDirectory(prefix="cxkpi-bench-") as tmp:
            bench(args.scale, Path(tmp))


if __name__ == "__main__":
    main()
