"""Writing the demo's landing files in the shapes the source systems deliver: CSV, Parquet
and JSON lines, split by month."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cxkpi.demo._common import ids, month_of, ts_text
from cxkpi.demo.model import (
    BENCHMARK_PERIOD,
    BENCHMARK_STUDY,
    BENCHMARKED_KPI,
    COMPETITOR_CSAT,
    ORDER_CHANNELS,
    SEGMENTS,
)
from cxkpi.demo.org import Org


def _write_csv(frame: pd.DataFrame, path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, encoding="utf-8", lineterminator="\n", na_rep="")
    return len(frame)


def _by_month(
    frame: pd.DataFrame,
    seconds: np.ndarray,
    directory: Path,
    stem: str,
    write: Callable[[pd.DataFrame, Path], int],
) -> int:
    months = month_of(seconds)
    total = 0
    for month in np.unique(months):
        part = frame.iloc[np.flatnonzero(months == month)]
        total += write(part, directory / f"{stem}_{month}")
    return total


def write_org(out_dir: Path, org: Org) -> int:
    return _write_csv(org.frame, out_dir / "org" / "org_units.csv")


def write_customers(out_dir: Path, cust: pd.DataFrame) -> int:
    frame = pd.DataFrame(
        {
            "customer_id": cust["customer_id"],
            "segment": np.array(SEGMENTS, dtype=object)[cust["segment"].to_numpy()],
            "signed_up_at": ts_text(cust["signed_up_at"].to_numpy()),
        }
    )
    return _write_csv(frame, out_dir / "crm" / "customers.csv")


_ORDER_SCHEMA: Final = pa.schema(
    [
        ("order_id", pa.string()),
        ("customer_id", pa.string()),
        ("store_id", pa.string()),
        ("channel", pa.string()),
        ("ordered_at", pa.timestamp("us")),
        ("amount", pa.float64()),
    ]
)


def write_orders(out_dir: Path, orders: pd.DataFrame) -> int:
    frame = pd.DataFrame(
        {
            "order_id": orders["order_id"],
            "customer_id": orders["customer_id"],
            "store_id": orders["store_id"],
            "channel": np.array(ORDER_CHANNELS, dtype=object)[orders["channel"].to_numpy()],
            "ordered_at": orders["ordered_at"].to_numpy().astype("datetime64[s]"),
            "amount": orders["amount"],
        }
    )

    def write(part: pd.DataFrame, stem: Path) -> int:
        arrays = [
            pa.array(part[name].to_numpy(), type=field.type)
            for name, field in zip(_ORDER_SCHEMA.names, _ORDER_SCHEMA, strict=True)
        ]
        table = pa.Table.from_arrays(arrays, schema=_ORDER_SCHEMA)
        path = stem.with_suffix(".parquet")
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path, compression="snappy")
        return table.num_rows

    return _by_month(frame, orders["ordered_at"].to_numpy(), out_dir / "orders", "orders", write)


def write_deliveries(out_dir: Path, orders: pd.DataFrame) -> int:
    d = orders[orders["has_delivery"].to_numpy()]
    promised = d["promised_at"].to_numpy()
    order = np.lexsort((np.arange(len(d)), promised))
    d, promised = d.iloc[order], promised[order]
    frame = pd.DataFrame(
        {
            "delivery_id": ids("D", len(d), 7),
            "order_id": d["order_id"].to_numpy(),
            "promised_at": ts_text(promised),
            "delivered_at": ts_text(d["delivered_at"].to_numpy()),
        }
    )

    def write(part: pd.DataFrame, stem: Path) -> int:
        return _write_csv(part, stem.with_suffix(".csv"))

    return _by_month(frame, promised, out_dir / "orders", "deliveries", write)


def write_tickets(out_dir: Path, tickets: pd.DataFrame) -> int:
    frame = tickets.copy()
    opened = frame["opened_at"].to_numpy()
    frame["opened_at"] = ts_text(opened)
    frame["closed_at"] = ts_text(frame["closed_at"].to_numpy())
    columns = list(frame.columns)

    def as_json_values(column: pd.Series) -> list[Any]:
        values = column.to_numpy(dtype=object)  # numpy bools become Python bools
        values[pd.isna(column).to_numpy() | (values == "")] = None
        return values.tolist()

    def write(part: pd.DataFrame, stem: Path) -> int:
        path = stem.with_suffix(".jsonl")
        path.parent.mkdir(parents=True, exist_ok=True)
        values = zip(*(as_json_values(part[col]) for col in columns), strict=True)
        lines = [
            json.dumps(dict(zip(columns, row, strict=True)), ensure_ascii=False) for row in values
        ]
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        return len(lines)

    return _by_month(frame, opened, out_dir / "support", "tickets", write)


def write_responses(out_dir: Path, resp: pd.DataFrame) -> int:
    frame = resp[[c for c in resp.columns if not c.startswith("_")]]

    def write(part: pd.DataFrame, stem: Path) -> int:
        return _write_csv(part, stem.with_suffix(".csv"))

    seconds = resp["_responded_at"].to_numpy()
    return _by_month(frame, seconds, out_dir / "surveys", "responses", write)


def write_factor_ratings(out_dir: Path, ratings: pd.DataFrame) -> int:
    frame = ratings[[c for c in ratings.columns if not c.startswith("_")]]

    def write(part: pd.DataFrame, stem: Path) -> int:
        return _write_csv(part, stem.with_suffix(".csv"))

    seconds = ratings["_responded_at"].to_numpy()
    return _by_month(frame, seconds, out_dir / "surveys", "factor_ratings", write)


def write_case_events(out_dir: Path, events: pd.DataFrame) -> int:
    """The ticketing tool's export of the follow-up cases' events, split by event month."""
    seconds = events["event_at"].to_numpy()
    frame = pd.DataFrame(
        {
            "event_id": ids("E", len(events), 7),
            **{c: events[c].to_numpy() for c in events.columns},
            "event_at": ts_text(seconds),
        }
    )

    def write(part: pd.DataFrame, stem: Path) -> int:
        return _write_csv(part, stem.with_suffix(".csv"))

    return _by_month(frame, seconds, out_dir / "loop", "case_events", write)


def write_benchmarks(out_dir: Path) -> int:
    """The benchmarks export: one study's values, as an analyst keeps them in a sheet."""
    frame = pd.DataFrame(
        {
            "kpi": BENCHMARKED_KPI,
            "benchmark": [name for name, _ in COMPETITOR_CSAT],
            "kind": "competitor",
            "period": BENCHMARK_PERIOD,
            "value": [value for _, value in COMPETITOR_CSAT],
            "source": BENCHMARK_STUDY,
        }
    )
    return _write_csv(frame, out_dir / "benchmarks" / "benchmarks.csv")
