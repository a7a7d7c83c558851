"""The demo's X-data: survey responses (the survey tool's export, scores driven by the
planted factor experiences and lateness), their factor ratings, and free-text comments
(English or German, some with an e-mail address, a phone number or a second line)."""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from cxkpi.canonical import EXPERIENCE_FACTORS
from cxkpi.demo._common import categorical, ids, int_text, rating_text, ts_text, weighted_sample
from cxkpi.demo.model import (
    ADVISORS_PER_STORE,
    CES_BASE,
    CES_CONVENIENCE,
    CES_LATE,
    CES_NOISE,
    COMMENT_SHARE,
    CSAT_BASE,
    CSAT_DRIVERS,
    CSAT_LATE,
    CSAT_NOISE,
    DAY,
    DECIMAL_SLIDER_SHARE,
    EMAIL_SHARE,
    FACTOR_MODEL,
    FACTOR_SKIP_SHARE,
    FACTOR_VALUE_NULL_SHARE,
    FIRST_NAMES,
    HOUR,
    LAST_NAMES,
    LOCAL_TZ,
    MULTILINE_SHARE,
    NPS_BASE,
    NPS_FACTORS,
    NPS_LATE,
    NPS_NOISE,
    NPS_WORSE_REGION,
    NULL,
    ORDER_CHANNELS,
    PHONE_SHARE,
    REGIONS,
    SATISFACTION_LABELS,
    SCORE_NULL_SHARE,
    TOUCHPOINTS,
    WORSE_REGION,
)
from cxkpi.demo.org import Org

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


def make_responses(
    rng: np.random.Generator,
    org: Org,
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
    pick = eligible[weighted_sample(rng, weight, n)]
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
        factor = FACTOR_MODEL[f]
        part = factor.latent * latent + factor.late * late + rng.normal(0.0, factor.noise, n)
        if f == "service":
            part = part + org.store_service[store] + org.advisor_service[advisor]
        experience[f] = factor.experience + part - part.mean()

    worse = (org.store_region[store] == [r for r, _ in REGIONS].index(WORSE_REGION)).astype(float)
    nps_lin = sum(w * (experience[f] - FACTOR_MODEL[f].experience) for f, w in NPS_FACTORS.items())
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
        categorical(rng, np.array([0.25, 0.55, 0.20]), n),
        categorical(rng, np.array([0.75, 0.0, 0.25]), n),
    )
    touchpoint = np.array(TOUCHPOINTS, dtype=object)[touch]
    channel = np.where((touch == 1) & (rng.random(n) < 0.7), "delivery", order_channel)
    survey = np.where(touch == 1, "SRV-DELIVERY", "SRV-POST-PURCHASE")
    language = np.where(rng.random(n) < 0.65, "de", "en")
    consent = np.where(rng.random(n) < 0.6, "Yes", "No")
    labels = np.array(["", *SATISFACTION_LABELS], dtype=object)

    resp_ids = ids("R", n, 7)
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
            "RecordedDate": ts_text(resp_at, LOCAL_TZ),
            "NPS": int_text(nps),
            "Satisfaction": labels[np.maximum(csat, 0)],
            "Effort": int_text(ces),
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
            "experience": rating_text(measure(exp_true)),
            "expectation": rating_text(measure(expect_true)),
            "importance": rating_text(measure(imp_true)),
            "_responded_at": np.repeat(resp_at[keep], nf),
        }
    )
    return responses, ratings


def make_comments(rng: np.random.Generator, resp: pd.DataFrame) -> np.ndarray:
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
