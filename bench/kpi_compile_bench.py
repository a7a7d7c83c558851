"""Benchmark the KPI language: validate + compile N KPI files (default 1,000).

    python bench/kpi_compile_bench.py [--kpis 1000]

Writes N one-KPI YAML files of mixed types (nps, top_box, mean, ratio, share, count,
count_distinct, sum, percentile, derived) with parents, filters, targets and milestones
into a temporary folder, then times `load_catalog` (parse + every check) and
`render` (all generated dbt models) separately. Target: under 5 s on 2 cores.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from cxkpi import kpi_compile, kpi_spec

SHAPES = [
    "type: nps\nsource: survey_responses\nmeasure: nps\nfilters: [\"channel = 'web'\"]",
    "type: top_box\nsource: survey_responses\nmeasure: csat",
    "type: mean\nsource: factor_ratings\nmeasure: experience\nfilters: [\"factor = 'price'\"]",
    "type: ratio\nsource: deliveries\nnumerator: is_on_time\ndenominator: is_delivered",
    "type: share\nsource: tickets\ncondition: first_contact_resolution\nfilters: [is_closed]",
    "type: count\nsource: orders\nunit: count",
    "type: count_distinct\nsource: orders\nmeasure: customer_id",
    "type: sum\nsource: orders\nmeasure: amount\nunit: currency",
    (
        "type: percentile\nsource: tickets\nmeasure: hours_to_close\npercentile: 0.9\n"
        "direction: lower\nunit: hours"
    ),
]


def write_catalog(folder: Path, count: int) -> None:
    (folder / "goal.yml").write_text("id: goal_0\nkind: goal\nlabel: The goal\n")
    for i in range(count):
        if i % 10 == 9:
            nps = i - 9 - (i - 9) % 9  # an earlier nps KPI (shape 0)
            body = f"type: derived\nformula: 0.5 * kpi_{nps} + 20\nunit: points"
        else:
            body = SHAPES[i % 9]
        parent = "goal_0" if i < 10 else f"kpi_{(i // 10) * 10 - 10}"
        final, milestone = (7, 6) if "type: mean" in body else (50, 40)
        target = (
            f"target: {{value: {final}, by: 2027-12-31, "
            f"milestones: [{{date: 2027-06-30, value: {milestone}}}]}}\n"
        )
        (folder / f"kpi_{i:04d}.yml").write_text(
            f"id: kpi_{i}\nlabel: KPI {i}\nowner: team {i % 7}\nparents: [{parent}]\n{body}\n"
            + target
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kpis", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cxkpi-kpi-bench-") as name:
        folder = Path(name)
        write_catalog(folder, args.kpis)
        started = time.perf_counter()
        catalog = kpi_spec.load_catalog([folder])
        validated = time.perf_counter()
        files = kpi_compile.render(catalog, folder)
        compiled = time.perf_counter()
    if catalog.problems:
        sys.exit(
            "the generated catalog has problems:\n" + "\n".join(map(str, catalog.problems[:5]))
        )
    size = sum(len(c) for c in files.values())
    print(f"{args.kpis:,} KPI files + 1 goal")
    rate = args.kpis / (validated - started)
    print(f"  validate  {validated - started:6.2f}s  ({rate:,.0f} KPIs/s)")
    print(f"  compile   {compiled - validated:6.2f}s  ({len(files)} files, {size / 1e6:.1f} MB)")
    print(f"  total     {compiled - started:6.2f}s  (aim: under 5 s)")


if __name__ == "__main__":
    main()
