"""An admin credential in a URL's query (`/admin?token=…`) is refused, never read: a browser's
history, a proxy's access log and a `Referer` keep a URL's query, so the token would be in all
of them. The refusal says how to authenticate instead: the page's `#token=` fragment (a browser
never sends it) or its form, and `authorization: Bearer` for the API. Before routing, so no
answer repeats the URL either (a redirect of `/admin/` to `/admin` would, in its `Location`)."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from router_service.telemetry._logging import CREDENTIAL_NAME

from ._errors import error_body, error_response

__all__ = ["AdminQueryCredentials", "admin_path"]

_MESSAGE = (
    "The admin token is never taken from a URL's query ({name}): the browser's history and "
    "proxies' access logs keep it. Open `/admin#token=<token>` (a fragment is never sent) or "
    "type the token into the page's form; the admin API takes `authorization: Bearer <token>`. "
    "A token that was in a URL may be exposed: consider rotating edge.admin_token."
)
# What a refusal's answer says of itself: kept by nothing, sent on by no link (its `Referer`).
_HEADERS = {"cache-control": "no-store", "referrer-policy": "no-referrer"}
# The names said back as they are; any other is the caller's own words, which may be the token
# itself pasted as the query (`/admin?<token>`, a name whose words say credential): not repeated.
_NAMED = frozenset(
    {
        *("token", "access_token", "admin_token", "id_token", "auth", "key", "api_key"),
        *("apikey", "api-key", "password", "secret", "sig", "signature"),
    }
)


class AdminQueryCredentials:
    """Refuses a request for `/admin` or under it whose query names a credential parameter
    (`token`, `access_token`, `api_key`… as the log's redactor masks them) with a 400
    `credential_in_url`; every other request passes as it came (one prefix test)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # A request without a query or a `;` in its path (every completion's) costs two looks.
        name = (
            _credential(scope)
            if scope.get("query_string") or ";" in scope.get("path", "")
            else None
        )
        if name is None:
            await self.app(scope, receive, send)
            return
        shown = f"`{name.lower()}=`" if name.lower() in _NAMED else "a credential's parameter"
        message = _MESSAGE.format(name=shown)
        body = error_body(message, "invalid_request_error", code="credential_in_url")
        await error_response(400, body, headers=dict(_HEADERS))(scope, receive, send)


def admin_path(path: str) -> bool:
    """Whether `path` (tidied: `_paths.tidied`) is `/admin` or under it, matrix parameters
    (`/admin;x=1`) included."""
    return path == "/admin" or path.startswith(("/admin/", "/admin;"))


def _credential(scope: Scope) -> str | None:
    """The first credential-named parameter of an admin path's query or of its path's matrix
    parameters (`/admin/api/status;token=…`), else None. A `;` separates parameters as `&`
    does (`?a=1;token=…`), as the log's redactor reads them."""
    path: str = scope["path"]
    if scope["type"] != "http" or not admin_path(path):
        return None
    query = scope["query_string"].decode("latin-1")
    matrix = "&".join(segment.partition(";")[2] for segment in path.split("/") if ";" in segment)
    params = f"{query}&{matrix}".replace(";", "&")
    pairs = parse_qsl(params, keep_blank_values=True)
    return next((name for name, _ in pairs if CREDENTIAL_NAME.search(name)), None)
