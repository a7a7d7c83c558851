"""Peak memory and time per stage of a night at large scales.

    python bench/scale_memory.py [--scales 100 1000] [--memory-limit 3GB]

For each scale: generates the demo data (--scale 100 is about 4.7 M rows), then runs every
stage of the night in a fresh process, in order, and prints its wall time and its peak
resident memory (the child's ``ru_maxrss`` from ``wait4``: Python, DuckDB and dbt
together). Every DuckDB connection is limited by CXKPI_DUCKDB_MEMORY_LIMIT and spills to
disk beyond it. Uses a temporary project; not a test.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from cxkpi.pipeline import STAGES

REPO = Path(__file__).resolve().parents[1]
NIGHT = "2026-10-31"
STAGE_CALLS = {
    "prepare": "pipeline.prepare(s, ctx)",
    "load_x": "pipeline.load(s, ctx, 'x')",
    "load_o": "pipeline.load(s, ctx, 'o')",
    "load_gate": "pipeline.audit_load(s, ctx)",
    "dbt_build": "pipeline.build(s, ctx)",
    "analyze": "pipeline.analyze(s, ctx)",
    "gate": "pipeline.audit(s, ctx)",
    "publish": "pipeline.publish_marts(s, ctx)",
    "hand_over_cases": "pipeline.hand_over_cases(s, ctx)",
}


def in_child(code: str, env: dict[str, str]) -> tuple[float, float]:
    """Run ``code`` in a new Python process: (seconds, peak RSS in GB)."""
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", code], env=env)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {code}")
    return seconds, usage.ru_maxrss / 1024 / 1024  # KB -> GB


def count_lines(path: Path) -> int:
    with open(path, "rb") as handle:
        return sum(1 for _ in handle) - 1  # less the header


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scales", type=float, nargs="+", default=[100.0, 1000.0])
    parser.add_argument("--memory-limit", default="3GB")
    parser.add_argument(
        "--keep", help="work in this folder and keep it (else a temporary one, removed)"
    )
    parser.add_argument(
        "--from-stage",
        choices=STAGES,
        help="resume a kept folder at this stage (its data and earlier stages are kept)",
    )
    args = parser.parse_args()
    for scale in args.scales:
        with ExitStack() as stack:
            if args.keep:
                folder = Path(args.keep) / f"scale-{scale:g}"
                folder.mkdir(parents=True, exist_ok=True)
            else:
                folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cxkpi-")))
            night(scale, folder, args.memory_limit, args.from_stage)


def night(scale: float, folder: Path, memory_limit: str, from_stage: str | None) -> None:
    env = {**os.environ, "CXKPI_DUCKDB_MEMORY_LIMIT": memory_limit}
    landing = folder / "landing"
    if from_stage is None:
        seconds, peak = in_child(
            "from cxkpi import demo; from datetime import date; from pathlib import Path; "
            f"demo.generate(Path({str(landing)!r}), scale={scale}, "
            f"end_date=date.fromisoformat({NIGHT!r}))",
            env,
        )
        print(f"scale {scale:g}: demo data generated in {seconds:.0f}s (peak {peak:.2f} GB)")
    # every stage's process: the repository's project, its paths under the folder
    setup = (
        "from pathlib import Path; from cxkpi import pipeline; "
        "from cxkpi.config import scratch_settings; "
        f"s = scratch_settings(Path({str(REPO / 'cxkpi.yml')!r}), Path({str(folder)!r})); "
        f"ctx = pipeline.RunContext.new('bench', {NIGHT!r}); "
    )
    total = 0.0
    peaks = []
    for stage in STAGES[STAGES.index(from_stage) if from_stage else 0 :]:
        seconds, peak = in_child(setup + STAGE_CALLS[stage], env)
        total += seconds
        peaks.append(peak)
        print(f"  {stage:<10} {seconds:8.1f}s  peak RSS {peak:5.2f} GB", flush=True)
    rows = sum(count_lines(p) for p in landing.rglob("*.csv"))
    print(
        f"  night {total:.0f}s for {rows:,} landing lines "
        f"({rows / total:,.0f} rows/s); highest stage peak {max(peaks):.2f} GB "
        f"(limit {memory_limit} per DuckDB)"
    )


if __name__ == "__main__":
    main()
