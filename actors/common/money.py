"""Money as every service accepts it: exact decimals with two places, ISO 4217 currencies,
and the bounds an order lives within (API.md: money is a decimal string, "249.90")."""

import re
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints, WithJsonSchema

MONEY_QUANT = Decimal("0.01")
# numeric(12, 2) in SQL; a bound on the value, because max_digits counts digits after
# normalisation (1E+10 has one digit) and would let 10^10 through to a database error.
MONEY_MAX = Decimal("9999999999.99")
# The most one order may come to, whatever its lines: a price's bound again. Far above any
# order this shop takes, and it keeps each total (and so each line's) within 10^12 minor
# units, so analytics' int64 sums stay exact for millions of orders (past that, analytics
# sums exactly in two halves instead).
MAX_ORDER_TOTAL = MONEY_MAX
# What the orders table holds (numeric(20, 2)). Orders taken before MAX_ORDER_TOTAL may come
# to more, and their events (a cancellation, say) must still be valid.
MAX_STORED_TOTAL = Decimal("999999999999999999.99")

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

# A decimal string as API.md writes one. Python's Decimal() would also take "١٢", "1_000",
# "1e3" and " 1.00 "; the sign is let through so that a negative gets the ">= 0" message.
_DECIMAL_TEXT = re.compile(r"-?[0-9]{1,20}(\.[0-9]{1,20})?")


def _decimal_text(value: object) -> object:
    if isinstance(value, str) and not _DECIMAL_TEXT.fullmatch(value):
        raise ValueError('must be a decimal number in ASCII digits with a "." for the cents, e.g. "249.90"')
    return value


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


def _documented(maximum: Decimal) -> WithJsonSchema:
    """What OpenAPI says a money input is (the bounds first, so they stay JSON Schema's own)."""
    digits = len(str(int(maximum)))
    return WithJsonSchema({"anyOf": [
        {"type": "number", "minimum": 0, "maximum": float(maximum)},
        {"type": "string", "pattern": rf"^[0-9]{{1,{digits}}}(\.[0-9]{{1,2}})?$", "examples": ["249.90"]},
    ]}, mode="validation")


# A price: a JSON number or a decimal string, 0 .. MONEY_MAX, at most two decimals. The
# bounds come before the text check so that they are applied to (and documented on) the
# decimal itself.
Money = Annotated[Decimal, Field(ge=0, le=MONEY_MAX), BeforeValidator(_decimal_text), AfterValidator(_two_decimals),
                  _documented(MONEY_MAX)]
# An order's total as stored, as an event carries it.
OrderTotal = Annotated[Decimal, Field(ge=0, le=MAX_STORED_TOTAL), BeforeValidator(_decimal_text),
                       AfterValidator(_two_decimals), _documented(MAX_STORED_TOTAL)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$"), AfterValidator(_currency)]
