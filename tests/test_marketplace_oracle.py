"""The marketplace oracle's rules on four hand-made orders whose figures are worked out by
hand here: the dearest line and its tie, a promise kept at 23:30 of the promised day, a
purchase in the last hours of a Sao Paulo month, one review for two orders, a person behind
three customer ids, an order without lines (counted at HQ only)."""

from __future__ import annotations

import csv

import pytest
from marketplace_oracle import HQ, Figure, Marketplace, utc_month

ORDER_COLUMNS = (
    "order_id",
    "customer_id",
    "order_status",
    "order_purchase_timestamp",
    "order_approved_at",
    "order_delivered_carrier_date",
    "order_delivered_customer_date",
    "order_estimated_delivery_date",
)
REVIEW_COLUMNS = (
    "review_id",
    "order_id",
    "review_score",
    "review_comment_title",
    "review_comment_message",
    "review_creation_date",
    "review_answer_timestamp",
)
TEXT = 'Chegou,\n"rápido"'
FILES: dict[str, list[tuple[str, ...]]] = {
    "sellers/sellers.csv": [
        ("seller_id", "seller_zip_code_prefix", "seller_city", "seller_state"),
        ("s1", "01001", "sao paulo", "SP"),
        ("s2", "20001", "rio de janeiro", "RJ"),
        ("s3", "13001", "campinas", "SP"),
    ],
    "customers/customers.csv": [
        (
            "customer_id",
            "customer_unique_id",
            "customer_zip_code_prefix",
            "customer_city",
            "customer_state",
        ),
        ("c1", "p1", "01310", "sao paulo", "SP"),
        ("c2", "p1", "01310", "sao paulo", "SP"),
        ("c3", "p2", "30110", "belo horizonte", "MG"),
        ("c4", "p1", "01310", "sao paulo", "SP"),
    ],
    "orders/orders.csv": [
        ORDER_COLUMNS,
        (
            "o1",
            "c1",
            "delivered",
            "2026-05-31 22:30:00",
            "2026-05-31 22:40:00",
            "2026-06-02 10:00:00",
            "2026-06-10 23:30:00",
            "2026-06-10",
        ),
        (
            "o2",
            "c2",
            "delivered",
            "2026-06-15 10:00:00",
            "2026-06-15 10:05:00",
            "2026-06-17 10:00:00",
            "2026-06-30 00:30:00",
            "2026-06-29",
        ),
        (
            "o3",
            "c3",
            "unavailable",
            "2026-06-20 12:00:00",
            "2026-06-20 12:10:00",
            "",
            "",
            "2026-07-05",
        ),
        (
            "o4",
            "c4",
            "processing",
            "2026-09-01 09:00:00",
            "2026-09-01 09:10:00",
            "",
            "",
            "2026-09-20",
        ),
    ],
    "orders/order_items.csv": [
        (
            "order_id",
            "order_item_id",
            "product_id",
            "seller_id",
            "shipping_limit_date",
            "price",
            "freight_value",
        ),
        ("o1", "1", "x1", "s1", "2026-06-06 22:40:00", "50.00", "10.00"),
        ("o1", "2", "x2", "s2", "2026-06-06 22:40:00", "80.00", "5.00"),
        ("o2", "1", "x3", "s1", "2026-06-21 10:05:00", "30.00", "0.00"),
        ("o2", "2", "x4", "s3", "2026-06-21 10:05:00", "30.00", "0.00"),
        ("o4", "1", "x5", "s3", "2026-09-07 09:10:00", "10.00", "0.00"),
    ],
    "orders/order_payments.csv": [
        ("order_id", "payment_sequential", "payment_type", "payment_installments", "payment_value"),
        ("o1", "1", "voucher", "1", "100.00"),
        ("o1", "2", "credit_card", "3", "45.00"),
        ("o2", "1", "boleto", "1", "60.00"),
        ("o3", "1", "credit_card", "1", "20.00"),
        ("o4", "1", "credit_card", "1", "10.00"),
    ],
    "reviews/order_reviews.csv": [
        REVIEW_COLUMNS,
        ("r1", "o1", "5", "Ótimo", TEXT, "2026-06-30 21:30:00", "2026-07-01 08:00:00"),
        ("r1", "o2", "5", "Ótimo", TEXT, "2026-06-30 21:30:00", "2026-07-01 08:00:00"),
        ("r2", "o3", "1", "", "", "2026-07-06 10:00:00", "2026-07-07 10:00:00"),
    ],
}


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Marketplace:
    landing = tmp_path_factory.mktemp("handmade_marketplace")
    for name, rows in FILES.items():
        (landing / name).parent.mkdir(parents=True, exist_ok=True)
        with (landing / name).open("w", encoding="utf-8", newline="") as handle:
            csv.writer(handle, lineterminator="\n").writerows(rows)
    return Marketplace(landing)


def test_dearest_line_decides_and_a_tie_goes_to_the_first_line(market: Marketplace) -> None:
    assert market.seller_of("o1") == "s2"  # 80.00 on line 2 beats 50.00 on line 1
    assert market.seller_of("o2") == "s1"  # 30.00 twice: line 1
    assert market.seller_of("o3") is None
    assert market.units_of("o2") == [("hq", HQ), ("state", "SP"), ("seller", "s1")]
    assert market.units_of("o3") == [("hq", HQ)]


def test_a_promise_lasts_to_the_end_of_its_day_in_sao_paulo(market: Marketplace) -> None:
    assert market.outcome("o1") == "on_time"  # 23:30 on the promised day
    assert market.outcome("o2") == "late"  # 00:30 the day after
    assert market.outcome("o3") == "not_delivered"


def test_months_are_sao_paulo_months(market: Marketplace) -> None:
    assert utc_month("2026-05-31 22:30:00") == "2026-06"
    figures = market.figures()
    assert figures["order_count"][("hq", HQ, "2026-05")] == Figure(1, 1)


def test_review_figures(market: Marketplace) -> None:
    figures = market.figures()
    assert figures["csat"] == {
        ("hq", HQ, "2026-06"): Figure(100, 2),  # one review, two orders: two responses
        ("state", "RJ", "2026-06"): Figure(100, 1),
        ("seller", "s2", "2026-06"): Figure(100, 1),
        ("state", "SP", "2026-06"): Figure(100, 1),
        ("seller", "s1", "2026-06"): Figure(100, 1),
        ("hq", HQ, "2026-07"): Figure(0, 1),
    }
    assert figures["csat_after_late_delivery"] == {
        ("hq", HQ, "2026-06"): Figure(100, 1),
        ("state", "SP", "2026-06"): Figure(100, 1),
        ("seller", "s1", "2026-06"): Figure(100, 1),
    }
    assert market.delivery_buckets() == {
        ("2026-06", "on_time"): (100, 1),
        ("2026-06", "late"): (100, 1),
        ("2026-07", "not_delivered"): (0, 1),
    }
    assert market.verbatims() == {"r1-o1": f"Ótimo - {TEXT}", "r1-o2": f"Ótimo - {TEXT}"}


def test_order_figures(market: Marketplace) -> None:
    figures = market.figures()
    assert figures["on_time_delivery"] == {
        ("hq", HQ, "2026-06"): Figure(50, 2),
        ("state", "RJ", "2026-06"): Figure(100, 1),
        ("seller", "s2", "2026-06"): Figure(100, 1),
        ("state", "SP", "2026-06"): Figure(0, 1),
        ("seller", "s1", "2026-06"): Figure(0, 1),
    }
    repeat = figures["repeat_purchase_rate"]
    assert repeat[("hq", HQ, "2026-05")] == Figure(0, 1)
    assert repeat[("hq", HQ, "2026-06")] == Figure(50, 2)  # o2 (p1's second), o3 (p2's first)
    assert repeat[("seller", "s3", "2026-09")] == Figure(100, 1)  # p1's third
    aov = figures["average_order_value"]
    assert aov[("hq", HQ, "2026-05")] == Figure(145, 1)  # two payments
    assert aov[("hq", HQ, "2026-06")] == Figure(40, 2)  # 60 and 20 (o3 has no lines)
    assert aov[("seller", "s1", "2026-06")] == Figure(60, 1)
    assert figures["revenue"][("hq", HQ, "2026-06")] == Figure(80, 2)
    # only o1's 90 days end before the last purchase (1 September); p1 came back in June
    assert figures["churn_rate"] == {
        ("hq", HQ, "2026-05"): Figure(0, 1),
        ("state", "RJ", "2026-05"): Figure(0, 1),
        ("seller", "s2", "2026-05"): Figure(0, 1),
    }
    assert figures["retain_active_customers"][("hq", HQ, "2026-05")] == Figure(100, 1)
