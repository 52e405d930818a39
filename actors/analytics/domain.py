"""The statistics of orders: pure functions over two DataFrames, no I/O.

`orders`: one row per order, columns `status` (category), `currency` (category),
`total_minor` (int64, the total in minor units: 249.90 is 24990) and `created_at`
(datetime64[us, UTC]).
`items`: one row per order line, columns `order` (the row position of its order in
`orders`), `sku` and `name` (category), `quantity` (int32), `line_total_minor` (int64).

Money is summed in integer minor units, so no float ever touches it, and it is never added
across currencies: revenue, average order value and product revenue are per currency.
Sums are exact however large: int64 while no sum can pass 2**63 - 1, Python ints beyond
(`sums_by`); a wrapped, negative revenue is never shown.
Cancelled orders are counted (orders, by_status, trend) but earn no revenue.
"""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

import numpy as np
import pandas as pd

from actors.common.contracts import OrderStatus

STATUSES = tuple(status.value for status in OrderStatus)  # in the order of an order's life
CANCELLED = OrderStatus.CANCELLED.value
MINOR_PER_MAJOR = 100  # orders carry two decimals in every currency (numeric(12, 2))
DEFAULT_TOP = 10
MAX_TOP = 100
INT64_MAX = int(np.iinfo(np.int64).max)
# The days a query may name: no order is older than the Unix epoch, and the day after the
# range, and the start of the week or month after its last one, must still be dates.
FIRST_DAY = date(1970, 1, 1)
LAST_DAY = date(9998, 12, 31)


class Granularity(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


@dataclass(frozen=True)
class StatsQuery:
    """Orders created in [start, end), trend buckets of `granularity`, `top` products."""

    start: datetime
    end: datetime
    granularity: Granularity = Granularity.DAY
    top: int = DEFAULT_TOP

    @classmethod
    def for_dates(cls, first: date, last: date, granularity: Granularity = Granularity.DAY,
                  top: int = DEFAULT_TOP) -> "StatsQuery":
        """Both days included, whole days in UTC."""
        return cls(day_start(first), day_start(last + timedelta(days=1)), granularity, top)

    def key(self) -> str:
        return f"{self.start.isoformat()}|{self.end.isoformat()}|{self.granularity.value}|{self.top}"


@dataclass(frozen=True)
class ProductFigures:
    sku: str
    name: str
    quantity: int
    revenue_minor: dict[str, int]


@dataclass(frozen=True)
class TrendPoint:
    period: date
    orders: int
    revenue_minor: dict[str, int]


@dataclass(frozen=True)
class Stats:
    orders: int
    revenue_minor: dict[str, int]
    average_order_value_minor: dict[str, int]
    by_status: dict[str, int]
    top_statuses: list[tuple[str, int]]
    trend: list[TrendPoint]
    top_products: list[ProductFigures]
    top_products_by_revenue: dict[str, list[ProductFigures]] = field(default_factory=dict)


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def format_money(minor: int) -> str:
    """24990 -> '249.90' (API.md: money is a decimal string)."""
    sign = "-" if minor < 0 else ""
    whole, cents = divmod(abs(minor), MINOR_PER_MAJOR)
    return f"{sign}{whole}.{cents:02d}"


def empty_orders() -> pd.DataFrame:
    return pd.DataFrame({
        "status": pd.Categorical([], categories=STATUSES),
        "currency": pd.Categorical([]),
        "total_minor": np.array([], dtype=np.int64),
        "created_at": pd.DatetimeIndex([], tz=UTC).as_unit("us"),
    })


def empty_items() -> pd.DataFrame:
    return pd.DataFrame({
        "order": np.array([], dtype=np.int32),
        "sku": pd.Categorical([]),
        "name": pd.Categorical([]),
        "quantity": np.array([], dtype=np.int32),
        "line_total_minor": np.array([], dtype=np.int64),
    })


# --- selection -----------------------------------------------------------------------------


def in_range(orders: pd.DataFrame, start: datetime, end: datetime) -> pd.DataFrame:
    """Orders created in [start, end). Row labels stay the orders' positions, which is what
    `items.order` refers to."""
    created = orders["created_at"]
    return orders[(created >= pd.Timestamp(start)) & (created < pd.Timestamp(end))]


def earning(orders: pd.DataFrame) -> pd.DataFrame:
    """The orders that count for revenue: every status but cancelled."""
    return orders[orders["status"] != CANCELLED]


# --- figures -------------------------------------------------------------------------------


def order_count(orders: pd.DataFrame) -> int:
    return int(len(orders))


def count_by_status(orders: pd.DataFrame) -> dict[str, int]:
    """Every status, zeros included, in life-cycle order."""
    counts = orders["status"].value_counts()
    return {status: int(counts.get(status, 0)) for status in STATUSES}


def top_statuses(by_status: dict[str, int], limit: int | None = None) -> list[tuple[str, int]]:
    """Statuses that occur, most common first; ties in life-cycle order."""
    ranked = sorted(((s, n) for s, n in by_status.items() if n > 0),
                    key=lambda pair: (-pair[1], STATUSES.index(pair[0])))
    return ranked[:limit] if limit is not None else ranked


def sums_by(slots: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """`sums[k]` = the sum of `values[slots == k]`, exact. In int64 when no sum can pass
    2**63 - 1 (n values of at most m each: n * m fits); otherwise each value is split into
    its high and low 32 bits, both summed in int64 (exact for fewer than 2**31 rows), and
    the sums are Python ints (an object array)."""
    values = values.astype(np.int64, copy=False)
    sums = np.zeros(size, dtype=np.int64)
    if len(values) == 0:
        return sums
    peak = max(int(values.max()), -int(values.min()))
    if len(values) * peak <= INT64_MAX:
        np.add.at(sums, slots, values)
        return sums
    high, low = sums, np.zeros(size, dtype=np.int64)
    np.add.at(high, slots, values >> 32)
    np.add.at(low, slots, values & 0xFFFFFFFF)
    return np.array([(int(h) << 32) + int(l) for h, l in zip(high, low)], dtype=object)


def _earning_per_currency(orders: pd.DataFrame) -> list[tuple[str, int, int]]:
    """(currency, sum of totals, number of orders) over the earning orders, per currency
    that has one, in currency order."""
    paying = earning(orders)
    currencies = paying["currency"].cat.categories
    codes = paying["currency"].cat.codes.to_numpy()
    counts = np.bincount(codes, minlength=len(currencies))
    sums = sums_by(codes, paying["total_minor"].to_numpy(), len(currencies))
    return sorted((str(c), int(sums[k]), int(counts[k])) for k, c in enumerate(currencies) if counts[k])


def revenue_by_currency(orders: pd.DataFrame) -> dict[str, int]:
    """Sum of totals per currency, cancelled orders excluded; currencies without an earning
    order are left out."""
    return {currency: total for currency, total, _ in _earning_per_currency(orders)}


def average_order_value(orders: pd.DataFrame) -> dict[str, int]:
    """Mean total per currency over the earning orders, in minor units rounded half up."""
    return {currency: _divide_half_up(total, count) for currency, total, count in _earning_per_currency(orders)}


def _divide_half_up(total: int, count: int) -> int:
    return (2 * total + count) // (2 * count)


def period_starts(created_at: pd.Series, granularity: Granularity) -> np.ndarray:
    """The first day of each timestamp's period (UTC) as datetime64[D]; weeks start on
    Monday (ISO 8601)."""
    days = created_at.dt.tz_convert(UTC).dt.tz_localize(None).to_numpy().astype("datetime64[D]")
    if granularity is Granularity.DAY:
        return days
    if granularity is Granularity.WEEK:
        numbers = days.astype(np.int64)
        return (numbers - (numbers + 3) % 7).astype("datetime64[D]")  # 1970-01-01 was a Thursday
    return days.astype("datetime64[M]").astype("datetime64[D]")


def periods_between(start: datetime, end: datetime, granularity: Granularity) -> list[date]:
    """Every period that [start, end) touches, empty ones included."""
    if end <= start:
        return []
    stamps = pd.Series(pd.to_datetime([start, end - timedelta(microseconds=1)], utc=True))
    first, last = (pd.Timestamp(d).date() for d in period_starts(stamps, granularity))
    found, current = [], first
    while current <= last:
        found.append(current)
        current = _next_period(current, granularity)
    return found


def _next_period(start: date, granularity: Granularity) -> date:
    if granularity is Granularity.DAY:
        return start + timedelta(days=1)
    if granularity is Granularity.WEEK:
        return start + timedelta(weeks=1)
    return date(start.year + start.month // 12, start.month % 12 + 1, 1)


def trend(orders: pd.DataFrame, start: datetime, end: datetime, granularity: Granularity) -> list[TrendPoint]:
    """Orders and revenue per period of [start, end); `orders` is already that range."""
    periods = periods_between(start, end, granularity)
    if not periods:
        return []
    index = np.searchsorted(np.array(periods, dtype="datetime64[D]"), period_starts(orders["created_at"], granularity))
    counts = np.bincount(index, minlength=len(periods))
    currencies = orders["currency"].cat.categories
    paying = orders["status"].to_numpy() != CANCELLED
    cell = index[paying] * len(currencies) + orders["currency"].cat.codes.to_numpy()[paying]
    revenue = sums_by(cell, orders["total_minor"].to_numpy()[paying], len(periods) * len(currencies))
    revenue = revenue.reshape(len(periods), len(currencies))
    earned = np.zeros((len(periods), len(currencies)), dtype=bool)
    earned.reshape(-1)[cell] = True
    return [
        TrendPoint(period, int(counts[p]), {str(c): int(revenue[p, k]) for k, c in sorted(
            enumerate(currencies), key=lambda kc: str(kc[1])) if earned[p, k]})
        for p, period in enumerate(periods)
    ]


@dataclass(frozen=True)
class ProductTotals:
    """Units and revenue per product over some order lines; arrays indexed like `skus`."""

    skus: list[str]
    names: list[str]
    quantity: np.ndarray
    revenue_minor: dict[str, np.ndarray]


def earning_lines(orders: pd.DataFrame, items: pd.DataFrame, all_orders_count: int) -> pd.DataFrame:
    """The lines of the earning orders among `orders` (a selection of a frame of
    `all_orders_count` rows), each with its order's currency."""
    paying = earning(orders)
    currency = paying["currency"]
    code_of_order = np.full(all_orders_count, -1, dtype=np.int32)
    code_of_order[paying.index.to_numpy()] = currency.cat.codes.to_numpy()
    line_codes = code_of_order[items["order"].to_numpy()]
    chosen = line_codes >= 0
    return items[chosen].assign(
        currency=pd.Categorical.from_codes(line_codes[chosen], categories=currency.cat.categories)
    )


def product_totals(lines: pd.DataFrame) -> ProductTotals:
    sku_codes = lines["sku"].cat.codes.to_numpy()
    skus = lines["sku"].cat.categories
    quantity = sums_by(sku_codes, lines["quantity"].to_numpy(), len(skus))
    revenue: dict[str, np.ndarray] = {}
    currency_codes = lines["currency"].cat.codes.to_numpy()
    totals = lines["line_total_minor"].to_numpy()
    for code, currency in enumerate(lines["currency"].cat.categories):
        mine = currency_codes == code
        if mine.any():
            revenue[str(currency)] = sums_by(sku_codes[mine], totals[mine], len(skus))
    # A product's name as its latest order line spells it (lines are in arrival order).
    last_line = np.full(len(skus), -1, dtype=np.int64)
    np.maximum.at(last_line, sku_codes, np.arange(len(sku_codes)))
    name_codes = lines["name"].cat.codes.to_numpy()
    names = lines["name"].cat.categories
    return ProductTotals(
        skus=[str(s) for s in skus],
        names=[str(names[name_codes[i]]) if i >= 0 else "" for i in last_line],
        quantity=quantity,
        revenue_minor=dict(sorted(revenue.items())),
    )


def _figures(totals: ProductTotals, k: int, currencies: list[str] | None = None) -> ProductFigures:
    revenue = {c: int(v[k]) for c, v in totals.revenue_minor.items()
               if (currencies is None or c in currencies) and v[k] > 0}
    return ProductFigures(totals.skus[k], totals.names[k], int(totals.quantity[k]), revenue)


def top_products(totals: ProductTotals, limit: int = DEFAULT_TOP) -> list[ProductFigures]:
    """Products by units sold, most first (ties by sku), with their revenue per currency."""
    sold = [k for k in range(len(totals.skus)) if totals.quantity[k] > 0]
    ranked = sorted(sold, key=lambda k: (-int(totals.quantity[k]), totals.skus[k]))[:limit]
    return [_figures(totals, k) for k in ranked]


def top_products_by_revenue(totals: ProductTotals, limit: int = DEFAULT_TOP) -> dict[str, list[ProductFigures]]:
    """Per currency, the products that earned most in it (ties by sku)."""
    result = {}
    for currency, revenue in totals.revenue_minor.items():
        earned = [k for k in range(len(totals.skus)) if revenue[k] > 0]
        ranked = sorted(earned, key=lambda k: (-int(revenue[k]), totals.skus[k]))[:limit]
        result[currency] = [_figures(totals, k, [currency]) for k in ranked]
    return result


def compute_stats(orders: pd.DataFrame, items: pd.DataFrame, query: StatsQuery) -> Stats:
    """Every figure of GET /analytics/stats for one range."""
    selected = in_range(orders, query.start, query.end)
    by_status = count_by_status(selected)
    products = product_totals(earning_lines(selected, items, len(orders)))
    return Stats(
        orders=order_count(selected),
        revenue_minor=revenue_by_currency(selected),
        average_order_value_minor=average_order_value(selected),
        by_status=by_status,
        top_statuses=top_statuses(by_status),
        trend=trend(selected, query.start, query.end, query.granularity),
        top_products=top_products(products, query.top),
        top_products_by_revenue=top_products_by_revenue(products, query.top),
    )
