"""SessionState: a conversation's sticky deployment, bans, skips and active marks, all in the
StateStore with TTLs so replicas agree and nothing outlives its use.

A `session` here is the request's session key (`session_key`: the caller's session id scoped to
its client and hashed), so state names and the admin view hold fixed-length hex, never a user
name or a caller's raw id."""

from __future__ import annotations

import contextlib
import secrets
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from router_service.clock import Clock
from router_service.config import SessionsConfig
from router_service.sessions._marks import LocalMarks
from router_service.sessions._protection import ThreadActions
from router_service.sessions._renames import Renames
from router_service.state import StateStore, StoreUnavailableError


@dataclass(frozen=True, slots=True)
class ActiveMark:
    """One request's mark on a provider; leave() removes exactly this one."""

    group: str
    session: str
    token: str
    shared: bool = True  # in the shared store (a session limit counts it), else this replica's


# A sticky value is written again while unchanged (its TTL renewed) only once a tenth of the TTL
# has passed since this replica wrote it: a conversation that stays on one deployment costs a
# write every few minutes instead of one per request. It may then expire up to that tenth early.
_RENEW_AFTER = 0.1
# Sessions whose last sticky write this replica remembers at most (the oldest is forgotten
# first); writes older than the renewal age are forgotten anyway: they spare no write.
_REMEMBERED = 10_000
# A session key's length in bytes (`session_key`: 32 hex digits).
_KEY_HEX_BYTES = 16


class SessionState:
    """`marks`: where the active marks of providers without a session limit go. Nothing is
    decided on them (only a provider-ban session limit counts marks), so a replica on Redis
    keeps them in its own memory (give it LocalMarks) instead of paying two Lua scripts per
    request; the admin view then lists those per replica. Default: `store`. A reload that
    gives a provider a limit moves its marks there to `store` (`share`)."""

    def __init__(
        self,
        store: StateStore,
        clock: Clock,
        config: SessionsConfig,
        *,
        marks: LocalMarks | None = None,
    ) -> None:
        self._store = store
        self._local = marks
        self._marks = marks.store if marks is not None else store
        self._clock = clock
        self._config = config
        # sticky name -> (deployment, when this replica wrote it), the oldest write first
        self._written: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self.renames = Renames()
        self._renamed = False  # whether `renames` holds any (read on every plan: a bool)
        self._renames_end = 0.0  # until when (monotonic) they are read (`renames_written`)
        # Renamed providers whose old names may still hold calls under way (`_taken`).
        self._draining: dict[str, tuple[str, ...]] = {}
        # Once a reload renamed providers: the sessions of the runtime after it, and each
        # renamed one's old name -> new (`succeeded`).
        self._heir: tuple[SessionState, Mapping[str, str]] | None = None

    def succeeded(self, heir: SessionState, renamed: Mapping[str, str]) -> None:
        """A reload renamed providers (`renamed`: old name -> new) and `heir` serves them: a
        call under way here that enters one from now on (a failover, a key slot waited for)
        takes its place under the new name, where its `max_sessions` counts every conversation
        (under the old name it counted the old name's only)."""
        self._heir = (heir, renamed)

    def renamed(self, renames: Renames) -> None:
        """A reload renamed providers and deployments (`renames`): a conversation's bans, skips
        and sticky choice under their old names hold under the new ones, and the calls under
        way under an old name count in the new name's `max_sessions` until they end."""
        self.renames = renames
        self._draining = dict(renames.providers)
        self.renames_written()

    def renames_written(self) -> None:
        """Renamed names were written (a reload, a call under way on the config before it):
        their old names are read until what was written there has expired."""
        window = max(self._config.sticky_ttl_s, self._config.thread_cooldown_s)
        self._renames_end = self._clock.monotonic() + window
        self._renamed = bool(self.renames)
        if self._heir is not None:  # renamed again since: read there too
            self._heir[0].renames_written()

    def live_renames(self) -> Renames:
        """`renames` while their old names are read, else none (what a successor chains)."""
        return self.renames if self._reading_old_names() else Renames()

    def _reading_old_names(self) -> bool:
        if self._renamed and self._clock.monotonic() >= self._renames_end:
            self._renamed = False  # what they kept has expired: read no more
        return self._renamed

    @staticmethod
    def _sticky(session: str, model: str) -> str:
        # One per model the conversation calls (a group, a pool, a deployment by name): its
        # embeddings, or a small model writing its titles, never move its chats elsewhere.
        return f"sticky:{session}:{model}"

    @staticmethod
    def _ban(session: str, provider: str) -> str:
        return f"sban:{session}:{provider}"

    @staticmethod
    def _skip(session: str, deployment: str) -> str:
        return f"sskip:{session}:{deployment}"

    # A request without a session (embeddings without a `user`) skips all of this (but for
    # a session limit's count: `enter`).

    async def sticky(self, session: str, model: str) -> str | None:
        """The deployment `session` sticks to when it calls `model` (the name it asked for)."""
        names = self.sticky_names(session, model)
        return self.sticky_of(await self._store.get_values(names)) if names else None

    def sticky_names(self, session: str, model: str) -> list[str]:
        """The value `sticky` reads (the planner reads it with its deadlines, in one call)."""
        return [self._sticky(session, model)] if session else []

    def sticky_of(self, values: Sequence[str | None]) -> str | None:
        """The sticky deployment from the values of `sticky_names` (by its name now, when a
        reload renamed it)."""
        sticky = (values[0] or None) if values else None
        if sticky and self._renamed:
            return self.renames.current.get(sticky, sticky)
        return sticky

    def stuck(self, session: str, model: str, deployment: str, current: str | None) -> bool:
        """Whether `stick(session, model, deployment, current=current)` would write nothing: no
        session, or the plan read this deployment and this replica wrote it recently."""
        if not session:
            return True
        if current != deployment:
            return False
        written = self._written.get(self._sticky(session, model))
        renew_after = self._config.sticky_ttl_s * _RENEW_AFTER
        return (
            written is not None
            and written[0] == deployment
            and self._clock.monotonic() - written[1] < renew_after
        )

    async def stick(
        self, session: str, model: str, deployment: str, *, current: str | None = None
    ) -> None:
        """Stick `session`'s calls of `model` to `deployment`. `current`: the sticky deployment
        the request's plan read; when it is this one and this replica wrote it recently,
        nothing is written."""
        if self.stuck(session, model, deployment, current):
            return
        name = self._sticky(session, model)
        await self._store.set_value(name, deployment, self._config.sticky_ttl_s)
        if self._heir is not None:  # under a name a reload may have renamed since
            self._heir[0].renames_written()
        now = self._clock.monotonic()
        self._written[name] = (deployment, now)
        self._written.move_to_end(name)
        self._forget(now)

    def _forget(self, now: float) -> None:
        """Forget the writes that can spare no more writes: those older than the renewal age
        (`stuck` writes those sessions again), and the oldest beyond `_REMEMBERED`. Without
        the first, the last 10,000 conversations stayed here however long ago they ended."""
        written = self._written
        oldest = now - self._config.sticky_ttl_s * _RENEW_AFTER
        while written and (len(written) > _REMEMBERED or next(iter(written.values()))[1] <= oldest):
            written.popitem(last=False)

    def remembered(self) -> int:
        """Sessions whose sticky write this replica remembers (tests: nothing accumulates)."""
        return len(self._written)

    async def excluded(
        self, session: str, providers: Sequence[str], deployments: Sequence[str]
    ) -> tuple[dict[str, float], dict[str, float]]:
        """(banned providers, skipped deployments) for this session, each with the unix time
        its exclusion ends, in one store call."""
        names = self.exclusion_names(session, providers, deployments)
        until = await self._store.deadlines(names) if names else []
        return self.excluded_by(providers, deployments, until)

    def exclusion_names(
        self, session: str, providers: Sequence[str], deployments: Sequence[str]
    ) -> list[str]:
        """The deadlines `excluded` reads; the planner reads them together with the
        deployments' cooldowns, in one store call (one Redis round trip)."""
        if not session:
            return []
        if self._renamed and self._reading_old_names():  # `excluded_by`: the latest end
            renames = self.renames
            providers = [n for p in providers for n in renames.provider_names(p)]
            deployments = [n for d in deployments for n in renames.deployment_names(d)]
        names = [self._ban(session, p) for p in providers]
        return names + [self._skip(session, d) for d in deployments]

    def excluded_by(
        self, providers: Sequence[str], deployments: Sequence[str], until: Sequence[float]
    ) -> tuple[dict[str, float], dict[str, float]]:
        """(banned providers, skipped deployments), each with the unix time its exclusion
        ends, from the deadlines of `exclusion_names`."""
        if not until:  # no session: nothing is excluded
            return {}, {}
        n = len(providers)
        if len(until) != n + len(deployments):  # read under old names too
            return self._renamed_exclusions(providers, deployments, until)
        banned = {p: end for p, end in zip(providers, until[:n], strict=True) if end}
        skipped = {d: end for d, end in zip(deployments, until[n:], strict=True) if end}
        return banned, skipped

    def _renamed_exclusions(
        self, providers: Sequence[str], deployments: Sequence[str], until: Sequence[float]
    ) -> tuple[dict[str, float], dict[str, float]]:
        """`excluded_by` where each name was read under its old names too: the latest end."""
        ends = iter(until)
        banned: dict[str, float] = {}
        for p in providers:
            if end := max(next(ends) for _ in self.renames.provider_names(p)):
                banned[p] = end
        skipped: dict[str, float] = {}
        for d in deployments:
            if end := max(next(ends) for _ in self.renames.deployment_names(d)):
                skipped[d] = end
        return banned, skipped

    async def apply(
        self, session: str, model: str, provider: str, deployment: str, actions: ThreadActions
    ) -> None:
        """`actions` for `session`, whose call of `model` failed on `deployment`."""
        if not session:
            return
        if self._heir is not None:  # under names a reload may have renamed since
            self._heir[0].renames_written()
        until = self._clock.now() + self._config.thread_cooldown_s
        ttl = self._config.thread_cooldown_s
        # The deadline decides; the expiring group entry only lets operators list who is
        # excluded where (deadlines cannot be enumerated, groups can).
        if actions.ban_provider:
            await self._store.extend_deadline(self._ban(session, provider), until)
            await self._store.enter(f"banned:{provider}", session, limit=None, ttl_s=ttl)
        if actions.skip_deployment:
            await self._store.extend_deadline(self._skip(session, deployment), until)
            await self._store.enter(
                f"skipped:{provider}", f"{session} {deployment}", limit=None, ttl_s=ttl
            )
        if actions.clear_sticky and await self.sticky(session, model) == deployment:
            # An empty value reads as "no sticky deployment"; it expires like any other.
            name = self._sticky(session, model)
            await self._store.set_value(name, "", self._config.sticky_ttl_s)

    async def enter(self, session: str, provider: str, limit: int | None) -> ActiveMark | None:
        """Mark this request active on `provider`; None when the provider already serves
        `limit` other sessions. A request without a session (a PickRoute, an embedding without
        a `user`) is a conversation of its own where a limit counts them: else it took the
        provider's place uncounted, whatever its `max_sessions`."""
        if self._heir is not None and provider in self._heir[1]:  # renamed since (`succeeded`)
            heir, renamed = self._heir
            return await heir.enter(session, renamed[provider], limit)
        if not session:
            if limit is None:
                return _ANONYMOUS
            session = secrets.token_hex(_KEY_HEX_BYTES)  # fixed-length hex, as a session key
        group = f"active:{provider}"
        local = self._local
        # Unlimited on the config this call began with, limited on the one a reload just put
        # in force (`share`): counted where that limit counts.
        shared = limit is not None or (local is not None and group in local.shared_groups)
        if limit is not None and provider in self._draining:
            limit = max(limit - await self._taken(session, provider), 0)
        store = self._store if shared else self._marks
        token = await store.enter(group, session, limit=limit, ttl_s=self._config.active_ttl_s)
        return ActiveMark(group, session, token, shared) if token is not None else None

    async def _taken(self, session: str, provider: str) -> int:
        """The places in renamed `provider`'s `max_sessions` that calls under way under its old
        names hold (other conversations than `session`'s, not under the new name too). Once
        none are left this is read no more (a replica not reloaded yet is as one with another
        config: it counts the conversations of its own names)."""
        elsewhere: set[str] = set()
        for was in self._draining[provider]:
            elsewhere |= (await self._store.members(f"active:{was}")).keys()
        if not elsewhere:
            del self._draining[provider]
            return 0
        elsewhere.discard(session)
        if elsewhere:
            elsewhere -= (await self._store.members(f"active:{provider}")).keys()
        return len(elsewhere)

    @staticmethod
    def leaves_locally(mark: ActiveMark) -> bool:
        """Whether `leave(mark)` stays in this process (no shared-store call)."""
        return mark is _ANONYMOUS or not mark.shared

    async def leave(self, mark: ActiveMark) -> None:
        if mark is _ANONYMOUS:
            return
        store = self._store if mark.shared else self._marks
        await store.leave(mark.group, mark.session, mark.token)
        local = self._local
        if local is not None and local.moved and not mark.shared:  # a reload moved some
            moved = local.forget(mark.group, mark.session, mark.token)
            if moved is not None:  # this one, to the shared store: it leaves there too
                await self._store.leave(mark.group, mark.session, moved)

    def _moved(self, mark: ActiveMark) -> str | None:
        """The shared token of a local mark a reload moved (`share`), forgotten here."""
        if mark.shared or self._local is None or not self._local.moved:
            return None
        return self._local.forget(mark.group, mark.session, mark.token)

    async def share(self, providers: Sequence[str]) -> int:
        """Move the marks this replica keeps in memory on `providers` (a reload gave them a
        session limit: `provider-ban`) to the shared store, where the limit counts the
        conversations they already serve; a call begun before and marked from now on (it
        waited for a key slot) is marked there too (`enter`). Returns how many moved."""
        if self._local is None:  # they are in the store already
            return 0
        groups = [f"active:{provider}" for provider in providers]
        return await self._local.share(self._store, groups, self._config.active_ttl_s)

    @property
    def mark_ttl_s(self) -> float:
        """A mark's backstop expiry (`active_ttl_s`): a request that outlasts it renews it."""
        return self._config.active_ttl_s

    async def renew(self, mark: ActiveMark) -> ActiveMark:
        """Keep `mark` past its TTL (a long stream): a fresh mark first, then the old one left,
        so the session never counts out meanwhile. No limit is asked: the request is on the
        provider, whatever others started since (its mark may have expired already)."""
        if mark is _ANONYMOUS:
            return mark
        store = self._store if mark.shared else self._marks
        ttl_s = self._config.active_ttl_s
        token = await store.enter(mark.group, mark.session, limit=None, ttl_s=ttl_s)
        if token is None:  # nothing refuses a mark without a limit; kept if something did
            return mark
        with contextlib.suppress(StoreUnavailableError):  # the old one then ends by its TTL
            await store.leave(mark.group, mark.session, mark.token)
        renewed = ActiveMark(mark.group, mark.session, token, mark.shared)
        if (moved := self._moved(mark)) is not None:  # its copy in the shared store too
            copy = ActiveMark(mark.group, mark.session, moved)
            try:
                copy = await self.renew(copy)
            finally:  # kept for the renewed mark's leave (renewed or not)
                assert self._local is not None
                self._local.moved[(renewed.group, renewed.session, renewed.token)] = copy.token
        return renewed

    async def active(self, provider: str) -> dict[str, int]:
        found: dict[str, int] = {}
        for name in self.renames.provider_names(provider):  # calls under way on an old name
            group = f"active:{name}"
            marks = [await self._store.members(group)]
            if self._local is not None:  # those moved to the store are counted there
                marks.append(self._local.unmoved(group))
            for session, count in (item for found_in in marks for item in found_in.items()):
                found[session] = found.get(session, 0) + count
        return found

    async def exclusions(self, provider: str) -> tuple[list[str], list[str]]:
        """(sessions banned from `provider`, "session deployment" skips on it), for operators."""
        banned: set[str] = set()
        skipped: set[str] = set()
        current = self.renames.current
        for name in self.renames.provider_names(provider):  # a ban under an old name holds
            banned |= (await self._store.members(f"banned:{name}")).keys()
            for skip in await self._store.members(f"skipped:{name}"):
                session, _, deployment = skip.partition(" ")
                skipped.add(f"{session} {current.get(deployment, deployment)}")
        return sorted(banned), sorted(skipped)


_ANONYMOUS = ActiveMark("", "", "")
