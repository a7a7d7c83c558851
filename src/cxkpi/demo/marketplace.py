"""The online-marketplace example company: landing files shaped like the public Brazilian
e-commerce exports (Olist), generated here, never downloaded.

A marketplace sells other companies' goods: an order holds lines from one or more
sellers, customers get a new ``customer_id`` with every order (only
``customer_unique_id`` names the person), payments are split across vouchers and cards,
and the shop asks for a review after delivery. ``generate(out_dir)`` writes what its
systems export, with Olist's file and column names:

=================================  ==========================================================
``orders/orders.csv``              order_id, customer_id, order_status,
                                   order_purchase_timestamp, order_approved_at,
                                   order_delivered_carrier_date,
                                   order_delivered_customer_date,
                                   order_estimated_delivery_date (a date only)
``orders/order_items.csv``         order_id, order_item_id (1..n), product_id, seller_id,
                                   shipping_limit_date, price, freight_value
``orders/order_payments.csv``      order_id, payment_sequential, payment_type,
                                   payment_installments, payment_value
``customers/customers.csv``        customer_id, customer_unique_id, customer_zip_code_prefix,
                                   customer_city, customer_state
``sellers/sellers.csv``            seller_id, seller_zip_code_prefix, seller_city,
                                   seller_state
``reviews/order_reviews.csv``      review_id, order_id, review_score (1-5),
                                   review_comment_title, review_comment_message (Portuguese),
                                   review_creation_date, review_answer_timestamp
=================================  ==========================================================

Timestamps are ``%Y-%m-%d %H:%M:%S`` wall-clock time in Sao Paulo (UTC-3, no summer time
since 2019); the estimated delivery date is ``%Y-%m-%d``, a promise for the whole day. An
empty field is a missing value. Ids are 32 hexadecimal digits, as Olist's. The export is a
snapshot at the end of ``end_date``: nothing happened later, except the promises (estimated
delivery dates) and the sellers' shipping deadlines, which lie ahead.

Sizes at ``scale=1`` (the sellers are fixed, everything else scales): 32 sellers in SP, MG,
PR and RJ; 5,000 orders over ``months`` (6) months, by about 4,400 people; ~5,400 order
lines; ~5,300 payments; ~4,300 review rows. About a second to write.

What the example is for, planted on purpose (``tests/test_marketplace_generator.py``
finds each in the files):

* **Several sellers in one order.** About 6% of orders have 2-4 lines; half of those come
  from different sellers, with the dearest line anywhere in the order, and in a few the two
  sellers' lines cost exactly the same (a tie). Orders the shop could not fulfil
  (``unavailable``, some ``canceled``) have no lines at all.
* **People behind several customer ids.** About 12% of orders are by someone who ordered
  before, under a new ``customer_id``: repeat purchase exists only by person.
* **Promises for a day.** About 6% of delivered orders arrive on the promised day itself, at
  any hour from just after midnight to just before the next (on time to the end of that day,
  late if the date were read as midnight); 3-10% of a seller's deliveries arrive after the
  promised day (30% for the biggest seller in RJ); some orders never arrive (canceled,
  unavailable, lost in transit, or still under way at the snapshot).
* **Months in Sao Paulo, not UTC.** Six purchases per month fall in the last three hours of
  its last day (already the next month in UTC), besides those that do so by chance, and
  reviews are written at any hour, so some of them cross a month boundary too.
* **One review for several orders.** A few people placed two orders minutes apart, shipped
  together; one review (one ``review_id``) answers for both: two rows.
* **Late and undelivered orders get worse reviews** (top-2-box about 83% after an on-time
  delivery, 30% after a late one, 10% when nothing arrived).
* **Review texts as customers write them**: most reviews have no text, some only a title,
  some only a message, some both; messages hold commas, double quotes and line breaks.

The same arguments give byte-identical files. One random stream per part (sellers, orders,
lines, payments, fulfilment, reviews), as in the retailer demo.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Final

import numpy as np

ORDERS_FILE: Final = "orders/orders.csv"
ORDER_ITEMS_FILE: Final = "orders/order_items.csv"
PAYMENTS_FILE: Final = "orders/order_payments.csv"
CUSTOMERS_FILE: Final = "customers/customers.csv"
SELLERS_FILE: Final = "sellers/sellers.csv"
REVIEWS_FILE: Final = "reviews/order_reviews.csv"

TIMESTAMP_FORMAT: Final = "%Y-%m-%d %H:%M:%S"
DATE_FORMAT: Final = "%Y-%m-%d"

ORDERS_AT_SCALE_1: Final = 5_000
# where the sellers are: cities per state, sellers per state
SELLER_CITIES: Final = {
    "SP": ("sao paulo", "campinas", "ribeirao preto", "santo andre", "sorocaba"),
    "MG": ("belo horizonte", "uberlandia", "juiz de fora"),
    "PR": ("curitiba", "londrina", "maringa"),
    "RJ": ("rio de janeiro", "niteroi", "petropolis"),
}
SELLERS_PER_STATE: Final = {"SP": 17, "MG": 6, "PR": 5, "RJ": 4}
# the biggest seller of this state is late far more often than the others
LATE_SELLER_STATE: Final = "RJ"
CUSTOMER_PLACES: Final = (
    ("SP", "sao paulo", 0.22),
    ("SP", "campinas", 0.06),
    ("SP", "guarulhos", 0.04),
    ("RJ", "rio de janeiro", 0.10),
    ("RJ", "niteroi", 0.03),
    ("MG", "belo horizonte", 0.08),
    ("MG", "contagem", 0.03),
    ("PR", "curitiba", 0.06),
    ("RS", "porto alegre", 0.07),
    ("SC", "florianopolis", 0.05),
    ("BA", "salvador", 0.07),
    ("PE", "recife", 0.05),
    ("DF", "brasilia", 0.07),
    ("GO", "goiania", 0.07),
)
# first two digits of the zip codes of a state (Correios ranges)
ZIP_START: Final = {
    "SP": (1, 19),
    "RJ": (20, 28),
    "MG": (30, 39),
    "PR": (80, 87),
    "RS": (90, 99),
    "SC": (88, 89),
    "BA": (40, 48),
    "PE": (50, 56),
    "DF": (70, 73),
    "GO": (74, 76),
}

REPEAT_SHARE: Final = 0.12  # orders by someone who ordered before
LINES_PER_ORDER: Final = ((1, 0.94), (2, 0.04), (3, 0.012), (4, 0.008))
MULTI_SELLER_SHARE: Final = 0.5  # of orders with several lines
PAYMENT_TYPES: Final = (("credit_card", 0.75), ("boleto", 0.19), ("debit_card", 0.02))
VOUCHER_SHARE: Final = 0.04  # orders paid (partly) with vouchers
# what becomes of an order, when nothing else (the snapshot) decides
FATES: Final = (
    ("delivered", 0.958),
    ("canceled", 0.012),
    ("unavailable", 0.008),
    ("lost", 0.012),  # shipped, never arrives
    ("invoiced", 0.005),  # paid, never shipped
    ("processing", 0.005),
)
ON_PROMISED_DAY_SHARE: Final = 0.06
REVIEW_SHARE: Final = {"on_time": 0.97, "late": 0.97, "not_delivered": 0.75}
# P(score 1..5) by how the order went
SCORE_WEIGHTS: Final = {
    "on_time": (0.05, 0.03, 0.08, 0.22, 0.62),
    "late": (0.35, 0.15, 0.17, 0.15, 0.18),
    "not_delivered": (0.70, 0.10, 0.08, 0.05, 0.07),
}
# how much a seller's own service moves the top scores (one of these per seller)
SELLER_SERVICE: Final = (-0.15, -0.05, 0.0, 0.0, 0.05, 0.1)
MONTH_END_EVENING_ORDERS: Final = 6  # per month, purchases in its last three hours
COMBINED_ORDER_PAIRS_AT_SCALE_1: Final = 8  # two orders minutes apart, one review
PRICE_TIES_AT_SCALE_1: Final = 10  # two sellers' lines at exactly the same price

# (share, has title, has message) of review texts
TEXT_SHAPES: Final = ((0.55, False, False), (0.27, False, True), (0.07, True, False))
TITLES: Final = {
    "good": ("Recomendo", "Ótimo produto", "Excelente", "Super recomendo", "Muito bom"),
    "fair": ("Bom", "Razoável", "Ok", "Mais ou menos"),
    "bad": ("Péssimo", "Não recomendo", "Atraso na entrega", "Decepcionado", "Não recebi"),
}
MESSAGES: Final = {
    "good": (
        "Produto chegou antes do prazo, muito bem embalado.",
        "Entrega rápida e produto de ótima qualidade. Recomendo!",
        "Tudo certo, chegou conforme o anunciado.",
        'Amei! O vendedor foi "nota 10".',
        "Muito bom, comprarei novamente.\nObrigada!",
        "Produto excelente, igual à foto, chegou rápido.",
    ),
    "fair": (
        "O produto é bom, mas a embalagem veio amassada.",
        "Cumpriu o que prometeu, nada de especial.",
        "Demorou um pouco, mas chegou tudo certo.",
        'A cor é diferente da foto, "quase" igual.',
    ),
    "late": (
        "Atrasou mais de uma semana, e ninguém deu satisfação.",
        "O produto chegou depois do prazo,\nmas está funcionando.",
        'Entrega atrasada. Fiquei "esperando" dias sem resposta do vendedor.',
        "Chegou com atraso, embalagem rasgada, produto ok.",
    ),
    "not_delivered": (
        "Até agora não recebi o produto.",
        "Comprei, paguei e não recebi. Quero meu dinheiro de volta!",
        "O pedido foi cancelado sem aviso, péssimo.",
        "Não recebi,\nliguei várias vezes e nada.",
    ),
}
# A run of this many digits in an id could read as a card or phone number to the loader's
# personal-data check, which rejects a row with personal data in an id (real Olist ids
# have such runs now and then); ids are drawn again until they have none.
_DIGIT_RUN: Final = re.compile(r"\d{7}")


@dataclass
class Seller:
    seller_id: str
    zip_prefix: str
    city: str
    state: str
    weight: float  # share of the marketplace's orders, relative
    late_share: float
    service: float
    products: list[tuple[str, int]] = field(default_factory=list)  # (product_id, cents)


@dataclass(frozen=True)
class Person:
    person_id: str  # customer_unique_id
    zip_prefix: str
    city: str
    state: str


@dataclass
class Line:
    product_id: str
    seller: Seller
    price_cents: int
    freight_cents: int


@dataclass
class Order:
    order_id: str
    customer_id: str
    person: Person
    purchased_at: datetime
    lines: list[Line] = field(default_factory=list)
    lines_exported: bool = True  # False: the shop lost the lines (unavailable, canceled)
    payments: list[tuple[str, int, int]] = field(default_factory=list)  # type, instal., cents
    status: str = ""
    approved_at: datetime | None = None
    carrier_at: datetime | None = None
    delivered_at: datetime | None = None
    promised_on: date | None = None
    companion_of: Order | None = None  # the earlier order of a pair shipped together
    has_companion: bool = False

    @property
    def cents(self) -> int:
        return sum(line.price_cents + line.freight_cents for line in self.lines)

    @property
    def largest_line(self) -> Line:
        """The dearest line; the first of equally dear ones."""
        return max(self.lines, key=lambda line: line.price_cents)


def generate(
    out_dir: Path,
    scale: float = 1.0,
    seed: int = 42,
    end_date: date = date(2026, 10, 31),
    months: int = 6,
) -> dict[str, int]:
    """Write the marketplace's landing files under out_dir; return rows written per file
    (path relative to out_dir).

    ``scale`` multiplies the number of orders (5,000) and what follows from it; the data
    covers the ``months`` months ending at ``end_date`` (inclusive), in Sao Paulo time.
    Existing files of the same names are overwritten, nothing else is removed.
    """
    if scale <= 0:
        raise ValueError("scale must be positive")
    if months < 1:
        raise ValueError("months must be at least 1")
    snapshot = datetime.combine(end_date + timedelta(days=1), time())
    first_day = _add_months(end_date.replace(day=1), 1 - months)
    streams = np.random.SeedSequence(seed).spawn(6)
    rng_seller, rng_order, rng_line, rng_pay, rng_fulfil, rng_review = (
        np.random.default_rng(s) for s in streams
    )
    sellers = _make_sellers(rng_seller)
    pairs = _n(COMBINED_ORDER_PAIRS_AT_SCALE_1, scale)
    total = _n(ORDERS_AT_SCALE_1, scale)
    orders = _make_orders(rng_order, max(total - pairs, 1), first_day, snapshot)
    _add_companions(rng_order, orders, pairs, snapshot)
    _add_lines(rng_line, orders, sellers, _n(PRICE_TIES_AT_SCALE_1, scale))
    _add_payments(rng_pay, orders)
    for order in orders:
        _fulfil(rng_fulfil, order, snapshot)
    reviews = _make_reviews(rng_review, orders, snapshot)

    out_dir = Path(out_dir)
    return {
        ORDERS_FILE: _write(out_dir / ORDERS_FILE, _ORDER_COLUMNS, map(_order_row, orders)),
        ORDER_ITEMS_FILE: _write(out_dir / ORDER_ITEMS_FILE, _ITEM_COLUMNS, _item_rows(orders)),
        PAYMENTS_FILE: _write(out_dir / PAYMENTS_FILE, _PAYMENT_COLUMNS, _payment_rows(orders)),
        CUSTOMERS_FILE: _write(out_dir / CUSTOMERS_FILE, _CUSTOMER_COLUMNS, _customer_rows(orders)),
        SELLERS_FILE: _write(out_dir / SELLERS_FILE, _SELLER_COLUMNS, map(_seller_row, sellers)),
        REVIEWS_FILE: _write(out_dir / REVIEWS_FILE, _REVIEW_COLUMNS, reviews),
    }


# --- sellers and their products -------------------------------------------------------------


def _make_sellers(rng: np.random.Generator) -> list[Seller]:
    sellers = []
    for state, count in SELLERS_PER_STATE.items():
        cities = SELLER_CITIES[state]
        for i in range(count):
            city = cities[i % len(cities)]
            sellers.append(
                Seller(
                    seller_id=_hex_id(rng),
                    zip_prefix=_zip_prefix(rng, state),
                    city=city,
                    state=state,
                    weight=0.0,
                    late_share=float(rng.uniform(0.03, 0.10)),
                    service=float(rng.choice(SELLER_SERVICE)),
                )
            )
    # a few big sellers and a long tail: the big ones have enough reviews for a monthly CSAT
    ranks = rng.permutation(len(sellers))
    for seller, rank in zip(sellers, ranks, strict=True):
        seller.weight = 1.0 / (1 + int(rank)) ** 0.9
    late = max((s for s in sellers if s.state == LATE_SELLER_STATE), key=lambda s: s.weight)
    late.late_share = 0.30
    for seller in sellers:
        for _ in range(int(rng.integers(4, 16))):
            reais = max(round(float(rng.lognormal(4.2, 0.8))), 4)
            seller.products.append((_hex_id(rng), reais * 100 - 10))  # 49.90, 120.90
    return sellers


# --- orders, people and their customer ids ---------------------------------------------------


def _make_orders(
    rng: np.random.Generator, n: int, first_day: date, snapshot: datetime
) -> list[Order]:
    """Orders in purchase order, each with a customer id of its own; about REPEAT_SHARE
    of them by someone who ordered before."""
    days = (snapshot.date() - first_day).days
    purchases = [
        datetime.combine(first_day + timedelta(days=int(rng.integers(days))), time())
        + _time_of_day(rng)
        for _ in range(n)
    ]
    # purchases in the last three hours of a month: that month in Sao Paulo, the next in UTC
    month_ends = []
    month = _add_months(first_day, 1)
    while month <= snapshot.date():
        month_ends.append(datetime.combine(month, time()))
        month = _add_months(month, 1)
    planted = rng.choice(n, size=min(MONTH_END_EVENING_ORDERS * len(month_ends), n), replace=False)
    for k, i in enumerate(planted):
        month_end = month_ends[k % len(month_ends)]
        purchases[int(i)] = month_end - timedelta(seconds=int(rng.integers(1, 3 * 3600)))
    purchases.sort()

    place_weights = _probabilities([w for _, _, w in CUSTOMER_PLACES])
    people: list[Person] = []
    orders = []
    for purchased_at in purchases:
        if people and rng.random() < REPEAT_SHARE:
            person = people[int(rng.integers(len(people)))]
        else:
            state, city, _ = CUSTOMER_PLACES[int(rng.choice(len(place_weights), p=place_weights))]
            person = Person(_hex_id(rng), _zip_prefix(rng, state), city, state)
            people.append(person)
        orders.append(Order(_hex_id(rng), _hex_id(rng), person, purchased_at))
    return orders


def _add_companions(
    rng: np.random.Generator, orders: list[Order], pairs: int, snapshot: datetime
) -> None:
    """A second order by the same person minutes after the first, shipped with it."""
    # old enough to be delivered and reviewed by the snapshot
    old_enough = [o for o in orders if o.purchased_at < snapshot - timedelta(days=75)]
    size = min(pairs, len(old_enough))
    firsts = sorted(rng.choice(len(old_enough), size=size, replace=False))
    for i in firsts:
        first = old_enough[int(i)]
        first.has_companion = True
        second = Order(
            _hex_id(rng),
            _hex_id(rng),
            first.person,
            first.purchased_at + timedelta(minutes=int(rng.integers(2, 30))),
            companion_of=first,
        )
        orders.insert(orders.index(first) + 1, second)


# --- lines: products, sellers, prices ------------------------------------------------------


def _add_lines(
    rng: np.random.Generator, orders: list[Order], sellers: list[Seller], ties: int
) -> None:
    weights = _probabilities([s.weight for s in sellers])
    counts = [count for count, _ in LINES_PER_ORDER]
    count_p = _probabilities([share for _, share in LINES_PER_ORDER])

    def pick_seller() -> Seller:
        return sellers[int(rng.choice(len(sellers), p=weights))]

    def line_of(seller: Seller, product: tuple[str, int] | None = None) -> Line:
        product_id, cents = product or seller.products[int(rng.integers(len(seller.products)))]
        same_state = 0 if seller.state == "SP" else 800
        freight = int(rng.integers(790, 2990)) + same_state
        return Line(product_id, seller, cents, freight)

    for order in orders:
        count = int(rng.choice(counts, p=count_p))
        seller = pick_seller()
        order.lines.append(line_of(seller))
        multi_seller = rng.random() < MULTI_SELLER_SHARE
        for _ in range(count - 1):
            if multi_seller:
                order.lines.append(line_of(_other_seller(pick_seller, order)))
            elif rng.random() < 0.5:  # another unit of the same product: a line each
                product = (order.lines[-1].product_id, order.lines[-1].price_cents)
                order.lines.append(line_of(seller, product))
            else:
                order.lines.append(line_of(seller))
    # two sellers' lines at exactly the same price: the first line is the order's
    two_sellers = [
        o for o in orders if len(o.lines) == 2 and o.lines[0].seller is not o.lines[1].seller
    ]
    for i in rng.choice(len(two_sellers), size=min(ties, len(two_sellers)), replace=False):
        lines = two_sellers[int(i)].lines
        lines[1].price_cents = lines[0].price_cents


def _other_seller(pick_seller: Callable[[], Seller], order: Order) -> Seller:
    taken = {id(line.seller) for line in order.lines}
    while True:
        seller = pick_seller()
        if id(seller) not in taken:
            return seller


# --- payments -------------------------------------------------------------------------------


def _add_payments(rng: np.random.Generator, orders: list[Order]) -> None:
    """Rows that add up to the order's lines plus freight, to the cent: vouchers first
    where some pay part of it, then one card or boleto payment for the rest."""
    names = [name for name, _ in PAYMENT_TYPES]
    type_p = _probabilities([weight for _, weight in PAYMENT_TYPES])
    for order in orders:
        left = order.cents
        if rng.random() < VOUCHER_SHARE:
            for _ in range(int(rng.integers(1, 4))):
                voucher = min(left, int(rng.integers(5, 60)) * 100)
                order.payments.append(("voucher", 1, voucher))
                left -= voucher
                if left == 0:
                    break
        if left > 0 or not order.payments:
            kind = str(rng.choice(names, p=type_p))
            instalments = int(rng.integers(1, 11)) if kind == "credit_card" else 1
            order.payments.append((kind, instalments, left))


# --- fulfilment: approval, shipping, delivery, promise ---------------------------------------


def _fulfil(rng: np.random.Generator, order: Order, snapshot: datetime) -> None:
    """The order's life up to the snapshot: nothing after it is known."""
    if order.companion_of is not None:
        _ship_with(order, order.companion_of)
        return
    purchased = order.purchased_at
    order.promised_on = purchased.date() + timedelta(days=int(rng.integers(12, 36)))
    pays_by_boleto = any(kind == "boleto" for kind, _, _ in order.payments)
    approval_delay = (
        timedelta(hours=float(rng.uniform(20, 72)))
        if pays_by_boleto
        else timedelta(minutes=float(rng.uniform(2, 40)))
    )
    order.approved_at = _whole_second(purchased + approval_delay)
    fate = str(rng.choice([name for name, _ in FATES], p=_probabilities(w for _, w in FATES)))
    if order.has_companion:
        fate = "delivered"  # the pair's shared review needs both delivered
    if fate == "delivered":
        order.delivered_at = _delivery_time(rng, order)
        room = max(order.delivered_at - order.approved_at - timedelta(days=1), timedelta())
        order.carrier_at = _whole_second(
            order.approved_at + timedelta(hours=4) + room * float(rng.uniform(0.1, 0.6))
        )
    elif fate == "lost":
        order.carrier_at = _whole_second(
            order.approved_at + timedelta(days=float(rng.uniform(1, 4)))
        )
    elif fate == "canceled":
        if rng.random() < 0.3:
            order.approved_at = None
        order.lines_exported = rng.random() < 0.6
    elif fate == "unavailable":
        order.lines_exported = False
    order.status = {"lost": "shipped"}.get(fate, fate)
    _cut_at_snapshot(order, snapshot)


def _delivery_time(rng: np.random.Generator, order: Order) -> datetime:
    """Early, on the promised day at any hour, or late (by the seller's late share)."""
    assert order.promised_on is not None and order.approved_at is not None
    seller = order.largest_line.seller
    draw = rng.random()
    if draw < seller.late_share:
        day = order.promised_on + timedelta(days=int(rng.integers(1, 21)))
        return datetime.combine(day, time(8)) + timedelta(seconds=int(rng.integers(14 * 3600)))
    if draw < seller.late_share + ON_PROMISED_DAY_SHARE:
        # any second of the day but midnight itself: 00:00:00 of the next day would be the
        # end of the promised day in one reading and the start of the next in another
        seconds = int(rng.integers(1, 24 * 3600))
        return datetime.combine(order.promised_on, time()) + timedelta(seconds=seconds)
    earliest = order.approved_at.date() + timedelta(days=2)
    days = max((order.promised_on - earliest).days, 1)
    day = earliest + timedelta(days=int(rng.integers(days)))
    return datetime.combine(day, time(8)) + timedelta(seconds=int(rng.integers(14 * 3600)))


def _ship_with(order: Order, first: Order) -> None:
    """Shipped and delivered together with the person's earlier order."""
    order.status = first.status
    order.promised_on = first.promised_on
    order.approved_at = first.approved_at and max(
        first.approved_at, order.purchased_at + timedelta(minutes=5)
    )
    order.carrier_at = first.carrier_at
    order.delivered_at = first.delivered_at


def _cut_at_snapshot(order: Order, snapshot: datetime) -> None:
    """What had not happened by the snapshot is empty, and the status says where it is."""
    if order.delivered_at is not None and order.delivered_at >= snapshot:
        order.delivered_at = None
        order.status = "shipped"
    if order.carrier_at is not None and order.carrier_at >= snapshot:
        order.carrier_at = None
        order.status = "invoiced"
    if order.approved_at is not None and order.approved_at >= snapshot:
        order.approved_at = None
        order.status = "created"


# --- reviews --------------------------------------------------------------------------------


def _make_reviews(
    rng: np.random.Generator, orders: list[Order], snapshot: datetime
) -> list[list[str]]:
    """One review per order that got one (a pair shipped together shares one), its rows in
    the order the reviews were written."""
    rows: list[tuple[datetime, list[str]]] = []
    companions = {id(o.companion_of): o for o in orders if o.companion_of is not None}
    for order in orders:
        if order.companion_of is not None:
            continue  # reviewed with its first order
        outcome = _outcome(order)
        pair = companions.get(id(order))
        if pair is None and rng.random() >= REVIEW_SHARE[outcome]:
            continue
        written = _review_written(rng, order) + _time_of_day(rng)
        answered = _whole_second(written + timedelta(hours=float(rng.uniform(0.5, 120))))
        if answered >= snapshot:
            continue
        score = _score(rng, outcome, order)
        title, message = _texts(rng, score, outcome)
        review_id = _hex_id(rng)
        for reviewed in (order, pair) if pair is not None else (order,):
            rows.append(
                (
                    written,
                    [
                        review_id,
                        reviewed.order_id,
                        str(score),
                        title,
                        message,
                        written.strftime(TIMESTAMP_FORMAT),
                        answered.strftime(TIMESTAMP_FORMAT),
                    ],
                )
            )
    rows.sort(key=lambda row: row[0])  # stable: a pair's rows stay together
    return [row for _, row in rows]


def _outcome(order: Order) -> str:
    if order.delivered_at is None:
        return "not_delivered"
    assert order.promised_on is not None
    return "on_time" if order.delivered_at.date() <= order.promised_on else "late"


def _review_written(rng: np.random.Generator, order: Order) -> datetime:
    """The day the review was written (its time of day is drawn apart): after delivery;
    for a cancelled order soon after the purchase; otherwise once the promise has passed."""
    if order.delivered_at is not None:
        day = order.delivered_at.date() + timedelta(days=int(rng.integers(1, 4)))
    elif order.status == "canceled":
        day = order.purchased_at.date() + timedelta(days=int(rng.integers(2, 12)))
    else:
        assert order.promised_on is not None
        day = order.promised_on + timedelta(days=int(rng.integers(1, 6)))
    return datetime.combine(day, time())


def _score(rng: np.random.Generator, outcome: str, order: Order) -> int:
    weights = np.array(SCORE_WEIGHTS[outcome])
    if order.lines:
        shift = order.largest_line.seller.service
        weights[3:] *= 1 + shift
        weights[:3] *= 1 - shift
    return 1 + int(rng.choice(5, p=_probabilities(weights)))


def _texts(rng: np.random.Generator, score: int, outcome: str) -> tuple[str, str]:
    draw = rng.random()
    has_title, has_message = True, True  # the rest of TEXT_SHAPES: both
    for share, title_shape, message_shape in TEXT_SHAPES:
        if draw < share:
            has_title, has_message = title_shape, message_shape
            break
        draw -= share
    mood = "good" if score >= 4 else "fair" if score == 3 else "bad"
    story = mood if mood != "bad" else outcome if outcome != "on_time" else "fair"
    title = str(rng.choice(TITLES[mood])) if has_title else ""
    message = str(rng.choice(MESSAGES[story])) if has_message else ""
    return title, message


# --- files ----------------------------------------------------------------------------------

_ORDER_COLUMNS: Final = (
    "order_id",
    "customer_id",
    "order_status",
    "order_purchase_timestamp",
    "order_approved_at",
    "order_delivered_carrier_date",
    "order_delivered_customer_date",
    "order_estimated_delivery_date",
)
_ITEM_COLUMNS: Final = (
    "order_id",
    "order_item_id",
    "product_id",
    "seller_id",
    "shipping_limit_date",
    "price",
    "freight_value",
)
_PAYMENT_COLUMNS: Final = (
    "order_id",
    "payment_sequential",
    "payment_type",
    "payment_installments",
    "payment_value",
)
_CUSTOMER_COLUMNS: Final = (
    "customer_id",
    "customer_unique_id",
    "customer_zip_code_prefix",
    "customer_city",
    "customer_state",
)
_SELLER_COLUMNS: Final = ("seller_id", "seller_zip_code_prefix", "seller_city", "seller_state")
_REVIEW_COLUMNS: Final = (
    "review_id",
    "order_id",
    "review_score",
    "review_comment_title",
    "review_comment_message",
    "review_creation_date",
    "review_answer_timestamp",
)


def _order_row(order: Order) -> list[str]:
    assert order.promised_on is not None
    return [
        order.order_id,
        order.customer_id,
        order.status,
        _text(order.purchased_at),
        _text(order.approved_at),
        _text(order.carrier_at),
        _text(order.delivered_at),
        order.promised_on.strftime(DATE_FORMAT),
    ]


def _item_rows(orders: list[Order]) -> Iterator[list[str]]:
    for order in orders:
        if not order.lines_exported:
            continue
        # the seller must hand the order to the carrier by then
        deadline = _whole_second((order.approved_at or order.purchased_at) + timedelta(days=6))
        for number, line in enumerate(order.lines, start=1):
            yield [
                order.order_id,
                str(number),
                line.product_id,
                line.seller.seller_id,
                _text(deadline),
                _money(line.price_cents),
                _money(line.freight_cents),
            ]


def _payment_rows(orders: list[Order]) -> Iterator[list[str]]:
    for order in orders:
        for sequential, (kind, instalments, cents) in enumerate(order.payments, start=1):
            yield [order.order_id, str(sequential), kind, str(instalments), _money(cents)]


def _customer_rows(orders: list[Order]) -> Iterator[list[str]]:
    for order in orders:
        person = order.person
        yield [order.customer_id, person.person_id, person.zip_prefix, person.city, person.state]


def _seller_row(seller: Seller) -> list[str]:
    return [seller.seller_id, seller.zip_prefix, seller.city, seller.state]


def _write(path: Path, columns: tuple[str, ...], rows: Iterable[list[str]]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow(row)
            count += 1
    return count


# --- small helpers ------------------------------------------------------------------------


def _hex_id(rng: np.random.Generator) -> str:
    while True:
        text = rng.bytes(16).hex()
        if not _DIGIT_RUN.search(text):
            return text


def _zip_prefix(rng: np.random.Generator, state: str) -> str:
    low, high = ZIP_START[state]
    return f"{int(rng.integers(low, high + 1)):02d}{int(rng.integers(1000)):03d}"


def _time_of_day(rng: np.random.Generator) -> timedelta:
    """A time of day, busier in the evening (never exactly midnight)."""
    hour = int(rng.choice(24, p=_HOUR_WEIGHTS))
    return timedelta(hours=hour, seconds=int(rng.integers(1, 3600)))


def _probabilities(weights: Iterable[float]) -> np.ndarray:
    values = np.array(list(weights), dtype=float)
    return values / values.sum()


_BEFORE_NOON: Final = (1, 0.5, 0.3, 0.2, 0.2, 0.3, 0.8, 1.5, 2.5, 3.5, 4.0, 4.2)
_AFTER_NOON: Final = (4.0, 4.0, 4.2, 4.2, 4.1, 4.0, 3.8, 3.9, 4.2, 4.3, 3.8, 2.5)
_HOUR_WEIGHTS: Final = _probabilities(_BEFORE_NOON + _AFTER_NOON)


def _whole_second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def _text(moment: datetime | None) -> str:
    return "" if moment is None else moment.strftime(TIMESTAMP_FORMAT)


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _n(base: int, scale: float) -> int:
    return max(1, round(base * scale))
