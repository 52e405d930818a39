"""Every statistic on small hand-made frames with known answers (no server)."""

from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pytest

from actors.analytics.domain import (
    INT64_MAX,
    MINOR_PER_MAJOR,
    STATUSES,
    Granularity,
    StatsQuery,
    average_order_value,
    compute_stats,
    count_by_status,
    earning_lines,
    empty_items,
    empty_orders,
    format_money,
    in_range,
    periods_between,
    product_totals,
    revenue_by_currency,
    sums_by,
    top_products,
    top_products_by_revenue,
    top_statuses,
    trend,
)
from actors.common.money import MAX_ORDER_TOTAL


def at(day: int, hour: int = 12, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def frames(orders: list[tuple], items: list[tuple]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """orders: (status, currency, total_minor, created_at); items: (order, sku, name, qty, unit_minor)."""
    currencies = sorted({o[1] for o in orders})
    skus = sorted({i[1] for i in items})
    names = sorted({i[2] for i in items})
    order_frame = pd.DataFrame({
        "status": pd.Categorical([o[0] for o in orders], categories=STATUSES),
        "currency": pd.Categorical([o[1] for o in orders], categories=currencies),
        "total_minor": np.array([o[2] for o in orders], dtype=np.int64),
        "created_at": pd.to_datetime([o[3] for o in orders], utc=True).as_unit("us"),
    })
    item_frame = pd.DataFrame({
        "order": np.array([i[0] for i in items], dtype=np.int32),
        "sku": pd.Categorical([i[1] for i in items], categories=skus),
        "name": pd.Categorical([i[2] for i in items], categories=names),
        "quantity": np.array([i[3] for i in items], dtype=np.int32),
        "line_total_minor": np.array([i[3] * i[4] for i in items], dtype=np.int64),
    })
    return order_frame, item_frame


# Five orders in March 2026: two EUR, one PLN, one cancelled EUR, one in April.
ORDERS = [
    ("delivered", "EUR", 2500, at(2)),     # 0: 2 x MUG @ 12.50
    ("paid", "EUR", 1001, at(3)),          # 1: 1 x PEN @ 10.01
    ("new", "PLN", 9999, at(9)),           # 2: 1 x MUG @ 99.99 (a PLN price)
    ("cancelled", "EUR", 100000, at(10)),  # 3: 10 x LAMP @ 100.00, cancelled
    ("shipped", "EUR", 700, at(1, month=4)),  # 4: outside March
]
ITEMS = [
    (0, "MUG", "Mug", 2, 1250),
    (1, "PEN", "Pen", 1, 1001),
    (2, "MUG", "Mug (new)", 1, 9999),
    (3, "LAMP", "Lamp", 10, 10000),
    (4, "PEN", "Pen", 7, 100),
]
MARCH = StatsQuery.for_dates(date(2026, 3, 1), date(2026, 3, 31))


@pytest.fixture
def march():
    orders, items = frames(ORDERS, ITEMS)
    return orders, items, in_range(orders, MARCH.start, MARCH.end)


def test_range_is_start_inclusive_end_exclusive():
    orders, _ = frames([("new", "EUR", 1, datetime(2026, 3, 1, tzinfo=UTC)),
                        ("new", "EUR", 1, datetime(2026, 3, 31, 23, 59, 59, 999999, tzinfo=UTC)),
                        ("new", "EUR", 1, datetime(2026, 4, 1, tzinfo=UTC))], [])
    assert list(in_range(orders, MARCH.start, MARCH.end).index) == [0, 1]


def test_count_and_statuses(march):
    _, _, selected = march
    assert len(selected) == 4
    by_status = count_by_status(selected)
    assert by_status == {"new": 1, "paid": 1, "picking": 0, "packed": 0, "shipped": 0, "delivered": 1, "cancelled": 1}
    assert list(by_status) == list(STATUSES)
    # Ties are broken in life-cycle order; statuses that do not occur are left out.
    assert top_statuses(by_status) == [("new", 1), ("paid", 1), ("delivered", 1), ("cancelled", 1)]
    assert top_statuses({"new": 1, "paid": 3, "shipped": 3, "cancelled": 0}) == [("paid", 3), ("shipped", 3), ("new", 1)]


def test_revenue_is_per_currency_and_excludes_cancelled(march):
    _, _, selected = march
    assert revenue_by_currency(selected) == {"EUR": 3501, "PLN": 9999}


def test_average_order_value_per_currency_rounds_half_up(march):
    _, _, selected = march
    # EUR: (25.00 + 10.01) / 2 = 17.505 -> 17.51; PLN: one order.
    assert average_order_value(selected) == {"EUR": 1751, "PLN": 9999}


def test_currencies_are_never_mixed():
    orders, items = frames([("paid", "EUR", 1000, at(2)), ("paid", "JPY", 100000, at(2))],
                           [(0, "A", "A", 1, 1000), (1, "A", "A", 1, 100000)])
    stats = compute_stats(orders, items, MARCH)
    assert stats.revenue_minor == {"EUR": 1000, "JPY": 100000}
    assert stats.average_order_value_minor == {"EUR": 1000, "JPY": 100000}
    assert stats.top_products[0].revenue_minor == {"EUR": 1000, "JPY": 100000}
    assert stats.trend[1].revenue_minor == {"EUR": 1000, "JPY": 100000}


def test_only_cancelled_orders_earn_nothing():
    orders, items = frames([("cancelled", "EUR", 5000, at(2))], [(0, "A", "A", 1, 5000)])
    stats = compute_stats(orders, items, MARCH)
    assert stats.orders == 1
    assert stats.by_status["cancelled"] == 1
    assert stats.revenue_minor == {} and stats.average_order_value_minor == {}
    assert stats.top_products == [] and stats.top_products_by_revenue == {}
    assert stats.trend[1].orders == 1 and stats.trend[1].revenue_minor == {}


def test_one_order():
    orders, items = frames([("paid", "EUR", 4990, at(15))], [(0, "TEE", "T-shirt", 1, 4990)])
    stats = compute_stats(orders, items, StatsQuery.for_dates(date(2026, 3, 15), date(2026, 3, 15)))
    assert stats.orders == 1
    assert stats.revenue_minor == {"EUR": 4990} and stats.average_order_value_minor == {"EUR": 4990}
    assert [(t.period, t.orders, t.revenue_minor) for t in stats.trend] == [(date(2026, 3, 15), 1, {"EUR": 4990})]
    assert [(p.sku, p.quantity) for p in stats.top_products] == [("TEE", 1)]
    assert stats.top_statuses == [("paid", 1)]


@pytest.mark.parametrize("make", [lambda: frames(ORDERS, ITEMS), lambda: (empty_orders(), empty_items())])
def test_empty_range(make):
    orders, items = make()
    query = StatsQuery.for_dates(date(2025, 1, 1), date(2025, 1, 3))
    stats = compute_stats(orders, items, query)
    assert stats.orders == 0
    assert stats.revenue_minor == {} and stats.average_order_value_minor == {}
    assert set(stats.by_status.values()) == {0}
    assert stats.top_statuses == [] and stats.top_products == [] and stats.top_products_by_revenue == {}
    assert [(t.period, t.orders, t.revenue_minor) for t in stats.trend] == [
        (date(2025, 1, 1), 0, {}), (date(2025, 1, 2), 0, {}), (date(2025, 1, 3), 0, {})]


def test_daily_trend_has_every_day_and_counts_cancelled_without_revenue(march):
    _, _, selected = march
    points = trend(selected, MARCH.start, MARCH.end, Granularity.DAY)
    assert len(points) == 31 and points[0].period == date(2026, 3, 1) and points[-1].period == date(2026, 3, 31)
    by_day = {p.period.day: (p.orders, p.revenue_minor) for p in points if p.orders}
    assert by_day == {2: (1, {"EUR": 2500}), 3: (1, {"EUR": 1001}), 9: (1, {"PLN": 9999}), 10: (1, {})}


def test_weekly_trend_starts_on_monday(march):
    _, _, selected = march
    points = trend(selected, MARCH.start, MARCH.end, Granularity.WEEK)
    # 2026-03-01 is a Sunday: its week began Monday 2026-02-23.
    assert [p.period for p in points] == [date(2026, 2, 23), date(2026, 3, 2), date(2026, 3, 9), date(2026, 3, 16),
                                          date(2026, 3, 23), date(2026, 3, 30)]
    assert [p.orders for p in points] == [0, 2, 2, 0, 0, 0]
    assert points[1].revenue_minor == {"EUR": 3501}
    assert points[2].revenue_minor == {"PLN": 9999}


def test_monthly_trend_across_a_year_end():
    orders, items = frames([("paid", "EUR", 100, datetime(2025, 12, 31, 23, 59, tzinfo=UTC)),
                            ("paid", "EUR", 200, datetime(2026, 1, 1, 0, 0, tzinfo=UTC))], [])
    query = StatsQuery.for_dates(date(2025, 12, 15), date(2026, 2, 2), Granularity.MONTH)
    points = trend(in_range(orders, query.start, query.end), query.start, query.end, query.granularity)
    assert [(p.period, p.orders, p.revenue_minor) for p in points] == [
        (date(2025, 12, 1), 1, {"EUR": 100}), (date(2026, 1, 1), 1, {"EUR": 200}), (date(2026, 2, 1), 0, {})]


def test_periods_between_is_empty_for_an_empty_range():
    assert periods_between(at(2), at(2), Granularity.DAY) == []


def test_top_products_by_quantity_exclude_cancelled_and_other_ranges(march):
    orders, items, selected = march
    totals = product_totals(earning_lines(selected, items, len(orders)))
    ranked = top_products(totals)
    # LAMP (cancelled order) and the April PEN order do not count.
    assert [(p.sku, p.quantity, p.revenue_minor) for p in ranked] == [
        ("MUG", 3, {"EUR": 2500, "PLN": 9999}), ("PEN", 1, {"EUR": 1001})]
    # The name as the latest order line spells it.
    assert ranked[0].name == "Mug (new)"
    assert [p.sku for p in top_products(totals, limit=1)] == ["MUG"]


def test_top_products_by_revenue_per_currency_ties_by_sku():
    orders, items = frames([("paid", "EUR", 3000, at(2)), ("paid", "PLN", 500, at(2))],
                           [(0, "B", "Bee", 1, 1000), (0, "A", "Ay", 2, 500), (0, "C", "Sea", 1, 1000),
                            (1, "A", "Ay", 1, 500)])
    totals = product_totals(earning_lines(orders, items, len(orders)))
    ranked = top_products_by_revenue(totals, limit=2)
    assert {c: [(p.sku, p.revenue_minor) for p in ps] for c, ps in ranked.items()} == {
        "EUR": [("A", {"EUR": 1000}), ("B", {"EUR": 1000})], "PLN": [("A", {"PLN": 500})]}
    assert [(p.sku, p.quantity) for p in top_products(totals)] == [("A", 3), ("B", 1), ("C", 1)]


def test_large_sums_stay_exact():
    # 3 x 9,999,999,999.99: beyond what a float64 holds to the cent.
    biggest = 999_999_999_999
    orders, items = frames([("paid", "EUR", biggest, at(2))] * 3, [(n, "X", "X", 1, biggest) for n in range(3)])
    stats = compute_stats(orders, items, MARCH)
    assert stats.revenue_minor == {"EUR": 3 * biggest}
    assert format_money(stats.revenue_minor["EUR"]) == "29999999999.97"
    assert stats.top_products[0].revenue_minor == {"EUR": 3 * biggest}


def test_full_stats_of_march(march):
    orders, items, _ = march
    stats = compute_stats(orders, items, MARCH)
    assert stats.orders == 4
    assert stats.revenue_minor == {"EUR": 3501, "PLN": 9999}
    assert stats.top_products_by_revenue["PLN"][0].sku == "MUG"


@pytest.mark.parametrize(("minor", "text"), [(0, "0.00"), (5, "0.05"), (24990, "249.90"), (-150, "-1.50")])
def test_format_money(minor, text):
    assert format_money(minor) == text


# --- sums past int64 -----------------------------------------------------------------------


def test_sums_by_is_exact_whatever_the_values():
    rng = np.random.default_rng(20261129)
    for size in (1, 2, 5):
        values = rng.integers(np.iinfo(np.int64).min, np.iinfo(np.int64).max, 1000, dtype=np.int64, endpoint=True)
        slots = rng.integers(0, size, 1000)
        sums = sums_by(slots, values, size)
        assert [int(v) for v in sums] == [sum(int(v) for v in values[slots == k]) for k in range(size)]
    assert list(sums_by(np.array([0, 0, 1]), np.array([INT64_MAX, INT64_MAX, 1]), 2)) == [2 * INT64_MAX, 1]
    assert sums_by(np.array([], dtype=np.int64), np.array([], dtype=np.int64), 3).tolist() == [0, 0, 0]


def test_the_two_isk_orders_that_wrapped_to_a_negative_revenue_are_summed_exactly():
    """Issue 10: two guest orders of 500 lines x 10,000 x 9,999,999,999.99 ISK showed a
    revenue of -84,467,440,737,195,516.16. The Orders API now refuses such an order; orders
    taken before are still summed exactly."""
    line = 10_000 * 999_999_999_999
    total = 500 * line
    orders, items = frames([("paid", "ISK", total, at(2)), ("new", "ISK", total, at(3))],
                           [(n, "X", "X", 10_000, 999_999_999_999) for n in (0, 1) for _ in range(500)])
    stats = compute_stats(orders, items, MARCH)
    assert format_money(stats.revenue_minor["ISK"]) == "99999999999900000.00"
    assert format_money(stats.average_order_value_minor["ISK"]) == "49999999999950000.00"
    assert [format_money(t.revenue_minor["ISK"]) for t in stats.trend if t.revenue_minor] == [
        "49999999999950000.00", "49999999999950000.00"]
    [product] = stats.top_products
    assert product.quantity == 2 * 500 * 10_000 and product.revenue_minor == {"ISK": 2 * total}


def test_stats_of_more_max_orders_than_int64_sums_hold_are_exact():
    most = int(MAX_ORDER_TOTAL * MINOR_PER_MAJOR)
    count = INT64_MAX // most + 1_000  # 9,223,372 orders at the limit fit in int64; these do not
    orders = pd.DataFrame({
        "status": pd.Categorical.from_codes(np.full(count, STATUSES.index("paid"), dtype=np.int8), categories=STATUSES),
        "currency": pd.Categorical.from_codes(np.zeros(count, dtype=np.int8), categories=["ISK"]),
        "total_minor": np.full(count, most, dtype=np.int64),
        "created_at": pd.to_datetime(np.full(count, 1_772_452_800_000_000), unit="us", utc=True),  # 2026-03-02
    })
    stats = compute_stats(orders, empty_items(), MARCH)
    assert stats.revenue_minor == {"ISK": count * most} and count * most > INT64_MAX
    assert stats.average_order_value_minor == {"ISK": most}
    assert sum(t.revenue_minor.get("ISK", 0) for t in stats.trend) == count * most
