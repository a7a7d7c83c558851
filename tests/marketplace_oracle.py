"""Expected figures of the marketplace example, read from its landing files alone.

Plain Python over the CSV files (``csv``, ``zoneinfo``): nothing from cxkpi, no DuckDB, so
the published tables are checked against an independent reading of the same rules:

* months (and the day a promise is for) are Sao Paulo's: the files hold Sao Paulo wall time;
* an order counts at one seller: the seller of its dearest line (``price``), the lowest
  ``order_item_id`` among equally dear ones (``multi_unit_orders: largest_line``); the
  seller's state is the unit above it; HQ counts every order, also one without lines;
* a review row is one response (a ``review_id`` shared by two orders is two responses),
  counted at its order's seller, in the month the review was written;
* a delivery is on time when it arrived by the end of the promised day, and is counted in
  the month of that day (the demo's on_time_delivery dates a delivery by its promise);
* repeat purchase and churn are by person (``customer_unique_id``), orders in purchase order;
* an order's amount is the sum of its payments.

Figures are keyed by (org level, org unit, month ``YYYY-MM``); HQ's unit is :data:`HQ`.
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cached_property
from pathlib import Path
from zoneinfo import ZoneInfo

SAO_PAULO = ZoneInfo("America/Sao_Paulo")
UTC = ZoneInfo("UTC")
LEVELS = ("hq", "state", "seller")
HQ = "hq"  # the one HQ unit, whatever id the pipeline gives it
FILES = (
    "orders/orders.csv",
    "orders/order_items.csv",
    "orders/order_payments.csv",
    "customers/customers.csv",
    "sellers/sellers.csv",
    "reviews/order_reviews.csv",
)
BUCKETS = ("on_time", "late", "not_delivered")
REPURCHASE_WINDOW = timedelta(days=90)

Key = tuple[str, str, str]  # (org_level, org_unit_id, month)


@dataclass(frozen=True)
class Figure:
    value: float
    n: int


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def local_time(text: str) -> datetime:
    """A Sao Paulo wall-clock timestamp of the files, as an aware datetime."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=SAO_PAULO)


def utc_month(text: str) -> str:
    return local_time(text).astimezone(UTC).strftime("%Y-%m")


class Marketplace:
    """The landing files of one generated marketplace and what follows from them."""

    def __init__(self, landing_dir: Path) -> None:
        self.rows = {name: read_rows(landing_dir / name) for name in FILES}
        self.orders = {o["order_id"]: o for o in self.rows["orders/orders.csv"]}
        self.lines: dict[str, list[dict[str, str]]] = defaultdict(list)
        for line in self.rows["orders/order_items.csv"]:
            self.lines[line["order_id"]].append(line)
        self.payments: dict[str, list[dict[str, str]]] = defaultdict(list)
        for payment in self.rows["orders/order_payments.csv"]:
            self.payments[payment["order_id"]].append(payment)
        self.person = {
            c["customer_id"]: c["customer_unique_id"] for c in self.rows["customers/customers.csv"]
        }
        self.state = {s["seller_id"]: s["seller_state"] for s in self.rows["sellers/sellers.csv"]}
        self.reviews = self.rows["reviews/order_reviews.csv"]

    # -- counts ----------------------------------------------------------------------------

    @property
    def row_counts(self) -> dict[str, int]:
        return {name: len(rows) for name, rows in self.rows.items()}

    # -- attribution -----------------------------------------------------------------------

    def seller_of(self, order_id: str) -> str | None:
        """The seller of the order's dearest line, the lowest order_item_id on a tie."""
        lines = self.lines.get(order_id)
        if not lines:
            return None
        largest = min(lines, key=lambda line: (-float(line["price"]), int(line["order_item_id"])))
        return largest["seller_id"]

    def units_of(self, order_id: str) -> list[tuple[str, str]]:
        seller = self.seller_of(order_id)
        if seller is None:
            return [("hq", HQ)]
        return [("hq", HQ), ("state", self.state[seller]), ("seller", seller)]

    # -- per-order facts -------------------------------------------------------------------

    def outcome(self, order_id: str) -> str:
        """on_time, late (after the end of the promised day) or not_delivered."""
        order = self.orders[order_id]
        if not order["order_delivered_customer_date"]:
            return "not_delivered"
        promised = date.fromisoformat(order["order_estimated_delivery_date"])
        end_of_promised_day = datetime.combine(promised + timedelta(days=1), time(), SAO_PAULO)
        delivered = local_time(order["order_delivered_customer_date"])
        return "on_time" if delivered < end_of_promised_day else "late"

    def amount(self, order_id: str) -> float | None:
        rows = self.payments.get(order_id)
        return sum(float(p["payment_value"]) for p in rows) if rows else None

    @cached_property
    def order_history(self) -> dict[str, tuple[int, datetime | None, bool]]:
        """order_id -> (order number of the person, the person's next purchase, whether
        the 90 days after the order lie inside the data)."""
        by_person: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
        for order in self.orders.values():
            bought = local_time(order["order_purchase_timestamp"]).astimezone(UTC)
            by_person[self.person[order["customer_id"]]].append((bought, order["order_id"]))
        latest = max(bought for orders in by_person.values() for bought, _ in orders)
        history = {}
        for orders in by_person.values():
            orders.sort()
            for number, (bought, order_id) in enumerate(orders, start=1):
                following = orders[number][0] if number < len(orders) else None
                observable = bought + REPURCHASE_WINDOW <= latest
                history[order_id] = (number, following, observable)
        return history

    def repurchased_within_90d(self, order_id: str) -> bool:
        _, following, _ = self.order_history[order_id]
        bought = local_time(self.orders[order_id]["order_purchase_timestamp"])
        return following is not None and following <= bought + REPURCHASE_WINDOW

    # -- KPI figures -----------------------------------------------------------------------

    def figures(self) -> dict[str, dict[Key, Figure]]:
        """kpi_id -> its monthly value and n at every (level, unit) with observations."""
        return {
            "csat": self.csat(),
            "csat_after_late_delivery": self.csat(lambda r: self.outcome(r["order_id"]) == "late"),
            "on_time_delivery": self.on_time_delivery(),
            "repeat_purchase_rate": self.order_share(lambda o: self.order_history[o][0] > 1),
            "churn_rate": self.order_share(
                lambda o: not self.repurchased_within_90d(o), counted=self._observable
            ),
            "retain_active_customers": self.order_share(
                self.repurchased_within_90d, counted=self._observable
            ),
            "average_order_value": self.order_amounts(mean=True),
            "revenue": self.order_amounts(mean=False),
            "order_count": self.order_count(),
        }

    def csat(
        self, counted: Callable[[dict[str, str]], bool] = lambda review: True
    ) -> dict[Key, Figure]:
        """Top-2-box % of the review rows ``counted`` keeps."""
        top, total = Counter[Key](), Counter[Key]()
        for review in self.reviews:
            if not counted(review):
                continue
            month = review["review_creation_date"][:7]
            for level, unit in self.units_of(review["order_id"]):
                total[level, unit, month] += 1
                top[level, unit, month] += int(review["review_score"]) >= 4
        return {key: Figure(100 * top[key] / total[key], total[key]) for key in total}

    def on_time_delivery(self) -> dict[Key, Figure]:
        hits, total = Counter[Key](), Counter[Key]()
        for order_id, order in self.orders.items():
            outcome = self.outcome(order_id)
            if outcome == "not_delivered":
                continue
            month = order["order_estimated_delivery_date"][:7]
            for level, unit in self.units_of(order_id):
                total[level, unit, month] += 1
                hits[level, unit, month] += outcome == "on_time"
        return {key: Figure(100 * hits[key] / total[key], total[key]) for key in total}

    def _observable(self, order_id: str) -> bool:
        return self.order_history[order_id][2]

    def order_share(
        self,
        condition: Callable[[str], bool],
        counted: Callable[[str], bool] = lambda order_id: True,
    ) -> dict[Key, Figure]:
        hits, total = Counter[Key](), Counter[Key]()
        for order_id, month in self._order_months(counted):
            for level, unit in self.units_of(order_id):
                total[level, unit, month] += 1
                hits[level, unit, month] += condition(order_id)
        return {key: Figure(100 * hits[key] / total[key], total[key]) for key in total}

    def order_amounts(self, mean: bool) -> dict[Key, Figure]:
        sums: dict[Key, float] = defaultdict(float)
        total = Counter[Key]()
        for order_id, month in self._order_months(lambda o: self.amount(o) is not None):
            amount = self.amount(order_id)
            assert amount is not None
            for level, unit in self.units_of(order_id):
                total[level, unit, month] += 1
                sums[level, unit, month] += amount
        return {
            key: Figure(sums[key] / total[key] if mean else sums[key], total[key]) for key in total
        }

    def order_count(self) -> dict[Key, Figure]:
        total = Counter[Key]()
        for order_id, month in self._order_months(lambda order_id: True):
            for level, unit in self.units_of(order_id):
                total[level, unit, month] += 1
        return {key: Figure(total[key], total[key]) for key in total}

    def _order_months(self, counted: Callable[[str], bool]) -> Iterable[tuple[str, str]]:
        for order_id, order in self.orders.items():
            if counted(order_id):
                yield order_id, order["order_purchase_timestamp"][:7]

    # -- beyond kpi_values -----------------------------------------------------------------

    def delivery_buckets(self) -> dict[tuple[str, str], tuple[float, int]]:
        """(month, on_time / late / not_delivered) -> (CSAT top-2-box %, reviews) at HQ."""
        top, total = Counter[tuple[str, str]](), Counter[tuple[str, str]]()
        for review in self.reviews:
            key = (review["review_creation_date"][:7], self.outcome(review["order_id"]))
            total[key] += 1
            top[key] += int(review["review_score"]) >= 4
        return {key: (100 * top[key] / total[key], total[key]) for key in total}

    def verbatims(self) -> dict[str, str]:
        """response id (review_id-order_id) -> title and message joined by ' - ', for the
        reviews with any text."""
        out = {}
        for review in self.reviews:
            parts = [review["review_comment_title"], review["review_comment_message"]]
            text = " - ".join(part for part in parts if part)
            if text:
                out[f"{review['review_id']}-{review['order_id']}"] = text
        return out
