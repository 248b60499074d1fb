"""The REST API: routes as data (``routes.ROUTES``), handlers that know nothing of Chalice, one view wrapper.

``app.py`` registers every route with ``view_for``, which also authenticates every route that is not ``public``.
"""

from __future__ import annotations

from collections.abc import Callable

from chalice import Chalice
from chalice.app import Response

from chalicelib.config import get_services

from .auth import WWW_AUTHENTICATE, authenticate, unauthorized_body
from .errors import error_body
from .observability import logger, tracer
from .web import Route, dispatch, json_response


def max_body_bytes() -> int:
    return get_services().settings.max_body_bytes


def view_for(route: Route, app: Chalice) -> Callable[..., Response]:
    """The Chalice view of one route: the request goes through ``web.dispatch`` inside a trace subsegment."""

    def view(**path_params: str) -> Response:
        tracer.put_annotation(key="route", value=route.name)
        request = app.current_request
        principal = None
        if not route.public:  # the one place every non-public route is guarded, whenever it was added
            try:
                principal = authenticate(request.headers if request else None,
                                         request.query_params if request else None)
            except Exception:
                logger.exception("authentication failed", extra={"route": route.name})
                return json_response(500, error_body(500, "internal server error"))
            if principal is None:
                return json_response(401, unauthorized_body(), WWW_AUTHENTICATE)
        return dispatch(route, request, path_params, max_body_bytes, principal=principal)

    view.__name__ = view.__qualname__ = route.name
    traced: Callable[..., Response] = tracer.capture_method(capture_response=False)(view)
    return traced
