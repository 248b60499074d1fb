"""HTTP plumbing between Chalice and the API functions: the route type, the request handlers see, and the one
view wrapper every route goes through (body size limit, JSON parsing, error answers).

Handlers take an ``ApiRequest`` and return a JSON-able body or a ``Reply``; they never see Chalice, so they can
be called directly and the same route table drives both Chalice and the OpenAPI document.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, TypeVar
from urllib.parse import unquote

from chalice.app import Request, Response
from pydantic import BaseModel, ValidationError

from chalicelib.core.actions import ActionError
from chalicelib.core.auth import Role
from chalicelib.core.metrics import MetricQueryError
from chalicelib.core.model import QuickIdError
from chalicelib.core.query import QueryError
from chalicelib.services.errors import (
    Conflict,
    DependencyFailed,
    Forbidden,
    InvalidInput,
    NotFound,
    ServiceError,
    TooLarge,
    TooManyAttempts,
    Unauthenticated,
)

from .errors import WWW_AUTHENTICATE, ApiError, error_body, from_json_error, from_validation_error, json_headers
from .observability import logger

if TYPE_CHECKING:
    from chalicelib.bootstrap import Container

M = TypeVar("M", bound=BaseModel)


@dataclass(slots=True)
class ApiRequest:
    """What a handler needs of an HTTP request."""

    method: str
    path: str
    path_params: dict[str, str] = field(default_factory=dict)
    query: dict[str, list[str]] = field(default_factory=dict)
    raw_body: bytes = b""
    request_id: str = ""
    principal: dict[str, Any] | None = None
    """Who is calling (``core.auth.principal``), set by ``view_for`` on every route that is not public."""
    forwarded_proto: str = ""
    """``X-Forwarded-Proto`` (``https`` behind API Gateway): cookies are marked ``Secure`` then."""
    content_type: str = ""
    """The ``Content-Type`` header as sent (routes taking files read the multipart boundary from it)."""
    accept: str = ""
    """The ``Accept`` header (a download answers a presigned URL as JSON to a client that asks for JSON)."""
    client_address: str = ""
    """The caller's address as the gateway saw it (``identity.sourceIp``: API Gateway's, or the local front's peer
    or trusted proxy): login failures are counted per address. Never a header the client writes itself."""
    container: Container = field(default=None)  # type: ignore[assignment]
    """The process's parts (``bootstrap.Container``): the services a handler calls, set by ``dispatch``."""

    def param(self, *names: str) -> str | None:
        """The last value of the first query parameter present among ``names`` (aliases), or None."""
        for name in names:
            values = self.query.get(name)
            if values:
                return values[-1]
        return None

    def params(self, *names: str) -> list[str]:
        """Every value of the query parameters ``names`` (a parameter may repeat)."""
        return [value for name in names for value in self.query.get(name, [])]

    def json(self) -> Any:
        """The body as JSON; 400 when it is missing or not JSON."""
        if not self.raw_body.strip():
            raise ApiError(400, "a JSON body is required", "body")
        try:
            return loads_body(self.raw_body)
        except json.JSONDecodeError as error:
            raise from_json_error(error) from None
        except (UnicodeDecodeError, RecursionError):
            raise ApiError(400, "body is not valid UTF-8 JSON", "body") from None

    def model(self, model: type[M], *, prefix: str = "") -> M:
        """The body validated by a pydantic model; 400 naming the first bad field."""
        return validate(model, self.json(), prefix=prefix)


MAX_INTEGER: Final = 2**63 - 1
"""The largest integer a body may hold (and ``-MAX_INTEGER - 1`` the smallest): what every store keeps exactly (SQLite
and DynamoDB numbers) and what fits in 64 bits. Beyond it a body is a 400 naming the field, not a 500 (Python refuses
to convert integers of more than 4,300 digits)."""


class _OutOfRange:
    """A number of a body no field can hold, left where it was parsed so that the error names its place."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _integer(text: str) -> int | _OutOfRange:
    if len(text) > 20:  # longer than any 64-bit integer: never converted (huge ones cost quadratic time)
        return _OutOfRange(text)
    value = int(text)
    return value if -MAX_INTEGER - 1 <= value <= MAX_INTEGER else _OutOfRange(text)


def _number(text: str) -> float | _OutOfRange:
    value = float(text)
    return value if math.isfinite(value) else _OutOfRange(text)


def _out_of_range(value: Any, path: str) -> tuple[str, str] | None:
    """Where the first out-of-range number is (a dotted path, as validation errors name fields) and its text."""
    if isinstance(value, _OutOfRange):
        return path or "body", value.text
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = _out_of_range(item, f"{path}.{key}" if path else str(key))
        if found is not None:
            return found
    return None


def loads_body(raw: bytes | str) -> Any:
    """JSON as ``json.loads`` reads it, but a number no field can hold (an integer past 64 bits, a float that
    overflows, ``NaN``/``Infinity``) is an ``ApiError`` 400 naming where it is."""
    odd: list[bool] = []

    def integer(text: str) -> int | _OutOfRange:
        parsed = _integer(text)
        if isinstance(parsed, _OutOfRange):
            odd.append(True)
        return parsed

    def number(text: str) -> float | _OutOfRange:
        parsed = _number(text)
        if isinstance(parsed, _OutOfRange):
            odd.append(True)
        return parsed

    def constant(text: str) -> _OutOfRange:
        odd.append(True)
        return _OutOfRange(text)

    data = json.loads(raw, parse_int=integer, parse_float=number, parse_constant=constant)
    if odd:
        try:
            found = _out_of_range(data, "")
        except RecursionError:
            found = None
        where, text = found or ("body", "")
        shown = text if len(text) <= 24 else f"{text[:12]}…({len(text)} characters)"
        raise ApiError(400, f"{where}: {shown} is out of range: integers go from -2^63 to 2^63-1, numbers must be "
                            "finite", where)
    return data


def validate(model: type[M], data: Any, *, prefix: str = "") -> M:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise from_validation_error(error, prefix) from None


@dataclass(slots=True)
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str | list[str]] = field(default_factory=dict)
    """A list value is a header sent several times (``Set-Cookie``)."""


Handler = Callable[[ApiRequest], Any]


@dataclass(frozen=True, slots=True)
class Param:
    """A query or path parameter, for the OpenAPI document."""

    name: str
    description: str
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})
    required: bool = False
    location: str = "query"


@dataclass(frozen=True, slots=True)
class Body:
    """A request body: a pydantic model, or a JSON schema for bodies that are not objects (id lists)."""

    description: str
    model: type[BaseModel] | None = None
    schema: Mapping[str, Any] | None = None
    example: Any = None
    many: int = 0
    """With a model: the body is a list of 1 to ``many`` of them."""


@dataclass(frozen=True, slots=True)
class Ok:
    """The success answer: description and schema (a model, a model's list page, or a JSON schema)."""

    description: str
    model: type[BaseModel] | None = None
    schema: Mapping[str, Any] | None = None
    page: bool = False
    status: int = 200
    content_type: str = "application/json"
    """What the answer is (a download: ``application/zip``)."""


DEFAULT_CONTENT_TYPES: Final = ("application/json",)


@dataclass(frozen=True, slots=True)
class Route:
    """One operation. The route table (``routes.ROUTES``) is the single source for Chalice and OpenAPI."""

    method: str
    path: str
    name: str
    handler: Handler
    summary: str
    tag: str
    ok: Ok
    params: tuple[Param, ...] = ()
    body: Body | None = None
    errors: tuple[int, ...] = (400, 404)
    public: bool = False
    """Open without credentials even once an authorizer exists (status, version, the OpenAPI document)."""
    optional_auth: bool = False
    """With ``public``: a valid token, when the request carries one, still names the principal (the reference's
    logout, which ends the caller's session if there is one and answers all the same)."""
    content_types: tuple[str, ...] = ("application/json",)
    """Request content types accepted (others get 415). Chalice checks the JSON-only default before the view; a
    route with others is registered for any type and checked in ``dispatch``, after authentication."""
    body_limit: Callable[[Container], int] | None = None
    """This route's largest body in bytes, in place of ``MAX_BODY_BYTES`` (file uploads)."""
    role: Role | None = None
    """The least role that may call it (``view_for`` answers 403 below it). Required unless ``public``: a route
    cannot be added without saying who may call it."""

    def __post_init__(self) -> None:
        if not self.public and self.role is None:
            raise ValueError(f"route {self.method} {self.path} ({self.name}) declares no role: give role=Role.VIEWER, "
                             "Role.USER or Role.ADMIN, or public=True")


# --------------------------------------------------------------------------------------------- dispatch


SERVICE_STATUS: Final[dict[type[ServiceError], int]] = {
    InvalidInput: 400, Unauthenticated: 401, Forbidden: 403, NotFound: 404, Conflict: 409, TooLarge: 413,
    TooManyAttempts: 429, DependencyFailed: 502,
}
"""The HTTP status of each kind of use-case error."""


def to_api_error(error: Exception) -> ApiError | None:
    """Use-case errors by their kind, core errors that name their input as 400s; anything else is not the
    client's fault."""
    if isinstance(error, ApiError):
        return error
    if isinstance(error, ServiceError):
        status = next((code for kind, code in SERVICE_STATUS.items() if isinstance(error, kind)), 400)
        if status == 401:
            return ApiError(401, error.message, error.field, dict(WWW_AUTHENTICATE), extra={"error": error.message})
        if isinstance(error, TooManyAttempts):
            return ApiError(429, error.message, error.field, {"Retry-After": str(error.retry_after_s)},
                            extra={"retryAfter": error.retry_after_s})
        return ApiError(status, error.message, error.field)
    if isinstance(error, QueryError):
        return ApiError(400, str(error), error.parameter)
    if isinstance(error, ActionError):
        return ApiError(400, str(error), error.field)
    if isinstance(error, MetricQueryError):
        return ApiError(400, str(error))
    if isinstance(error, QuickIdError):
        return ApiError(400, str(error), "id")
    if isinstance(error, ValidationError):
        return from_validation_error(error)
    return None


def json_response(status: int, body: Any, headers: Mapping[str, str | list[str]] | None = None) -> Response:
    return Response(body=body, status_code=status, headers=json_headers(headers))


def error_response(error: ApiError) -> Response:
    return json_response(error.status, error.body(), error.headers)


def to_api_request(request: Request | None, path_params: Mapping[str, str]) -> ApiRequest:
    if request is None:
        return ApiRequest("GET", "/", {k: unquote(v) for k, v in path_params.items()})
    query: dict[str, list[str]] = {}
    if request.query_params:
        for name in request.query_params:
            query[name] = list(request.query_params.getlist(name))
    context = request.context or {}
    identity = context.get("identity")
    source_ip = identity.get("sourceIp") if isinstance(identity, dict) else None
    raw_body = request.raw_body or b""
    return ApiRequest(
        method=request.method,
        path=str(context.get("resourcePath") or request.path),
        path_params={k: unquote(v) for k, v in path_params.items()},
        query=query,
        raw_body=raw_body.encode() if isinstance(raw_body, str) else raw_body,
        request_id=str(context.get("requestId") or ""),
        forwarded_proto=str(request.headers.get("x-forwarded-proto") or "").lower() if request.headers else "",
        content_type=str(request.headers.get("content-type") or "") if request.headers else "",
        accept=str(request.headers.get("accept") or "") if request.headers else "",
        client_address=str(source_ip or ""),
    )


def dispatch(route: Route, request: Request | None, path_params: Mapping[str, str], container: Container,
             principal: dict[str, Any] | None = None) -> Response:
    """Run one route's handler and answer in JSON, whatever happens."""
    started = time.perf_counter()
    try:
        api_request = to_api_request(request, path_params)
        api_request.principal = principal
        api_request.container = container
        limit = route.body_limit(container) if route.body_limit is not None else container.settings.max_body_bytes
        if len(api_request.raw_body) > limit:
            raise ApiError(413, f"request body is {len(api_request.raw_body)} bytes, more than {limit}", "body")
        if route.content_types != DEFAULT_CONTENT_TYPES:
            media_type = api_request.content_type.partition(";")[0].strip().lower() or "application/json"
            if media_type not in route.content_types:
                raise ApiError(415, f"unsupported media type {media_type!r}; send {', '.join(route.content_types)}",
                               "Content-Type")
        result = route.handler(api_request)
        reply = result if isinstance(result, Reply) else Reply(200, result)
        return json_response(reply.status, reply.body, reply.headers)
    except Exception as error:
        api_error = to_api_error(error)
        if api_error is None:
            logger.exception("unhandled error", extra={"route": route.name,
                                                       "duration_ms": round((time.perf_counter() - started) * 1000, 2)})
            return json_response(500, error_body(500, "internal server error"))
        return error_response(api_error)


def method_not_allowed(path: str, allowed: list[str]) -> Callable[..., Response]:
    """A view answering 405 for methods a path does not have (API Gateway would otherwise answer 403)."""
    allow = ", ".join(sorted(allowed))

    def view(**_path_params: str) -> Response:
        return json_response(405, error_body(405, f"method not allowed on {path}; allowed: {allow}"),
                             {"Allow": allow})

    return view
