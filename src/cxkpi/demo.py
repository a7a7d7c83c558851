"""Synthetic demo landing data: a small retailer's X-data and O-data, with planted effects.

``generate(out_dir)`` writes the files a real deployment would find in its landing zone, in
the shapes the source systems would deliver them (not in canonical form):

==========================================  ===============================================
``org/org_units.csv``                       org_unit_id, level, parent_id, name
``crm/customers.csv``                       customer_id, segment, signed_up_at
``orders/orders_YYYY-MM.parquet``           order_id, customer_id, store_id, channel,
                                            ordered_at (TIMESTAMP, naive UTC), amount
``orders/deliveries_YYYY-MM.csv``           delivery_id, order_id, promised_at, delivered_at
``support/tickets_YYYY-MM.jsonl``           ticket_id, customer_id, order_id, store_id,
                                            advisor_id, channel, category, opened_at,
                                            closed_at, first_contact_resolution, reopened
``surveys/responses_YYYY-MM.csv``           survey-tool export: ResponseId, SurveyId,
                                            CustomerId, OrderId, StoreId, AdvisorId, Channel,
                                            Touchpoint, RecordedDate (Europe/Berlin local
                                            time), NPS, Satisfaction (text label), Effort,
                                            Comment, Language, Consent (Yes/No)
``surveys/factor_ratings_YYYY-MM.csv``      response_id, factor, experience, expectation,
                                            importance
==========================================  ===============================================

Timestamps are text ``%Y-%m-%d %H:%M:%S`` in UTC (except ``RecordedDate``); nulls are empty
strings in CSV and ``null`` in JSON. Files are split by the month (UTC) of ordered_at,
promised_at, opened_at and responded_at; deliveries promised after the window end (orders of
the last days) land in the following month's file. Same arguments give byte-identical files.

Sizes at ``scale=1`` (row counts scale linearly, the organisation is fixed): 1 HQ, 3 regions,
20 stores, 100 advisors; ~3,000 customers, 10,000 orders over ``months`` months ending at
``end_date``, ~6,000 deliveries, 2,500 tickets, 4,000 survey responses, ~21,600 factor
ratings.

Planted relationships (also in :data:`PLANTED`, for tests and analyses to find):

1. **Late deliveries lower scores.** Responses about orders whose delivery arrived after
   ``promised_at`` have an NPS about 2 points and a CSAT about 0.7 lower on average (and a
   higher effort score); ~15% of delivered orders are late, by 1-72 hours.
2. **Detractors repurchase less.** Each customer has a latent satisfaction that drives both
   their order frequency and (through the factor experiences) their scores; respondents
   with NPS <= 6 are about half as likely as promoters (NPS >= 9) to order again within 90
   days after responding, and place about a quarter as many orders in that window.
   Survey invitations follow a per-customer contact rule, so respondents represent
   customers rather than orders.
3. **Convenience is the key weakness.** Mean ``experience - expectation`` is about -2 for
   convenience, -1 for product and ~0 for the other factors; stated importance is about
   convenience 9, service 8, product 8, price 7, relationship 6, brand_image 5, so
   convenience has the most negative weighted gap (as in the seed-002 worked example).
4. **Drivers and a placebo.** NPS (and CSAT) are driven by the experience of service,
   product and convenience, plus lateness; price and relationship carry only a weak halo
   of the latent satisfaction; ``brand_image`` experience is independent noise, unrelated
   to NPS, CSAT or repurchase.
5. **A worse region.** Region R02 ("South") has about three times the late-delivery rate of
   the other regions and a lower service experience, hence a clearly lower NPS; stores and
   advisors also differ in service.

Also present for the privacy and parsing paths: ~40% of responses carry an English or German
comment, ~5% of comments hold an e-mail address and ~5% a phone number, some hold commas,
double quotes and line breaks; ~3% of each score is missing; ~10% of responses skip the
factor block; a few tickets are still open and a few deliveries not yet delivered at the end.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cxkpi.canonical import EXPERIENCE_FACTORS

__all__ = ["PLANTED", "generate"]

DAY: Final = 86_400
HOUR: Final = 3_600
LOCAL_TZ: Final = "Europe/Berlin"
NULL: Final = -1  # sentinel for a missing epoch-second timestamp

# --- organisation -------------------------------------------------------------------------
REGIONS: Final = (("R01", "North"), ("R02", "South"), ("R03", "West"))
STORE_CITIES: Final = (
    ("R01", ("Hamburg", "Bremen", "Kiel", "Hannover", "Rostock", "Lübeck", "Oldenburg")),
    ("R02", ("München", "Stuttgart", "Nürnberg", "Augsburg", "Freiburg", "Regensburg", "Ulm")),
    ("R03", ("Köln", "Düsseldorf", "Dortmund", "Essen", "Bonn", "Münster")),
)
ADVISORS_PER_STORE: Final = 5
WORSE_REGION: Final = "R02"
LATE_RATE_BY_REGION: Final = {"R01": 0.09, "R02": 0.25, "R03": 0.08}
REGION_SERVICE_EFFECT: Final = {"R01": 0.1, "R02": -0.6, "R03": 0.1}

FIRST_NAMES: Final = (
    "Anna",
    "Ben",
    "Clara",
    "David",
    "Emma",
    "Felix",
    "Greta",
    "Hannah",
    "Jonas",
    "Julia",
    "Lea",
    "Leon",
    "Lukas",
    "Marie",
    "Max",
    "Mia",
    "Noah",
    "Paul",
    "Sophie",
    "Tim",
)
LAST_NAMES: Final = (
    "Becker",
    "Fischer",
    "Hoffmann",
    "Koch",
    "Meyer",
    "Müller",
    "Richter",
    "Schäfer",
    "Schmidt",
    "Schneider",
    "Schulz",
    "Wagner",
    "Weber",
    "Wolf",
    "Zimmermann",
    "Braun",
)

# --- customers and orders -----------------------------------------------------------------
SEGMENTS: Final = ("consumer", "business", "vip")
SEGMENT_SHARE: Final = (0.72, 0.20, 0.08)
SEGMENT_ORDER_RATE: Final = (1.0, 1.3, 1.8)
SEGMENT_MEDIAN_AMOUNT: Final = (72.0, 100.0, 125.0)
ORDER_CHANNELS: Final = ("store", "web", "app")
CHANNEL_SHARE_BY_SEGMENT: Final = ((0.45, 0.35, 0.20), (0.60, 0.35, 0.05), (0.50, 0.28, 0.22))
LATENT_ORDER_LOADING: Final = 1.1  # order rate ~ exp(loading * latent satisfaction)

# --- survey model -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Factor:
    experience: float  # mean experience among respondents, 0-10
    gap: float  # mean experience - expectation
    importance: float  # mean stated importance, 0-10
    latent: float  # loading of the customer's latent satisfaction
    noise: float  # sd of the idiosyncratic part
    late: float = 0.0  # shift when the delivery was late


FACTOR_MODEL: Final = {
    "product": _Factor(6.5, -1.0, 8.0, 1.0, 1.0),
    "service": _Factor(7.0, 0.0, 8.0, 1.2, 0.9),
    "relationship": _Factor(6.0, 0.0, 6.0, 0.3, 1.1),
    "convenience": _Factor(5.3, -2.0, 9.0, 0.8, 1.0, late=-1.2),
    "brand_image": _Factor(7.0, 0.0, 5.0, 0.0, 1.3),
    "price": _Factor(6.8, 0.0, 7.0, 0.3, 1.1),
}
NPS_DRIVERS: Final = {"service": 0.55, "product": 0.45, "convenience": 0.45}
CSAT_DRIVERS: Final = {"service": 0.30, "product": 0.20, "convenience": 0.15}
NPS_BASE, NPS_LATE, NPS_WORSE_REGION, NPS_NOISE = 7.8, -1.45, -0.3, 1.0
CSAT_BASE, CSAT_LATE, CSAT_NOISE = 3.95, -0.5, 0.6
CES_BASE, CES_LATE, CES_CONVENIENCE, CES_NOISE = 2.7, 0.9, -0.35, 0.9
SCORE_NULL_SHARE: Final = 0.03
FACTOR_SKIP_SHARE: Final = 0.10
FACTOR_VALUE_NULL_SHARE: Final = 0.01
DECIMAL_SLIDER_SHARE: Final = 0.15
SATISFACTION_LABELS: Final = (
    "Very dissatisfied",
    "Dissatisfied",
    "Neutral",
    "Satisfied",
    "Very satisfied",
)
TOUCHPOINTS: Final = ("checkout", "delivery", "after_sales")
COMMENT_SHARE: Final = 0.40
EMAIL_SHARE: Final = 0.05
PHONE_SHARE: Final = 0.05
MULTILINE_SHARE: Final = 0.06

# --- tickets ------------------------------------------------------------------------------
TICKET_CHANNELS: Final = ("call_centre", "support", "web")
TICKET_CHANNEL_SHARE: Final = (0.45, 0.30, 0.25)
TICKET_CATEGORIES: Final = ("delivery", "product", "billing", "returns")
FCR_BY_CATEGORY: Final = (0.62, 0.70, 0.80, 0.72)

PLANTED: Final[dict[str, Any]] = {
    "late_nps_delta": -2.0,
    "late_csat_delta": -0.7,
    "late_share": 0.15,
    "detractor_max_nps": 6,
    "promoter_min_nps": 9,
    "repurchase_window_days": 90,
    # share of responses followed by >= 1 order within the window: detractors / promoters
    "detractor_to_promoter_repurchase_ratio": 0.5,
    "key_weakness_factor": "convenience",
    "factor_gap": {f: FACTOR_MODEL[f].gap for f in EXPERIENCE_FACTORS},
    "factor_importance": {f: FACTOR_MODEL[f].importance for f in EXPERIENCE_FACTORS},
    "nps_drivers": tuple(NPS_DRIVERS),
    "placebo_factor": "brand_image",
    "worse_region": WORSE_REGION,
    "late_rate_by_region": dict(LATE_RATE_BY_REGION),
    "comment_share": COMMENT_SHARE,
    "email_share_of_comments": EMAIL_SHARE,
    "phone_share_of_comments": PHONE_SHARE,
    "score_null_share": SCORE_NULL_SHARE,
    "factor_block_skip_share": FACTOR_SKIP_SHARE,
}

# --- comment templates: (sentiment, late) -> texts; {h} is the lateness in hours -----------
_COMMENTS: Final[dict[str, dict[str, tuple[str, ...]]]] = {
    "en": {
        "neg_late": (
            "Delivery was {h} hours late and nobody told me.",
            "The parcel arrived after the promised date, not acceptable.",
            'They promised "delivery in 2 days", it took much longer.',
            "Late again. Tracking said delivered, but it came {h} hours later.",
        ),
        "neg": (
            "Staff were unfriendly, and the queue was long.",
            "The product broke after a week, very disappointed.",
            "The store is too far away, and parking is a nightmare.",
            "Opening hours are inconvenient, I work until 7 pm.",
            'The so-called "premium" service was anything but.',
        ),
        "neu_late": (
            "Okay overall, but the delivery was {h} hours late.",
            "Good product, delivery could be more reliable.",
        ),
        "neu": (
            "Okay overall, but checkout took too long.",
            "Fine, nothing special.",
            "Good product, but the store is hard to reach.",
            "Prices are okay, service could be faster.",
        ),
        "pos_late": (
            "Great product, even though the delivery was late.",
            "Friendly support when the parcel was delayed, thanks.",
        ),
        "pos": (
            "Great service, thank you!",
            "Friendly advisor, quick and easy.",
            "Excellent, will buy again.",
            'My advisor was "the best", really helpful.',
        ),
    },
    "de": {
        "neg_late": (
            "Die Lieferung kam {h} Stunden zu spät, ohne Info.",
            "Das Paket kam nach dem versprochenen Termin, inakzeptabel.",
            'Versprochen war "Lieferung in 2 Tagen", es hat viel länger gedauert.',
            "Schon wieder zu spät. Laut Tracking zugestellt, kam aber {h} Stunden später.",
        ),
        "neg": (
            "Personal unfreundlich, und die Schlange war lang.",
            "Das Produkt war nach einer Woche kaputt, sehr enttäuscht.",
            "Die Filiale ist zu weit weg, und Parken ist eine Katastrophe.",
            "Die Öffnungszeiten passen nicht, ich arbeite bis 19 Uhr.",
            'Der sogenannte "Premium"-Service war alles andere als das.',
        ),
        "neu_late": (
            "Insgesamt okay, aber die Lieferung kam {h} Stunden zu spät.",
            "Gutes Produkt, die Lieferung könnte zuverlässiger sein.",
        ),
        "neu": (
            "Insgesamt okay, aber an der Kasse hat es zu lange gedauert.",
            "In Ordnung, nichts Besonderes.",
            "Gutes Produkt, aber die Filiale ist schwer zu erreichen.",
            "Preise sind okay, der Service könnte schneller sein.",
        ),
        "pos_late": (
            "Tolles Produkt, auch wenn die Lieferung zu spät war.",
            "Freundlicher Support, als das Paket verspätet war, danke.",
        ),
        "pos": (
            "Toller Service, vielen Dank!",
            "Freundliche Beratung, schnell und einfach.",
            "Super, gerne wieder.",
            'Mein Berater war "der Beste", sehr hilfsbereit.',
        ),
    },
}
_MOBILE_PREFIXES: Final = ("151", "152", "157", "159", "160", "162", "163", "170", "171", "176")
_EMAIL_TEXT: Final = {"en": " Mail me at {x}", "de": " Bitte schreiben Sie mir an {x}"}
_PHONE_TEXT: Final = {"en": " Call me back on {x}", "de": " Rückruf bitte unter {x}"}
_SECOND_LINE: Final = {
    "en": ("P.S. The app, however, works fine.", "Thanks, anyway."),
    "de": ("P.S. Die App funktioniert aber gut.", "Trotzdem danke."),
}


def generate(
    out_dir: Path,
    scale: float = 1.0,
    seed: int = 42,
    end_date: date = date(2026, 10, 31),
    months: int = 12,
) -> dict[str, int]:
    """Write the demo landing files under out_dir; return rows written per entity.

    ``scale`` multiplies every row count except the organisation's; the data covers the
    ``months`` months ending at ``end_date`` (inclusive). Existing files of the same names
    are overwritten, nothing else is removed.
    """
    if scale <= 0:
        raise ValueError("scale must be positive")
    if months < 1:
        raise ValueError("months must be at least 1")
    out_dir = Path(out_dir)
    window_end = end_date + timedelta(days=1)
    window_start = (pd.Timestamp(window_end) - pd.DateOffset(months=months)).date()
    start, end = _epoch(window_start), _epoch(window_end)

    streams = np.random.SeedSequence(seed).spawn(6)
    rng_org, rng_cust, rng_order, rng_resp, rng_text, rng_ticket = (
        np.random.default_rng(s) for s in streams
    )
    org = _make_org(rng_org)
    cust = _make_customers(rng_cust, org, _n(3_000, scale), start, end)
    orders = _make_orders(rng_order, org, cust, _n(10_000, scale), start, end)
    resp, ratings = _make_responses(rng_resp, org, cust, orders, _n(4_000, scale), end)
    resp["Comment"] = _make_comments(rng_text, resp)
    tickets = _make_tickets(rng_ticket, org, cust, orders, _n(2_500, scale), start, end)

    return {
        "org_units": _write_org(out_dir, org),
        "customers": _write_customers(out_dir, cust),
        "orders": _write_orders(out_dir, orders),
        "deliveries": _write_deliveries(out_dir, orders),
        "tickets": _write_tickets(out_dir, tickets),
        "survey_responses": _write_responses(out_dir, resp),
        "factor_ratings": _write_factor_ratings(out_dir, ratings),
    }


# === helpers ==============================================================================


def _n(base: int, scale: float) -> int:
    return max(1, round(base * scale))


def _epoch(d: date) -> int:
    return int(pd.Timestamp(d).as_unit("s").value // 1_000_000_000)


def _ids(prefix: str, n: int, width: int) -> np.ndarray:
    width = max(width, len(str(n)))
    return np.array([f"{prefix}{i:0{width}d}" for i in range(1, n + 1)], dtype=object)


def _categorical(rng: np.random.Generator, probs: np.ndarray, n: int) -> np.ndarray:
    """n category indices; probs is one k-vector for all draws or an (n, k) matrix."""
    cum = np.cumsum(np.atleast_2d(probs), axis=1)
    cum[:, -1] = 1.0
    u = rng.random(n)[:, None]
    return (u >= cum).sum(axis=1).astype(np.int64)


def _weighted_sample(rng: np.random.Generator, weights: np.ndarray, k: int) -> np.ndarray:
    """k distinct indices drawn with probability proportional to weights (exponential keys)."""
    keys = rng.exponential(size=len(weights)) / weights
    return np.sort(np.argsort(keys, kind="stable")[:k])


def _ts_text(seconds: np.ndarray, tz: str | None = None) -> np.ndarray:
    """Epoch seconds -> '%Y-%m-%d %H:%M:%S' (UTC, or local wall time in tz); NULL -> ''."""
    idx = pd.DatetimeIndex(np.asarray(seconds, dtype=np.int64).astype("datetime64[s]"))
    if tz is not None:
        idx = idx.tz_localize("UTC").tz_convert(tz).tz_localize(None)
    text = np.asarray(idx.astype(str), dtype=object)
    text[np.asarray(seconds) == NULL] = ""
    return text


def _month(seconds: np.ndarray) -> np.ndarray:
    return np.datetime_as_string(
        np.asarray(seconds, dtype=np.int64).astype("datetime64[s]").astype("datetime64[M]")
    )


_RATING_TEXT: Final = np.array(
    [str(i // 10) if i % 10 == 0 else f"{i / 10:.1f}" for i in range(101)] + [""], dtype=object
)


def _rating_text(values: np.ndarray) -> np.ndarray:
    """0-10 ratings with at most one decimal -> '7' / '6.5'; NaN -> ''."""
    idx = np.where(np.isnan(values), 101, np.rint(np.nan_to_num(values) * 10)).astype(np.int64)
    return _RATING_TEXT[idx]


def _int_text(values: np.ndarray) -> np.ndarray:
    """Small non-negative integer scores (-1 = missing) -> text."""
    table = np.array([str(i) for i in range(11)] + [""], dtype=object)
    return table[np.where(values < 0, 11, values)]


# === organisation =========================================================================


@dataclass(frozen=True)
class _Org:
    frame: pd.DataFrame
    store_ids: np.ndarray  # (20,)
    store_region: np.ndarray  # region index per store
    store_late_rate: np.ndarray
    store_service: np.ndarray  # store (incl. region) effect on service experience
    advisor_ids: np.ndarray  # (100,), advisors of store s are s*5 .. s*5+4
    advisor_service: np.ndarray


def _make_org(rng: np.random.Generator) -> _Org:
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
    advisor_ids = _ids("A", n_adv, 4)
    for a in range(n_adv):
        name = f"{FIRST_NAMES[first[a]]} {LAST_NAMES[last[a]]}"
        rows.append((advisor_ids[a], "advisor", store_ids[a // ADVISORS_PER_STORE], name))

    region_codes = [rid for rid, _ in REGIONS]
    sreg = np.array(store_region)
    base_late = np.array([LATE_RATE_BY_REGION[region_codes[r]] for r in sreg])
    region_service = np.array([REGION_SERVICE_EFFECT[region_codes[r]] for r in sreg])
    return _Org(
        frame=pd.DataFrame(rows, columns=["org_unit_id", "level", "parent_id", "name"]),
        store_ids=np.array(store_ids, dtype=object),
        store_region=sreg,
        store_late_rate=base_late * rng.uniform(0.75, 1.25, n_stores),
        store_service=region_service + rng.normal(0.0, 0.35, n_stores),
        advisor_ids=advisor_ids,
        advisor_service=rng.normal(0.0, 0.3, n_adv),
    )


# === customers ============================================================================


def _make_customers(
    rng: np.random.Generator, org: _Org, n: int, start: int, end: int
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
            "customer_id": _ids("C", n, 6),
            "segment": segment[order],
            "signed_up_at": signed_up[order],
            "latent": latent[order],
            "home_store": home[order],
        }
    )


# === orders and deliveries ================================================================


def _make_orders(
    rng: np.random.Generator, org: _Org, cust: pd.DataFrame, n: int, start: int, end: int
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
    channel = _categorical(rng, np.array(CHANNEL_SHARE_BY_SEGMENT)[segment[c]], n)
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
    frame.insert(0, "order_id", _ids("O", n, 7))
    return frame


# === survey responses and factor ratings ==================================================


def _make_responses(
    rng: np.random.Generator,
    org: _Org,
    cust: pd.DataFrame,
    orders: pd.DataFrame,
    n: int,
    end: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    ordered = orders["ordered_at"].to_numpy()
    delivered = orders["delivered_at"].to_numpy()
    has_delivery = orders["has_delivery"].to_numpy()
    got_it = has_delivery & (delivered != NULL)
    earliest = np.where(got_it, np.maximum(ordered + DAY, delivered + 2 * HOUR), ordered + DAY)
    latest = ordered + 10 * DAY
    m = len(orders)
    uniform = earliest + np.floor(rng.random(m) * (latest - earliest)).astype(np.int64)
    # people answer in the daytime (06-21 UTC): move to that day's daytime when it fits
    daytime = uniform // DAY * DAY + rng.integers(6 * HOUR, 21 * HOUR, m)
    daytime = np.where(daytime < earliest, daytime + DAY, daytime)
    responded = np.where(daytime <= latest, daytime, uniform)
    eligible = np.flatnonzero((responded < end) & (~has_delivery | got_it))
    n = min(n, len(eligible))
    # contact rules: a customer is invited about as often whatever their order count, so
    # respondents represent customers, not orders (heavy buyers are not over-sampled)
    per_customer = np.bincount(orders["cust"].to_numpy(), minlength=len(cust))
    weight = 1.0 / per_customer[orders["cust"].to_numpy()[eligible]]
    pick = eligible[_weighted_sample(rng, weight, n)]
    pick = pick[np.lexsort((pick, responded[pick]))]
    o = orders.iloc[pick].reset_index(drop=True)
    resp_at = responded[pick]
    c = o["cust"].to_numpy()
    store = o["store"].to_numpy()
    late = o["late"].to_numpy().astype(float)
    advisor = store * ADVISORS_PER_STORE + rng.integers(0, ADVISORS_PER_STORE, n)
    latent = cust["latent"].to_numpy()[c]
    latent = latent - latent.mean()

    # true (continuous) factor experiences, centred on the planted means
    experience: dict[str, np.ndarray] = {}
    for f in EXPERIENCE_FACTORS:
        m = FACTOR_MODEL[f]
        part = m.latent * latent + m.late * late + rng.normal(0.0, m.noise, n)
        if f == "service":
            part = part + org.store_service[store] + org.advisor_service[advisor]
        experience[f] = m.experience + part - part.mean()

    worse = (org.store_region[store] == [r for r, _ in REGIONS].index(WORSE_REGION)).astype(float)
    nps_lin = sum(w * (experience[f] - FACTOR_MODEL[f].experience) for f, w in NPS_DRIVERS.items())
    nps_lin = nps_lin + NPS_LATE * late + NPS_WORSE_REGION * worse + rng.normal(0, NPS_NOISE, n)
    nps = np.clip(np.rint(NPS_BASE + nps_lin), 0, 10).astype(np.int64)
    csat_lin = sum(
        w * (experience[f] - FACTOR_MODEL[f].experience) for f, w in CSAT_DRIVERS.items()
    )
    csat_lin = csat_lin + CSAT_LATE * late + rng.normal(0, CSAT_NOISE, n)
    csat = np.clip(np.rint(CSAT_BASE + csat_lin), 1, 5).astype(np.int64)
    conv_dev = experience["convenience"] - FACTOR_MODEL["convenience"].experience
    ces_lin = CES_CONVENIENCE * conv_dev + CES_LATE * late + rng.normal(0, CES_NOISE, n)
    ces = np.clip(np.rint(CES_BASE + ces_lin), 1, 7).astype(np.int64)
    for score in (nps, csat, ces):
        score[rng.random(n) < SCORE_NULL_SHARE] = -1

    order_channel = np.array(ORDER_CHANNELS, dtype=object)[o["channel"].to_numpy()]
    delivered_order = o["has_delivery"].to_numpy()
    touch = np.where(
        delivered_order,
        _categorical(rng, np.array([0.25, 0.55, 0.20]), n),
        _categorical(rng, np.array([0.75, 0.0, 0.25]), n),
    )
    touchpoint = np.array(TOUCHPOINTS, dtype=object)[touch]
    channel = np.where((touch == 1) & (rng.random(n) < 0.7), "delivery", order_channel)
    survey = np.where(touch == 1, "SRV-DELIVERY", "SRV-POST-PURCHASE")
    language = np.where(rng.random(n) < 0.65, "de", "en")
    consent = np.where(rng.random(n) < 0.6, "Yes", "No")
    labels = np.array(["", *SATISFACTION_LABELS], dtype=object)

    resp_ids = _ids("R", n, 7)
    responses = pd.DataFrame(
        {
            "ResponseId": resp_ids,
            "SurveyId": survey,
            "CustomerId": cust["customer_id"].to_numpy()[c],
            "OrderId": o["order_id"].to_numpy(),
            "StoreId": org.store_ids[store],
            "AdvisorId": org.advisor_ids[advisor],
            "Channel": channel,
            "Touchpoint": touchpoint,
            "RecordedDate": _ts_text(resp_at, LOCAL_TZ),
            "NPS": _int_text(nps),
            "Satisfaction": labels[np.maximum(csat, 0)],
            "Effort": _int_text(ces),
            "Comment": "",
            "Language": language,
            "Consent": consent,
        }
    )
    # kept for the comment templates and the month split; dropped before writing
    responses["_responded_at"] = resp_at
    responses["_nps"] = nps
    responses["_csat"] = csat
    responses["_late"] = late.astype(bool)
    responses["_late_hours"] = o["late_hours"].to_numpy()

    # factor block: 6 rows per response unless skipped
    keep = np.flatnonzero(rng.random(n) >= FACTOR_SKIP_SHARE)
    k, nf = len(keep), len(EXPERIENCE_FACTORS)
    slider = rng.random(k) < DECIMAL_SLIDER_SHARE
    decimals = np.repeat(np.where(slider, 10.0, 1.0), nf)

    def measure(values: np.ndarray) -> np.ndarray:
        v = np.clip(np.round(values * decimals) / decimals, 0.0, 10.0)
        v[rng.random(len(v)) < FACTOR_VALUE_NULL_SHARE] = np.nan
        return v

    exp_true = np.column_stack([experience[f][keep] for f in EXPERIENCE_FACTORS]).ravel()
    means = np.array(
        [[FACTOR_MODEL[f].experience - FACTOR_MODEL[f].gap for f in EXPERIENCE_FACTORS]]
    )
    expect_true = (means + rng.normal(0.0, 0.9, (k, nf))).ravel()
    imp_means = np.array([[FACTOR_MODEL[f].importance for f in EXPERIENCE_FACTORS]])
    imp_true = (imp_means + rng.normal(0.0, 0.7, (k, nf))).ravel()
    ratings = pd.DataFrame(
        {
            "response_id": np.repeat(resp_ids[keep], nf),
            "factor": np.tile(np.array(EXPERIENCE_FACTORS, dtype=object), k),
            "experience": _rating_text(measure(exp_true)),
            "expectation": _rating_text(measure(expect_true)),
            "importance": _rating_text(measure(imp_true)),
            "_responded_at": np.repeat(resp_at[keep], nf),
        }
    )
    return responses, ratings


def _make_comments(rng: np.random.Generator, resp: pd.DataFrame) -> np.ndarray:
    n = len(resp)
    comments = np.full(n, "", dtype=object)
    idx = np.flatnonzero(rng.random(n) < COMMENT_SHARE)
    m = len(idx)
    nps = resp["_nps"].to_numpy()[idx]
    csat = resp["_csat"].to_numpy()[idx]
    late = resp["_late"].to_numpy()[idx]
    hours = resp["_late_hours"].to_numpy()[idx]
    lang = resp["Language"].to_numpy()[idx]
    sentiment = np.where(
        nps >= 0,
        np.select([nps <= 6, nps <= 8], ["neg", "neu"], "pos"),
        np.select([csat < 0, csat <= 2, csat <= 3], ["neu", "neg", "neu"], "pos"),
    )
    pick = rng.random(m)
    extra = rng.random(m)
    second = rng.random(m) < MULTILINE_SHARE
    alt = rng.random(m)
    first = rng.integers(0, len(FIRST_NAMES), m)
    last = rng.integers(0, len(LAST_NAMES), m)
    digits = rng.integers(1_000_000, 10_000_000, m)
    mobile = rng.integers(150, 180, m)
    out: list[str] = []
    for i in range(m):
        key = f"{sentiment[i]}_late" if late[i] else str(sentiment[i])
        templates = _COMMENTS[lang[i]][key]
        text = templates[int(pick[i] * len(templates))].format(h=hours[i])
        if extra[i] < EMAIL_SHARE:
            user = f"{FIRST_NAMES[first[i]]}.{LAST_NAMES[last[i]]}".lower()
            user = user.replace("ä", "ae").replace("ü", "ue")
            text += _EMAIL_TEXT[lang[i]].format(x=f"{user}@example.com")
        elif extra[i] < EMAIL_SHARE + PHONE_SHARE:
            # a German mobile number as allocated: 015x with 8 digits, 016x/017x with 7
            prefix = _MOBILE_PREFIXES[mobile[i] % len(_MOBILE_PREFIXES)]
            number = f"{digits[i]}{digits[i] % 10}" if prefix < "160" else f"{digits[i]}"
            phone = f"+49 {prefix} {number}" if alt[i] < 0.5 else f"0{prefix}/{number}"
            text += _PHONE_TEXT[lang[i]].format(x=phone)
        if second[i]:
            lines = _SECOND_LINE[lang[i]]
            text += "\n" + lines[int(alt[i] * len(lines))]
        out.append(text)
    comments[idx] = np.array(out, dtype=object) if out else comments[idx]
    return comments


# === tickets ==============================================================================


def _make_tickets(
    rng: np.random.Generator,
    org: _Org,
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
    pick = _weighted_sample(rng, weight, n_order)
    o = orders.iloc[pick]
    ordered = o["ordered_at"].to_numpy()
    has_delivery = o["has_delivery"].to_numpy()
    probs = np.where(
        o["late"].to_numpy()[:, None],
        [0.75, 0.10, 0.05, 0.10],
        np.where(has_delivery[:, None], [0.25, 0.30, 0.15, 0.30], [0.0, 0.45, 0.25, 0.30]),
    )
    category = _categorical(rng, probs, n_order)
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
            "ticket_id": _ids("T", m, 7),
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


# === writers ==============================================================================


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
    months = _month(seconds)
    total = 0
    for month in np.unique(months):
        part = frame.iloc[np.flatnonzero(months == month)]
        total += write(part, directory / f"{stem}_{month}")
    return total


def _write_org(out_dir: Path, org: _Org) -> int:
    return _write_csv(org.frame, out_dir / "org" / "org_units.csv")


def _write_customers(out_dir: Path, cust: pd.DataFrame) -> int:
    frame = pd.DataFrame(
        {
            "customer_id": cust["customer_id"],
            "segment": np.array(SEGMENTS, dtype=object)[cust["segment"].to_numpy()],
            "signed_up_at": _ts_text(cust["signed_up_at"].to_numpy()),
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


def _write_orders(out_dir: Path, orders: pd.DataFrame) -> int:
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


def _write_deliveries(out_dir: Path, orders: pd.DataFrame) -> int:
    d = orders[orders["has_delivery"].to_numpy()]
    promised = d["promised_at"].to_numpy()
    order = np.lexsort((np.arange(len(d)), promised))
    d, promised = d.iloc[order], promised[order]
    frame = pd.DataFrame(
        {
            "delivery_id": _ids("D", len(d), 7),
            "order_id": d["order_id"].to_numpy(),
            "promised_at": _ts_text(promised),
            "delivered_at": _ts_text(d["delivered_at"].to_numpy()),
        }
    )

    def write(part: pd.DataFrame, stem: Path) -> int:
        return _write_csv(part, stem.with_suffix(".csv"))

    return _by_month(frame, promised, out_dir / "orders", "deliveries", write)


def _write_tickets(out_dir: Path, tickets: pd.DataFrame) -> int:
    frame = tickets.copy()
    opened = frame["opened_at"].to_numpy()
    frame["opened_at"] = _ts_text(opened)
    frame["closed_at"] = _ts_text(frame["closed_at"].to_numpy())
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


def _write_responses(out_dir: Path, resp: pd.DataFrame) -> int:
    frame = resp[[c for c in resp.columns if not c.startswith("_")]]

    def write(part: pd.DataFrame, stem: Path) -> int:
        return _write_csv(part, stem.with_suffix(".csv"))

    seconds = resp["_responded_at"].to_numpy()
    return _by_month(frame, seconds, out_dir / "surveys", "responses", write)


def _write_factor_ratings(out_dir: Path, ratings: pd.DataFrame) -> int:
    frame = ratings[[c for c in ratings.columns if not c.startswith("_")]]

    def write(part: pd.DataFrame, stem: Path) -> int:
        return _write_csv(part, stem.with_suffix(".csv"))

    seconds = ratings["_responded_at"].to_numpy()
    return _by_month(frame, seconds, out_dir / "surveys", "factor_ratings", write)
