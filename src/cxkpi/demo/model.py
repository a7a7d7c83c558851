"""The demo's model: every parameter the generator draws from (organisation, customers and
orders, the survey model, tickets) and :data:`PLANTED`, the relationships it plants."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from cxkpi.canonical import EXPERIENCE_FACTORS

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
NPS_FACTORS: Final = {"service": 0.55, "product": 0.45, "convenience": 0.45}
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

# --- benchmarks ---------------------------------------------------------------------------
# The annual satisfaction study the satisfaction_ranking goal is ranked in: CSAT top-2-box
# (percent) of 15 competitors; with the demo's ~68% the retailer is about 14th of 16.
BENCHMARK_STUDY: Final = "Retail CX Satisfaction Study 2026"
BENCHMARK_PERIOD: Final = "2026"
BENCHMARKED_KPI: Final = "satisfaction_ranking"
COMPETITOR_CSAT: Final = (
    ("Nova Electronics", 88.5),
    ("Brightline Retail", 84.0),
    ("Kowloon Digital", 82.5),
    ("Harbour Tech", 81.0),
    ("Circuit City Mart", 79.5),
    ("Pearl Gadgets", 78.0),
    ("Apex Home Store", 77.0),
    ("Vertex Appliances", 75.5),
    ("Lotus Electric", 74.0),
    ("Metro Devices", 73.0),
    ("Summit Sound", 71.5),
    ("Jade Mobile", 70.5),
    ("Orbit Outlet", 69.0),
    ("Dragon Discount", 66.0),
    ("Budget Bytes", 62.5),
)

# --- the follow-up process of the demo's ticketing tool (case_rules/follow_up.yml) -------
# The rule the team works, and its SLAs in hours (first contact, close): as declared there.
FOLLOW_UP_RULE: Final = "detractor_callback"
FOLLOW_UP_SLA_HOURS: Final = (48, 168)
# The advisors' rule for customers who open a ticket again: worked the same way, no
# recovery planted.
REPEATED_TICKET_RULE: Final = "repeated_ticket"
REPEATED_TICKET_SLA_HOURS: Final = (24, 120)
# How a case goes: first contact within the SLA, late, or never (shares sum to 1)
FOLLOW_UP_OUTCOMES: Final = {"in_time": 0.70, "late": 0.18, "never": 0.12}
NEVER_CLOSED_SHARE: Final = 0.08  # contacted cases left open
REOPEN_SHARE: Final = 0.06  # closed cases reopened once (and closed again)
# The planted recovery: a detractor reached within the SLA whose next answer (within the
# window) would again be a detractor's gives a passive or promoter score instead with this
# probability; and without an order in the window orders again with this probability.
RECOVERY_WINDOW_DAYS: Final = 90
RECOVERY_LIFT: Final = 0.7
REPURCHASE_LIFT: Final = 0.3
# The ticketing tool's root-cause categories (the ids of the topics in topics/): a late
# delivery's case is mostly closed as a delivery delay, the others by these weights.
ROOT_CAUSES: Final = {
    "unfriendly_staff": 0.20,
    "product_defect": 0.25,
    "store_access": 0.30,
    "waiting_time": 0.15,
    "refund": 0.10,
}
RESOLUTIONS: Final = ("apology", "voucher", "replacement", "refund", "explanation")
AGENTS: Final = 12

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
    "nps_factors": tuple(NPS_FACTORS),
    "placebo_factor": "brand_image",
    "worse_region": WORSE_REGION,
    "late_rate_by_region": dict(LATE_RATE_BY_REGION),
    "comment_share": COMMENT_SHARE,
    "email_share_of_comments": EMAIL_SHARE,
    "phone_share_of_comments": PHONE_SHARE,
    "score_null_share": SCORE_NULL_SHARE,
    "factor_block_skip_share": FACTOR_SKIP_SHARE,
    "follow_up_rule": FOLLOW_UP_RULE,
    "follow_up_outcomes": dict(FOLLOW_UP_OUTCOMES),
    "recovery_window_days": RECOVERY_WINDOW_DAYS,
    "recovery_lift": RECOVERY_LIFT,
    "repurchase_lift": REPURCHASE_LIFT,
}
