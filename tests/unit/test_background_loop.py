"""The one supervised background loop every replica's background work runs in."""

import asyncio

import pytest

from actors.common.loop import BackgroundLoop
from actors.common.retry import Backoff
from tests.support import wait_until


class Away(ConnectionError):
    pass


def quick_backoff() -> Backoff:
    return Backoff(initial_s=0.01, max_s=0.08)


async def test_steps_run_again_at_once_when_a_step_asks_and_after_idle_otherwise():
    calls = []

    async def step():
        calls.append(len(calls))
        return 0 if len(calls) < 3 else None  # three rounds at once, then idle

    loop = BackgroundLoop("test", step, idle_s=60)
    loop.start()
    await wait_until(lambda: len(calls) >= 3)
    await asyncio.sleep(0.05)
    assert len(calls) == 3  # waiting its idle minute now
    loop.wake()
    await wait_until(lambda: len(calls) == 4)
    await loop.stop()
    assert not loop.running


async def test_a_wake_during_a_step_is_not_lost():
    started, release, calls = asyncio.Event(), asyncio.Event(), []

    async def step():
        calls.append(1)
        if len(calls) == 1:
            started.set()
            await release.wait()
        return None

    loop = BackgroundLoop("test", step, idle_s=60)
    loop.start()
    await started.wait()
    loop.wake()  # work arrived while the first round ran
    release.set()
    await wait_until(lambda: len(calls) == 2)
    await loop.stop()


async def test_transient_failures_back_off_doubling_and_recover():
    outcomes = [Away("down"), Away("down"), Away("down"), None]
    delays, failures = [], []
    backoff = quick_backoff()
    original = backoff.next_delay

    def recording_delay():
        delays.append(original())
        return delays[-1]

    backoff.next_delay = recording_delay

    async def step():
        outcome = outcomes.pop(0) if outcomes else None
        if outcome:
            raise outcome
        return 60

    async def on_failure(exc):
        failures.append(exc)

    loop = BackgroundLoop("test", step, idle_s=60, transient=(Away,), backoff=backoff, on_failure=on_failure)
    loop.start()
    await wait_until(lambda: not outcomes)
    await wait_until(lambda: loop.failure is None)
    assert delays == pytest.approx([0.01, 0.02, 0.04])
    assert [str(e) for e in failures] == ["down"] * 3
    assert backoff.next_delay() == pytest.approx(0.01)  # reset by the success
    await loop.stop()


async def test_an_unexpected_error_is_logged_and_the_loop_goes_on(caplog):
    calls = []

    async def step():
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("a bug in one round")
        return 60

    loop = BackgroundLoop("test", step, idle_s=60, backoff=quick_backoff())
    loop.start()
    await wait_until(lambda: len(calls) == 2)
    assert loop.failure is None
    assert "test failed unexpectedly" in caplog.text and "a bug in one round" in caplog.text
    await loop.stop()


async def test_a_long_run_before_failing_starts_the_backoff_over():
    backoff = Backoff(initial_s=0.01, max_s=10)
    backoff.next_delay(), backoff.next_delay(), backoff.next_delay()  # deep into back-off
    calls = []

    async def step():
        calls.append(1)
        await asyncio.sleep(0.03)
        raise Away("connection dropped after a stable run")

    loop = BackgroundLoop("test", step, idle_s=60, transient=(Away,), backoff=backoff, stable_after_s=0.02)
    loop.start()
    await wait_until(lambda: len(calls) >= 3)
    await loop.stop()
    # Every failure followed a stable run: each waited the first delay, not 0.08 s and up.
    assert backoff._next_s == pytest.approx(0.02)


async def test_stop_lets_the_step_in_flight_finish_and_cancel_interrupts_it():
    finished = []

    async def slow_step():
        await asyncio.sleep(0.05)
        finished.append(1)
        return None

    loop = BackgroundLoop("test", slow_step, idle_s=60)
    loop.start()
    await asyncio.sleep(0.01)
    await loop.stop()
    assert finished == [1]

    async def endless_step():
        await asyncio.Event().wait()

    loop = BackgroundLoop("test", endless_step, idle_s=60)
    loop.start()
    await asyncio.sleep(0.01)
    await asyncio.wait_for(loop.stop(cancel=True), 1)
    assert not loop.running


async def test_a_stopped_loop_can_start_again():
    calls = []

    async def step():
        calls.append(1)
        return None

    loop = BackgroundLoop("test", step, idle_s=60)
    loop.start()
    await wait_until(lambda: len(calls) == 1)
    await loop.stop()
    loop.start()
    await wait_until(lambda: len(calls) == 2)
    await loop.stop()
