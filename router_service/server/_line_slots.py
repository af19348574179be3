"""A batch's slots of `batches.concurrency`: its lines in flight at once.

A line waiting out a cooldown (every deployment of its model cooling: an unattended call waits
where a caller on a socket is refused, `RequestContext.unattended`) gives its slot back for the
wait (`LineSlot.aside`, the planner's `RequestContext.set_aside`), so the batch's lines of other
models go on meanwhile, and takes one again before it is routed. No more lines wait so (one back
from the wait counts until it has a slot again) than the concurrency: a line set aside was
admitted by its client's limits already (its rpm counted), and a batch's unsent admitted lines
stay that few; one past it waits holding its slot.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from router_service.server._slots import Slots


class LineSlots:
    def __init__(self, concurrency: int) -> None:
        self._free = Slots(lambda: concurrency)
        self._aside = Slots(lambda: concurrency)  # lines waiting with their slot given back
        self._concurrency = concurrency

    async def take(self) -> LineSlot:
        """A slot, once one is free (in the order they were asked for)."""
        await self._free.take()
        return LineSlot(self)

    @property
    def aside_full(self) -> bool:
        return self._aside.held >= self._concurrency


class LineSlot:
    """One line's slot: given back once (`give`), by its line's end or its wait set aside."""

    def __init__(self, slots: LineSlots) -> None:
        self._slots = slots
        self._held = True

    def give(self) -> None:
        if self._held:
            self._held = False
            self._slots._free.give()

    @asynccontextmanager
    async def aside(self) -> AsyncIterator[None]:
        """The slot given back while the line waits (unless as many wait so already), taken
        again after the wait; a wait cancelled (the batch stopped, its window over) takes none."""
        slots = self._slots
        if not self._held or slots.aside_full:
            yield
            return
        async with slots._aside.slot():  # at once: there is room
            self.give()
            yield
            # Back: still one of those waiting without a slot until it has one (else the
            # line sent next steps aside too, and more admitted lines wait unsent).
            await slots._free.take()
            self._held = True
