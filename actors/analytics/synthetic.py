"""Made-up orders in the shape the Orders API returns, for the notebook, the benchmark and
tests. Deterministic for a given seed."""

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np

from actors.analytics.domain import STATUSES, format_money

PRODUCTS = [
    ("MUG-01", "Mug", 1290), ("TEE-BLK-M", "T-shirt, black, M", 4990), ("TEE-WHT-L", "T-shirt, white, L", 4990),
    ("CAP-01", "Cap", 2490), ("POSTER-A2", "Poster A2", 1990), ("BAG-TOTE", "Tote bag", 3490),
    ("PEN-SET", "Pen set", 890), ("BOOK-PY", "Python book", 15900), ("LAMP-01", "Desk lamp", 18900),
    ("SOCKS-3", "Socks, 3 pairs", 2990), ("HOODIE-M", "Hoodie, M", 17900), ("STICKERS", "Sticker pack", 490),
]
CURRENCIES = ("EUR", "PLN", "USD")
# How often each status occurs: most orders are delivered, some are cancelled.
PRICES = [format_money(price) for _, _, price in PRODUCTS]
STATUS_WEIGHTS = (0.06, 0.08, 0.04, 0.04, 0.08, 0.62, 0.08)


def synthetic_orders(count: int, *, seed: int = 7, start: datetime = datetime(2025, 1, 1, tzinfo=UTC),
                     days: int = 365, chunk: int = 100_000) -> Iterator[list[dict]]:
    """`count` orders created over `days` days from `start`, in chunks of `chunk`."""
    rng = np.random.default_rng(seed)
    made = 0
    while made < count:
        n = min(chunk, count - made)
        created = rng.integers(0, days * 86_400_000_000, n)
        changed = created + rng.integers(0, 3 * 86_400_000_000, n)
        statuses = rng.choice(len(STATUSES), n, p=STATUS_WEIGHTS)
        currencies = rng.choice(len(CURRENCIES), n, p=(0.6, 0.3, 0.1))
        line_counts = rng.integers(1, 4, n)
        first_product = rng.integers(0, len(PRODUCTS), n)
        # Steps coprime to the 12 products, so an order's (at most 3) lines differ.
        step = rng.choice((1, 5, 7, 11), n)
        quantities = rng.integers(1, 5, (n, 3))
        ids = rng.bytes(16 * n)
        created_at = [(start + timedelta(microseconds=int(c))).isoformat() for c in created.tolist()]
        updated_at = [(start + timedelta(microseconds=int(c))).isoformat() for c in changed.tolist()]
        orders = []
        for k in range(n):
            products = [(first_product[k] + j * step[k]) % len(PRODUCTS) for j in range(line_counts[k])]
            items = [
                {"sku": PRODUCTS[p][0], "name": PRODUCTS[p][1], "quantity": int(quantities[k, j]),
                 "unit_price": PRICES[p]}
                for j, p in enumerate(products)
            ]
            total = sum(PRODUCTS[p][2] * int(quantities[k, j]) for j, p in enumerate(products))
            orders.append({
                "id": str(uuid.UUID(bytes=ids[16 * k: 16 * k + 16], version=4)),
                "number": f"ORD-{start.year}-{made + k + 1:06d}",
                "status": STATUSES[statuses[k]],
                "currency": CURRENCIES[currencies[k]],
                "total": format_money(total),
                "version": int(1 + min(statuses[k], 5)),
                "created_at": created_at[k],
                "updated_at": updated_at[k],
                "items": items,
            })
        made += n
        yield orders
