"""The demo's organisation (HQ, regions, stores, advisors with their service effects) and
its customers (segment, sign-up, home store, latent satisfaction)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cxkpi.demo._common import ids
from cxkpi.demo.model import (
    ADVISORS_PER_STORE,
    DAY,
    FIRST_NAMES,
    LAST_NAMES,
    LATE_RATE_BY_REGION,
    REGION_SERVICE_EFFECT,
    REGIONS,
    SEGMENT_SHARE,
    SEGMENTS,
    STORE_CITIES,
)


@dataclass(frozen=True)
class Org:
    frame: pd.DataFrame
    store_ids: np.ndarray  # (20,)
    store_region: np.ndarray  # region index per store
    store_late_rate: np.ndarray
    store_service: np.ndarray  # store (incl. region) effect on service experience
    advisor_ids: np.ndarray  # (100,), advisors of store s are s*5 .. s*5+4
    advisor_service: np.ndarray


def make_org(rng: np.random.Generator) -> Org:
    rows: list[tuple[str, str, str, str]] = [("HQ", "hq", "", "Headquarters")]
    rows += [(rid, "region", "HQ", name) for rid, name in REGIONS]
    region_index = {rid: i for i, (rid, _) in enumerate(REGIONS)}
    store_ids: list[str] = []
    store_region: list[int] = []
    for rid, cities in STORE_CITIES:
        for city in cities:
            sid = f"S{len(store_ids) + 1:03d}"
            store_ids.append(sid)
            store_region.append(region_index[rid])
            rows.append((sid, "store", rid, city))
    n_stores = len(store_ids)
    n_adv = n_stores * ADVISORS_PER_STORE
    first = rng.integers(0, len(FIRST_NAMES), n_adv)
    last = rng.integers(0, len(LAST_NAMES), n_adv)
    advisor_ids = ids("A", n_adv, 4)
    for a in range(n_adv):
        name = f"{FIRST_NAMES[first[a]]} {LAST_NAMES[last[a]]}"
        rows.append((advisor_ids[a], "advisor", store_ids[a // ADVISORS_PER_STORE], name))

    region_codes = [rid for rid, _ in REGIONS]
    sreg = np.array(store_region)
    base_late = np.array([LATE_RATE_BY_REGION[region_codes[r]] for r in sreg])
    region_service = np.array([REGION_SERVICE_EFFECT[region_codes[r]] for r in sreg])
    return Org(
        frame=pd.DataFrame(rows, columns=["org_unit_id", "level", "parent_id", "name"]),
        store_ids=np.array(store_ids, dtype=object),
        store_region=sreg,
        store_late_rate=base_late * rng.uniform(0.75, 1.25, n_stores),
        store_service=region_service + rng.normal(0.0, 0.35, n_stores),
        advisor_ids=advisor_ids,
        advisor_service=rng.normal(0.0, 0.3, n_adv),
    )


# === customers ============================================================================


def make_customers(
    rng: np.random.Generator, org: Org, n: int, start: int, end: int
) -> pd.DataFrame:
    n_stores = len(org.store_ids)
    segment = rng.choice(len(SEGMENTS), n, p=SEGMENT_SHARE)
    latent = rng.standard_normal(n)
    store_weight = rng.uniform(0.6, 1.4, n_stores)
    home = rng.choice(n_stores, n, p=store_weight / store_weight.sum())
    before = rng.random(n) < 0.7
    signed_up = np.where(
        before,
        start - rng.uniform(1, 3 * 365 * DAY, n),
        start + rng.uniform(0, end - start, n),
    ).astype(np.int64)
    order = np.lexsort((np.arange(n), signed_up))
    return pd.DataFrame(
        {
            "customer_id": ids("C", n, 6),
            "segment": segment[order],
            "signed_up_at": signed_up[order],
            "latent": latent[order],
            "home_store": home[order],
        }
    )
