"""Which conversation a request belongs to, and the name its state is kept under."""

from __future__ import annotations

import hashlib
import re

import orjson

from clients import MAX_SESSION_ID_BYTES
from clients.switchboard.v1 import chat_pb2, routing_pb2
from router_service.errors import InvalidRequestError

# Hex digits of the SHA-256 a session's state is kept under: 128 bits, no collision in practice.
_KEY_HEX = 32
# What a session's digest (`session_digest`) begins with.
_DIGEST = "sid-sha256:"
_DIGEST_FORM = re.compile(f"{_DIGEST}[0-9a-f]{{{_KEY_HEX}}}")


def checked_session_id(explicit: str, *, param: str = "routing.session_id") -> str:
    """`explicit` (`x-session-id` / `RoutingOptions.session_id`), refused when it is absurdly
    long (InvalidRequestError naming `param`)."""
    size = len(explicit.encode())
    if size > MAX_SESSION_ID_BYTES:
        raise InvalidRequestError(
            f"`{param}` is {size} bytes long; at most {MAX_SESSION_ID_BYTES} are allowed.",
            param=param,
            code="session_id_too_long",
        )
    return explicit


def named_session_id(explicit: str, user: str) -> str:
    """The session a call names by its id and `user` (embeddings, a chat's `session_id_for`
    reads more): the caller's id (`x-session-id` header / gRPC field), else its OpenAI `user`
    (`user_session_id`), else "" (none named). So one caller's chats and embeddings of one
    `user` are one session (its sticky deployment, bans and `max_sessions` place), unless
    its chats set a `prompt_cache_key`, which names their conversation before `user`."""
    if explicit:
        return checked_session_id(explicit)
    return user_session_id(user) if user else ""


def session_id_for(explicit: str, params: chat_pb2.ChatParams) -> str:
    """The session a chat names: the caller's id (`x-session-id` header / gRPC field), else
    the one its own fields name (`caller_session_id`), else a stable hash of the
    conversation's opening: its first system (or developer) message and first user message,
    which every later turn repeats unchanged."""
    if explicit:
        return checked_session_id(explicit)
    if named := caller_session_id(params):
        return named
    digest = hashlib.sha256()
    opening = [
        next((m for m in params.messages if m.role in _SYSTEM_ROLES), None),
        next((m for m in params.messages if m.role == chat_pb2.ROLE_USER), None),
    ]
    for message in opening:
        digest.update(b"\x00" if message is None else _content_bytes(message))
        digest.update(b"\x01")
    return "h:" + digest.hexdigest()[:24]


def caller_session_id(params: chat_pb2.ChatParams) -> str:
    """The session a chat's own OpenAI fields name, the first it sets of: `prompt_cache_key`
    (OpenAI's word for requests to keep together, where their prompt is cached: the most
    specific), `user`, `safety_identifier` (the end user, as `user` was); "" when none."""
    extra = params.extra_json
    # Substrings first: most chats set neither, and their JSON is then never parsed here.
    if extra and ("prompt_cache_key" in extra or "safety_identifier" in extra):
        cache_key, end_user = _extra_names(extra)
    else:
        cache_key = end_user = ""
    if cache_key:
        return _field_session_id("prompt_cache_key", cache_key)
    if params.user:
        return user_session_id(params.user)
    return _field_session_id("safety_identifier", end_user) if end_user else ""


def _extra_names(extra_json: str) -> tuple[str, str]:
    """(`prompt_cache_key`, `safety_identifier`) of a chat's extra JSON; "" for one unset or
    not a string (the upstream refuses that, not the session)."""
    try:
        extra = orjson.loads(extra_json)
    except orjson.JSONDecodeError:
        return "", ""
    if not isinstance(extra, dict):
        return "", ""
    cache_key, end_user = extra.get("prompt_cache_key"), extra.get("safety_identifier")
    return (
        cache_key if isinstance(cache_key, str) else "",
        end_user if isinstance(end_user, str) else "",
    )


def user_session_id(user: str) -> str:
    """The session id a chat's OpenAI `user` names (`user:<user>`). A guardrail that redacts the
    `user` pins it as the call's explicit id before (`pin_session`), where ids are bounded: a
    `user` too long for one is named by its SHA-256 instead."""
    return _field_session_id("user", user)


def _field_session_id(field: str, value: str) -> str:
    """`<field>:<value>`, or `<field>-sha256:<its SHA-256>` when too long for a session id."""
    named = f"{field}:{value}"
    if len(named.encode()) <= MAX_SESSION_ID_BYTES:
        return named
    return f"{field}-sha256:" + hashlib.sha256(value.encode()).hexdigest()


def opening_session(routing: routing_pb2.RoutingOptions, params: chat_pb2.ChatParams) -> str:
    """The session a chat names without an explicit id (`caller_session_id`, else its opening), read
    before the request-side guardrails rewrite it (`pin_session`); "" when `routing` names
    one: that id wins whatever they rewrite. A stored conversation's opening is left to be
    named as redacted (`RoutingOptions.stored_conversation`): its later turns send it so."""
    if routing.session_id:
        return ""
    if routing.stored_conversation:
        return caller_session_id(params)
    return session_id_for("", params)


def stored_name(routing: routing_pb2.RoutingOptions, params: chat_pb2.ChatParams) -> str:
    """The name a stored conversation keeps (`StoredResponse.session_id`) for the turns that
    continue it (`previous_response_id`), which send its messages as stored, redacted: the
    digest (`session_digest`) of the one its chat is named by as sent (`session_id_for`; a
    redacted opening's: `pin_session`), so that two conversations a rule redacts alike stay
    two, and no caller's `x-session-id` is kept in clear. "" when its own fields name it
    (its later turns send them again) or its opening as stored does."""
    if routing.stored_conversation or caller_session_id(params):
        return ""
    return session_digest(session_id_for(routing.session_id, params))


def pin_session(
    routing: routing_pb2.RoutingOptions, params: chat_pb2.ChatParams, named: str
) -> None:
    """A guardrail rewrote the chat (an e-mail address a rule redacts in its `user` or its
    opening messages), which names its conversation when the caller gave no session id: the
    conversation keeps `named`, the name of the chat as sent (`opening_session`), so two
    conversations it redacts alike ("Customer: {email}") stay two (their bans, sticky
    deployments, `max_sessions` places), not one. Only the router sees it (the session key is
    its hash)."""
    if named and not routing.session_id and session_id_for("", params) != named:
        routing.session_id = named


def session_key(client: str, session: str) -> str:
    """The name a conversation's state (sticky deployment, bans, skips, active marks) is kept
    under: a truncated SHA-256 of the calling client's name and the session id, so that two
    clients naming the same conversation ("hi", one `user`) never share its rules, and no user
    name or e-mail address becomes a state key in clear. `client` is "" when the caller is not
    authenticated (open mode): such callers share sessions, as they always did. No session
    ("") stays "": nothing is kept for it."""
    if not session:
        return ""
    return client_scoped(client, session_digest(session))


def session_digest(session: str) -> str:
    """The digest a session's name is known by (`sid-sha256:` and 32 hex digits of its
    SHA-256): what a stored response keeps of it (`stored_name`), and what its key is made
    of (`session_key`), so a turn naming its conversation by the digest is the session its
    first turn named by the caller's id. A digest is its own ("": none)."""
    if not session or _is_digest(session):
        return session
    return _DIGEST + hashlib.sha256(session.encode()).hexdigest()[:_KEY_HEX]


def _is_digest(session: str) -> bool:
    return session.startswith(_DIGEST) and _DIGEST_FORM.fullmatch(session) is not None


def client_scoped(client: str, name: str) -> str:
    """A truncated SHA-256 of the calling client's name and `name`: what one client keeps
    (its sessions, its stored responses) under names no other client can reach."""
    # The client's length first: no (client, name) pair hashes the bytes of another.
    scoped = f"{len(client)}:{client}\x00{name}".encode()
    return hashlib.sha256(scoped).hexdigest()[:_KEY_HEX]


def client_document(kind: str, client: str, item: str) -> str:
    """The state-store name of what a client keeps (`kind`: "resp", "conv", "batch"…): the
    client's part first, because the memory store drops the documents of whoever holds the
    most, then the item's, both hashed (`client_scoped`)."""
    return f"{kind}:{client_scoped(client, '')}:{client_scoped(client, item)}"


_SYSTEM_ROLES = (chat_pb2.ROLE_SYSTEM, chat_pb2.ROLE_DEVELOPER)


def _content_bytes(message: chat_pb2.ChatMessage) -> bytes:
    """What an opening message says, as every later turn repeats it: its prompt-cache
    breakpoints (a part's `cache_control`) left out, which clients move to the latest message
    at each turn; text parts alone read as the text they add up to (one turn's string is the
    next's `[{"type": "text"}]`, where its breakpoint was)."""
    which = message.WhichOneof("content")
    if which == "text":
        return message.text.encode()
    if which != "parts":
        return b""
    content = message.parts
    if any(part.extra_json for part in content.parts):
        # Each re-encoded alike, marked or not: a gRPC caller's own JSON (`{"a": 1}`) says
        # what the router's re-encoding of it says once its breakpoint is taken out.
        content = chat_pb2.ContentParts(parts=[_unmarked(part) for part in content.parts])
    if all(part.WhichOneof("part") == "text" and not part.extra_json for part in content.parts):
        return "".join(part.text.text for part in content.parts).encode()
    return content.SerializeToString(deterministic=True)


def _unmarked(part: chat_pb2.ContentPart) -> chat_pb2.ContentPart:
    """`part` without its `cache_control` (a breakpoint, not what the message says)."""
    try:
        extra = orjson.loads(part.extra_json)
    except orjson.JSONDecodeError:
        return part
    if not isinstance(extra, dict):
        return part
    extra.pop("cache_control", None)
    try:
        # Its other keys in the order they came in: as a turn that sends the part unmarked has them.
        encoded = orjson.dumps(extra).decode() if extra else ""
    except TypeError:  # nested past orjson's depth: named as sent (the request is refused later)
        return part
    unmarked = chat_pb2.ContentPart()
    unmarked.CopyFrom(part)
    unmarked.extra_json = encoded
    return unmarked
