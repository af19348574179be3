"""LocalMarks: the active marks a replica on a shared store keeps in its own memory, those of
providers without a session limit (nothing is decided on them), and those of them a reload
moved to the shared store once their provider's limit counts them."""

from __future__ import annotations

from collections.abc import Iterable

from router_service.clock import Clock
from router_service.state import MemoryStateStore, StateStore

# (group, session, token in this replica's memory)
MarkId = tuple[str, str, str]


class LocalMarks:
    """One per router process, handed from a runtime to its successor with the calls still
    marked in it: a call ends on the runtime it began on, and leaves the mark it made there."""

    def __init__(self, clock: Clock) -> None:
        self.store = MemoryStateStore(clock)
        # A mark moved to the shared store -> its token there.
        self.moved: dict[MarkId, str] = {}
        # The groups the last reload moved (`share`): a call that began before it marks there
        # too, in the shared store (it was waiting for a key slot while they moved).
        self.shared_groups: frozenset[str] = frozenset()

    async def share(self, shared: StateStore, groups: Iterable[str], ttl_s: float) -> int:
        """Copy the marks of `groups` into `shared` (unless copied already), where a session
        limit counts them; their calls leave both (`SessionState.leave`). Returns how many."""
        self._prune()
        groups = self.shared_groups = frozenset(groups)
        copied = 0
        for group in groups:
            for session, token in self.store.tokens(group):
                if (group, session, token) in self.moved:
                    continue
                there = await shared.enter(group, session, limit=None, ttl_s=ttl_s)
                if there is None:  # nothing refuses a mark without a limit
                    continue
                if (session, token) not in self.store.tokens(group):
                    # Its call left meanwhile, finding nothing moved: its copy leaves here.
                    await shared.leave(group, session, there)
                    continue
                self.moved[(group, session, token)] = there
                copied += 1
        return copied

    def _prune(self) -> None:
        """Forget the moved marks gone from here without leaving (expired): nothing grows."""
        live = {(g, s, t) for g in {m[0] for m in self.moved} for s, t in self.store.tokens(g)}
        for gone in [mark for mark in self.moved if mark not in live]:
            del self.moved[gone]

    def forget(self, group: str, session: str, token: str) -> str | None:
        """The shared token of a mark that leaves (None if it was never moved)."""
        return self.moved.pop((group, session, token), None)

    def unmoved(self, group: str) -> dict[str, int]:
        """Marks of `group` kept only here, per session (the moved ones count in the store)."""
        found: dict[str, int] = {}
        for session, token in self.store.tokens(group):
            if (group, session, token) not in self.moved:
                found[session] = found.get(session, 0) + 1
        return found
