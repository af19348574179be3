"""How Amazon Bedrock says things: its errors (`{"message"}` with the exception's name in
`x-amzn-ErrorType`), stream exceptions as event-stream messages, and its two ways to
authenticate, which the fake checks: a Bedrock API key (any bearer token; scenarios decide
which are bad) or a SigV4 signature, verified with the secret the fake holds for its access key
id (`FakeUpstreamState.aws_credentials`).

Shapes from https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html
(errors and their statuses), API_runtime_ConverseStreamOutput.html (stream exceptions), and the
AWS common errors (UnrecognizedClientException, InvalidSignatureException).
"""

from __future__ import annotations

import hmac
from typing import Any

import orjson
from aiohttp import web

from router_service.providers._eventstream import encode_message
from router_service.providers._sigv4 import (
    AwsCredentials,
    SignedRequestParts,
    parse_authorization,
    sign,
)

from ._dialects import Dialect, bearer
from ._scenario import Scenario

JsonObject = dict[str, Any]

_TYPES = {
    400: "ValidationException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    424: "ModelErrorException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}
_MESSAGES = {
    "ValidationException": "Input validation failed. Check your request parameters.",
    "AccessDeniedException": "You don't have access to the model with the specified model ID.",
    "ResourceNotFoundException": "The specified resource ARN was not found.",
    "ModelTimeoutException": "The request took too long to process.",
    "ModelErrorException": "The request failed due to an error while processing the model.",
    "ThrottlingException": "Too many requests, please wait before trying again.",
    "InternalServerException": "An internal server error occurred. Retry your request.",
    "ServiceUnavailableException": "The service isn't currently available. Try again later.",
}
_INVALID_TOKEN = "The security token included in the request is invalid."
_BAD_SIGNATURE = (
    "The request signature we calculated does not match the signature you provided. Check "
    "your AWS Secret Access Key and signing method. Consult the service documentation for "
    "details."
)
# Messages that name their own exception (not the one their status stands for).
_TYPE_OF_MESSAGE = {
    _INVALID_TOKEN: "UnrecognizedClientException",
    _BAD_SIGNATURE: "InvalidSignatureException",
}


def _type_for(status: int) -> str:
    return _TYPES.get(status, "InternalServerException" if status >= 500 else "ValidationException")


def stream_exception(exception_type: str, message: str) -> bytes:
    """A ConverseStream exception message (`:message-type: exception`)."""
    headers = {
        ":message-type": "exception",
        ":exception-type": exception_type,
        ":content-type": "application/json",
    }
    return encode_message(headers, orjson.dumps({"message": message}))


def stream_event(event_type: str, payload: JsonObject) -> bytes:
    headers = {
        ":message-type": "event",
        ":event-type": event_type,
        ":content-type": "application/json",
    }
    # Bedrock pads its events with a `p` field of varying length (against size side channels).
    return encode_message(headers, orjson.dumps({**payload, "p": "abcdefghij"[: len(event_type)]}))


class BedrockDialect(Dialect):
    name = "bedrock"
    stream_content_type = "application/vnd.amazon.eventstream"

    def api_key(self, request: web.Request) -> str:
        """The bearer token, or the access key id a SigV4 signature names (checked later)."""
        signed = parse_authorization(request.headers.get("Authorization", ""))
        return signed.access_key_id if signed is not None else bearer(request)

    def error_body(self, status: int, message: str | None = None) -> JsonObject:
        return {"message": message or _MESSAGES[_type_for(status)]}

    def error_headers(self, status: int, body: JsonObject) -> dict[str, str]:
        named = _TYPE_OF_MESSAGE.get(str(body.get("message")), _type_for(status))
        return {"x-amzn-ErrorType": f"{named}:http://internal.amazon.com/coral/com.amazon.bedrock/"}

    def invalid_key(self) -> tuple[int, JsonObject]:
        return 403, {"message": _INVALID_TOKEN}

    def blocked_reply(self, reason: str) -> tuple[int, JsonObject]:
        # A guardrail that intervened with no output of its own: a 200 with that stop reason.
        usage = {"inputTokens": 1, "outputTokens": 0, "totalTokens": 1}
        output = {"message": {"role": "assistant", "content": []}}
        return 200, {"output": output, "stopReason": "guardrail_intervened", "usage": usage}

    def blocked_events(self, body: JsonObject) -> list[bytes]:
        return [
            stream_event("messageStart", {"role": "assistant"}),
            stream_event("messageStop", {"stopReason": body["stopReason"]}),
            stream_event("metadata", {"usage": body["usage"], "metrics": {"latencyMs": 1}}),
        ]

    def default_wrapped(self) -> JsonObject:
        return {"message": _MESSAGES["InternalServerException"]}

    def wrapped_body(self, sc: Scenario) -> JsonObject:
        return self.wrapped_inner(sc)

    def wrapped_event(self, sc: Scenario) -> bytes:
        inner = self.wrapped_inner(sc)
        code = inner.get("code")
        named = _type_for(code) if isinstance(code, int) else "InternalServerException"
        if named == "ModelErrorException":
            named = "ModelStreamErrorException"
        message = str(inner.get("message") or _MESSAGES.get(named, named))
        return stream_exception(named[0].lower() + named[1:], message)

    def model_list(self, models: list[str]) -> JsonObject:
        summaries = [
            {"modelId": m, "modelName": m, "providerName": "Fake", "modelArn": f"arn:fake:{m}"}
            for m in models
        ]
        return {"modelSummaries": summaries}


BEDROCK = BedrockDialect()


async def auth_problem(
    request: web.Request, credentials: dict[str, tuple[str, str | None]]
) -> tuple[int, str] | None:
    """(status, message) when the request's SigV4 signature does not hold, else None. A bearer
    token (a Bedrock API key) is not checked here: scenarios decide which keys are bad."""
    header = request.headers.get("Authorization", "")
    if not header.startswith("AWS4-HMAC-SHA256"):
        return None
    signed = parse_authorization(header)
    known = credentials.get(signed.access_key_id) if signed is not None else None
    if signed is None or known is None:
        return 403, _INVALID_TOKEN
    secret, token = known
    if token is not None and request.headers.get("x-amz-security-token") != token:
        return 403, _INVALID_TOKEN
    names = signed.signed_headers
    if signed.service != "bedrock" or "host" not in names or "x-amz-date" not in names:
        return 403, _BAD_SIGNATURE
    headers = {name: request.headers.get(name, "") for name in names}
    date_time = headers.pop("x-amz-date")
    headers.pop("x-amz-security-token", None)  # sign() adds it from the credentials
    parts = SignedRequestParts(
        request.method,
        request.raw_path.partition("?")[0],
        headers,
        await request.read(),
        tuple(request.query.items()),
    )
    expected = sign(
        parts, AwsCredentials(signed.access_key_id, secret, token), signed.region, date_time
    )
    if not hmac.compare_digest(expected["authorization"], header.strip()):
        return 403, _BAD_SIGNATURE
    return None
