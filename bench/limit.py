"""The floor: five headline KPIs by hand-written DuckDB SQL straight from the demo's landing
files, against a cold `cxkpi run` on the same files.

    python bench/limit.py [--scale 10]

The hand SQL computes NPS, CSAT (top-2 box), CES (mean effort), on-time delivery and
first-contact resolution, monthly, at HQ, region and store: no loading checks, no
rejects, no catalog, no tests, no gate, no publish. It is the least any tool must do to
answer the same question; `cxkpi run` does everything else a night promises. Prints both
times and cold / floor. Uses a temporary project; not a test.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import yaml

from cxkpi import demo
from cxkpi.warehouse import connect

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
NIGHT = "2026-10-31"

HAND_SQL = """
with org as (
    select org_unit_id as store_id, parent_id as region_id
    from read_csv('{landing}/org/org_units.csv') where level = 'store'
),
responses as (
    select date_trunc('month', RecordedDate::timestamp) as month, StoreId as store_id,
           NPS::int as nps,
           Satisfaction in ('Satisfied', 'Very satisfied') as satisfied,
           Effort::int as effort
    from read_csv('{landing}/surveys/responses_*.csv', all_varchar = true)
    where RecordedDate is not null and NPS is not null
),
deliveries as (
    select date_trunc('month', d.promised_at::timestamp) as month, o.store_id,
           d.delivered_at::timestamp <= d.promised_at::timestamp as on_time
    from read_csv('{landing}/orders/deliveries_*.csv', all_varchar = true) d
    join read_parquet('{landing}/orders/orders_*.parquet') o using (order_id)
),
tickets as (
    select date_trunc('month', opened_at::timestamp) as month, store_id,
           first_contact_resolution::boolean as resolved_first
    from read_json('{landing}/support/tickets_*.jsonl')
),
measures as (
    select month, store_id, 'nps' as kpi, case when nps >= 9 then 100.0 when nps <= 6
           then -100.0 else 0.0 end as x from responses
    union all select month, store_id, 'csat', satisfied::int * 100.0 from responses
    union all select month, store_id, 'ces', effort from responses where effort is not null
    union all select month, store_id, 'on_time', on_time::int * 100.0 from deliveries
    union all select month, store_id, 'fcr', resolved_first::int * 100.0 from tickets
)
select kpi, month, coalesce(store_id, region_id, 'HQ') as unit, avg(x) as value, count(*) as n
from measures join org using (store_id)
group by grouping sets ((kpi, month), (kpi, month, region_id), (kpi, month, store_id))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cxkpi-limit-") as name:
        folder = Path(name)
        landing = folder / "landing"
        demo.generate(landing, scale=args.scale, end_date=date.fromisoformat(NIGHT))

        started = time.perf_counter()
        con = connect()
        rows = con.execute(HAND_SQL.format(landing=landing)).fetchall()
        con.close()
        floor = time.perf_counter() - started

        settings = yaml.safe_load((REPO / "cxkpi.yml").read_text(encoding="utf-8"))
        settings.update(
            landing_dir=str(landing),
            warehouse_path=str(folder / "warehouse" / "cx.duckdb"),
            published_dir=str(folder / "published"),
            runs_dir=str(folder / "runs"),
            dbt_target_dir=str(folder / "dbt_target"),
        )
        for key in (
            "sources_dir",
            "kpi_definitions_dir",
            "expectations_dir",
            "topics_dir",
            "case_rules_dir",
            "access_file",
            "dbt_project_dir",
        ):
            settings[key] = str(REPO / settings[key])
        config = folder / "cxkpi.yml"
        config.write_text(yaml.safe_dump(settings), encoding="utf-8")
        started = time.perf_counter()
        subprocess.run(
            [str(BIN / "cxkpi"), "run", "--logical-date", NIGHT],
            env={**os.environ, "CXKPI_CONFIG": str(config)},
            check=True,
            capture_output=True,
        )
        cold = time.perf_counter() - started

    print(f"demo scale {args.scale:g}")
    print(f"  hand-written DuckDB SQL, 5 KPIs x month x (HQ, region, store): {floor:6.1f}s "
          f"({len(rows):,} values)")  # fmt: skip
    print(f"  `cxkpi run`, cold (load, dbt, gate, publish, everything):      {cold:6.1f}s")
    print(f"  cold / floor: {cold / floor:.1f}x (target <= 10x)")


if __name__ == "__main__":
    main()
