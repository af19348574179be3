"""OAuth2 access tokens for pool keys that are credentials rather than API keys: one token cache,
whichever identity provider issues the tokens.

A kind whose keys are exchanged for tokens (`vertex`: Google service account keys; `azure`:
Microsoft Entra ID service principals, workload and managed identities) gives a
`TokenExchange`, the strategy that says what a key is and what request exchanges it;
`TokenSource` does the rest, once for every kind:

- tokens are cached per key (the configured secret) and exchanged again `REFRESH_MARGIN_S`
  before they expire, on the adapter's clock (a token issued for less than twice that, half
  way through its life: otherwise every call would exchange it again);
- one exchange per key at a time, however many calls need it (the others wait for its token,
  or hear its failure: a failing endpoint is not asked again by each of them in turn);
- a token still alive when its refresh fails (the endpoint down or throttling) is used until
  its last minute, the exchange tried again `REFRESH_RETRY_S` later (or when its `Retry-After`
  says, if later), not by every call (azure-identity's way: its
  `DEFAULT_TOKEN_REFRESH_RETRY_DELAY`); calls that come while a refresh is under way use the
  token alive still rather than wait for the exchange (an endpoint that hangs holds up one);
- a token endpoint's refusal (OAuth2's `{"error", "error_description"}`, RFC 6749 §5.2) is the
  key's AUTH_INVALID, its throttling RATE_LIMITED, its 5xx UPSTREAM_ERROR (with the wait its
  `Retry-After` asks);
- a token the API refused is dropped (`forget`), so that the key's next use exchanges anew.

`TokenAdapter` is the adapter half: each call's key becomes its bearer token before the kind's
wire adapter makes the call. Neither a key nor a token is ever in a message.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import replace
from typing import Any, Generic, TypeVar
from urllib.parse import urlencode

import httpx

from clients.switchboard.v1 import chat_pb2, embeddings_pb2, media_pb2
from router_service.clock import Clock
from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome, Scope
from router_service.providers._base import (
    ChatCall,
    EmbedCall,
    MediaCall,
    MediaPiece,
    ProviderAdapter,
)
from router_service.providers._http import map_transport_errors, send_upstream
from router_service.providers._token_answer import REFRESH_MARGIN_S, Token, issued_token

__all__ = [
    "REFRESH_MARGIN_S",
    "REFRESH_RETRY_S",
    "TokenAdapter",
    "TokenExchange",
    "TokenSource",
    "form_request",
]

# How long a token whose refresh failed serves (while alive) before the exchange is tried again.
REFRESH_RETRY_S = 30.0
# A token's last minute is not used even so: the API's clock may be ahead of this host's.
_EXPIRY_SKEW_S = 60.0

Credential = TypeVar("Credential")
# A streaming call a token adapter makes with a token for its key, and what it opens.
_Call = TypeVar("_Call", ChatCall, MediaCall)
_Stream = TypeVar("_Stream")


class TokenExchange(ABC, Generic[Credential]):
    """How one kind of credential becomes an access token: the part that differs between
    identity providers. Implementations hold no state; `TokenSource` caches."""

    @abstractmethod
    def parse(self, secret: str) -> Credential:
        """The credential a configured key is. Raises ValueError with a message that quotes
        nothing of the key."""

    def given_token(self, credential: Credential) -> str | None:
        """The token to send as it is, for a credential that is a token already; None for one
        that is exchanged (the default)."""
        return None

    @abstractmethod
    def name(self, credential: Credential) -> str:
        """The credential in messages, without its secret ("service account a@b")."""

    @abstractmethod
    def request(
        self, credential: Credential, now: float, timeout: dict[str, float]
    ) -> httpx.Request:
        """The token request that exchanges `credential` at `now` (httpx's `timeout` extension
        given). Raises ValueError when the credential cannot make one."""

    def challenged(
        self, credential: Credential, refused: httpx.Request, challenge: httpx.Response
    ) -> httpx.Request | None:
        """The request that answers a token endpoint's 401 challenge (Azure Arc's: prove you
        may read a file), or None: the 401 is the answer (the default). Raises ValueError when
        the challenge cannot be answered."""
        return None

    def unreachable(
        self, credential: Credential, name: str, failure: UpstreamFailure
    ) -> UpstreamFailure:
        """What it is that the token endpoint could not be reached (`failure`: the transport's
        CONNECT_FAILED, timeout or reset). By default what any upstream's would be; a kind
        whose endpoint is this host's own says the key cannot get in here."""
        return failure


def form_request(url: str, form: dict[str, str], timeout: dict[str, float]) -> httpx.Request:
    """A token endpoint's POST: the form URL-encoded, OAuth2's way (RFC 6749 §4.4.2)."""
    return httpx.Request(
        "POST",
        url,
        content=urlencode(form).encode("ascii"),
        headers={"content-type": "application/x-www-form-urlencoded", "accept": "application/json"},
        extensions={"timeout": timeout},
    )


class TokenSource(Generic[Credential]):
    """The bearer token of each configured key, cached. One per adapter (a config reload starts
    afresh)."""

    def __init__(
        self,
        exchange: TokenExchange[Credential],
        http: httpx.AsyncClient,
        clock: Clock,
        *,
        connect_s: float,
    ) -> None:
        self._exchange = exchange
        self._http = http
        self._clock = clock
        self._connect_s = connect_s
        # All four hold one entry per configured key at most: bounded by the config.
        self._credentials: dict[str, Credential] = {}
        self._tokens: dict[str, Token] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        # How many of a key's exchanges have ended, and the last one's failure (None: a token).
        self._ended: dict[str, tuple[int, UpstreamFailure | None]] = {}

    def credential(self, secret: str) -> Credential:
        found = self._credentials.get(secret)
        if found is None:
            try:
                found = self._exchange.parse(secret)
            except ValueError as exc:  # a key file that changed since the config loaded
                raise UpstreamFailure(
                    Outcome.AUTH_INVALID, f"unusable key: {exc}", scope=Scope.KEY
                ) from None
            self._credentials[secret] = found
        return found

    async def bearer(self, secret: str, timeout_s: float) -> str:
        """The token to send for `secret`, exchanging (once, whoever asks) when it has none
        that is good for more than REFRESH_MARGIN_S (half its life, for a short-lived one)."""
        credential = self.credential(secret)
        given = self._exchange.given_token(credential)
        if given is not None:
            return given
        token = self._fresh(secret)
        if token is not None:
            return token
        lock = self._locks.setdefault(secret, asyncio.Lock())
        if lock.locked():  # a refresh is under way: a token alive still serves meanwhile
            alive = self._tokens.get(secret)
            if alive is not None and self._usable_until(alive) > self._clock.now():
                return alive.value
        ended, _ = self._ended.get(secret, (0, None))
        async with lock:
            token = self._fresh(secret)  # a call ahead of us in the lock exchanged already
            if token is not None:
                return token
            now_ended, failure = self._ended.get(secret, (0, None))
            if failure is not None and now_ended != ended:  # it failed while we waited for it
                raise _again(failure)
            return await self._refresh(secret, credential, timeout_s)

    async def _refresh(self, secret: str, credential: Credential, timeout_s: float) -> str:
        """A new token for `secret`; when the exchange fails, the cached token if it is alive
        still (the exchange is tried again REFRESH_RETRY_S later, or as much later as the
        endpoint's `Retry-After` asks, but at its expiry at the latest)."""
        ended = self._ended.get(secret, (0, None))[0] + 1
        try:
            issued = await self._exchanged(credential, timeout_s)
        except UpstreamFailure as failure:
            self._ended[secret] = (ended, _again(failure))
            cached, now = self._tokens.get(secret), self._clock.now()
            usable_until = self._usable_until(cached) if cached is not None else now
            if cached is None or usable_until <= now:
                raise
            pause = max(REFRESH_RETRY_S, failure.retry_after_s or 0.0)
            retry_at = min(now + pause, usable_until)
            self._tokens[secret] = replace(cached, refresh_at=retry_at)
            return cached.value
        self._ended[secret] = (ended, None)
        self._tokens[secret] = issued
        return issued.value

    def forget(self, secret: str) -> None:
        """Drop the cached token of `secret` (the API refused it): the next use exchanges."""
        self._tokens.pop(secret, None)

    @staticmethod
    def _usable_until(token: Token) -> float:
        return token.expires_at - _EXPIRY_SKEW_S

    def _fresh(self, secret: str) -> str | None:
        token = self._tokens.get(secret)
        if token is not None and token.refresh_at > self._clock.now():
            return token.value
        return None

    async def _exchanged(self, credential: Credential, timeout_s: float) -> Token:
        now = self._clock.now()
        connect = min(self._connect_s, timeout_s)
        timeout = {"connect": connect, "read": timeout_s, "write": timeout_s, "pool": timeout_s}
        name = self._exchange.name(credential)
        try:
            request = self._exchange.request(credential, now, timeout)
        except ValueError as exc:  # a missing extra, a key that does not load
            raise UpstreamFailure(Outcome.AUTH_INVALID, f"{name}: {exc}", scope=Scope.KEY) from None
        response = await self._send(credential, name, request)
        if response.status_code == 401:
            try:
                answer = self._exchange.challenged(credential, request, response)
            except ValueError as exc:  # a challenge it will not answer (a file out of bounds)
                raise UpstreamFailure(
                    Outcome.AUTH_INVALID, f"{name}: {exc}", scope=Scope.KEY
                ) from None
            if answer is not None:
                response = await self._send(credential, name, answer)
        return issued_token(name, response, now, self._clock)

    async def _send(
        self, credential: Credential, name: str, request: httpx.Request
    ) -> httpx.Response:
        try:
            with map_transport_errors():
                return await send_upstream(self._http, request)
        except UpstreamFailure as failure:
            raise self._exchange.unreachable(credential, name, failure) from failure.__cause__


def _again(failure: UpstreamFailure) -> UpstreamFailure:
    """`failure` for another call that waited on the same exchange (each is scrubbed and
    raised on its own)."""
    return UpstreamFailure(
        failure.outcome,
        failure.message,
        upstream_status=failure.upstream_status,
        retry_after_s=failure.retry_after_s,
        scope=failure.scope,
        upstream_error=failure.upstream_error,
    )


class TokenAdapter(ProviderAdapter):
    """A kind whose keys are bearer tokens from `tokens`: each call's key becomes its token,
    then `wire` (the kind's wire format, sending its key as `Authorization: Bearer`) makes the
    call with it. A token the API refuses (AUTH_INVALID) is not used again."""

    wire: ProviderAdapter
    tokens: TokenSource[Any]

    def cannot_express(self, params: chat_pb2.ChatParams) -> UpstreamFailure | None:
        return self.wire.cannot_express(params)

    def cannot_media(self, operation: media_pb2.MediaOperation.ValueType) -> UpstreamFailure | None:
        return self.wire.cannot_media(operation)

    @property
    def stop_cap(self) -> int | None:
        return self.wire.stop_cap

    @property
    def refuses_blank_stops(self) -> bool:
        return self.wire.refuses_blank_stops

    @property
    def server_tools(self) -> frozenset[str]:
        return self.wire.server_tools

    @property
    def serves_responses_api(self) -> bool:
        return self.wire.serves_responses_api

    @property
    def takes_custom_tools(self) -> bool:
        return self.wire.takes_custom_tools

    @property
    def tool_types(self) -> frozenset[str] | None:
        return self.wire.tool_types

    def takes_thinking_blocks(self, upstream_model: str) -> bool:
        return self.wire.takes_thinking_blocks(upstream_model)

    def asks_stream_usage_of(self, upstream_model: str) -> bool:
        return self.wire.asks_stream_usage_of(upstream_model)

    def refused_stream_options(self, upstream_model: str) -> bool:
        return self.wire.refused_stream_options(upstream_model)

    def _refused(self, secret: str, failure: UpstreamFailure) -> None:
        if failure.outcome is Outcome.AUTH_INVALID:
            self.tokens.forget(secret)

    async def chat(self, call: ChatCall) -> chat_pb2.ChatCompletion:
        token = await self.tokens.bearer(call.api_key, call.timeout_s)
        try:
            return await self.wire.chat(replace(call, api_key=token))
        except UpstreamFailure as failure:
            self._refused(call.api_key, failure)
            raise

    def stream_chat(
        self, call: ChatCall
    ) -> AbstractAsyncContextManager[AsyncIterator[chat_pb2.ChatCompletionChunk]]:
        return self._token_stream(call.api_key, call.timeout_s, self.wire.stream_chat, call)

    def cannot_stream_media(
        self, operation: media_pb2.MediaOperation.ValueType, events: bool
    ) -> UpstreamFailure | None:
        return self.wire.cannot_stream_media(operation, events)

    def stream_media(
        self, call: MediaCall
    ) -> AbstractAsyncContextManager[AsyncIterator[MediaPiece]]:
        return self._token_stream(call.api_key, call.timeout_s, self.wire.stream_media, call)

    @asynccontextmanager
    async def _token_stream(
        self,
        secret: str,
        timeout_s: float,
        open_stream: Callable[[_Call], AbstractAsyncContextManager[_Stream]],
        call: _Call,
    ) -> AsyncIterator[_Stream]:
        """`open_stream(call)` with the call's key exchanged for its token."""
        token = await self.tokens.bearer(secret, timeout_s)
        try:
            async with open_stream(replace(call, api_key=token)) as stream:
                yield stream
        except UpstreamFailure as failure:
            self._refused(secret, failure)
            raise

    async def embed(self, call: EmbedCall) -> embeddings_pb2.EmbeddingResult:
        token = await self.tokens.bearer(call.api_key, call.timeout_s)
        try:
            return await self.wire.embed(replace(call, api_key=token))
        except UpstreamFailure as failure:
            self._refused(call.api_key, failure)
            raise

    async def media(self, call: MediaCall) -> media_pb2.MediaResult:
        refusal = self.wire.cannot_media(call.params.operation)
        if refusal is not None:  # nothing to exchange a token for
            raise refusal
        token = await self.tokens.bearer(call.api_key, call.timeout_s)
        try:
            return await self.wire.media(replace(call, api_key=token))
        except UpstreamFailure as failure:
            self._refused(call.api_key, failure)
            raise

    async def list_models(self, api_key: str, timeout_s: float) -> list[str]:
        token = await self.tokens.bearer(api_key, timeout_s)
        try:
            return await self.wire.list_models(token, timeout_s)
        except UpstreamFailure as failure:
            self._refused(api_key, failure)
            raise
