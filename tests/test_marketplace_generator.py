"""The marketplace generator (cxkpi.demo.marketplace): deterministic, Olist-shaped, and
holding every case the example is for, found here in the written files (through the
oracle's plain reading of them, not the generator's internals)."""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

import pytest
from marketplace_oracle import FILES, Marketplace, local_time, utc_month

from cxkpi.cli import main
from cxkpi.demo import COMPANIES, marketplace
from cxkpi.pii import detector

END = datetime(2026, 11, 1)  # the default end_date 2026-10-31 is the last day
HEX_ID = re.compile(r"[0-9a-f]{32}")


def checksums(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    landing = tmp_path_factory.mktemp("marketplace") / "landing"
    return landing, marketplace.generate(landing)


@pytest.fixture(scope="module")
def market(generated) -> Marketplace:
    landing, _ = generated
    return Marketplace(landing)


# --- determinism, files and sizes --------------------------------------------------------


def test_same_seed_gives_byte_identical_files(generated, tmp_path: Path) -> None:
    landing, counts = generated
    assert marketplace.generate(tmp_path / "again") == counts
    assert checksums(tmp_path / "again") == checksums(landing)


def test_another_seed_gives_other_data(generated, tmp_path: Path) -> None:
    landing, _ = generated
    marketplace.generate(tmp_path / "other", seed=7)
    first, other = checksums(landing), checksums(tmp_path / "other")
    assert [name for name in first if first[name] == other[name]] == []


def test_writes_the_olist_files_with_the_counts_it_returns(generated, market) -> None:
    landing, counts = generated
    assert sorted(checksums(landing)) == sorted(FILES)
    assert counts == market.row_counts
    assert counts["orders/orders.csv"] == counts["customers/customers.csv"] == 5_000
    assert counts["sellers/sellers.csv"] == 32
    assert 5_000 < counts["orders/order_items.csv"] < 6_000
    assert 4_000 < counts["reviews/order_reviews.csv"] < 5_000
    states = Counter(row["seller_state"] for row in market.rows["sellers/sellers.csv"])
    assert set(states) == {"SP", "MG", "PR", "RJ"}


def test_scale_multiplies_the_orders(tmp_path: Path) -> None:
    counts = marketplace.generate(tmp_path, scale=0.2)
    assert counts["orders/orders.csv"] == 1_000
    assert counts["sellers/sellers.csv"] == 32


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="scale"):
        marketplace.generate(tmp_path, scale=0)
    with pytest.raises(ValueError, match="months"):
        marketplace.generate(tmp_path, months=0)


def test_the_cli_writes_the_marketplace(tmp_path: Path, capsys) -> None:
    out = tmp_path / "landing"
    args = ["demo-data", "--company", "marketplace", "--scale", "0.05", "--out", str(out)]
    assert main(args) == 0
    assert sorted(checksums(out)) == sorted(FILES)
    assert "marketplace demo data in" in capsys.readouterr().out
    assert main(["demo-data", "--company", "bakery", "--out", str(out)]) == 1
    assert "no demo company 'bakery'; known: retailer, marketplace" in capsys.readouterr().err
    assert set(COMPANIES) == {"retailer", "marketplace"}


# --- shapes of the export ------------------------------------------------------------------


def test_timestamps_are_sao_paulo_text_and_the_promise_a_date(market: Marketplace) -> None:
    stamp = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
    columns = {
        "orders/orders.csv": (
            "order_purchase_timestamp",
            "order_approved_at",
            "order_delivered_carrier_date",
            "order_delivered_customer_date",
        ),
        "orders/order_items.csv": ("shipping_limit_date",),
        "reviews/order_reviews.csv": ("review_creation_date", "review_answer_timestamp"),
    }
    for name, names in columns.items():
        for row in market.rows[name]:
            for column in names:
                assert row[column] == "" or stamp.fullmatch(row[column]), (name, column, row)
    promises = [o["order_estimated_delivery_date"] for o in market.orders.values()]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d", promise) for promise in promises)


def test_nothing_happens_after_the_snapshot_but_promises_and_deadlines(market) -> None:
    moments = [
        row[column]
        for row in market.rows["orders/orders.csv"]
        for column in (
            "order_purchase_timestamp",
            "order_approved_at",
            "order_delivered_carrier_date",
            "order_delivered_customer_date",
        )
    ] + [
        row[column]
        for row in market.reviews
        for column in ("review_creation_date", "review_answer_timestamp")
    ]
    assert max(m for m in moments if m) < END.strftime("%Y-%m-%d %H:%M:%S")
    months = Counter(o["order_purchase_timestamp"][:7] for o in market.orders.values())
    assert sorted(months) == [f"2026-{m:02d}" for m in range(5, 11)]
    assert max(o["order_estimated_delivery_date"] for o in market.orders.values()) > "2026-11"


def test_each_step_follows_the_one_before(market: Marketplace) -> None:
    steps = (
        "order_purchase_timestamp",
        "order_approved_at",
        "order_delivered_carrier_date",
        "order_delivered_customer_date",
    )
    for order in market.orders.values():
        done = [order[step] for step in steps if order[step]]
        assert done == sorted(done), order
        assert order["order_purchase_timestamp"]
        if order["order_delivered_customer_date"]:
            assert order["order_status"] == "delivered", order
    for review in market.reviews:
        order = market.orders[review["order_id"]]
        assert review["review_creation_date"] > order["order_purchase_timestamp"]
        assert review["review_answer_timestamp"] > review["review_creation_date"]
        if order["order_delivered_customer_date"]:
            assert review["review_creation_date"] > order["order_delivered_customer_date"]


def test_ids_are_olist_like_and_hold_nothing_the_loader_reads_as_personal_data(market) -> None:
    """32 hexadecimal digits; a run of digits that reads as a card or phone number would
    make the loader reject the row (personal data in an id)."""
    ids = {
        row[column]
        for name, rows in market.rows.items()
        for row in rows
        for column in row
        if column.endswith("_id") and column != "order_item_id"
    }
    assert len(ids) > 15_000
    assert all(HEX_ID.fullmatch(value) for value in ids)
    found = detector(["BR"])
    assert [value for value in ids if found.kinds(value)] == []


def test_one_customer_id_per_order_and_people_behind_several(market: Marketplace) -> None:
    customers = market.rows["customers/customers.csv"]
    assert Counter(o["customer_id"] for o in market.orders.values()).most_common(1)[0][1] == 1
    assert sorted(c["customer_id"] for c in customers) == sorted(
        o["customer_id"] for o in market.orders.values()
    )
    ids_per_person = Counter(c["customer_unique_id"] for c in customers)
    people = len(ids_per_person)
    assert 4_000 < people < 4_800
    assert max(ids_per_person.values()) >= 3
    # one place per person, whichever customer id
    places = {(c["customer_unique_id"], c["customer_zip_code_prefix"]) for c in customers}
    assert len(places) == people


# --- the cases the example is for ----------------------------------------------------------


def test_orders_with_several_sellers_the_dearest_line_anywhere_and_ties(market) -> None:
    multi_seller = {
        order_id: lines
        for order_id, lines in market.lines.items()
        if len({line["seller_id"] for line in lines}) > 1
    }
    assert len(multi_seller) >= 100
    dearest_later = [
        order_id
        for order_id, lines in multi_seller.items()
        if market.seller_of(order_id) != lines[0]["seller_id"]
    ]
    assert len(dearest_later) >= 30
    ties = [
        order_id
        for order_id, lines in multi_seller.items()
        if len(lines) == 2 and lines[0]["price"] == lines[1]["price"]
    ]
    assert len(ties) >= marketplace.PRICE_TIES_AT_SCALE_1
    for order_id in ties:
        assert market.seller_of(order_id) == market.lines[order_id][0]["seller_id"]
    # lines are numbered 1..n in each order
    for lines in market.lines.values():
        assert [int(line["order_item_id"]) for line in lines] == list(range(1, len(lines) + 1))


def test_unfulfilled_orders_have_no_lines_and_count_at_hq_only(market) -> None:
    without_lines = [o for o in market.orders.values() if o["order_id"] not in market.lines]
    statuses = Counter(o["order_status"] for o in without_lines)
    assert statuses["unavailable"] >= 20 and statuses["canceled"] >= 5
    assert set(statuses) == {"unavailable", "canceled"}


def test_payments_add_up_to_lines_and_freight(market: Marketplace) -> None:
    rows_per_order = Counter(p["order_id"] for p in market.rows["orders/order_payments.csv"])
    assert set(rows_per_order) == set(market.orders)
    assert sum(count > 1 for count in rows_per_order.values()) >= 100
    for order_id, payments in market.payments.items():
        assert [int(p["payment_sequential"]) for p in payments] == list(range(1, len(payments) + 1))
        if order_id in market.lines:
            lines = market.lines[order_id]
            cents = sum(
                round(100 * float(x["price"]) + 100 * float(x["freight_value"])) for x in lines
            )
            assert sum(round(100 * float(p["payment_value"])) for p in payments) == cents
    assert all(float(p["payment_value"]) > 0 for p in market.rows["orders/order_payments.csv"])
    types = Counter(p["payment_type"] for p in market.rows["orders/order_payments.csv"])
    assert set(types) == {"credit_card", "boleto", "voucher", "debit_card"}


def test_promises_kept_on_the_day_itself_at_any_hour(market: Marketplace) -> None:
    """Delivered on the promised date: on time to the end of that day; read as midnight of
    the promised date, all of them would be late, and read in UTC those after 21:00 too."""
    on_the_day = [
        o
        for o in market.orders.values()
        if o["order_delivered_customer_date"][:10] == o["order_estimated_delivery_date"]
    ]
    assert len(on_the_day) >= 150
    hours = Counter(int(o["order_delivered_customer_date"][11:13]) for o in on_the_day)
    assert hours[0] > 0 and hours[23] > 0 and len(hours) == 24
    assert all(market.outcome(o["order_id"]) == "on_time" for o in on_the_day)
    outcomes = Counter(market.outcome(order_id) for order_id in market.orders)
    assert 0.05 < outcomes["late"] / (outcomes["late"] + outcomes["on_time"]) < 0.15
    assert outcomes["not_delivered"] >= 300


def test_never_delivered_orders(market: Marketplace) -> None:
    undelivered = Counter(
        o["order_status"] for o in market.orders.values() if not o["order_delivered_customer_date"]
    )
    assert {"canceled", "unavailable", "shipped", "invoiced", "processing"} <= set(undelivered)
    assert "delivered" not in undelivered
    reviewed = {r["order_id"] for r in market.reviews}
    reviewed_undelivered = [o for o in reviewed if market.outcome(o) == "not_delivered"]
    assert len(reviewed_undelivered) >= 50


def test_sao_paulo_and_utc_months_differ_for_some_purchases_and_reviews(market) -> None:
    def crossing(texts: list[str]) -> list[str]:
        return [t for t in texts if t[:7] != utc_month(t)]

    purchases = crossing([o["order_purchase_timestamp"] for o in market.orders.values()])
    assert len(purchases) >= 6 * 6  # the planted ones, six a month
    assert all(local_time(t).hour >= 21 for t in purchases)
    assert {t[:7] for t in purchases} == {f"2026-{m:02d}" for m in range(5, 11)}
    reviews = crossing([r["review_creation_date"] for r in market.reviews])
    assert len(reviews) >= 5


def test_one_review_for_two_orders_of_one_person(market: Marketplace) -> None:
    rows = defaultdict(list)
    for review in market.reviews:
        rows[review["review_id"]].append(review)
    shared = {review_id: r for review_id, r in rows.items() if len(r) > 1}
    assert len(shared) == marketplace.COMBINED_ORDER_PAIRS_AT_SCALE_1
    person = {
        c["customer_id"]: c["customer_unique_id"] for c in market.rows["customers/customers.csv"]
    }
    for pair in shared.values():
        assert len(pair) == 2 and pair[0]["order_id"] != pair[1]["order_id"]
        customers = [market.orders[r["order_id"]]["customer_id"] for r in pair]
        assert customers[0] != customers[1]
        assert person[customers[0]] == person[customers[1]]
        assert pair[0]["review_score"] == pair[1]["review_score"]
    responses = Counter((r["review_id"], r["order_id"]) for r in market.reviews)
    assert max(responses.values()) == 1


def test_review_texts_as_customers_write_them(market: Marketplace) -> None:
    shapes = Counter(
        (bool(r["review_comment_title"]), bool(r["review_comment_message"])) for r in market.reviews
    )
    assert shapes[False, False] > shapes[False, True] > shapes[True, True] > 0
    assert shapes[True, False] > 0
    messages = [r["review_comment_message"] for r in market.reviews]
    assert any("\n" in m for m in messages)
    assert any('"' in m for m in messages)
    assert any("," in m for m in messages)
    assert any("ã" in m or "é" in m for m in messages)


def test_late_and_undelivered_orders_get_worse_reviews(market: Marketplace) -> None:
    buckets: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for (_, outcome), (top_box, n) in market.delivery_buckets().items():
        buckets[outcome][0] += round(top_box * n / 100)
        buckets[outcome][1] += n
    share = {outcome: top / n for outcome, (top, n) in buckets.items()}
    assert share["on_time"] > share["late"] + 0.3 > share["not_delivered"] + 0.3


def test_some_sellers_have_a_reliable_monthly_csat(market: Marketplace) -> None:
    """min_sample 30: enough reviews for some sellers in some months, not for all."""
    seller_months = [
        f.n for (level, _, _), f in market.figures()["csat"].items() if level == "seller"
    ]
    reliable = sum(n >= 30 for n in seller_months)
    assert 10 <= reliable < len(seller_months) / 2
