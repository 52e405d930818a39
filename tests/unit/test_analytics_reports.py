"""Reports: windows, names (and their validation), rendering, the folder (no server)."""

import os
from datetime import UTC, date, datetime, timedelta

import pytest

from actors.analytics.domain import StatsQuery, compute_stats, empty_items, empty_orders
from actors.analytics.frame import OrdersFrame
from actors.analytics.periods import ReportPeriod, report_window
from actors.analytics.reports import ReportsFolder, parse_name, render_report, report_name
from actors.analytics.synthetic import synthetic_orders
from actors.common.errors import NotFound

MADE = datetime(2026, 3, 4, 6, 0, 0, tzinfo=UTC)  # a Wednesday


@pytest.mark.parametrize(("period", "start", "end"), [
    (ReportPeriod.HOUR, datetime(2026, 3, 4, 5, tzinfo=UTC), datetime(2026, 3, 4, 6, tzinfo=UTC)),
    (ReportPeriod.DAY, datetime(2026, 3, 3, tzinfo=UTC), datetime(2026, 3, 4, tzinfo=UTC)),
    (ReportPeriod.WEEK, datetime(2026, 2, 23, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC)),
    (ReportPeriod.MONTH, datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)),
])
def test_a_report_covers_the_last_complete_period(period, start, end):
    assert report_window(period, MADE) == (start, end)


def test_january_report_covers_december():
    assert report_window(ReportPeriod.MONTH, datetime(2026, 1, 1, 6, tzinfo=UTC)) == (
        datetime(2025, 12, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))


def test_names_round_trip():
    start, _ = report_window(ReportPeriod.DAY, MADE)
    name = report_name(ReportPeriod.DAY, start, MADE)
    assert name == "orders-day-20260303T0000Z-20260304T060000Z.txt"
    assert parse_name(name) == (ReportPeriod.DAY, start, MADE)


@pytest.mark.parametrize("name", [
    "../etc/passwd", "..", ".", "", "orders-day-20260303T0000Z-20260304T060000Z.txt/..",
    "../orders-day-20260303T0000Z-20260304T060000Z.txt", "sub/orders-day-20260303T0000Z-20260304T060000Z.txt",
    "orders-day-20260303T0000Z-20260304T060000Z.txt\x00", "orders-year-20260303T0000Z-20260304T060000Z.txt",
    "orders-day-20261303T0000Z-20260304T060000Z.txt", "orders-day-20260303T0000Z-20260304T060000Z.TXT",
    ".tmp-x-orders-day-20260303T0000Z-20260304T060000Z.txt", "orders-day-٢0260303T0000Z-20260304T060000Z.txt",
])
def test_anything_but_a_report_name_is_refused(name, tmp_path):
    assert parse_name(name) is None
    (tmp_path / "secret.txt").write_text("secret")
    with pytest.raises(NotFound):
        ReportsFolder(tmp_path / "reports").read(name)


def sample_stats():
    frame = OrdersFrame()
    for chunk in synthetic_orders(2000):
        frame.apply(chunk)
    return compute_stats(frame.orders(), frame.items(), StatsQuery.for_dates(date(2025, 3, 1), date(2025, 3, 31)))


def test_report_text_fits_80_columns_and_has_every_section():
    stats = sample_stats()
    text = render_report(stats, period=ReportPeriod.MONTH, start=datetime(2025, 3, 1, tzinfo=UTC),
                         end=datetime(2025, 4, 1, tzinfo=UTC), generated_at=MADE, data_version="abc")
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert text.isascii()
    assert lines[0] == "Orderflow - monthly orders report"
    assert "Period:        2025-03-01 00:00 UTC to 2025-04-01 00:00 UTC (end excluded)" in lines
    assert "Generated at:  2026-03-04 06:00:00 UTC" in lines
    for heading in ["SUMMARY", "ORDERS BY STATUS", "MOST COMMON STATUSES", "TREND", "TOP PRODUCTS BY QUANTITY",
                    "TOP PRODUCTS BY REVENUE (EUR)", "TOP PRODUCTS BY REVENUE (PLN)"]:
        assert heading in lines
    assert f"Orders placed: {stats.orders}   (cancelled orders count here, not in revenue)" in lines
    # Aligned: the revenue column of the currency table ends in the same place on each row.
    header = next(i for i, line in enumerate(lines) if line.startswith("Currency"))
    rows = lines[header + 2: header + 5]
    assert [row.split()[0] for row in rows] == ["EUR", "PLN", "USD"]
    assert len({len(row) for row in rows}) == 1


def test_empty_report_renders():
    stats = compute_stats(empty_orders(), empty_items(), StatsQuery.for_dates(date(2026, 3, 3), date(2026, 3, 3)))
    text = render_report(stats, period=ReportPeriod.DAY, start=datetime(2026, 3, 3, tzinfo=UTC),
                         end=datetime(2026, 3, 4, tzinfo=UTC), generated_at=MADE, data_version="-")
    assert "Orders placed: 0" in text and max(len(x) for x in text.splitlines()) <= 80


def test_long_product_names_and_non_ascii_are_clipped_to_ascii():
    frame = OrdersFrame()
    frame.apply([{"id": "5b0e8f0e-6c59-4d5e-9d43-2a4f0c0f0001", "status": "paid", "currency": "EUR", "total": "1.00",
                  "version": 2, "created_at": "2026-03-03T10:00:00+00:00", "updated_at": "2026-03-03T10:00:00+00:00",
                  "items": [{"sku": "Z", "name": "Żółta łódź " * 20, "quantity": 1, "unit_price": "1.00"}]}])
    stats = compute_stats(frame.orders(), frame.items(), StatsQuery.for_dates(date(2026, 3, 3), date(2026, 3, 3)))
    text = render_report(stats, period=ReportPeriod.DAY, start=datetime(2026, 3, 3, tzinfo=UTC),
                         end=datetime(2026, 3, 4, tzinfo=UTC), generated_at=MADE, data_version="v")
    assert text.isascii() and max(len(x) for x in text.splitlines()) <= 80
    assert "?" in text and "..." in text


def test_write_is_atomic_and_leaves_no_temporary_file(tmp_path):
    folder = ReportsFolder(tmp_path / "reports")
    name = report_name(ReportPeriod.DAY, datetime(2026, 3, 3, tzinfo=UTC), MADE)
    info = folder.write(name, "first\n")
    assert info.size == len("first\n") and folder.read(name) == "first\n"
    folder.write(name, "second\n")  # the same tick again replaces the file
    assert folder.read(name) == "second\n"
    assert os.listdir(folder.path) == [name]
    with pytest.raises(ValueError):
        folder.write("../escape.txt", "x")


def test_list_is_newest_first_and_ignores_other_files(tmp_path):
    folder = ReportsFolder(tmp_path)
    names = [report_name(ReportPeriod.HOUR, MADE + timedelta(hours=h - 1), MADE + timedelta(hours=h)) for h in range(3)]
    for name in names:
        folder.write(name, "x")
    (tmp_path / "notes.txt").write_text("not a report")
    assert [r.name for r in folder.all()] == list(reversed(names))
    assert folder.all()[0].period is ReportPeriod.HOUR


def test_prune_removes_old_reports_and_stale_temporary_files(tmp_path):
    folder = ReportsFolder(tmp_path)
    old = report_name(ReportPeriod.DAY, MADE - timedelta(days=40), MADE - timedelta(days=31))
    recent = report_name(ReportPeriod.DAY, MADE - timedelta(days=2), MADE - timedelta(days=1))
    folder.write(old, "old")
    folder.write(recent, "recent")
    leftover = tmp_path / ".tmp-dead-writer"
    leftover.write_text("half")
    os.utime(leftover, (0, 0))
    fresh_temp = tmp_path / ".tmp-writing-now"
    fresh_temp.write_text("half")
    assert folder.prune(30, MADE) == [old]
    assert sorted(os.listdir(tmp_path)) == sorted([recent, ".tmp-writing-now"])
