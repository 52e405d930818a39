"""The orders as typed columns, kept up to date change by change.

Columns live in numpy arrays with spare capacity, so a refresh appends or overwrites a few
rows instead of copying the frame; `orders()` and `items()` hand out DataFrames over them
(categoricals built from codes, no copy). Orders are immutable except for status, version
and updated_at (the Orders service changes nothing else), and are never deleted; so an
order keeps its row for good and an item row refers to it by that position.
"""

import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from hashlib import blake2b

import numpy as np
import pandas as pd

from actors.analytics.domain import MINOR_PER_MAJOR, STATUSES

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SNAPSHOT_FORMAT = 1
_STATUS_CODE = {status: code for code, status in enumerate(STATUSES)}


def to_micros(moment: datetime | str) -> int:
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        raise ValueError("timestamps must carry a UTC offset")
    return (moment - EPOCH) // timedelta(microseconds=1)


def from_micros(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=int(micros))


def to_minor(amount: str | Decimal) -> int:
    """'249.90' -> 24990, refusing anything finer than a cent."""
    if isinstance(amount, str):
        whole, dot, cents = amount.partition(".")
        if dot and len(cents) == 2 and whole.isascii() and whole.isdigit() and cents.isdigit():
            return int(whole) * MINOR_PER_MAJOR + int(cents)  # the API's own form, parsed fast
    scaled = Decimal(amount) * MINOR_PER_MAJOR
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} has more than two decimals")
    return int(scaled)


@dataclass(frozen=True)
class Watermark:
    """The newest change seen: the keyset position (updated_at, id) readers follow."""

    updated_us: int
    order_id: str

    @property
    def updated_at(self) -> datetime:
        return from_micros(self.updated_us)


class _Codes:
    """Strings as small integer codes: the categories of a categorical that only grows."""

    def __init__(self, values: Iterable[str] = ()):
        self.values: list[str] = []
        self._codes: dict[str, int] = {}
        for value in values:
            self.code(value)

    def code(self, value: str) -> int:
        code = self._codes.get(value)
        if code is None:
            code = self._codes[value] = len(self.values)
            self.values.append(value)
        return code


class _Columns:
    """Named numpy arrays of one length that grow by doubling."""

    def __init__(self, dtypes: Mapping[str, str], capacity: int = 1024):
        self.length = 0
        self.arrays = {name: np.zeros(capacity, dtype=dtype) for name, dtype in dtypes.items()}

    def view(self, name: str) -> np.ndarray:
        return self.arrays[name][: self.length]

    def extend(self, columns: Mapping[str, np.ndarray]) -> int:
        """Append rows; returns the position of the first one."""
        added = len(next(iter(columns.values())))
        first, needed = self.length, self.length + added
        capacity = len(next(iter(self.arrays.values())))
        if needed > capacity:
            capacity = max(needed, 2 * capacity)
            for name, array in self.arrays.items():
                grown = np.zeros(capacity, dtype=array.dtype)
                grown[: self.length] = array[: self.length]
                self.arrays[name] = grown
        for name, values in columns.items():
            self.arrays[name][first:needed] = values
        self.length = needed
        return first


ORDER_DTYPES = {"status": "int8", "currency": "int16", "total_minor": "int64",
                "created_us": "int64", "updated_us": "int64", "version": "int32"}
ITEM_DTYPES = {"order": "int32", "sku": "int32", "name": "int32", "quantity": "int32",
               "line_total_minor": "int64"}


class OrdersFrame:
    """Every order the analytics service knows, typed for size and speed."""

    def __init__(self) -> None:
        self._orders = _Columns(ORDER_DTYPES)
        self._items = _Columns(ITEM_DTYPES)
        self._ids: list[str] = []
        self._position: dict[str, int] = {}
        self._currencies = _Codes()
        self._skus = _Codes()
        self._names = _Codes()
        self._version_sum = 0
        self.watermark: Watermark | None = None

    def __len__(self) -> int:
        return self._orders.length

    @property
    def item_count(self) -> int:
        return self._items.length

    @property
    def data_version(self) -> str:
        """Equal for two frames holding the same orders at the same versions: each change
        raises the sum of versions, each new order the count."""
        mark = f"{self.watermark.updated_us}/{self.watermark.order_id}" if self.watermark else "-"
        raw = f"{len(self)}|{self.item_count}|{self._version_sum}|{mark}"
        return blake2b(raw.encode(), digest_size=8).hexdigest()

    # --- changes ---------------------------------------------------------------------------

    def apply(self, orders: Iterable[Mapping]) -> int:
        """Take orders as the Orders API shows them (id, status, currency, total, version,
        created_at, updated_at, items); an order already held is updated when the change is
        newer. Returns how many orders were added or changed."""
        new: dict[str, Mapping] = {}
        changed = 0
        for order in orders:
            order_id = str(order["id"])
            self._advance_watermark(to_micros(order["updated_at"]), order_id)
            position = self._position.get(order_id)
            if position is None:
                earlier = new.get(order_id)
                if earlier is None or int(order["version"]) > int(earlier["version"]):
                    new[order_id] = order
                continue
            changed += self._update(position, order)
        if new:
            self._append(list(new.values()))
        return changed + len(new)

    def _advance_watermark(self, updated_us: int, order_id: str) -> None:
        mark = self.watermark
        if mark is None or (updated_us, order_id) > (mark.updated_us, mark.order_id):
            self.watermark = Watermark(updated_us, order_id)

    def _update(self, position: int, order: Mapping) -> int:
        version = int(order["version"])
        versions = self._orders.view("version")
        if version <= versions[position]:
            return 0
        self._version_sum += version - int(versions[position])
        versions[position] = version
        self._orders.view("status")[position] = _STATUS_CODE[order["status"]]
        self._orders.view("updated_us")[position] = to_micros(order["updated_at"])
        return 1

    def _append(self, orders: list[Mapping]) -> None:
        first = len(self)
        ids = [str(o["id"]) for o in orders]
        versions = np.array([int(o["version"]) for o in orders], dtype=np.int32)
        self._orders.extend({
            "status": np.array([_STATUS_CODE[o["status"]] for o in orders], dtype=np.int8),
            "currency": np.array([self._currencies.code(o["currency"]) for o in orders], dtype=np.int16),
            "total_minor": np.array([to_minor(o["total"]) for o in orders], dtype=np.int64),
            "created_us": np.array([to_micros(o["created_at"]) for o in orders], dtype=np.int64),
            "updated_us": np.array([to_micros(o["updated_at"]) for o in orders], dtype=np.int64),
            "version": versions,
        })
        lines = [(first + n, item) for n, order in enumerate(orders) for item in order["items"]]
        if lines:
            quantities = np.array([int(item["quantity"]) for _, item in lines], dtype=np.int64)
            prices = np.array([to_minor(item["unit_price"]) for _, item in lines], dtype=np.int64)
            self._items.extend({
                "order": np.array([position for position, _ in lines], dtype=np.int32),
                "sku": np.array([self._skus.code(item["sku"]) for _, item in lines], dtype=np.int32),
                "name": np.array([self._names.code(item["name"]) for _, item in lines], dtype=np.int32),
                "quantity": quantities.astype(np.int32),
                "line_total_minor": quantities * prices,
            })
        for offset, order_id in enumerate(ids):
            self._position[order_id] = first + offset
        self._ids.extend(ids)
        self._version_sum += int(versions.sum())

    # --- DataFrames ------------------------------------------------------------------------

    def orders(self) -> pd.DataFrame:
        """The orders as the aggregation functions take them (domain.py). A view: use it
        before the next change is applied."""
        created = pd.to_datetime(self._orders.view("created_us"), unit="us", utc=True)
        return pd.DataFrame({
            "status": pd.Categorical.from_codes(self._orders.view("status"), categories=STATUSES),
            "currency": pd.Categorical.from_codes(self._orders.view("currency"),
                                                  categories=self._currencies.values),
            "total_minor": self._orders.view("total_minor"),
            "created_at": created,
        }, copy=False)

    def items(self) -> pd.DataFrame:
        return pd.DataFrame({
            "order": self._items.view("order"),
            "sku": pd.Categorical.from_codes(self._items.view("sku"), categories=self._skus.values),
            "name": pd.Categorical.from_codes(self._items.view("name"), categories=self._names.values),
            "quantity": self._items.view("quantity"),
            "line_total_minor": self._items.view("line_total_minor"),
        }, copy=False)

    def nbytes(self) -> int:
        """Memory the frame holds, ids and lookup table included (an estimate for those)."""
        arrays = sum(a.nbytes for c in (self._orders, self._items) for a in c.arrays.values())
        # A 36-character str is 85 bytes; a dict entry and a list slot about 40 more.
        return arrays + len(self._ids) * (85 + 40)

    # --- snapshot --------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The whole frame as an .npz file (no pickles, so loading runs no code)."""
        meta = {
            "format": SNAPSHOT_FORMAT,
            "currencies": self._currencies.values,
            "skus": self._skus.values,
            "names": self._names.values,
            "watermark": [self.watermark.updated_us, self.watermark.order_id] if self.watermark else None,
        }
        columns = {f"o_{name}": self._orders.view(name) for name in ORDER_DTYPES}
        columns |= {f"i_{name}": self._items.view(name) for name in ITEM_DTYPES}
        buffer = io.BytesIO()
        np.savez(buffer, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
                 ids=np.array(self._ids, dtype="S36"), **columns)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "OrdersFrame":
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            meta = json.loads(archive["meta"].tobytes())
            if meta.get("format") != SNAPSHOT_FORMAT:
                raise ValueError(f"snapshot format {meta.get('format')} is not {SNAPSHOT_FORMAT}")
            frame = cls()
            frame._orders.extend({name: archive[f"o_{name}"] for name in ORDER_DTYPES})
            if len(archive["i_order"]):
                frame._items.extend({name: archive[f"i_{name}"] for name in ITEM_DTYPES})
            frame._ids = archive["ids"].astype("U36").tolist()
        if len(frame._ids) != len(frame):
            raise ValueError("snapshot ids and rows disagree")
        frame._position = {order_id: n for n, order_id in enumerate(frame._ids)}
        frame._currencies = _Codes(meta["currencies"])
        frame._skus = _Codes(meta["skus"])
        frame._names = _Codes(meta["names"])
        frame._version_sum = int(frame._orders.view("version").sum(dtype=np.int64))
        if meta["watermark"]:
            frame.watermark = Watermark(int(meta["watermark"][0]), str(meta["watermark"][1]))
        return frame
