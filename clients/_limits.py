"""The contract's limits and the clients' ready wait: what the router reads too (its server's
message and metadata limits, session ids, the config's `edge.ready_wait_s`), kept apart from
`clients._base` so that a router, which opens no client, does not import the clients' channels
and calls for four numbers (tests/router_service/server/test_idle_imports.py)."""

from __future__ import annotations

__all__ = ["LARGEST_ANSWER_BYTES", "MAX_METADATA_BYTES", "MAX_SESSION_ID_BYTES", "READY_WAIT_S"]

# How long a call that may not be sent twice waits for a connection (clients/_ready.py): about
# what the retries of reads wait for a router back (`RETRY_POLICY`: ~3 s on average).
READY_WAIT_S = 3.0
# RoutingOptions.session_id's limit (routing.proto): ids name conversations, they do not carry
# data, and the router keeps no more than a hash of one. The edge checks `x-session-id` against
# it too, so both entrances refuse the same ids.
MAX_SESSION_ID_BYTES = 256
# The largest answer either side lets through, whatever the request limit: OpenAI's largest
# embedding batch (2,048 inputs × 3,072 values, sent as doubles) is ~50 MB, and a model with
# 4,096 dimensions ~67 MB. grpc allocates what a message needs, not its limit.
LARGEST_ANSWER_BYTES = 128 * 1024 * 1024
# A call's metadata limit, either way (HPACK's count: each pair's key, value and 32 bytes, grpc's
# own headers included), on the router's server and the clients' channels alike. grpc's own
# is a soft limit of 8 KiB, past which it refused calls (or answers) at random, the more the
# closer to its hard one, 16 KiB: a caller saw a call fail one time in twenty, then pass. Here
# the soft limit is the hard one: under it every call passes, over it every one is refused
# (RESOURCE_EXHAUSTED, `METADATA_TOO_LARGE`), as `LocalChannel` does in-process.
MAX_METADATA_BYTES = 16 * 1024
