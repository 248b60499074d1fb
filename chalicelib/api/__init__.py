"""The REST API: routes as data (``routes.ROUTES``), handlers that know nothing of Chalice, one view wrapper.

``build_api(container)`` makes the Chalice app of the API function: every route of the table through ``view_for``,
which authenticates every route that is not ``public``, refuses (403) a principal whose role is below the route's
declared ``role``, and hands the handler the process's container (through ``ApiRequest.container``). ``app.py``
builds it for Lambda, the local stack for its front; tests for theirs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalice import Chalice
from chalice.app import Response

from .auth import authenticate, forbidden_body, unauthorized_body
from .errors import WWW_AUTHENTICATE, error_body
from .headers import cors_config, headers_middleware
from .observability import http_middleware, logger, tracer
from .routes import ROUTES, not_allowed_routes
from .web import DEFAULT_CONTENT_TYPES, Route, dispatch, json_response, method_not_allowed

if TYPE_CHECKING:
    from chalicelib.bootstrap import Container

APP_NAME = "mycontroller"
AUTHORIZER: Any = None
"""No API Gateway authorizer: ``view_for`` authenticates every route that is not ``public`` (Bearer header, the
``mc_access_token`` cookie or ``?access_token=``), the same in Lambda, ``chalice.test`` and the local stack; an
authorizer could not read the cookie and query forms alike, and would add a Lambda call per uncached token."""


def view_for(route: Route, app: Chalice, container: Container) -> Callable[..., Response]:
    """The Chalice view of one route: the request goes through ``web.dispatch`` inside a trace subsegment."""

    def view(**path_params: str) -> Response:
        tracer.put_annotation(key="route", value=route.name)
        request = app.current_request
        principal = None
        if route.public and route.optional_auth:
            try:
                principal = authenticate(container.auth, request.headers if request else None,
                                         request.query_params if request else None)
            except Exception:  # a store failing here only means "no principal": the route answers anyway
                logger.exception("optional authentication failed", extra={"route": route.name})
        elif not route.public:  # the one place every non-public route is guarded, whenever it was added
            try:
                principal = authenticate(container.auth, request.headers if request else None,
                                         request.query_params if request else None)
            except Exception:
                logger.exception("authentication failed", extra={"route": route.name})
                return json_response(500, error_body(500, "internal server error"))
            if principal is None:
                return json_response(401, unauthorized_body(), WWW_AUTHENTICATE)
            refused = forbidden_body(route, principal)  # the route's declared role, checked as surely
            if refused is not None:
                logger.info("forbidden", extra={"route": route.name, "role": principal.get("role"),
                                                "user_id": principal.get("userId")})
                return json_response(403, refused)
        return dispatch(route, request, path_params, container, principal=principal)

    view.__name__ = view.__qualname__ = route.name
    traced: Callable[..., Response] = tracer.capture_method(capture_response=False)(view)
    return traced


def build_api(container: Container) -> Chalice:
    """The Chalice app with every REST route bound to ``container``."""
    app = Chalice(app_name=APP_NAME)
    origins = container.settings.allowed_origins()
    cors = cors_config(origins) or False  # same origin unless CORS_ORIGINS names others (``headers.py``)
    app.register_middleware(headers_middleware(origins), "http")  # first: around the log line's middleware too
    app.register_middleware(http_middleware, "http")
    app.api.binary_types.append("multipart/form-data")  # firmware and backup uploads reach Lambda as bytes
    for route in ROUTES:
        content_types = list(route.content_types) if route.content_types == DEFAULT_CONTENT_TYPES else ["*/*"]
        app.route(route.path, methods=[route.method], name=route.name, cors=cors, content_types=content_types,
                  authorizer=None if route.public else AUTHORIZER)(view_for(route, app, container))
    for path, others, name, allowed in not_allowed_routes():
        app.route(path, methods=others, name=name, cors=cors)(method_not_allowed(path, allowed))
    return app
