"""One supervised background loop, for every piece of work a replica does on its own
(the outbox relay, the mail outbox, the fan-out hub, the event consumer, pruning,
revocation copies, the report scheduler, the analytics sync).

A loop calls its `step` again and again until it is stopped. A step does one round of work
and says how long to wait before the next (`None`: the loop's `idle_s`; `0`: at once); a
`wake()` cuts the wait short. A step that raises one of the `transient` errors (a server
away) is retried after a doubling back-off; any other error is logged with its traceback
and retried after the longest back-off, so one bad round never ends the loop. The back-off
starts over after a step that returns, or one that ran for `stable_after_s` before failing
(a long-running step such as consuming a queue until the connection drops).
"""

import asyncio
import time
from collections.abc import Awaitable, Callable

from actors.common.logging import get_logger
from actors.common.retry import Backoff, sleep_unless

log = get_logger("loop")

Step = Callable[[], Awaitable[float | None]]
OnFailure = Callable[[BaseException], Awaitable[None]]


class BackgroundLoop:
    def __init__(
        self,
        name: str,
        step: Step,
        *,
        idle_s: float,
        transient: tuple[type[BaseException], ...] = (),
        backoff: Backoff | None = None,
        on_failure: OnFailure | None = None,
        stable_after_s: float = 30.0,
        wake: asyncio.Event | None = None,
    ):
        self.name = name
        self.step = step
        self.idle_s = idle_s
        self.transient = transient
        self.backoff = backoff or Backoff(max_s=10.0)
        self.on_failure = on_failure
        self.stable_after_s = stable_after_s
        # Shared with whoever knows there is work (e.g. a LISTEN/NOTIFY listener).
        self.woken = wake or asyncio.Event()
        # The error of the last step while steps keep failing; None once one succeeds.
        self.failure: BaseException | None = None
        self._stopping = asyncio.Event()
        self._task: asyncio.Task | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def stopping(self) -> asyncio.Event:
        """Set once `stop()` is called; a long-running step ends when it sees it."""
        return self._stopping

    def start(self) -> None:
        if self.running:
            return
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name=self.name)
        log.info("%s started", self.name)

    def wake(self) -> None:
        self.woken.set()

    async def stop(self, *, cancel: bool = False) -> None:
        """Stop after the step in flight (or, with `cancel`, interrupt it)."""
        self._stopping.set()
        self.woken.set()
        if self._task is None:
            return
        if cancel:
            self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            if not cancel:
                raise
        finally:
            self._task = None
        log.info("%s stopped", self.name)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            # Cleared before the step, so a wake-up that comes while it runs is not lost.
            self.woken.clear()
            started = time.monotonic()
            try:
                wait_s = await self.step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await self._after_failure(exc, ran_s=time.monotonic() - started)
                continue
            if self.failure is not None:
                log.info("%s works again", self.name)
            self.failure = None
            self.backoff.reset()
            wait_s = self.idle_s if wait_s is None else wait_s
            if wait_s > 0:
                await self._wait(wait_s)

    async def _after_failure(self, exc: Exception, *, ran_s: float) -> None:
        self.failure = exc
        if ran_s >= self.stable_after_s:
            self.backoff.reset()
        if isinstance(exc, self.transient):
            delay = self.backoff.next_delay()
            log.warning("%s cannot go on yet (%s: %s); retrying in %.1fs", self.name, exc.__class__.__name__, exc, delay)
        else:
            delay = self.backoff.max_s
            log.exception("%s failed unexpectedly; retrying in %.1fs", self.name, delay)
        if self.on_failure is not None:
            try:
                await self.on_failure(exc)
            except Exception:
                log.exception("%s: tidying up after a failure failed too", self.name)
        await sleep_unless(self._stopping, delay)

    async def _wait(self, seconds: float) -> None:
        """Until `seconds` pass, `wake()` is called, or the loop is stopped."""
        wake = asyncio.ensure_future(self.woken.wait())
        stop = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({wake, stop}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            wake.cancel()
            stop.cancel()
