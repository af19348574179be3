"""RESP2, the Redis wire format, and Redis URLs: what `_resp.py`'s client speaks, without I/O.

Commands are arrays of bulk strings; replies are read from a connection's bytes as they arrive,
cut anywhere (`ReplyReader`). Error replies are values, so that a pipeline's other replies still
count.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

__all__ = [
    "MORE",
    "Arg",
    "Command",
    "RedisAddress",
    "RedisReplyError",
    "ReplyReader",
    "checked",
    "encode",
    "first_error",
    "pairs",
    "parse_url",
    "raw",
    "redacted",
    "url_problem",
]

Arg = str | int | bytes
Command = Sequence[Arg]


class RedisReplyError(Exception):
    """An error reply from Redis (`-ERR …`, `-NOSCRIPT …`)."""


@dataclass(frozen=True, slots=True)
class RedisAddress:
    host: str = "127.0.0.1"
    port: int = 6379
    path: str | None = None  # a unix socket
    tls: bool = False
    username: str | None = None
    password: str | None = None
    db: int = 0


def parse_url(url: str) -> RedisAddress:
    """`redis://[[user]:password@]host[:port][/db]`, `rediss://…` (TLS),
    `unix://[[user]:password@]/path[?db=N]`."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"unsupported Redis URL scheme {parts.scheme!r}")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    query = parse_qs(parts.query)
    if parts.scheme == "unix":
        db = int(query.get("db", ["0"])[0])
        return RedisAddress(path=parts.path, username=username, password=password, db=db)
    path_db = parts.path.strip("/")
    db = int(path_db) if path_db else int(query.get("db", ["0"])[0])
    return RedisAddress(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 6379,
        tls=parts.scheme == "rediss",
        username=username,
        password=password,
        db=db,
    )


# The one query parameter `parse_url` reads.
_QUERY = frozenset({"db"})


def url_problem(url: str) -> str | None:
    """Why `url` is no Redis URL `parse_url` reads, quoting nothing of it (a password misread
    as the path, the port or the query would be shown otherwise); None when it reads."""
    try:
        parse_url(url)
        parts = urlsplit(url)
        if parts.fragment:  # a `#` in a password: the host and the rest would be cut off
            raise ValueError
        query = parse_qs(parts.query, keep_blank_values=True)
    except ValueError:
        return (
            "state.url is not a Redis URL the router reads: redis://[user:password@]host[:port]"
            "[/db], rediss://… or unix://[[user]:password@]/path[?db=N], with a port and db that "
            "are numbers and a password's `/`, `?`, `#` and `@` percent-encoded"
        )
    if set(query) - _QUERY:
        # Unread, the setting would be silently dropped (`?password=`: no AUTH sent).
        return (
            "state.url is not a Redis URL the router reads: its only query parameter is db; "
            "a password goes before the host (redis://:password@host), percent-encoded"
        )
    if parts.username and parts.password is None:
        # No AUTH would be sent: a password written where the user goes, or an ACL user's
        # password forgotten, read as the default user (NOAUTH at the first command).
        return (
            "state.url is not a Redis URL the router reads: a user goes with its password "
            "(redis://user:password@host; `user:@` for one with none; a password alone: "
            "redis://:password@host)"
        )
    return None


def encode(command: Command) -> bytes:
    """One command as a RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(command)]
    for arg in command:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


# What `ReplyReader.read` returns when the bytes end inside a reply: wait for more.
MORE: Any = object()


class ReplyReader:
    """Replies from the bytes of a connection as they arrive, cut anywhere. A reply cut into
    many reads (a large MGET's) is not parsed again from its start at each read: the arrays it
    is inside and what they hold so far are kept, and reading resumes at the element the last
    read stopped in. Parsing costs what the bytes cost, however many reads brought them; arrays
    nest as deep as they come (no recursion)."""

    __slots__ = ("_buf", "_open", "_pos")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pos = 0  # where the next element starts
        self._open: list[tuple[list[Any], int]] = []  # arrays being read: items so far, count

    def feed(self, data: bytes) -> None:
        """Bytes read from the connection."""
        if self._pos:
            del self._buf[: self._pos]  # parsed: never read again
            self._pos = 0
        self._buf += data

    def read(self) -> Any:
        """The next reply, or `MORE` when the bytes end inside one. Error replies are returned
        as `RedisReplyError` values (a pipeline's other replies still count); bytes that are no
        RESP raise `ConnectionError` or `ValueError`."""
        buf, pos, open_arrays = self._buf, self._pos, self._open
        while True:
            end = buf.find(b"\r\n", pos)
            if end < 0:
                self._pos = pos
                return MORE
            kind, after = buf[pos], end + 2
            if kind == 0x24:  # $ bulk string
                size = int(buf[pos + 1 : end])
                if size < 0:
                    value: Any = None
                elif len(buf) < after + size + 2:
                    self._pos = pos
                    return MORE
                else:
                    # Bytes that are no UTF-8 (a document's) come back as surrogates: `raw`.
                    value = buf[after : after + size].decode(errors="surrogateescape")
                    after += size + 2
            elif kind == 0x3A:  # : integer
                value = int(buf[pos + 1 : end])
            elif kind == 0x2A:  # * array
                count = int(buf[pos + 1 : end])
                if count > 0:
                    open_arrays.append(([], count))
                    pos = after
                    continue
                value = None if count < 0 else []
            elif kind == 0x2B:  # + simple string
                value = buf[pos + 1 : end].decode()
            elif kind == 0x2D:  # - error
                value = RedisReplyError(buf[pos + 1 : end].decode())
            else:
                raise ConnectionError(f"redis: unexpected reply type {chr(kind)!r}")
            pos = after
            while open_arrays:  # the element completes its array, and that one its own…
                items, count = open_arrays[-1]
                items.append(value)
                if len(items) < count:
                    break
                value = open_arrays.pop()[0]
            else:
                self._pos = pos
                return value


def redacted(url: str) -> str:
    """A Redis URL fit for a log line: the password replaced."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:" if parts.username else ":"
    return urlunsplit(parts._replace(netloc=f"{user}***@{netloc}"))


def raw(reply: str) -> bytes:
    """A bulk string's bytes as Redis holds them (the parser decodes every bulk string)."""
    return reply.encode(errors="surrogateescape")


def pairs(replies: list[Any]) -> Iterator[tuple[Any, Any]]:
    """[a, b, c, d] → (a, b), (c, d): pipelines of two commands per name, and Redis's flat
    field/value and member/score lists."""
    it = iter(replies)
    return zip(it, it, strict=True)


def first_error(replies: Iterable[Any]) -> RedisReplyError | None:
    """A pipeline's first error reply, if any."""
    return next((reply for reply in replies if isinstance(reply, RedisReplyError)), None)


def checked(replies: list[Any]) -> list[Any]:
    """A pipeline's replies, raising its first error reply."""
    error = first_error(replies)
    if error is not None:
        raise error
    return replies
