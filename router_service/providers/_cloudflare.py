"""The Cloudflare Workers AI adapter: the OpenAI-compatible endpoints under an account, with
Cloudflare's own failure envelope.

Followed:
- OpenAI-compatible endpoints `/client/v4/accounts/{account_id}/ai/v1/chat/completions` and
  `/embeddings`: https://developers.cloudflare.com/workers-ai/configuration/open-ai-compatibility/
- Errors, their internal codes and HTTP statuses:
  https://developers.cloudflare.com/workers-ai/platform/errors/
- The v4 API envelope `{"result", "success", "errors": [{"code", "message"}], "messages"}`:
  https://developers.cloudflare.com/fundamentals/api/how-to/make-api-calls/
- Model search `/accounts/{account_id}/ai/models/search`:
  https://developers.cloudflare.com/api/resources/ai/subresources/models/methods/list/

`base_url` is the API root (https://api.cloudflare.com/client/v4) and `account_id` is required.
A body with `success: false` is an error whatever the HTTP status, in whole bodies and in every
stream chunk.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clients.switchboard.v1 import media_pb2
from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome
from router_service.providers._base import media_unsupported
from router_service.providers._openai import OpenAIAdapter
from router_service.providers._transport import JsonObject, root_error

# Workers AI internal error code → the HTTP status it is documented with (errors page above);
# 10000 is the v4 API's "Authentication error".
_STATUS_BY_CODE = {
    10000: 401,
    3003: 400,
    3039: 400,
    5004: 400,
    5007: 400,
    5018: 403,
    5016: 403,
    3023: 403,
    3041: 403,
    3042: 404,
    5019: 405,
    5005: 405,
    3007: 408,
    3008: 408,
    3006: 413,
    3036: 429,
    3040: 429,
}
# Codes about the deployment's model rather than the caller's body (a 400 / 404 would say it
# was the caller's): 3042 "The model name is invalid" is its id, MODEL_DENIED (set aside for that
# model); 5007 "No such model ${model} or task" may be the task (a caller embedding with a chat
# group), so only this deployment's UNSUPPORTED_INPUT: a caller must not set a model aside for
# everyone by asking it the wrong task. Either way the group's next deployment may serve.
_MODEL_CODES = {3042: Outcome.MODEL_DENIED, 5007: Outcome.UNSUPPORTED_INPUT}


def _envelope_error(data: Mapping[str, Any] | None) -> JsonObject | None:
    """The first error of a failure envelope, or None when `data` is not one."""
    if data is None or data.get("success") is not False:
        return None
    errors = data.get("errors")
    first = errors[0] if isinstance(errors, list) and errors else None
    if isinstance(first, dict):
        return dict(first)
    return {"message": "Cloudflare reported success: false without an error"}


class CloudflareAdapter(OpenAIAdapter):
    kind = "cloudflare"

    @property
    def takes_custom_tools(self) -> bool:
        return bool(self.config.custom_tools)  # Workers AI's models take function tools only

    @property
    def account_base(self) -> str:
        return f"{self.config.base_url}/accounts/{self.config.account_id}/ai"

    @property
    def api_base(self) -> str:
        return f"{self.account_base}/v1"

    def cannot_media(self, operation: media_pb2.MediaOperation.ValueType) -> UpstreamFailure | None:
        """The OpenAI-compatible endpoints are chat completions and embeddings only (Workers
        AI's own image and speech models take other bodies, at other paths)."""
        return media_unsupported(self.kind, operation)

    def _wrapped_error(self, data: JsonObject) -> tuple[int, JsonObject] | None:
        error = _envelope_error(data)
        if error is not None:
            return 200, error
        return super()._wrapped_error(data)

    def _error_of(self, status: int, data: JsonObject | None, content: bytes) -> JsonObject:
        error = _envelope_error(data)
        return error if error is not None else root_error(data, content)

    def _failure(
        self, status: int, error: JsonObject, headers: Mapping[str, str], sent: bytes = b""
    ) -> UpstreamFailure:
        code = error.get("code")
        if status < 400 and isinstance(code, int):
            status = _STATUS_BY_CODE.get(code, status)
        failure = super()._failure(status, error, headers, sent)
        outcome = _MODEL_CODES.get(code) if isinstance(code, int) else None
        if outcome is None:
            return failure
        return UpstreamFailure(
            outcome,
            failure.message,
            upstream_status=failure.upstream_status,
            upstream_error=failure.upstream_error,
        )

    async def list_models(self, api_key: str, timeout_s: float) -> list[str]:
        data = await self._get_json(
            f"{self.account_base}/models/search", api_key, timeout_s, {"per_page": "1000"}
        )
        models = data.get("result")
        if not isinstance(models, list):
            raise UpstreamFailure(Outcome.UPSTREAM_ERROR, "malformed model list")
        return [str(m["name"]) for m in models if isinstance(m, dict) and "name" in m]
