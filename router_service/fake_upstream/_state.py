"""Call records, counters and await-able state changes shared by the fake upstream's handlers."""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ._content import said
from ._entra import EntraOAuth
from ._google_oauth import GoogleOAuth
from ._managed_identity import ManagedIdentities
from ._scenario import WILDCARD, Scenario, ScenarioTable

# The test credentials the fake knows unless told others: a bedrock provider's IAM key
# `FAKE_AWS_ACCESS_KEY_ID:FAKE_AWS_SECRET_ACCESS_KEY` is signed and checked with them.
FAKE_AWS_ACCESS_KEY_ID = "AKIAFAKEUPSTREAM0001"
FAKE_AWS_SECRET_ACCESS_KEY = "fakeSecretKey/For+SigV4+Tests0000000000"

T = TypeVar("T")
# How long `wait_for` waits by default: a hang guard for what must happen, not a measure (a
# loaded CI machine is slow); a window that must stay open is given its own `timeout`.
WAIT_GUARD_S = 15.0

DEFAULT_MODELS: tuple[str, ...] = (
    "gpt-4o-mini",
    "gpt-4o",
    "fake-model",
    "text-embedding-3-small",
)

# Request fields the OpenAI API defines; anything else lands in CallRecord.extra_fields so tests
# can see exactly which non-standard fields a router forwarded.
_KNOWN_FIELDS: dict[str, frozenset[str]] = {
    "/v1/chat/completions": frozenset(
        [
            "model",
            "messages",
            "stream",
            "stream_options",
            "tools",
            "tool_choice",
            "temperature",
            "top_p",
            "n",
            "stop",
            "max_tokens",
            "max_completion_tokens",
            "presence_penalty",
            "frequency_penalty",
            "logit_bias",
            "logprobs",
            "top_logprobs",
            "user",
            "seed",
            "response_format",
            "parallel_tool_calls",
            "functions",
            "function_call",
            "service_tier",
            "store",
            "metadata",
            "reasoning_effort",
            "modalities",
            "audio",
            "prediction",
        ]
    ),
    "/v1/embeddings": frozenset({"model", "input", "dimensions", "encoding_format", "user"}),
}


@dataclass
class CallRecord:
    """What one request to the fake upstream looked like and how it ended.

    `outcome` is one of: ok, error_status, wrapped_error, blocked, truncated, stalled, reset,
    bad_request, refused (Azure's without `api-key` or `api-version`), client_disconnected,
    shutdown ("stalled" only while still in flight).
    """

    seq: int
    path: str
    key: str
    model: str
    stream: bool
    body: dict[str, Any]
    scenario: Scenario | None
    headers: dict[str, str] = field(default_factory=dict)
    status: int | None = None
    chunks_sent: int = 0
    completed: bool = False
    client_disconnected: bool = False
    finished: bool = False
    outcome: str | None = None
    started_at: float = field(default_factory=time.monotonic)
    ended_at: float | None = None
    peer: str = ""  # the client's address and port: one per TCP connection
    query: dict[str, str] = field(default_factory=dict)  # the URL's (Azure's `api-version`)

    @property
    def extra_fields(self) -> dict[str, Any]:
        known = _KNOWN_FIELDS.get(self.path)
        if known is None:
            return {}
        return {k: v for k, v in self.body.items() if k not in known}

    @property
    def duration_ms(self) -> float | None:
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at) * 1000.0

    def summary(self) -> dict[str, Any]:
        """JSON-safe view without the request body (bodies can be large)."""
        return {
            "seq": self.seq,
            "path": self.path,
            "key": self.key,
            "model": self.model,
            "stream": self.stream,
            "scenario": self.scenario.to_dict() if self.scenario is not None else None,
            "status": self.status,
            "chunks_sent": self.chunks_sent,
            "completed": self.completed,
            "client_disconnected": self.client_disconnected,
            "finished": self.finished,
            "outcome": self.outcome,
            "duration_ms": self.duration_ms,
        }


def _matches(record: CallRecord, key: str | None, model: str | None, path: str | None) -> bool:
    if key is not None and record.key != key:
        return False
    if model is not None and record.model != model:
        return False
    # Suffix match so tests can say path="/chat/completions" or the full "/v1/chat/completions".
    return path is None or record.path.endswith(path)


class FakeUpstreamState:
    """Scenarios, call records and counters. Mutated only from the event loop thread."""

    def __init__(self, models: Sequence[str] | None = None, *, max_records: int = 10_000) -> None:
        self.models: list[str] = list(models) if models is not None else list(DEFAULT_MODELS)
        self.scenarios = ScenarioTable()
        # IAM credentials the Bedrock routes verify SigV4 signatures with: access key id →
        # (secret access key, session token or None).
        self.aws_credentials: dict[str, tuple[str, str | None]] = {
            FAKE_AWS_ACCESS_KEY_ID: (FAKE_AWS_SECRET_ACCESS_KEY, None)
        }
        self.records: deque[CallRecord] = deque(maxlen=max_records)
        self._max_records = max_records
        self._in_flight = 0
        # Google's OAuth2 token endpoint, for Vertex AI's routes (service accounts, tokens).
        self.google = GoogleOAuth()
        # Microsoft Entra ID's token endpoint, for Azure OpenAI's routes (service principals).
        self.entra = EntraOAuth()
        # Azure's managed identity endpoints (IMDS, App Service's): they issue Entra's tokens.
        self.managed_identities = ManagedIdentities(self.entra)
        self._reset_counters()
        # Plain futures (not asyncio.Condition) so one state object can outlive an event loop.
        self._waiters: set[asyncio.Future[None]] = set()
        self._holding = False
        self.holding_sidebands = False  # `hold_sidebands`
        self._releases = 0  # how many times `release` was called: a mid-stream gate's signal
        self.held = 0  # calls waiting at the gate now (`hold`)

    def _reset_counters(self) -> None:
        # Totals are kept apart from `records` so they stay exact after the deque drops old calls.
        self._seq = 0
        self._completion_ids = 0
        self.client_disconnects = 0
        self.by_key: Counter[str] = Counter()
        self.by_model: Counter[str] = Counter()
        self.by_key_model: Counter[str] = Counter()
        self.by_path: Counter[str] = Counter()

    # ---- scenarios ---------------------------------------------------------------------

    def set_scenario(
        self, scenario: Scenario, key: str = WILDCARD, model: str = WILDCARD, text: str = WILDCARD
    ) -> None:
        self.scenarios.set(scenario, key=key, model=model, text=text)

    def remove_scenario(
        self, key: str = WILDCARD, model: str = WILDCARD, text: str = WILDCARD
    ) -> bool:
        return self.scenarios.remove(key=key, model=model, text=text)

    def clear_scenarios(self) -> None:
        self.scenarios.clear()

    def load_rules(self, rules: Iterable[Mapping[str, Any]]) -> None:
        self.scenarios.load(rules)

    # ---- queries -----------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def calls(
        self, key: str | None = None, model: str | None = None, path: str | None = None
    ) -> list[CallRecord]:
        return [r for r in self.records if _matches(r, key, model, path)]

    def count(
        self,
        key: str | None = None,
        model: str | None = None,
        path: str | None = None,
        text: str | None = None,  # the calls whose last user message says it
    ) -> int:
        calls = self.calls(key=key, model=model, path=path)
        return len([r for r in calls if text is None or said(r.body) == text])

    def last(
        self, key: str | None = None, model: str | None = None, path: str | None = None
    ) -> CallRecord | None:
        for record in reversed(self.records):
            if _matches(record, key, model, path):
                return record
        return None

    def counters(self, last_n: int = 100) -> dict[str, Any]:
        recent = list(self.records)[-last_n:] if last_n > 0 else []
        return {
            "total": self._seq,
            "by_key": dict(self.by_key),
            "by_model": dict(self.by_model),
            "by_key_model": dict(self.by_key_model),
            "by_path": dict(self.by_path),
            "in_flight": self._in_flight,
            "client_disconnects": self.client_disconnects,
            "records": [r.summary() for r in recent],
        }

    def reset(self, *, scenarios: bool = True) -> None:
        """Forget records and counters (and scenarios unless told not to). In-flight calls keep
        running and still finish into their (now detached) records."""
        self.records = deque(maxlen=self._max_records)
        self._reset_counters()
        if scenarios:
            self.scenarios.clear()
        self.notify()

    # ---- holding answers ---------------------------------------------------------------

    def hold(self) -> None:
        """Calls from now on wait before their answer (and before any fault of their scenario)
        until `release`: a test makes sure others arrive while they are upstream. `held`
        counts those waiting; `wait_for(lambda: state.held == n)` waits for them."""
        self._holding = True

    def hold_sidebands(self) -> None:
        """WebRTC calls' sidebands from now on wait before their handshake (before the call is
        looked up) until `release`; other calls answer: a test hangs a call up before its
        sideband attaches. They count in `held` too."""
        self.holding_sidebands = True

    def release(self) -> None:
        """Let every held call (and every later one) answer."""
        self._holding = False
        self.holding_sidebands = False
        self._releases += 1
        self.notify()

    async def gate(self, *, always: bool = False) -> None:
        """Where a call waits while answers are held (ends by `release` or cancellation).
        `always`: wait for the next `release` even when answers are not held (a stream's
        `Scenario.held_after_chunks`: it is under way, and stays so until the test says)."""
        if not (self._holding or always):
            return
        released = self._releases
        self.held += 1
        self.notify()
        try:
            while self._releases == released if always else self._holding:
                waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                self._waiters.add(waiter)
                try:
                    await waiter
                finally:
                    self._waiters.discard(waiter)
        finally:
            self.held -= 1
            self.notify()

    # ---- waiting -----------------------------------------------------------------------

    async def wait_for(
        self,
        predicate: Callable[[], T | None],
        timeout: float = WAIT_GUARD_S,  # noqa: ASYNC109 - a plain deadline is the API tests want
        *,
        what: str | None = None,
    ) -> T:
        """Wait until `predicate()` is truthy (re-checked on every state change); return it.

        Tests use this instead of sleeping. Raises TimeoutError describing the state on timeout.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = predicate()
            if result:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(self._timeout_message(predicate, timeout, what))
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.add(waiter)
            try:
                async with asyncio.timeout(remaining):
                    await waiter
            except TimeoutError:
                pass  # loop once more: re-check the predicate, then raise with context
            finally:
                self._waiters.discard(waiter)

    async def wait_for_count(
        self,
        n: int,
        *,
        key: str | None = None,
        model: str | None = None,
        path: str | None = None,
        timeout: float = WAIT_GUARD_S,  # noqa: ASYNC109 - same deadline semantics as wait_for
    ) -> list[CallRecord]:
        """Wait until at least `n` matching calls have *finished*; return those calls."""

        def done() -> list[CallRecord]:
            finished = [r for r in self.calls(key, model, path) if r.finished]
            return finished if len(finished) >= n else []

        what = f"{n} finished call(s) matching key={key!r} model={model!r} path={path!r}"
        return await self.wait_for(done, timeout, what=what)

    async def wait_idle(self, timeout: float = WAIT_GUARD_S) -> None:  # noqa: ASYNC109
        await self.wait_for(lambda: self._in_flight == 0, timeout, what="in_flight == 0")

    def _timeout_message(
        self, predicate: Callable[[], object], timeout: float, what: str | None
    ) -> str:
        desc = what or getattr(predicate, "__qualname__", repr(predicate))
        recent = [r.summary() for r in list(self.records)[-5:]]
        return (
            f"FakeUpstreamState.wait_for timed out after {timeout}s waiting for {desc}; "
            f"total calls={self._seq}, in_flight={self._in_flight}, last records={recent}"
        )

    def notify(self) -> None:
        """Wake every wait_for(); called after any record or counter change."""
        waiters, self._waiters = self._waiters, set()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # ---- used by the request handlers ---------------------------------------------------

    def begin_call(
        self,
        *,
        path: str,
        key: str,
        model: str,
        stream: bool,
        body: dict[str, Any],
        scenario: Scenario | None,
        headers: dict[str, str],
    ) -> CallRecord:
        self._seq += 1
        record = CallRecord(self._seq, path, key, model, stream, body, scenario, headers)
        self.records.append(record)
        self.by_key[key] += 1
        self.by_model[model] += 1
        self.by_key_model[f"{key}|{model}"] += 1
        self.by_path[path] += 1
        self._in_flight += 1
        self.notify()
        return record

    def end_call(self, record: CallRecord) -> None:
        record.finished = True
        record.ended_at = time.monotonic()
        if record.client_disconnected:
            self.client_disconnects += 1
        self._in_flight -= 1
        self.notify()

    def next_completion_id(self) -> str:
        self._completion_ids += 1
        return f"chatcmpl-fake-{self._completion_ids}"
