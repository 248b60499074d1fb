"""Headers every answer carries: the browser security headers, and CORS only for origins the operator allowed.

* Security headers on every answer, API and console alike (the local front adds the console's to its files; this
  module's middleware puts the API's on every Chalice answer, in Lambda as in the local stack): a
  ``Content-Security-Policy`` (the API's answers are data, never a page: ``default-src 'none'``; the console's
  loads only its own scripts and styles and talks only to its own origin), ``X-Content-Type-Options: nosniff``,
  ``X-Frame-Options: DENY`` and ``Referrer-Policy: no-referrer`` (a token in a query must not leak through a
  ``Referer``).
* CORS: none by default. The console and the API share one origin (``make run``, the stack's distribution), so a
  page of another origin gets nothing it could read. ``CORS_ORIGINS`` lists origins that may: their requests get
  ``Access-Control-Allow-Origin`` naming them (``Vary: Origin``), others none. The routes are then registered with
  Chalice's CORS configuration, so that API Gateway answers preflight requests itself; it can name one origin only
  (the first listed), hence the local front answers preflights for every listed origin, and a deployment should
  list one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping
from typing import Any, Final

from chalice.app import CORSConfig, Request, Response

API_CSP: Final = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
"""An API answer is data: nothing in it may load or run, nor be framed."""
CONSOLE_CSP: Final = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
                      "font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; object-src 'none'; "
                      "base-uri 'self'; form-action 'self'; frame-ancestors 'none'")
"""The console: its own files only (no inline script, no other origin), its own API and websocket
(``connect-src 'self'`` covers ``ws:``/``wss:`` to the same host), never framed."""
SECURITY: Final[dict[str, str]] = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
ALLOWED_HEADERS: Final = ("Authorization", "Content-Type", "X-Request-Id")
"""What a page of an allowed origin may send (preflight ``Access-Control-Allow-Headers``)."""
EXPOSED_HEADERS: Final = "X-Request-Id, Retry-After, Content-Disposition"
ALLOWED_METHODS: Final = "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"
PREFLIGHT_MAX_AGE_S: Final = 600


def security_headers(csp: str = API_CSP) -> dict[str, str]:
    return {"Content-Security-Policy": csp, **SECURITY}


def cors_config(origins: tuple[str, ...]) -> CORSConfig | None:
    """Chalice's CORS configuration of every route (API Gateway's preflight answers), or None without origins."""
    if not origins:
        return None
    return CORSConfig(allow_origin=origins[0], allow_headers=list(ALLOWED_HEADERS),
                      expose_headers=[name.strip() for name in EXPOSED_HEADERS.split(",")],
                      max_age=PREFLIGHT_MAX_AGE_S)


def allowed_origin(origin: str | None, origins: tuple[str, ...]) -> str | None:
    """What ``Access-Control-Allow-Origin`` says to a request from ``origin``: ``*``, the origin, or None."""
    if not origins:
        return None
    if origins == ("*",):
        return "*"
    if origin and origin.rstrip("/").lower() in origins:
        return origin
    return None


def cors_headers(origin: str | None, origins: tuple[str, ...]) -> dict[str, str]:
    """The CORS headers of an answer to a request from ``origin`` (none unless it is allowed)."""
    allowed = allowed_origin(origin, origins)
    if allowed is None:
        return {}
    headers = {"Access-Control-Allow-Origin": allowed, "Access-Control-Expose-Headers": EXPOSED_HEADERS}
    if allowed != "*":
        headers["Vary"] = "Origin"
    return headers


def preflight_headers(origin: str | None, origins: tuple[str, ...]) -> dict[str, str]:
    """The answer to a preflight (``OPTIONS`` with ``Access-Control-Request-Method``) from ``origin``."""
    headers = cors_headers(origin, origins)
    if headers:
        headers.update({"Access-Control-Allow-Methods": ALLOWED_METHODS,
                        "Access-Control-Allow-Headers": ", ".join(ALLOWED_HEADERS),
                        "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_S)})
    return headers


def _without(headers: MutableMapping[str, Any], names: tuple[str, ...]) -> None:
    lowered = {name.lower() for name in names}
    for key in [key for key in headers if key.lower() in lowered]:
        del headers[key]


_CORS_NAMES: Final = ("Access-Control-Allow-Origin", "Access-Control-Allow-Headers", "Access-Control-Allow-Methods",
                      "Access-Control-Expose-Headers", "Access-Control-Max-Age", "Access-Control-Allow-Credentials")


def headers_middleware(origins: tuple[str, ...]) -> Callable[[Request, Callable[[Request], Response]], Response]:
    """Chalice HTTP middleware: the security headers on every answer; CORS for the request's origin when allowed
    (Chalice's static ``Access-Control-Allow-Origin`` replaced by the one that fits, or removed)."""

    def middleware(request: Request, get_response: Callable[[Request], Response]) -> Response:
        response = get_response(request)
        headers = response.headers
        for name, value in security_headers().items():
            headers.setdefault(name, value)
        if origins:
            origin = _header(request.headers, "origin")
            _without(headers, _CORS_NAMES)
            headers.update(cors_headers(origin, origins))
        return response

    return middleware


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    value = headers.get(name)
    if value is None:
        value = next((item for key, item in headers.items() if key.lower() == name), None)
    return value
