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
``loop/case_events_YYYY-MM.csv``            the ticketing tool's follow-up case events:
                                            event_id, case_id, event_at, status,
                                            resolution, root_cause, agent_id
``benchmarks/benchmarks.csv``               kpi, benchmark, kind, period, value, source (the
                                            15 competitors of one satisfaction study)
==========================================  ===============================================

Timestamps are text ``%Y-%m-%d %H:%M:%S`` in UTC (except ``RecordedDate``); nulls are empty
strings in CSV and ``null`` in JSON. Files are split by the month (UTC) of ordered_at,
promised_at, opened_at, responded_at and event_at; deliveries promised after the window end
(orders of the last days) land in the following month's file. Same arguments give
byte-identical files.

Sizes at ``scale=1`` (row counts scale linearly, the organisation is fixed): 1 HQ, 3 regions,
20 stores, 100 advisors; ~3,000 customers, ~10,100 orders (10,000 plus the planted
repurchases) over ``months`` months ending at ``end_date``, ~6,000 deliveries, 2,500
tickets, 4,000 survey responses, ~21,600 factor ratings, ~3,700 case events; 15 benchmarks
(fixed too).

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
6. **Following up detractors works.** The ticketing tool works every ``detractor_callback``
   case (``follow_up``): ~70% of customers are reached within the 48-hour SLA, ~18% late,
   ~12% never. A detractor reached in time whose next answer within 90 days would again be
   a detractor's gives a passive or promoter score instead with probability 0.7, and one
   without an order in those 90 days orders again with probability 0.3; how a case goes
   is drawn independently of the customer, so reached and not-reached cases compare fairly.
   The tool works ``repeated_ticket`` cases the same way (no effect planted); the regions'
   ``late_delivery_complaint`` cases get no events, so their backlog grows.

Also present for the privacy and parsing paths: ~40% of responses carry an English or German
comment, ~5% of comments hold an e-mail address and ~5% a phone number, some hold commas,
double quotes and line breaks; ~3% of each score is missing; ~10% of responses skip the
factor block; a few tickets are still open and a few deliveries not yet delivered at the end.

The package: ``model`` (every parameter and :data:`PLANTED`), ``org`` (organisation and
customers), ``operations`` (orders, deliveries, tickets), ``surveys`` (responses, factor
ratings, comments), ``follow_up`` (the ticketing tool's case events), ``files`` (the
landing files), ``generator`` (``generate``, all of it in order); ``_common`` holds the
shared draws and text forms.

A second company, an online marketplace shaped like the public Brazilian e-commerce
exports (``examples/marketplace/``), is generated by ``marketplace.generate``.
:data:`COMPANIES` names both generators for ``cxkpi demo-data --company``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from cxkpi.demo import marketplace
from cxkpi.demo.generator import generate
from cxkpi.demo.model import PLANTED

# company -> generate(out_dir, scale=, seed=, end_date=) -> rows written per entity or file
COMPANIES: Final[dict[str, Callable[..., dict[str, int]]]] = {
    "retailer": generate,
    "marketplace": marketplace.generate,
}

__all__ = ["COMPANIES", "PLANTED", "generate"]
