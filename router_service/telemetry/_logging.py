"""Logs as JSON lines: time, level, component, logger, message, the current trace and span ids,
and a record's `extra` fields. Every line goes through the redactor first: configured secrets
(upstream keys, the Redis URL, the admin token), any URL's password, a credential in a URL's
query and anything shaped like a bearer token or an API key are masked, whatever logged them.

    {"ts": "2026-10-02T09:14:03.512Z", "level": "WARNING", "component": "router",
     "logger": "switchboard.router", "message": "...", "trace_id": "4bf9…", "span_id": "00f0…"}
"""

from __future__ import annotations

import functools
import itertools
import logging
import re
import sys
import threading
import time
import weakref
from collections.abc import Iterable
from typing import Any

import orjson
from opentelemetry import trace

from router_service.telemetry._current import current_span

__all__ = [
    "CREDENTIAL_NAME",
    "REDACTOR",
    "JsonFormatter",
    "Redactor",
    "TextFormatter",
    "configure_logging",
]

MASK = "[redacted]"
# Bearer credentials, OpenAI-style `sk-…` keys, Google `AIza…` keys, Anthropic `sk-ant-…`;
# ephemeral client secrets (`ek_…`); whatever follows an API-key header's name (`x-api-key`,
# `x-goog-api-key`, Azure's `api-key`) or a browser's Realtime subprotocol
# (`openai-insecure-api-key.<key>`), as a WebSocket handshake's debug lines write them: a
# caller's key may have any shape (a configured client key is known by its hash only), so
# what follows `Bearer ` or a key's name is masked up to a delimiter, of whatever characters.
# A JSON line escapes a message's quotes (`\"api-key\": \"…\"`): the name's may be escaped.
_KEY_CHARS = r"[^\s,;\"'}\\]"
_PATTERNS = re.compile(
    rf"(?i:bearer\s+){_KEY_CHARS}{{6,}}|\bsk-[A-Za-z0-9_-]{{8,}}|\bAIza[0-9A-Za-z_-]{{20,}}"
    rf"|\bek_[A-Za-z0-9_-]{{16,}}|(?i:api-key(?:\.|\\?[\"']?\s*[:=]\s*\\?[\"']?)){_KEY_CHARS}+"
)
# A URL's password (`redis://user:password@host`, `socks5://:password@gw`): an error's words
# and tracebacks quote URLs, not only the configured ones the redactor was told of. The scheme,
# user and host stay (where it failed); a JSON line's quotes and spaces end the search. The
# userinfo ends at the authority's last `@`, as urllib, httpx and redis-py read it: a user that
# is an e-mail address, or a password holding an `@` as typed, is no way around the mask.
_URL_PASSWORD = re.compile(r"(://[^\s/:\"']*:)[^\s/\"']+@")
_URL_MASK = rf"\1{MASK}@"
# A credential in a URL's query (or fragment): `?key=` (Google's), `?token=`, `&access_token=`,
# `?api_key=`, `&sig=`, `?bearer=`… A caller puts its key there (uvicorn's INFO line of each
# WebSocket handshake quotes the path with its query), of any shape: the value is masked up to
# the next parameter, the name stays. A `;` starts a parameter too (`?a=1;token=`, a path's
# matrix `/x;token=`); a value runs on over one (`?token=a;b` masked whole). Each name's search
# ends at the next non-name character, so a line costs work linear in its length.
_CREDENTIAL_NAME = (
    r"(?i:[\w.-]*(?:key|token|secret|password|passwd|pwd|sig|signature|auth|authorization|bearer))"
)
_QUERY_SECRET = re.compile(rf"([?&#;]{_CREDENTIAL_NAME}=)[^\s&#\"'\\]+")
# A query parameter's name that says it holds a credential (what `_QUERY_SECRET` masks).
CREDENTIAL_NAME = re.compile(_CREDENTIAL_NAME)
_QUERY_MASK = rf"\1{MASK}"
# LogRecord attributes that are not `extra` fields.
# A record's attributes that are not its own fields (`extra=`); uvicorn's `color_message` is its
# message again with terminal colour codes, for its own formatter only.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}
# Loggers by package, for the `component` field.
_COMPONENTS = (
    ("router_service.fake_upstream", "fake-upstream"),
    ("router_service", "router"),
    ("http_edge", "edge"),
    ("clients", "client"),
    ("uvicorn", "edge"),
    ("switchboard.", ""),  # switchboard.router -> router
)


class Redactor:
    """Masks known secrets and secret-shaped strings.

    Known secrets come by source (a router's config file, an edge's, secrets given by name),
    each source's replaced by its next `replace` (a reload's file), and by holder (`hold`: a
    runtime, whose secrets stay masked while it lives). A reload's old runtime, still serving
    the calls begun on it (a Realtime session up to an hour, a batch, a background response),
    keeps the keys the reload removed masked until nothing holds it any more, then they go. A
    reload that changes nothing changes nothing here. So the list, and what each line costs to
    search, is bounded by the sources' secrets and those of the runtimes still alive."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._sources: dict[str, frozenset[str]] = {}
        self._held: dict[int, frozenset[str]] = {}
        # Holders gone (their finalizers, run by the garbage collector at any allocation:
        # they only append here), settled by the next line or change.
        self._gone: list[int] = []
        self._holders = itertools.count()
        self._lock = threading.Lock()  # a line logged on another thread settles too
        self._secrets: list[str] = []
        self.replace("given", secrets)

    def replace(self, source: str, secrets: Iterable[str]) -> None:
        """`source`'s secrets from now on, in place of those it gave before (those a holder
        still holds stay masked: `hold`)."""
        with self._lock:
            self._sources[source] = _variants(secrets)
            self._known()

    def hold(self, holder: object, secrets: Iterable[str]) -> None:
        """Mask `secrets` while `holder` lives (a runtime: while any call, session or job
        still holds it), whatever the sources say."""
        with self._lock:
            token = next(self._holders)
            self._held[token] = _variants(secrets)
            weakref.finalize(holder, self._gone.append, token)
            self._known()

    def _known(self) -> None:
        while self._gone:
            self._held.pop(self._gone.pop(), None)
        known = set().union(*self._sources.values(), *self._held.values())
        self._secrets = sorted(known, key=len, reverse=True)  # longest first: no partial masks

    def __len__(self) -> int:
        """How many strings each line is searched for (each secret as given and as escaped)."""
        return len(self._secrets)

    def __call__(self, text: str) -> str:
        # A holder went: its secrets are no longer masked. Unless the lock is held: a line
        # logged under it (a collection a change set off finalizes what logs) or while another
        # thread changes the list masks them one line more, where waiting would deadlock.
        if self._gone and self._lock.acquire(blocking=False):
            try:
                self._known()
            finally:
                self._lock.release()
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        if "://" in text and "@" in text:  # ~40 ns; the search, some µs a line
            text = _URL_PASSWORD.sub(_URL_MASK, text)
        # The search costs some µs a line (a text line always has `=`: its fields); a query
        # parameter is after one of these (~80 ns to look).
        if "=" in text and ("?" in text or "&" in text or "#" in text or ";" in text):
            text = _QUERY_SECRET.sub(_QUERY_MASK, text)
        # The pattern scan costs ~20 µs a line (a case-insensitive alternation at every
        # position); a secret-shaped string always contains one of these, found in well under 1.
        if "sk-" in text or "AIza" in text or "ek_" in text:
            return _PATTERNS.sub(MASK, text)
        lowered = text.lower()
        if "bearer" in lowered or "api-key" in lowered:
            return _PATTERNS.sub(MASK, text)
        return text


def _variants(secrets: Iterable[str]) -> frozenset[str]:
    """Each secret as given and as a JSON line (and a text line's quoted field) writes it: a
    quote, a backslash or a control character in a secret is escaped there, and the secret as
    given not found."""
    given = {s for s in secrets if len(s) >= 4}
    return frozenset(given | {orjson.dumps(s).decode()[1:-1] for s in given})


# The process's redactor: the log's (`configure_telemetry` gives it the config's secrets, a
# runtime its config's, a reload the new file's), and what a failed span's status and exception
# event say goes through it too (`_served.status_message`, `LeanSpan.record_exception`).
REDACTOR = Redactor()


@functools.cache
def component(logger: str) -> str:
    for prefix, name in _COMPONENTS:
        if logger.startswith(prefix):
            return name or logger.removeprefix(prefix).split(".", 1)[0]
    return logger.split(".", 1)[0]


def _trace_ids() -> dict[str, str]:
    span_context = current_span().get_span_context()
    if not span_context.is_valid:
        return {}
    return {
        "trace_id": trace.format_trace_id(span_context.trace_id),
        "span_id": trace.format_span_id(span_context.span_id),
    }


class JsonFormatter(logging.Formatter):
    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.redactor = Redactor() if redactor is None else redactor  # empty is falsy (`__len__`)

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname,
            "component": component(record.name),
            "logger": record.name,
            "message": record.getMessage(),
            **_trace_ids(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry.setdefault(
                    key, value if isinstance(value, int | float | bool) else str(value)
                )
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        line = orjson.dumps(entry, default=str).decode()
        return self.redactor(line)


class TextFormatter(logging.Formatter):
    """The human format (`switchboard dev`), redacted and with the trace id when there is one."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")
        self.redactor = Redactor() if redactor is None else redactor  # empty is falsy (`__len__`)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        # A record's own fields (`extra=`: an audit line's client, method, peer…) after it.
        extra = " ".join(
            f"{key}={_field(value)}"
            for key, value in record.__dict__.items()
            if key not in _STANDARD and not key.startswith("_")
        )
        if extra:
            text += " " + extra
        ids = _trace_ids()
        if ids:
            text += f" trace_id={ids['trace_id']} span_id={ids['span_id']}"
        return self.redactor(text)


def _field(value: object) -> str:
    """A field's value as one token: quoted (JSON) when it holds a space, `=`, a quote or a
    control character. Some come from callers (an audit line's `forwarded_for` is what the
    caller's metadata says): `1.2.3.4 client=ops` must not read as a second field."""
    text = str(value)
    if text and text.isprintable() and not any(c in text for c in ' ="'):
        return text
    return orjson.dumps(text).decode()


def _timestamp(created: float) -> str:
    return f"{_second(int(created))}.{int(created % 1 * 1000):03d}Z"


@functools.lru_cache(maxsize=4)
def _second(whole: int) -> str:
    # Lines come many to a second (an audit line per call): format each second once.
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))


def configure_logging(fmt: str, level: str, redactor: Redactor) -> logging.Handler:
    """One stderr handler on the root logger (replacing any), JSON or text, redacting."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(redactor) if fmt == "json" else TextFormatter(redactor))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Fields no formatter of ours prints, which every record would otherwise compute (the
    # caller's frame walk, thread and process lookups): the logging HOWTO's "Optimization".
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    # One line per upstream request adds nothing to its span; warnings still come through.
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, root.level))
    return handler
