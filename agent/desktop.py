"""Showing a notification on the desktop through desktop-notifier (D-Bus
org.freedesktop.Notifications, what libnotify uses), and opening the order when it or its
"Open order" button is clicked."""

import asyncio
import logging
import time
import webbrowser
from dataclasses import dataclass
from pathlib import Path

from desktop_notifier import Button, DesktopNotifier, Icon, Urgency

from actors.common.logging import get_logger

log = get_logger("agent.desktop")

URGENCY = {"critical": Urgency.Critical, "normal": Urgency.Normal, "low": Urgency.Low}
# A parcel; without an icon of its own desktop-notifier shows the Python logo.
APP_ICON = Path(__file__).with_name("orderflow.png")


@dataclass(frozen=True)
class Alert:
    title: str
    message: str
    url: str
    urgency: str = "normal"


def open_in_browser(url: str) -> None:
    """The default browser: $BROWSER when set, else xdg-open and friends (webbrowser)."""
    log.info("opening %s", url, extra={"url": url})
    if not webbrowser.open(url):
        log.warning("no browser could open %s", url)


class DesktopAlerts:
    """Sends alerts to the notification server. When none is running it says so once,
    clearly, and the caller keeps the alert in its log; when one appears again it says that."""

    def __init__(self, app_name: str):
        self.notifier = DesktopNotifier(app_name=app_name, app_icon=Icon(path=APP_ICON))
        self.server_ok = True
        # desktop-notifier logs a traceback for every failed send; one clear line is ours to say.
        logging.getLogger("desktop_notifier").setLevel(logging.CRITICAL)

    async def show(self, alert: Alert) -> float | None:
        """Hand the alert to D-Bus; the time it was accepted there, or None when no
        notification server took it."""
        accepted: list[float] = []
        loop = asyncio.get_running_loop()

        def open_order() -> None:
            loop.run_in_executor(None, open_in_browser, alert.url)

        await self.notifier.send(
            title=alert.title,
            message=alert.message,
            urgency=URGENCY.get(alert.urgency, Urgency.Normal),
            buttons=[Button(title="Open order", on_pressed=open_order)],
            on_clicked=open_order,
            on_dispatched=lambda: accepted.append(time.time()),
        )
        if not accepted:
            self._close_failed_connection()
            if self.server_ok:
                log.warning(
                    "No desktop notification server is running on this session's D-Bus "
                    "(org.freedesktop.Notifications has no owner), so notifications cannot be shown. "
                    "They are kept in this log until one starts (e.g. dunst, or log in to a desktop)."
                )
            self.server_ok = False
            return None
        if not self.server_ok:
            log.warning("A desktop notification server is running again; showing notifications.")
            self.server_ok = True
        return accepted[0]

    def _close_failed_connection(self) -> None:
        """desktop-notifier opens a new D-Bus connection for every send while no server owns
        the name, and leaves each failed one open: a long outage would pile up hundreds,
        against the bus's limit of connections per user. Close the one that just failed."""
        backend = getattr(self.notifier, "_backend", None)
        bus = getattr(backend, "bus", None)
        if bus is not None and getattr(backend, "interface", None) is None:
            bus.disconnect()
            backend.bus = None

