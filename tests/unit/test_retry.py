import asyncio

import pytest

from actors.common.retry import Backoff, sleep_unless
from agent.settings import AgentSettings


def test_delays_double_up_to_the_maximum_and_start_over_after_a_reset():
    backoff = Backoff(0.5, 3.0)
    assert [backoff.next_delay() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    backoff.reset()
    assert backoff.next_delay() == 0.5


def test_jitter_spreads_each_delay_within_its_fraction():
    backoff = Backoff(1.0, 1.0, jitter=0.2)
    delays = [backoff.next_delay() for _ in range(200)]
    assert all(0.8 <= d <= 1.2 for d in delays)
    assert len(set(delays)) > 1


@pytest.mark.parametrize("initial, maximum", [(0, 1), (-1, 1), (2, 1)])
def test_a_back_off_that_cannot_grow_is_refused(initial, maximum):
    with pytest.raises(ValueError):
        Backoff(initial, maximum)


def test_agent_settings_refuse_a_back_off_that_starts_above_its_maximum():
    with pytest.raises(ValueError, match="reconnect_initial_s"):
        AgentSettings(reconnect_initial_s=60, reconnect_max_s=30)


async def test_sleep_unless_ends_when_the_event_is_set():
    stopping = asyncio.Event()
    asyncio.get_running_loop().call_later(0.05, stopping.set)
    await asyncio.wait_for(sleep_unless(stopping, 3600), 10)
    assert stopping.is_set()
