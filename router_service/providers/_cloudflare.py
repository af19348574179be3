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
from router_service.outcomes import Outcome, Scope
from router_service.providers._base import media_unsupported
from router_service.providers._classify import upstream_wait
from router_service.providers._openai import OpenAIAdapter
from router_service.providers._transport import JsonObject, root_error

# Workers AI internal error code → the HTTP status it is documented with (errors page above);
# 10000 is the v4 API's "Authentication error", 971 its rate limit ("Please wait and consider
# throttling your request speed", a 429: https://developers.cloudflare.com/fundamentals/api/
# reference/limits/). 5005 is said as a 400, not its 405: the caller's method was right.
_STATUS_BY_CODE = {
    10000: 401,
    971: 429,
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
    5005: 400,
    3007: 408,
    3008: 408,
    3006: 413,
    3036: 429,
    3040: 429,
}
# Codes whose outcome is not what their status says:
# - 3040 "Out of capacity" ("No more data centers to forward the request to"; "Capacity
#   temporarily exceeded" from a binding) is a 429 far below any rate limit: Workers AI's
#   capacity for the model, not the key's pace. Every key would meet it: the deployment cools
#   and the group's next answers (UPSTREAM_ERROR), as for a 503.
# - 3042 "The model name is invalid" is the deployment's model id, wrong for every caller and
#   every key (Workers AI's model ids are the same for every account; a private model refused
#   an account is 3041 / 5018): the deployment cools for everyone and the group's next answers
#   (UPSTREAM_ERROR at deployment scope, as Azure's DeploymentNotFound and Vertex's 404), so
#   the requests that follow do not each spend a call on it.
# - 5007 "No such model ${model} or task" and 5005 "The model does not support LoRa inference"
#   are what this deployment cannot do for this request (UNSUPPORTED_INPUT): the group's next
#   deployment may serve. Not the caller's body alone (5007 may be the task: a caller embedding
#   with a chat group; 5005 a LoRA adapter that another model takes), nor the deployment's for
#   everyone: a caller asking the wrong task must not set the model aside for every caller.
_OUTCOME_BY_CODE = {
    3040: (Outcome.UPSTREAM_ERROR, None),
    3042: (Outcome.UPSTREAM_ERROR, Scope.DEPLOYMENT),
    5005: (Outcome.UNSUPPORTED_INPUT, None),
    5007: (Outcome.UNSUPPORTED_INPUT, None),
}
# 3042 is said as what the operator fixes: the deployment's model id is wrong.
_MODEL_NOT_FOUND = (
    "Cloudflare Workers AI has no such model (3042: {message}): the deployment's `model` is not "
    "one of the provider's models."
)


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
        code = code if isinstance(code, int) and not isinstance(code, bool) else None
        if code is not None and (status < 400 or code == 5005):
            status = _STATUS_BY_CODE.get(code, status)
        failure = super()._failure(status, error, headers, sent)
        known = _OUTCOME_BY_CODE.get(code) if code is not None else None
        if known is None:
            return failure
        outcome, scope = known
        detail = failure.message
        if code == 3042:
            detail = _MODEL_NOT_FOUND.format(message=error.get("message") or "invalid model")
        return UpstreamFailure(
            outcome,
            detail,
            upstream_status=failure.upstream_status,
            retry_after_s=upstream_wait(outcome, headers, self.clock),
            scope=scope,
            upstream_error=failure.upstream_error,
        )

    def _in_answer(self, failure: UpstreamFailure) -> None:
        """A code of `_OUTCOME_BY_CODE` says whose failure it is in a stream as before one (3042
        the deployment's model id, 3040 its capacity); any other is scoped as every stream's."""
        code = (failure.upstream_error or {}).get("code")
        if not isinstance(code, int) or code not in _OUTCOME_BY_CODE:
            super()._in_answer(failure)

    async def list_models(self, api_key: str, timeout_s: float) -> list[str]:
        data = await self._get_json(
            f"{self.account_base}/models/search", api_key, timeout_s, {"per_page": "1000"}
        )
        models = data.get("result")
        if not isinstance(models, list):
            raise UpstreamFailure(Outcome.UPSTREAM_ERROR, "malformed model list")
        return [str(m["name"]) for m in models if isinstance(m, dict) and "name" in m]
