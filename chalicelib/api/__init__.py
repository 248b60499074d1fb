"""The REST API: routes as data (``routes.ROUTES``), handlers that know nothing of Chalice, one view wrapper.

``app.py`` registers every route with ``view_for``; authorization will attach there, in one place.
"""

from __future__ import annotations

from collections.abc import Callable

from chalice import Chalice
from chalice.app import Response

from chalicelib.config import get_services

from .observability import tracer
from .web import Route, dispatch


def max_body_bytes() -> int:
    return get_services().settings.max_body_bytes


def view_for(route: Route, app: Chalice) -> Callable[..., Response]:
    """The Chalice view of one route: the request goes through ``web.dispatch`` inside a trace subsegment."""

    def view(**path_params: str) -> Response:
        tracer.put_annotation(key="route", value=route.name)
        return dispatch(route, app.current_request, path_params, max_body_bytes)

    view.__name__ = view.__qualname__ = route.name
    traced: Callable[..., Response] = tracer.capture_method(capture_response=False)(view)
    return traced
