"""A tiny hand-made data set in the demo's export formats, with KPI values computed by hand.

The expected numbers below were worked out on paper from these rows, not by running any
of the project's code; the test compares the published kpi_values with them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

ORG = """org_unit_id,level,parent_id,name
HQ,hq,,Head office
R1,region,HQ,North
R2,region,HQ,South
S1,store,R1,Store one
S2,store,R1,Store two
S3,store,R2,Store three
"""

# store, channel, nps, satisfaction label, effort; Berlin local noon on 5-7 Oct 2026.
RESPONSES = [
    ("S1", "web", 10, "Very satisfied", 2),
    ("S1", "web", 9, "Satisfied", 3),
    ("S1", "web", 8, "Neutral", 4),
    ("S1", "web", 3, "Dissatisfied", 6),
    ("S2", "store", 10, "Satisfied", 1),
    ("S2", "store", 6, "Very dissatisfied", 7),
    ("S2", "store", 6, "Neutral", None),
    ("S3", "web", 9, "Very satisfied", 2),
    ("S3", "web", 9, "Satisfied", 2),
    ("S3", "app", 7, "Satisfied", 3),
    ("S3", "app", 0, "Very dissatisfied", 7),
    ("S3", "app", 10, None, 1),
]

ORDERS = [  # order, store, channel
    ("O1", "S1", "web"),
    ("O2", "S1", "web"),
    ("O3", "S2", "store"),
    ("O4", "S3", "app"),
    ("O5", "S3", "app"),
]
DELIVERIES = """delivery_id,order_id,promised_at,delivered_at
D1,O1,2026-10-03 12:00:00,2026-10-03 10:00:00
D2,O2,2026-10-03 12:00:00,2026-10-04 09:00:00
D3,O3,2026-10-03 12:00:00,2026-10-03 12:00:00
D4,O4,2026-10-03 12:00:00,2026-10-02 12:00:00
D5,O5,2026-10-03 12:00:00,
"""
TICKETS = [  # ticket, store, hours to close (None: open), first-contact resolution
    ("T1", "S1", 2, True),
    ("T2", "S1", 10, False),
    ("T3", "S3", 4, True),
    ("T4", "S3", None, None),
    ("T5", "S2", 30, True),
]

# The KPIs of this fixture, one of each kind the checks below cover.
KPIS = """
id: nps
type: nps
source: survey_responses
measure: nps
target: 30
thresholds: {at_risk: 25}
min_sample: 1
---
id: csat
type: top_box
source: survey_responses
measure: csat
target: 80
thresholds: {at_risk: 75}
min_sample: 1
---
id: ces
type: mean
source: survey_responses
measure: ces
direction: lower
target: 3
thresholds: {at_risk: 3.5}
min_sample: 1
---
id: on_time_delivery
type: ratio
source: deliveries
numerator: is_on_time
denominator: is_delivered
filters: [is_delivered]
date: delivered_at
target: 90
thresholds: {at_risk: 87}
min_sample: 1
---
id: first_contact_resolution
type: share
source: tickets
condition: first_contact_resolution
filters: [is_closed]
date: closed_at
target: 75
thresholds: {at_risk: 70}
min_sample: 1
---
id: median_hours_to_close
type: percentile
source: tickets
measure: hours_to_close
percentile: 0.5
date: closed_at
unit: hours
direction: lower
min_sample: 1
---
id: service_index
type: derived
formula: 0.5 * csat + 0.5 * on_time_delivery
unit: percent
target: 70
min_sample: 4
"""

# (kpi, org_level, org_unit, channel) -> (value, n) for October 2026, worked out by hand.
EXPECTED_MONTH = {
    # NPS = 100 * (promoters - detractors) / answers
    ("nps", "store", "S1", "all"): (100 * (2 - 1) / 4, 4),
    ("nps", "store", "S2", "all"): (100 * (1 - 2) / 3, 3),
    ("nps", "store", "S3", "all"): (100 * (3 - 1) / 5, 5),
    ("nps", "region", "R1", "all"): (0.0, 7),
    ("nps", "region", "R2", "all"): (40.0, 5),
    ("nps", "hq", "HQ", "all"): (100 * (6 - 4) / 12, 12),  # not the mean of stores (10.56)
    ("nps", "hq", "HQ", "web"): (100 * (4 - 1) / 6, 6),
    ("nps", "store", "S3", "app"): (0.0, 3),
    # CSAT = 100 * share of 4-5 answers
    ("csat", "store", "S1", "all"): (50.0, 4),
    ("csat", "store", "S2", "all"): (100 / 3, 3),
    ("csat", "store", "S3", "all"): (75.0, 4),
    ("csat", "hq", "HQ", "all"): (100 * 6 / 11, 11),
    # CES = mean effort
    ("ces", "store", "S1", "all"): (3.75, 4),
    ("ces", "store", "S2", "all"): (4.0, 2),
    ("ces", "hq", "HQ", "all"): (38 / 11, 11),
    # on-time delivery = 100 * on-time / delivered
    ("on_time_delivery", "store", "S1", "all"): (50.0, 2),
    ("on_time_delivery", "region", "R1", "all"): (100 * 2 / 3, 3),
    ("on_time_delivery", "hq", "HQ", "all"): (75.0, 4),
    # first-contact resolution = 100 * resolved first time / closed
    ("first_contact_resolution", "store", "S1", "all"): (50.0, 2),
    ("first_contact_resolution", "hq", "HQ", "all"): (75.0, 4),
    # median hours to close (percentile_cont): a median of all tickets, never of medians
    ("median_hours_to_close", "store", "S1", "all"): (6.0, 2),  # 2, 10
    ("median_hours_to_close", "region", "R1", "all"): (10.0, 3),  # 2, 10, 30
    ("median_hours_to_close", "hq", "HQ", "all"): (7.0, 4),  # 2, 4, 10, 30
    # service index = 0.5 * csat + 0.5 * on-time delivery, n = the smaller n
    ("service_index", "store", "S1", "all"): (0.5 * 50 + 0.5 * 50, 2),
    ("service_index", "hq", "HQ", "all"): (0.5 * 100 * 6 / 11 + 0.5 * 75, 4),
}
# Status at HQ for October against the targets and at-risk thresholds in KPIS.
EXPECTED_HQ_STATUS = {
    "nps": "off_track",  # 16.7 < 25
    "csat": "off_track",  # 54.5 < 75
    "ces": "at_risk",  # 3.45 within 3 + 0.5
    "on_time_delivery": "off_track",  # 75 < 87
    "first_contact_resolution": "on_track",  # 75 >= 75
    "service_index": "off_track",  # 64.8 < 70, no at-risk band
    "median_hours_to_close": "no_target",
}


def write_landing(landing: Path) -> None:
    (landing / "org").mkdir(parents=True, exist_ok=True)
    (landing / "org" / "org_units.csv").write_text(ORG)
    (landing / "crm").mkdir(exist_ok=True)
    (landing / "crm" / "customers.csv").write_text(
        "customer_id,segment,signed_up_at\nC1,consumer,2025-01-01 00:00:00\n"
    )
    (landing / "surveys").mkdir(exist_ok=True)
    header = (
        "ResponseId,SurveyId,CustomerId,OrderId,StoreId,AdvisorId,Channel,Touchpoint,"
        "RecordedDate,NPS,Satisfaction,Effort,Comment,Language,Consent\n"
    )
    lines = [
        f"R{i:02d},SRV,C1,,{store},,{channel},checkout,2026-10-0{5 + i % 3} 12:00:00,"
        f"{nps},{label or ''},{'' if effort is None else effort},,en,Yes"
        for i, (store, channel, nps, label, effort) in enumerate(RESPONSES)
    ]
    (landing / "surveys" / "responses_2026-10.csv").write_text(header + "\n".join(lines) + "\n")
    (landing / "surveys" / "factor_ratings_2026-10.csv").write_text(
        "response_id,factor,experience,expectation,importance\nR00,convenience,5,7,9\n"
    )
    (landing / "orders").mkdir(exist_ok=True)
    pd.DataFrame(
        {
            "order_id": [o for o, _, _ in ORDERS],
            "customer_id": ["C1"] * len(ORDERS),
            "store_id": [s for _, s, _ in ORDERS],
            "channel": [c for _, _, c in ORDERS],
            "ordered_at": pd.to_datetime(["2026-10-01 09:00"] * len(ORDERS)),
            "amount": [50.0] * len(ORDERS),
        }
    ).to_parquet(landing / "orders" / "orders_2026-10.parquet")
    (landing / "orders" / "deliveries_2026-10.csv").write_text(DELIVERIES)
    (landing / "support").mkdir(exist_ok=True)
    tickets = [
        {
            "ticket_id": t,
            "customer_id": "C1",
            "order_id": None,
            "store_id": store,
            "advisor_id": None,
            "channel": "support",
            "category": "delivery",
            "opened_at": "2026-10-02 08:00:00",
            "closed_at": None
            if hours is None
            else f"2026-10-{2 + (8 + hours) // 24:02d} {(8 + hours) % 24:02d}:00:00",
            "first_contact_resolution": fcr,
            "reopened": False,
        }
        for t, store, hours, fcr in TICKETS
    ]
    (landing / "support" / "tickets_2026-10.jsonl").write_text(
        "".join(json.dumps(t) + "\n" for t in tickets)
    )
