"""ArrivalQueue: requests waiting for a key slot are served in the order they arrived."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable, Collection
from typing import TypeVar

from router_service.clock import Clock
from router_service.keys._refusal import Refusal, Unavailable

T = TypeVar("T")

# A waiter at the head re-checks this often even without a release in this process: rate
# windows open with time, and other replicas release slots we hear nothing of.
POLL_S = 0.05


class ArrivalQueue:
    """`clock`: the router's, which times the wait (a ManualClock's moved by a test); the head's
    re-checks poll in the loop's time (another replica's release is heard of by no clock)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._waiters: deque[asyncio.Event] = deque()

    @property
    def waiting(self) -> int:
        """Requests waiting now."""
        return len(self._waiters)

    def notify(self) -> None:
        """A slot may have freed: the head of the queue tries again."""
        if self._waiters:
            self._waiters[0].set()

    async def wait_for(
        self, attempt: Callable[[], Awaitable[T | Unavailable]], wait_s: float
    ) -> T | Unavailable:
        """Run `attempt` until it returns something that is not a refusal-at-limit, waiting in
        arrival order for at most `wait_s`. Newcomers never overtake earlier waiters."""
        if not self._waiters:
            result = await attempt()
            if not (isinstance(result, Unavailable) and result.at_limit) or wait_s <= 0:
                return result
        else:
            result = Unavailable(Refusal.AT_LIMIT)
        clock = self._clock
        deadline = clock.monotonic() + wait_s
        me = asyncio.Event()
        self._waiters.append(me)
        try:
            while True:
                remaining = deadline - clock.monotonic()
                if remaining <= 0:
                    return result
                me.clear()
                with contextlib.suppress(TimeoutError):
                    async with clock.timeout(remaining):  # the wait's end, on the router's clock
                        async with asyncio.timeout(POLL_S if self._waiters[0] is me else None):
                            await me.wait()
                if self._waiters[0] is me:
                    result = await attempt()
                    if not (isinstance(result, Unavailable) and result.at_limit):
                        return result
        finally:
            self._waiters.remove(me)
            self.notify()  # pass the turn on


class ModelQueues:
    """A key pool's queues, one per model: a key cooling for one model may be free for another,
    whose requests must not wait behind the first's. Bounded: a pool's models are the config's
    (a reload's pool shares them with the pool it replaces: `KeyPool.hand_over`)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._queues: dict[str, ArrivalQueue] = {}

    def of(self, model: str) -> ArrivalQueue:
        queue = self._queues.get(model)
        if queue is None:
            queue = self._queues[model] = ArrivalQueue(self._clock)
        return queue

    @property
    def waiting(self) -> int:
        """Requests waiting now, for any model."""
        return sum(queue.waiting for queue in self._queues.values())

    def served(self, models: Collection[str]) -> None:
        """Forget the empty queues of the models not in `models` (a reload's pool's): a model
        dropped leaves no queue behind to notify."""
        for model in [m for m, q in self._queues.items() if not q.waiting and m not in models]:
            del self._queues[model]

    def notify(self) -> None:
        """A slot may have freed, or a key come back: each model's first waiter tries again."""
        for queue in self._queues.values():
            queue.notify()
