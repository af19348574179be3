"""OpenAI's connection (its base URL, bearer headers) and its Realtime API: the socket
(`<base>/realtime?model=...`) and WebRTC calls (`<base>/realtime/calls`), kind openai only.
The OpenAI-compatible adapter (_openai.py) is built on it."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import orjson

from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome
from router_service.providers._base import RealtimeCall, RealtimeCallAnswer, websocket_url
from router_service.providers._transport import HttpAdapter

__all__ = ["OpenAIRealtime"]


class OpenAIRealtime(HttpAdapter):
    """Where an OpenAI-format server lives, how it is called, and its Realtime API."""

    kind = "openai"

    @property
    def api_base(self) -> str:
        """Where `/chat/completions`, `/embeddings` and `/models` live."""
        return self.config.base_url

    def _headers(self, api_key: str) -> dict[str, str]:
        return {
            **self.config.headers,
            "authorization": f"Bearer {api_key}",
            "content-type": "application/json",
        }

    def realtime_target(
        self, upstream_model: str, api_key: str
    ) -> tuple[str, dict[str, str]] | None:
        """`<base>/realtime?model=...` (wss), with the calls' headers. Kind openai only: the
        kinds built on it (cloudflare's gateway) have no realtime socket there."""
        if self.kind != "openai":
            return None
        headers = self._headers(api_key)
        headers.pop("content-type", None)
        url = (
            f"{websocket_url(self.config.base_url)}/realtime?model={quote(upstream_model, safe='')}"
        )
        return url, headers

    @property
    def offers_realtime_calls(self) -> bool:
        """OpenAI's WebRTC calls, `<base>/realtime/calls`: kind openai only, as its socket."""
        return self.kind == "openai"

    async def create_realtime_call(self, call: RealtimeCall) -> RealtimeCallAnswer:
        """`POST <base>/realtime/calls`, a form with `sdp` (application/sdp) and `session`
        (JSON), as OpenAI's SDK sends it: `201` with the SDP answer, the call id the last
        segment of its `Location` (`/v1/realtime/calls/{call_id}`)."""
        if not self.offers_realtime_calls:
            return await super().create_realtime_call(call)
        parts = [
            ("sdp", (None, call.sdp.encode(), "application/sdp")),
            ("session", (None, orjson.dumps(call.session), "application/json")),
        ]
        form = httpx.Request("POST", "http://form.invalid/", files=parts)
        content, kind = form.read(), form.headers["content-type"]
        url = f"{self.api_base}/realtime/calls"
        response = await self._post_for_answer(url, content, kind, call.api_key, call.timeout_s)
        call_id = response.headers.get("location", "").rstrip("/").rsplit("/", 1)[-1]
        if not call_id or not response.content:
            detail = f"HTTP {response.status_code} with no call id (Location) or no SDP answer"
            raise UpstreamFailure(Outcome.UPSTREAM_ERROR, detail)
        return RealtimeCallAnswer(call_id, response.content.decode("utf-8", "replace"))

    async def hangup_realtime_call(self, call_id: str, api_key: str, timeout_s: float) -> None:
        """`POST <base>/realtime/calls/{call_id}/hangup`."""
        if not self.offers_realtime_calls:
            return await super().hangup_realtime_call(call_id, api_key, timeout_s)
        url = f"{self.api_base}/realtime/calls/{quote(call_id, safe='')}/hangup"
        await self._post_for_answer(url, b"", "application/json", api_key, timeout_s)
        return None

    def realtime_sideband_target(
        self, call_id: str, api_key: str
    ) -> tuple[str, dict[str, str]] | None:
        """`<base>/realtime?call_id=...` (wss), with the key that made the call."""
        if not self.offers_realtime_calls:
            return None
        headers = self._headers(api_key)
        headers.pop("content-type", None)
        base = websocket_url(self.config.base_url)
        return f"{base}/realtime?call_id={quote(call_id, safe='')}", headers
