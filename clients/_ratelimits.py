"""A client's rate limit standing (``switchboard.v1.RateLimitStatus``) in the ``ErrorInfo``
metadata of the status that refuses it for its rpm or tpm: string keys named after the message's
fields (``ratelimit_remaining_requests``…), each only when set. Carried there rather than as a
status detail of our own type, so that callers that decode every detail with googleapis' types
(as other languages' clients do) keep working."""

from __future__ import annotations

from collections.abc import Mapping

from google.protobuf.descriptor import FieldDescriptor

from clients.switchboard.v1.routing_pb2 import RateLimitStatus

__all__ = ["rate_limit_from_metadata", "rate_limit_metadata"]

_PREFIX = "ratelimit_"
_FIELDS = RateLimitStatus.DESCRIPTOR.fields


def rate_limit_metadata(status: RateLimitStatus | None) -> dict[str, str]:
    """The ErrorInfo metadata entries of a standing (none without one); resets as exact floats."""
    if status is None:
        return {}
    return {_PREFIX + field.name: repr(value) for field, value in status.ListFields()}


def rate_limit_from_metadata(metadata: Mapping[str, str]) -> RateLimitStatus | None:
    """The standing an ErrorInfo's metadata carries; None when it carries none. A value that is
    not a number (a foreign server's) is left unset."""
    status = RateLimitStatus()
    found = False
    for field in _FIELDS:
        text = metadata.get(_PREFIX + field.name)
        if text is None:
            continue
        parse = float if field.type == FieldDescriptor.TYPE_DOUBLE else int
        try:
            setattr(status, field.name, parse(text))
        except (ValueError, OverflowError):
            continue
        found = True
    return status if found else None
