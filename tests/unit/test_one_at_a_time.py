"""Per-key serialisation used by the event consumer: FIFO within a key, free across keys,
and nothing kept once a key is idle (one lock per order ever seen would grow forever)."""

import asyncio

from actors.notification.consumer import OneAtATime


async def test_one_key_runs_in_arrival_order_while_other_keys_go_on():
    turns, done = OneAtATime(), []

    async def work(key: str, name: str, pause: float) -> None:
        async with turns.turn(key):
            await asyncio.sleep(pause)
            done.append(name)

    await asyncio.gather(work("a", "a1", 0.2), work("a", "a2", 0), work("b", "b1", 0), work("a", "a3", 0))
    assert done == ["b1", "a1", "a2", "a3"]
    assert not turns._locks and not turns._users


async def test_a_failing_turn_passes_the_key_on():
    turns = OneAtATime()

    async def fail() -> None:
        async with turns.turn("a"):
            raise RuntimeError("boom")

    results = await asyncio.gather(fail(), fail(), return_exceptions=True)
    assert [type(r) for r in results] == [RuntimeError, RuntimeError]
    async with turns.turn("a"):
        pass
    assert not turns._locks


async def test_a_cancelled_waiter_neither_blocks_the_key_nor_leaks():
    """A consumer that stops cancels messages still waiting for their order's turn."""
    turns, done = OneAtATime(), []
    release = asyncio.Event()

    async def work(name: str) -> None:
        async with turns.turn("a"):
            if name == "first":
                await release.wait()
            done.append(name)

    first, waiting, last = (asyncio.create_task(work(n)) for n in ("first", "waiting", "last"))
    await asyncio.sleep(0)
    waiting.cancel()
    release.set()
    await asyncio.gather(first, last)
    assert waiting.cancelled() and done == ["first", "last"]
    assert not turns._locks and not turns._users
