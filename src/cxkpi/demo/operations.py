"""The demo's O-data: orders with their deliveries (late ones planted per store), and
support tickets (more of them about late or missing deliveries and unhappy customers)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cxkpi.demo._common import categorical, ids, weighted_sample
from cxkpi.demo.model import (
    ADVISORS_PER_STORE,
    CHANNEL_SHARE_BY_SEGMENT,
    DAY,
    FCR_BY_CATEGORY,
    HOUR,
    LATENT_ORDER_LOADING,
    NULL,
    SEGMENT_MEDIAN_AMOUNT,
    SEGMENT_ORDER_RATE,
    TICKET_CATEGORIES,
    TICKET_CHANNEL_SHARE,
    TICKET_CHANNELS,
)
from cxkpi.demo.org import Org


def make_orders(
    rng: np.random.Generator, org: Org, cust: pd.DataFrame, n: int, start: int, end: int
) -> pd.DataFrame:
    n_days = (end - start) // DAY
    signed_up = cust["signed_up_at"].to_numpy()
    first_day = np.clip(-(-(signed_up - start) // DAY), 0, n_days)
    active_days = n_days - first_day
    segment = cust["segment"].to_numpy()
    weight = (
        np.exp(LATENT_ORDER_LOADING * cust["latent"].to_numpy())
        * np.array(SEGMENT_ORDER_RATE)[segment]
        * active_days
    )
    if weight.sum() <= 0:
        weight = np.ones(len(cust))
        first_day[:] = 0
        active_days[:] = n_days
    counts = rng.multinomial(n, weight / weight.sum())
    c = np.repeat(np.arange(len(cust)), counts)
    day = first_day[c] + np.floor(rng.random(n) * active_days[c]).astype(np.int64)
    channel = categorical(rng, np.array(CHANNEL_SHARE_BY_SEGMENT)[segment[c]], n)
    in_store = channel == 0
    tod = np.where(
        in_store,
        rng.uniform(7 * HOUR, 18 * HOUR, n),
        np.where(rng.random(n) < 0.8, rng.uniform(5 * HOUR, 21 * HOUR, n), rng.uniform(0, DAY, n)),
    ).astype(np.int64)
    ordered = start + day * DAY + tod
    home = cust["home_store"].to_numpy()[c]
    elsewhere = in_store & (rng.random(n) < 0.15)
    store = np.where(elsewhere, rng.integers(0, len(org.store_ids), n), home)
    median = np.array(SEGMENT_MEDIAN_AMOUNT)[segment[c]]
    amount = np.round(np.exp(np.log(median) + rng.normal(0.0, 0.55, n)), 2)

    # deliveries: every web/app order, a fifth of store orders (home delivery)
    has_delivery = ~in_store | (rng.random(n) < 0.2)
    promised = ordered + rng.integers(2, 5, n) * DAY
    late = has_delivery & (rng.random(n) < org.store_late_rate[store])
    late_by = np.rint((1.0 + np.minimum(rng.gamma(1.3, 10.0, n), 71.0)) * HOUR).astype(np.int64)
    early_by = rng.integers(0, 30 * HOUR, n)
    delivered = np.where(late, promised + late_by, promised - early_by)
    delivered = np.where(has_delivery & (delivered < end), delivered, NULL)
    late &= delivered != NULL

    frame = pd.DataFrame(
        {
            "cust": c,
            "customer_id": cust["customer_id"].to_numpy()[c],
            "store": store,
            "store_id": org.store_ids[store],
            "channel": channel,
            "ordered_at": ordered,
            "amount": amount,
            "has_delivery": has_delivery,
            "promised_at": np.where(has_delivery, promised, NULL),
            "delivered_at": delivered,
            "late": late,
            "late_hours": np.where(late, late_by // HOUR, 0),
        }
    )
    frame = frame.iloc[np.lexsort((c, ordered))].reset_index(drop=True)
    frame.insert(0, "order_id", ids("O", n, 7))
    return frame


def make_tickets(
    rng: np.random.Generator,
    org: Org,
    cust: pd.DataFrame,
    orders: pd.DataFrame,
    n: int,
    start: int,
    end: int,
) -> pd.DataFrame:
    n_order = min(round(n * 0.9), len(orders))
    n_free = n - n_order
    late = orders["late"].to_numpy()
    undelivered = orders["has_delivery"].to_numpy() & (orders["delivered_at"].to_numpy() == NULL)
    o_cust = orders["cust"].to_numpy()
    unhappy = cust["latent"].to_numpy()[o_cust] < -0.5
    weight = 1.0 + 5.0 * late + 2.0 * undelivered + 0.8 * unhappy
    pick = weighted_sample(rng, weight, n_order)
    o = orders.iloc[pick]
    ordered = o["ordered_at"].to_numpy()
    has_delivery = o["has_delivery"].to_numpy()
    probs = np.where(
        o["late"].to_numpy()[:, None],
        [0.75, 0.10, 0.05, 0.10],
        np.where(has_delivery[:, None], [0.25, 0.30, 0.15, 0.30], [0.0, 0.45, 0.25, 0.30]),
    )
    category = categorical(rng, probs, n_order)
    delay = (HOUR + rng.exponential(4 * DAY, n_order)).astype(np.int64)
    opened = ordered + delay
    opened = np.where(
        opened < end, opened, ordered + (rng.random(n_order) * (end - ordered)).astype(np.int64)
    )

    # tickets without an order: billing/product questions of a customer, at any time
    free_weight = np.exp(-0.5 * cust["latent"].to_numpy())
    free_cust = np.sort(rng.choice(len(cust), n_free, p=free_weight / free_weight.sum()))
    lo = np.maximum(cust["signed_up_at"].to_numpy()[free_cust], start)
    free_opened = lo + (rng.random(n_free) * (end - lo)).astype(np.int64)
    free_category = np.where(rng.random(n_free) < 0.6, 2, 1)

    t_cust = np.concatenate([o["cust"].to_numpy(), free_cust])
    t_order = np.concatenate([o["order_id"].to_numpy(), np.full(n_free, None, dtype=object)])
    t_store = np.concatenate([o["store"].to_numpy(), cust["home_store"].to_numpy()[free_cust]])
    t_opened = np.concatenate([opened, free_opened])
    t_category = np.concatenate([category, free_category])
    m = len(t_cust)
    advisor = t_store * ADVISORS_PER_STORE + rng.integers(0, ADVISORS_PER_STORE, m)
    channel = rng.choice(len(TICKET_CHANNELS), m, p=TICKET_CHANNEL_SHARE)
    fcr = rng.random(m) < np.array(FCR_BY_CATEGORY)[t_category]
    reopened = rng.random(m) < np.where(fcr, 0.03, 0.22)
    duration = np.where(
        fcr, rng.lognormal(np.log(1.5 * HOUR), 0.8, m), rng.lognormal(np.log(40 * HOUR), 0.9, m)
    )
    duration += np.where(reopened, rng.uniform(24 * HOUR, 96 * HOUR, m), 0.0)
    closed = t_opened + np.maximum(duration, 300).astype(np.int64)
    is_open = (closed >= end) | ((t_opened >= end - 30 * DAY) & (rng.random(m) < 0.02))
    closed = np.where(is_open, NULL, closed)
    fcr &= ~is_open
    reopened &= ~is_open

    order = np.lexsort((np.arange(m), t_opened))
    return pd.DataFrame(
        {
            "ticket_id": ids("T", m, 7),
            "customer_id": cust["customer_id"].to_numpy()[t_cust[order]],
            "order_id": t_order[order],
            "store_id": org.store_ids[t_store[order]],
            "advisor_id": org.advisor_ids[advisor[order]],
            "channel": np.array(TICKET_CHANNELS, dtype=object)[channel[order]],
            "category": np.array(TICKET_CATEGORIES, dtype=object)[t_category[order]],
            "opened_at": t_opened[order],
            "closed_at": closed[order],
            "first_contact_resolution": fcr[order],
            "reopened": reopened[order],
        }
    )
