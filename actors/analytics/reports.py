"""TXT reports: rendering (plain ASCII, 80 columns), names, and the reports folder.

A report is written to a temporary file in the same folder and renamed into place, so a
reader never sees half of one. Its name says what it covers and when it was made:
`orders-day-20260104T0000Z-20260105T060000Z.txt`.
"""

import os
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from actors.analytics.domain import ProductFigures, Stats, format_money
from actors.analytics.periods import ReportPeriod
from actors.common.errors import NotFound

WIDTH = 80
NAME_PATTERN = re.compile(  # ASCII: \d would also match other scripts' digits
    r"^orders-(?P<period>hour|day|week|month)-(?P<start>\d{8}T\d{4}Z)-(?P<made>\d{8}T\d{6}Z)\.txt$", re.ASCII
)
_START_FORMAT, _MADE_FORMAT = "%Y%m%dT%H%MZ", "%Y%m%dT%H%M%SZ"
_TEMP_PREFIX = ".tmp-"


@dataclass(frozen=True)
class ReportInfo:
    name: str
    period: ReportPeriod
    start: datetime
    created_at: datetime
    size: int


def report_name(period: ReportPeriod, start: datetime, made: datetime) -> str:
    return f"orders-{period.value}-{start.astimezone(UTC):{_START_FORMAT}}-{made.astimezone(UTC):{_MADE_FORMAT}}.txt"


def parse_name(name: str) -> tuple[ReportPeriod, datetime, datetime] | None:
    """(period, start, made) of a report's name; None for anything else, which is how
    names from outside are validated (no separators, no dots but the suffix)."""
    match = NAME_PATTERN.fullmatch(name)
    if not match:
        return None
    try:
        start = datetime.strptime(match["start"], _START_FORMAT).replace(tzinfo=UTC)
        made = datetime.strptime(match["made"], _MADE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None
    return ReportPeriod(match["period"]), start, made


# --- rendering -----------------------------------------------------------------------------


def table(headers: list[str], rows: list[list[str]], right: set[int] | None = None) -> list[str]:
    """An aligned plain-text table; columns in `right` are right-aligned (numbers)."""
    right = right or set()
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    return [line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def _clip(text: str, width: int) -> str:
    text = text.encode("ascii", "replace").decode()  # terminals of any locale read ASCII
    return text if len(text) <= width else text[: width - 3] + "..."


def _amounts(revenue: dict[str, int]) -> str:
    return ", ".join(f"{format_money(v)} {c}" for c, v in revenue.items()) or "-"


def _products(products: list[ProductFigures]) -> list[list[str]]:
    return [[str(n), p.sku, _clip(p.name, 24), str(p.quantity), _clip(_amounts(p.revenue_minor), 26)]
            for n, p in enumerate(products, 1)]


def render_report(stats: Stats, *, period: ReportPeriod, start: datetime, end: datetime,
                  generated_at: datetime, data_version: str) -> str:
    title = f"Orderflow - {period.value}ly orders report".replace("dayly", "daily")
    moment = "%Y-%m-%d %H:%M UTC"
    lines = [
        title, "=" * len(title), "",
        f"Period:        {start:{moment}} to {end:{moment}} (end excluded)",
        f"Generated at:  {generated_at.astimezone(UTC):%Y-%m-%d %H:%M:%S UTC}",
        f"Data version:  {data_version}",
        "",
        "SUMMARY", "",
        f"Orders placed: {stats.orders}   (cancelled orders count here, not in revenue)",
        "",
    ]
    currencies = sorted(stats.revenue_minor)
    lines += table(
        ["Currency", "Revenue", "Average order value"],
        [[c, format_money(stats.revenue_minor[c]), format_money(stats.average_order_value_minor[c])]
         for c in currencies] or [["-", "-", "-"]],
        right={1, 2},
    )
    lines += ["", "ORDERS BY STATUS", ""]
    lines += table(["Status", "Orders"], [[s, str(n)] for s, n in stats.by_status.items()], right={1})
    lines += ["", "MOST COMMON STATUSES", ""]
    lines += table(["#", "Status", "Orders"], [[str(k), s, str(n)] for k, (s, n) in enumerate(stats.top_statuses, 1)]
                   or [["-", "-", "-"]], right={0, 2})
    lines += ["", "TREND", ""]
    lines += table(["Period", "Orders", "Revenue"],
                   [[f"{t.period:%Y-%m-%d}", str(t.orders), _clip(_amounts(t.revenue_minor), 60)] for t in stats.trend],
                   right={1})
    lines += ["", "TOP PRODUCTS BY QUANTITY", ""]
    lines += table(["#", "SKU", "Name", "Units", "Revenue"], _products(stats.top_products) or [["-"] * 5],
                   right={0, 3})
    for currency, products in stats.top_products_by_revenue.items():
        lines += ["", f"TOP PRODUCTS BY REVENUE ({currency})", ""]
        lines += table(["#", "SKU", "Name", "Units", "Revenue"], _products(products), right={0, 3})
    lines += ["", "Amounts are sums of exact order totals, per currency; currencies are never mixed.", ""]
    return "\n".join(_clip(line, WIDTH) for line in lines)


# --- the folder ----------------------------------------------------------------------------


class ReportsFolder:
    def __init__(self, path: Path):
        self.path = Path(path)

    def write(self, name: str, text: str) -> ReportInfo:
        """Write atomically: a temporary file in the same folder, flushed, then renamed."""
        if parse_name(name) is None:
            raise ValueError(f"not a report name: {name!r}")
        self.path.mkdir(parents=True, exist_ok=True)
        temporary = self.path / f"{_TEMP_PREFIX}{uuid.uuid4().hex}-{name}"
        try:
            with temporary.open("w", encoding="ascii", errors="replace") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path / name)
        finally:
            temporary.unlink(missing_ok=True)
        self._sync_folder()
        return self.info(name)

    def writable(self) -> bool:
        """Whether reports can be written here (the folder is made if missing)."""
        self.path.mkdir(parents=True, exist_ok=True)
        return os.access(self.path, os.W_OK)

    def _sync_folder(self) -> None:
        descriptor = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(descriptor)  # the rename itself survives a crash
        finally:
            os.close(descriptor)

    def info(self, name: str) -> ReportInfo:
        parsed = parse_name(name)
        if parsed is None:
            raise NotFound(f"No report named {name!r}.")
        try:
            size = (self.path / name).stat().st_size
        except FileNotFoundError:
            raise NotFound(f"No report named {name!r}.") from None
        period, start, made = parsed
        return ReportInfo(name, period, start, made, size)

    def all(self) -> list[ReportInfo]:
        """Newest first."""
        if not self.path.is_dir():
            return []
        found = []
        for entry in os.scandir(self.path):
            if entry.is_file() and parse_name(entry.name):
                try:
                    found.append(self.info(entry.name))
                except NotFound:
                    continue  # pruned meanwhile
        return sorted(found, key=lambda r: (r.created_at, r.name), reverse=True)

    def read(self, name: str) -> str:
        """The report's text; any name that is not a report's (`../x`, `a/b`) is a 404."""
        self.info(name)
        try:
            return (self.path / name).read_text(encoding="ascii", errors="replace")
        except FileNotFoundError:
            raise NotFound(f"No report named {name!r}.") from None

    def prune(self, keep_days: int, now: datetime) -> list[str]:
        """Remove reports made more than `keep_days` ago, and temporary files left by a
        writer that died. Returns the names removed."""
        cutoff = now - timedelta(days=keep_days)
        removed = []
        for report in self.all():
            if report.created_at < cutoff:
                (self.path / report.name).unlink(missing_ok=True)
                removed.append(report.name)
        if self.path.is_dir():
            for leftover in self.path.glob(f"{_TEMP_PREFIX}*"):
                if datetime.fromtimestamp(leftover.stat().st_mtime, UTC) < now - timedelta(hours=1):
                    leftover.unlink(missing_ok=True)
        return removed
