"""The order's rules without any server: the status machine, money, validation, numbers."""

import itertools
import random
import re
from decimal import Decimal

import pytest
from pydantic import TypeAdapter, ValidationError

from actors.common.money import MAX_ORDER_TOTAL, Money
from actors.orders.domain import (
    MAX_ITEMS,
    MAX_QUANTITY,
    TRANSITIONS,
    IllegalTransition,
    Item,
    NewOrder,
    Status,
    allowed_next,
    check_transition,
    is_order_number,
    order_number,
    order_total,
)

# The status machine as DESIGN.md and API.md draw it, written out independently of the code.
LEGAL = {
    ("new", "paid"), ("new", "cancelled"),
    ("paid", "picking"), ("paid", "cancelled"),
    ("picking", "packed"), ("picking", "cancelled"),
    ("packed", "shipped"),
    ("shipped", "delivered"),
}
STATUSES = ["new", "paid", "picking", "packed", "shipped", "delivered", "cancelled"]
ALL_PAIRS = list(itertools.product(STATUSES, repeat=2))
ILLEGAL = [p for p in ALL_PAIRS if p not in LEGAL]


# --- status machine ------------------------------------------------------------------------


def test_statuses_are_exactly_the_documented_ones():
    assert [s.value for s in Status] == STATUSES
    assert set(TRANSITIONS) == set(Status)


def test_the_transition_table_is_the_design():
    assert {(c.value, t.value) for c, targets in TRANSITIONS.items() for t in targets} == LEGAL


@pytest.mark.parametrize(("current", "target"), sorted(LEGAL))
def test_legal_transition_passes(current, target):
    assert check_transition(Status(current), Status(target)) is None
    assert Status(target) in allowed_next(Status(current))


@pytest.mark.parametrize(("current", "target"), ILLEGAL)
def test_illegal_transition_is_refused_with_the_allowed_next_states(current, target):
    with pytest.raises(IllegalTransition) as refused:
        check_transition(Status(current), Status(target))
    problem = refused.value
    expected_allowed = sorted(t for c, t in LEGAL if c == current)
    assert sorted(problem.extra["allowed"]) == expected_allowed
    assert problem.extra["current_status"] == current
    body = problem.body()
    assert body["type"] == "urn:orderflow:problem:illegal-transition"
    assert sorted(body["allowed"]) == expected_allowed
    assert current in body["detail"] and target in body["detail"]
    # plain strings, so the problem body is JSON as it is
    assert all(type(s) is str for s in body["allowed"])


def test_every_pair_is_covered_once():
    assert len(LEGAL) + len(ILLEGAL) == len(Status) ** 2 == 49


@pytest.mark.parametrize("status", ["delivered", "cancelled"])
def test_terminal_statuses_allow_nothing(status):
    assert allowed_next(Status(status)) == ()
    for target in Status:
        with pytest.raises(IllegalTransition) as refused:
            check_transition(Status(status), target)
        assert refused.value.extra["allowed"] == []


def test_cancel_is_possible_exactly_from_new_paid_and_picking():
    assert {s.value for s in Status if Status.CANCELLED in allowed_next(s)} == {"new", "paid", "picking"}


def test_the_happy_path_reaches_delivered_one_step_at_a_time():
    path = [Status.NEW, Status.PAID, Status.PICKING, Status.PACKED, Status.SHIPPED, Status.DELIVERED]
    for current, target in itertools.pairwise(path):
        check_transition(current, target)
    # skipping a step is refused
    for current, target in zip(path, path[2:]):
        with pytest.raises(IllegalTransition):
            check_transition(current, target)


# --- money ---------------------------------------------------------------------------------


def item(**changes) -> dict:
    return {"sku": "MUG-01", "name": "Mug", "quantity": 1, "unit_price": "1.00"} | changes


def order(**changes) -> dict:
    return {"customer": {"email": "ada@example.com", "name": "Ada"}, "items": [item()], "currency": "EUR"} | changes


def test_ten_cents_times_three_is_thirty_cents():
    assert 0.10 * 3 != 0.30  # what floats would give
    total = order_total([Item(**item(unit_price="0.10", quantity=3))])
    assert isinstance(total, Decimal)
    assert total == Decimal("0.30") and str(total) == "0.30"


def test_float_input_becomes_the_exact_decimal_it_reads_as():
    assert Item(**item(unit_price=0.1)).unit_price == Decimal("0.10")
    assert str(Item(**item(unit_price=12.5)).unit_price) == "12.50"
    assert str(Item(**item(unit_price="5")).unit_price) == "5.00"


def test_many_small_lines_add_up_exactly():
    many = [Item(**item(unit_price="0.01"))] * MAX_ITEMS
    assert str(order_total(many)) == "5.00"
    tens = [Item(**item(unit_price="0.10", quantity=3))] * MAX_ITEMS
    assert str(order_total(tens)) == "150.00"


def test_random_lines_match_integer_cent_arithmetic():
    rng = random.Random(20260101)
    for _ in range(50):
        lines = [(rng.randint(0, 99_999), rng.randint(1, MAX_QUANTITY)) for _ in range(rng.randint(1, 60))]
        items = [Item(**item(unit_price=f"{cents // 100}.{cents % 100:02d}", quantity=q)) for cents, q in lines]
        cents_total = sum(cents * q for cents, q in lines)
        assert order_total(items) == Decimal(cents_total) / 100
        assert str(order_total(items)) == f"{cents_total // 100}.{cents_total % 100:02d}"


def test_totals_always_carry_two_decimals():
    assert str(order_total([])) == "0.00"
    assert str(order_total([Item(**item(unit_price="0"))])) == "0.00"
    assert str(NewOrder(**order(items=[item(unit_price="249.9", quantity=2)])).total) == "499.80"


def test_an_order_may_come_to_the_limit_exactly():
    # 500 lines x 10,000 units, the last line's price making up the rest to the cent.
    unit = Decimal("1999.99")
    lines = [item(sku=f"S{n}", unit_price=str(unit), quantity=MAX_QUANTITY) for n in range(MAX_ITEMS - 1)]
    rest = MAX_ORDER_TOTAL - unit * MAX_QUANTITY * (MAX_ITEMS - 1)
    lines.append(item(sku="LAST", unit_price=str(rest), quantity=1))
    biggest = NewOrder(**order(items=lines))
    assert biggest.total == MAX_ORDER_TOTAL == Decimal("9999999999.99")
    assert str(biggest.total) == "9999999999.99"


@pytest.mark.parametrize("lines", [
    [item(unit_price="9999999999.99"), item(sku="CENT", unit_price="0.01")],  # one cent over
    [item(unit_price="5000000000.00", quantity=2)],
    [item(unit_price="9999999999.99", quantity=MAX_QUANTITY)] * MAX_ITEMS,  # ~5 * 10^16 ISK, once accepted
])
def test_an_order_over_the_limit_is_refused_naming_it(lines):
    with pytest.raises(ValidationError) as refused:
        NewOrder.model_validate(order(items=lines))
    message = str(refused.value)
    assert "over the limit of 9999999999.99 per order" in message


def test_new_order_total_sums_every_line():
    new = NewOrder(**order(items=[
        item(sku="A", unit_price="19.99", quantity=3),
        item(sku="B", unit_price="0.05", quantity=7),
        item(sku="C", unit_price="100", quantity=1),
    ]))
    assert str(new.total) == "160.32"


# --- validation ----------------------------------------------------------------------------


def refused_at(data: dict) -> set[tuple]:
    """Where validation refused `data` (the error locations)."""
    with pytest.raises(ValidationError) as refused:
        NewOrder.model_validate(data)
    return {tuple(e["loc"]) for e in refused.value.errors()}


@pytest.mark.parametrize(
    ("changes", "location"),
    [
        # at least one item, at most MAX_ITEMS
        ({"items": []}, ("items",)),
        ({"items": [item()] * (MAX_ITEMS + 1)}, ("items",)),
        # quantity 1..10000, a strict int
        ({"items": [item(quantity=0)]}, ("items", 0, "quantity")),
        ({"items": [item(quantity=-1)]}, ("items", 0, "quantity")),
        ({"items": [item(quantity=MAX_QUANTITY + 1)]}, ("items", 0, "quantity")),
        ({"items": [item(quantity="2")]}, ("items", 0, "quantity")),
        ({"items": [item(quantity=2.0)]}, ("items", 0, "quantity")),
        ({"items": [item(quantity=1.5)]}, ("items", 0, "quantity")),
        ({"items": [item(quantity=True)]}, ("items", 0, "quantity")),
        ({"items": [item(quantity=None)]}, ("items", 0, "quantity")),
        # unit price >= 0, at most 2 decimals, finite
        ({"items": [item(unit_price="-0.01")]}, ("items", 0, "unit_price")),
        ({"items": [item(unit_price="1.001")]}, ("items", 0, "unit_price")),
        ({"items": [item(unit_price=0.125)]}, ("items", 0, "unit_price")),
        ({"items": [item(unit_price="NaN")]}, ("items", 0, "unit_price")),
        ({"items": [item(unit_price="Infinity")]}, ("items", 0, "unit_price")),
        ({"items": [item(unit_price="ten")]}, ("items", 0, "unit_price")),
        ({"items": [item(unit_price="123456789012.34")]}, ("items", 0, "unit_price")),
        # sku pattern
        ({"items": [item(sku="")]}, ("items", 0, "sku")),
        ({"items": [item(sku="has space")]}, ("items", 0, "sku")),
        ({"items": [item(sku="-LEADING-DASH")]}, ("items", 0, "sku")),
        ({"items": [item(sku=".hidden")]}, ("items", 0, "sku")),
        ({"items": [item(sku="A" * 65)]}, ("items", 0, "sku")),
        ({"items": [item(sku="MUG-01\n")]}, ("items", 0, "sku")),
        ({"items": [item(sku="KAFFEÉ")]}, ("items", 0, "sku")),
        ({"items": [item(sku="a;drop")]}, ("items", 0, "sku")),
        ({"items": [item(quantity="1e3")]}, ("items", 0, "quantity")),
        ({"items": [item(quantity="\u0661\u0662")]}, ("items", 0, "quantity")),
        ({"items": [item(quantity=1e3)]}, ("items", 0, "quantity")),
        # prices: a JSON number, or a decimal string in ASCII digits and nothing else
        ({"items": [item(unit_price="\u0661\u0662")]}, ("items", 0, "unit_price")),  # Arabic-Indic 12
        ({"items": [item(unit_price="\uff11.00")]}, ("items", 0, "unit_price")),  # fullwidth 1
        ({"items": [item(unit_price="1_000")]}, ("items", 0, "unit_price")),
        ({"items": [item(unit_price="1e3")]}, ("items", 0, "unit_price")),
        ({"items": [item(unit_price="1E3")]}, ("items", 0, "unit_price")),
        ({"items": [item(unit_price=" 1.00 ")]}, ("items", 0, "unit_price")),
        ({"items": [item(unit_price="1.00\n")]}, ("items", 0, "unit_price")),
        ({"items": [item(unit_price="+1.00")]}, ("items", 0, "unit_price")),
        ({"items": [item(unit_price="1,00")]}, ("items", 0, "unit_price")),
        ({"items": [item(unit_price=".50")]}, ("items", 0, "unit_price")),
        ({"items": [item(unit_price="5.")]}, ("items", 0, "unit_price")),
        ({"items": [item(unit_price="")]}, ("items", 0, "unit_price")),
        # item names
        ({"items": [item(name="   ")]}, ("items", 0, "name")),
        ({"items": [item(name="x" * 201)]}, ("items", 0, "name")),
        # no NUL (PostgreSQL text cannot hold it) nor other control characters in names
        ({"items": [item(name="Mug\x00")]}, ("items", 0, "name")),
        ({"items": [item(name="Mu\x1b[31mg")]}, ("items", 0, "name")),
        ({"items": [item(name="Mug\nFree")]}, ("items", 0, "name")),
        ({"items": [item(name="Mu\x7fg")]}, ("items", 0, "name")),
        ({"items": [item(name="Mu\x85g")]}, ("items", 0, "name")),
        ({"items": [item(name="Mug\u2028Free")]}, ("items", 0, "name")),
        ({"items": [item(name="Mug\ud800")]}, ("items", 0, "name")),
        ({"customer": {"email": "ada@example.com", "name": "Ada\x00"}}, ("customer", "name")),
        ({"customer": {"email": "ada@example.com", "name": "\x00"}}, ("customer", "name")),
        ({"customer": {"email": "ada@example.com", "name": "A\tda"}}, ("customer", "name")),
        ({"customer": {"email": "ada\x00@example.com", "name": "Ada"}}, ("customer", "email")),
        ({"items": [item(sku="MUG\x00")]}, ("items", 0, "sku")),
        # email
        ({"customer": {"email": "nope", "name": "Ada"}}, ("customer", "email")),
        ({"customer": {"email": "ada@", "name": "Ada"}}, ("customer", "email")),
        ({"customer": {"email": "@example.com", "name": "Ada"}}, ("customer", "email")),
        ({"customer": {"email": "ada@@example.com", "name": "Ada"}}, ("customer", "email")),
        ({"customer": {"email": "ada@example", "name": "Ada"}}, ("customer", "email")),
        ({"customer": {"email": "ada lovelace@example.com", "name": "Ada"}}, ("customer", "email")),
        ({"customer": {"email": "ada@example.com", "name": ""}}, ("customer", "name")),
        ({"customer": {"name": "Ada"}}, ("customer", "email")),
        # ISO 4217 currency code
        ({"currency": "EURO"}, ("currency",)),
        ({"currency": "eur"}, ("currency",)),
        ({"currency": "EU"}, ("currency",)),
        ({"currency": " EUR"}, ("currency",)),
        ({"currency": "ABC"}, ("currency",)),
        ({"currency": "XAU"}, ("currency",)),  # gold: a metal, not a currency in circulation
        ({"currency": 978}, ("currency",)),
        # unknown fields, at every level
        ({"extra": 1}, ("extra",)),
        ({"total": "0.01"}, ("total",)),
        ({"customer": {"email": "ada@example.com", "name": "Ada", "vip": True}}, ("customer", "vip")),
        ({"items": [item(discount="1.00")]}, ("items", 0, "discount")),
    ],
)
def test_invalid_order_is_refused_for_the_right_reason(changes, location):
    assert location in refused_at(order(**changes))


@pytest.mark.parametrize("missing", ["customer", "items", "currency"])
def test_required_fields(missing):
    data = order()
    del data[missing]
    assert (missing,) in refused_at(data)


@pytest.mark.parametrize("field", ["sku", "name", "quantity", "unit_price"])
def test_required_item_fields(field):
    line = item()
    del line[field]
    assert ("items", 0, field) in refused_at(order(items=[line]))


def test_limits_are_inclusive():
    new = NewOrder(**order(items=[item(quantity=1), item(quantity=MAX_QUANTITY, unit_price="0")]))
    assert [i.quantity for i in new.items] == [1, MAX_QUANTITY]
    assert new.total == Decimal("1.00")
    assert len(NewOrder(**order(items=[item()] * MAX_ITEMS)).items) == MAX_ITEMS


@pytest.mark.parametrize(
    "sku", ["A", "mug-01", "MUG.01", "a/b_c-d.e", "0", "A" * 64, "9" + "z" * 63]
)
def test_valid_skus(sku):
    assert NewOrder(**order(items=[item(sku=sku)])).items[0].sku == sku


@pytest.mark.parametrize(("price", "kept"), [("0", "0.00"), ("0.5", "0.50"), ("1.10", "1.10"), ("9999999999.99", "9999999999.99")])
def test_valid_prices(price, kept):
    assert str(NewOrder(**order(items=[item(unit_price=price)])).items[0].unit_price) == kept


@pytest.mark.parametrize("currency", ["EUR", "PLN", "USD", "GBP", "JPY", "CHF"])
def test_valid_currencies(currency):
    assert NewOrder(**order(currency=currency)).currency == currency


@pytest.mark.parametrize("email", ["ada@example.com", "ada.lovelace+shop@mail.example.co.uk", "x@sub.example.org"])
def test_valid_emails(email):
    assert str(NewOrder(**order(customer={"email": email, "name": "Ada"})).customer.email) == email


@pytest.mark.parametrize("name", ["Zoë Łukasiewicz", "株式会社", "Ada 👩\u200d💻", "O'Brien & Sons, Ltd."])
def test_names_in_any_script_are_kept(name):
    new = NewOrder(**order(customer={"email": "ada@example.com", "name": name}, items=[item(name=name)]))
    assert (new.customer.name, new.items[0].name) == (name, name)


def test_names_are_trimmed():
    new = NewOrder(**order(customer={"email": "ada@example.com", "name": "  Ada  "}, items=[item(name=" Mug ")]))
    assert (new.customer.name, new.items[0].name) == ("Ada", "Mug")


@pytest.mark.parametrize("price", ["10000000000.00", "99999999999", "12345678901.5"])
def test_unit_price_that_the_database_cannot_store_is_refused(price):
    assert ("items", 0, "unit_price") in refused_at(order(items=[item(unit_price=price)]))


# --- order numbers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("year", "sequence", "number"),
    [
        (2026, 42, "ORD-2026-000042"),
        (2026, 1, "ORD-2026-000001"),
        (2030, 999_999, "ORD-2030-999999"),
        (2027, 1_234_567, "ORD-2027-1234567"),  # grows past six digits, never wraps
    ],
)
def test_order_numbers(year, sequence, number):
    assert order_number(year, sequence) == number
    assert re.fullmatch(r"ORD-\d{4}-\d{6,}", order_number(year, sequence))


@pytest.mark.parametrize("text", ["ORD-2026-000001\x00", "\x00", "ORD-2026-000001\n", "ORD-2026-00001",
                                  "ORD-\u0662\u0660\u0662\u0666-000001", "ord-2026-000001", "ORD-2026-" + "1" * 13])
def test_what_is_not_an_order_number(text):
    assert not is_order_number(text)
    assert is_order_number(order_number(2026, 1)) and is_order_number(order_number(2026, 10**12 - 1))


def test_order_numbers_are_distinct_per_sequence():
    assert len({order_number(2026, n) for n in range(1, 5000)}) == 4999


def test_money_is_documented_in_json_schema_terms():
    """OpenAPI shows the bounds as minimum/maximum and the string form the check takes (not
    pydantic's own `ge`/`le`, which no client or schemathesis reads)."""
    schema = TypeAdapter(Money).json_schema()
    assert schema == {"anyOf": [{"type": "number", "minimum": 0, "maximum": 9999999999.99},
                                {"type": "string", "pattern": r"^[0-9]{1,10}(\.[0-9]{1,2})?$", "examples": ["249.90"]}]}
    assert re.fullmatch(schema["anyOf"][1]["pattern"], "9999999999.99")
