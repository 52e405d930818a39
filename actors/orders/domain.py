"""The order model and its rules: statuses, transitions, money, validation. No I/O."""

import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from actors.common.errors import Conflict, Unprocessable

MONEY_QUANT = Decimal("0.01")
MAX_QUANTITY = 10_000
MAX_ITEMS = 500

# ISO 4217 codes of the currencies in circulation (funds and metals left out).
ISO_CURRENCIES = frozenset(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN
    BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP
    GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS
    KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR
    MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF
    SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD
    TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG""".split()
)


class Status(StrEnum):
    NEW = "new"
    PAID = "paid"
    PICKING = "picking"
    PACKED = "packed"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


TRANSITIONS: dict[Status, tuple[Status, ...]] = {
    Status.NEW: (Status.PAID, Status.CANCELLED),
    Status.PAID: (Status.PICKING, Status.CANCELLED),
    Status.PICKING: (Status.PACKED, Status.CANCELLED),
    Status.PACKED: (Status.SHIPPED,),
    Status.SHIPPED: (Status.DELIVERED,),
    Status.DELIVERED: (),
    Status.CANCELLED: (),
}


class IllegalTransition(Conflict):
    slug, title = "illegal-transition", "This status change is not allowed"


class StaleVersion(Conflict):
    # A 412: the client's copy of the order is older than the stored one.
    status, slug, title = 412, "stale-version", "The order was changed by someone else"


class IdempotencyKeyReused(Unprocessable):
    slug, title = "idempotency-key-reused", "Idempotency-Key was used with another request"


def allowed_next(status: Status) -> tuple[Status, ...]:
    return TRANSITIONS[status]


def check_transition(current: Status, target: Status) -> None:
    allowed = allowed_next(current)
    if target not in allowed:
        raise IllegalTransition(
            f"An order in status '{current}' cannot become '{target}'.",
            current_status=current.value,
            allowed=[s.value for s in allowed],
        )


def _two_decimals(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError("must be a finite number")
    if value != value.quantize(MONEY_QUANT):
        raise ValueError("must have at most 2 decimal places")
    return value.quantize(MONEY_QUANT)


def _currency(value: str) -> str:
    if value not in ISO_CURRENCIES:
        raise ValueError("must be an ISO 4217 currency code such as EUR, PLN or USD")
    return value


# numeric(12, 2) in SQL; a bound on the value, because max_digits counts digits after
# normalisation (1E+10 has one digit) and would let 10^10 through to a database error.
MONEY_MAX = Decimal("9999999999.99")
Money = Annotated[Decimal, Field(ge=0, le=MONEY_MAX), AfterValidator(_two_decimals)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$"), AfterValidator(_currency)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Sku = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$")]


class Customer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: EmailStr
    name: Text


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sku: Sku
    name: Text
    quantity: int = Field(ge=1, le=MAX_QUANTITY, strict=True)
    unit_price: Money


class NewOrder(BaseModel):
    """What a client sends to place an order."""

    model_config = ConfigDict(extra="forbid")
    customer: Customer
    items: list[Item] = Field(min_length=1, max_length=MAX_ITEMS)
    currency: Currency

    @property
    def total(self) -> Decimal:
        return order_total(self.items)


class Order(BaseModel):
    id: uuid.UUID
    number: str
    status: Status
    customer: Customer
    items: list[Item]
    currency: str
    total: Decimal
    version: int
    created_at: datetime
    updated_at: datetime


class HistoryEntry(BaseModel):
    status: Status
    at: datetime
    by: str


def order_total(items: list[Item]) -> Decimal:
    return sum((i.unit_price * i.quantity for i in items), Decimal("0.00")).quantize(MONEY_QUANT)


def order_number(year: int, sequence: int) -> str:
    return f"ORD-{year}-{sequence:06d}"
