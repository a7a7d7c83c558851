"""The demo's closed loop: the ticketing tool working the cases the default case rules
hand over (case_rules/follow_up.yml), and the recovery it causes.

Every detractor answer opens a ``detractor_callback`` case (its id derived as cxkpi derives
it). The tool sees a case the night after the answer; its team reaches most customers
within the first-contact SLA, some late, some never; most contacted cases are closed, a
few reopened, a few left open. Reaching a customer in time works (the planted effect):
their next answer within the recovery window is lifted out of the detractor range with
probability ``RECOVERY_LIFT``, and a customer without an order in that window orders again
with probability ``REPURCHASE_LIFT``. How a case goes is drawn independently of the
customer, so the comparison of reached and not-reached cases measures that effect alone.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cxkpi.demo.model import (
    AGENTS,
    DAY,
    FOLLOW_UP_OUTCOMES,
    FOLLOW_UP_RULE,
    FOLLOW_UP_SLA_HOURS,
    HOUR,
    NEVER_CLOSED_SHARE,
    RECOVERY_LIFT,
    RECOVERY_WINDOW_DAYS,
    REOPEN_SHARE,
    REPEATED_TICKET_RULE,
    REPEATED_TICKET_SLA_HOURS,
    REPURCHASE_LIFT,
    RESOLUTIONS,
    ROOT_CAUSES,
)

EVENT_COLUMNS = ("case_id", "event_at", "status", "resolution", "root_cause", "agent_id")
# the nightly run that hands a case over starts at 02:00 UTC the day after its answer
HAND_OVER_HOUR = 2


@dataclass
class FollowUp:
    events: pd.DataFrame  # EVENT_COLUMNS, event_at in epoch seconds, in time order
    nps: np.ndarray  # every response's NPS after the planted recovery (-1 = missing)
    extra_orders: pd.DataFrame  # repurchases the follow-up caused, in the orders' shape


def case_id(rule_id: str, source_key: str) -> str:
    """The case id cxkpi derives (int_case__candidates): the md5 of rule and key, its
    digits written as letters g-p."""
    digest = hashlib.md5(f"{rule_id}|{source_key}".encode()).hexdigest()
    return digest.translate(str.maketrans("0123456789", "ghijklmnop"))


def simulate(
    rng: np.random.Generator,
    resp: pd.DataFrame,
    orders: pd.DataFrame,
    tickets: pd.DataFrame,
    end: int,
) -> FollowUp:
    """Work every detractor_callback case of ``resp`` (responses in time order, with
    ``_nps``, ``_responded_at`` and ``_late``) and every repeated_ticket case of
    ``tickets`` up to ``end`` (epoch seconds). The region's late-delivery cases get no
    events: the demo's regions have no follow-up process, so their backlog grows."""
    nps = resp["_nps"].to_numpy().copy()
    answered = resp["_responded_at"].to_numpy()
    customers = resp["CustomerId"].to_numpy()
    late = resp["_late"].to_numpy()
    response_ids = resp["ResponseId"].to_numpy()
    answers_of: dict[str, list[int]] = {}
    for i, customer in enumerate(customers):
        answers_of.setdefault(customer, []).append(i)
    ordered_at = orders["ordered_at"].to_numpy()
    orders_of: dict[str, np.ndarray] = {
        customer: ordered_at[index]
        for customer, index in orders.groupby("customer_id", sort=False).indices.items()
    }
    window = RECOVERY_WINDOW_DAYS * DAY
    events: list[tuple[str, int, str, str, str, str]] = []
    repurchases: list[tuple[int, int]] = []  # (response index, ordered_at)
    for i in range(len(resp)):  # in time order: a lifted answer opens no case of its own
        if not 0 <= nps[i] <= 6:
            continue
        opened = int(answered[i])
        cause = "delivery_delay" if late[i] and rng.random() < 0.8 else _root_cause(rng)
        case = case_id(FOLLOW_UP_RULE, str(response_ids[i]))
        contacted, in_time = _work(rng, case, opened, cause, FOLLOW_UP_SLA_HOURS, end, events)
        if not in_time or contacted is None:
            continue
        # the planted recovery: only what happens after the contact can be changed by it
        later = [j for j in answers_of[customers[i]] if contacted < answered[j] <= opened + window]
        if later and 0 <= nps[later[0]] <= 6 and rng.random() < RECOVERY_LIFT:
            nps[later[0]] = int(rng.integers(7, 11))
        bought = orders_of.get(customers[i], np.empty(0, dtype=np.int64))
        in_window = (bought > opened) & (bought <= opened + window)
        if not in_window.any() and rng.random() < REPURCHASE_LIFT:
            at = contacted + int(rng.uniform(2 * DAY, opened + window - contacted))
            if at < end:
                repurchases.append((i, at))

    for ticket, opened in _repeated_tickets(tickets):
        case = case_id(REPEATED_TICKET_RULE, ticket)
        _work(rng, case, opened, _root_cause(rng), REPEATED_TICKET_SLA_HOURS, end, events)

    frame = pd.DataFrame(events, columns=list(EVENT_COLUMNS))
    frame = frame.sort_values(["event_at", "case_id", "status"], kind="stable")
    extra_orders = _repurchase_orders(resp, orders, repurchases)
    return FollowUp(frame.reset_index(drop=True), nps, extra_orders)


def _root_cause(rng: np.random.Generator) -> str:
    weights = np.array(list(ROOT_CAUSES.values()))
    return list(ROOT_CAUSES)[int(rng.choice(len(weights), p=weights / weights.sum()))]


def _work(
    rng: np.random.Generator,
    case: str,
    opened: int,
    cause: str,
    sla_hours: tuple[int, int],
    end: int,
    events: list[tuple[str, int, str, str, str, str]],
) -> tuple[int | None, bool]:
    """The ticketing tool's events of one case opened at ``opened``, appended to ``events``
    (those before ``end``); returns the first contact's time (None: never, or not before
    ``end``) and whether it was within the first-contact SLA."""
    first_contact_sla, close_sla = (h * HOUR for h in sla_hours)
    handed_over = (opened // DAY + 1) * DAY + HAND_OVER_HOUR * HOUR
    if handed_over >= end:
        return None, False  # the tool has not seen it yet
    agent = f"AG{int(rng.integers(1, AGENTS + 1)):03d}"
    shares = np.array(list(FOLLOW_UP_OUTCOMES.values()))
    outcome = list(FOLLOW_UP_OUTCOMES)[int(rng.choice(len(shares), p=shares / shares.sum()))]
    resolution = RESOLUTIONS[int(rng.integers(0, len(RESOLUTIONS)))]
    case_events = [(handed_over, "opened", "", "")]
    contacted = None
    due = opened + first_contact_sla
    if outcome == "in_time" and due - handed_over > HOUR:
        contacted = handed_over + int(rng.uniform(0.5 * HOUR, due - handed_over))
    elif outcome != "never":  # late (also when the SLA ends before the tool could call)
        outcome = "late"
        contacted = opened + first_contact_sla + int(rng.uniform(2 * HOUR, 150 * HOUR))
    if contacted is not None:
        case_events.append((contacted, "contacted", "", ""))
        if rng.random() >= NEVER_CLOSED_SHARE:
            closed = contacted + int(rng.uniform(0.5 * HOUR, 0.6 * close_sla))
            case_events.append((closed, "closed", resolution, cause))
            if rng.random() < REOPEN_SHARE:
                reopened = closed + int(rng.uniform(24 * HOUR, 200 * HOUR))
                closed_again = reopened + int(rng.uniform(2 * HOUR, 48 * HOUR))
                case_events.append((reopened, "reopened", "", ""))
                case_events.append((closed_again, "closed", resolution, cause))
    elif rng.random() < 0.5:
        # never reached: closed as unreachable after a week or so
        unreachable = opened + int(rng.uniform(120 * HOUR, 240 * HOUR))
        case_events.append((unreachable, "closed", "unreachable", ""))
    events.extend((case, at, st, res, rc, agent) for at, st, res, rc in case_events if at < end)
    if contacted is None or contacted >= end:
        return None, False
    return contacted, outcome == "in_time"


def _repeated_tickets(tickets: pd.DataFrame) -> list[tuple[str, int]]:
    """(ticket id, opened_at) of each ticket whose customer opened another in the 30 days
    before it: the repeated_ticket rule, as int_case_inputs__tickets counts them."""
    frame = tickets[["ticket_id", "customer_id", "opened_at"]].sort_values(
        ["customer_id", "opened_at", "ticket_id"], kind="stable"
    )
    out = []
    for _, group in frame.groupby("customer_id", sort=False):
        opened = group["opened_at"].to_numpy()
        earlier = np.searchsorted(opened, opened - 30 * DAY, side="left")
        for k in np.flatnonzero(np.arange(len(opened)) - earlier >= 1):
            out.append((str(group["ticket_id"].iat[k]), int(opened[k])))
    return sorted(out, key=lambda item: (item[1], item[0]))


def _repurchase_orders(
    resp: pd.DataFrame, orders: pd.DataFrame, repurchases: list[tuple[int, int]]
) -> pd.DataFrame:
    """A new order per repurchase, shaped like the customer's answered order (store,
    channel, amount) but collected in store: no delivery of its own."""
    if not repurchases:
        return orders.iloc[0:0].copy()
    by_id = orders.set_index("order_id")
    rows = []
    for i, at in repurchases:
        template = by_id.loc[resp["OrderId"].iat[i]]
        rows.append(
            {
                "cust": template["cust"],
                "customer_id": template["customer_id"],
                "store": template["store"],
                "store_id": template["store_id"],
                "channel": 0,  # in store
                "ordered_at": at,
                "amount": template["amount"],
                "has_delivery": False,
                "promised_at": -1,
                "delivered_at": -1,
                "late": False,
                "late_hours": 0,
            }
        )
    extra = pd.DataFrame(rows, columns=[c for c in orders.columns if c != "order_id"])
    extra = extra.astype({c: orders[c].dtype for c in extra.columns})
    return extra.sort_values("ordered_at", kind="stable").reset_index(drop=True)
