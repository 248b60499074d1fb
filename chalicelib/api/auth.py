"""Authentication at the API: the token a request carries, login and logout, users and service tokens.

A token is accepted as ``Authorization: Bearer <t>``, the ``mc_access_token`` cookie or the ``access_token`` query
parameter (the reference's three forms). ``view_for`` (``chalicelib/api/__init__.py``) calls ``authenticate`` for
every route of the table that is not ``public`` and answers 401 itself, so routes added later are covered without
doing anything. What a token stands for, and the users and tokens themselves, are ``services.auth.AuthService``'s.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from pydantic import Field as PydField

from chalicelib.core import auth as core
from chalicelib.core.metrics import MetricQueryError
from chalicelib.core.metrics import parse_duration as metric_duration_ms
from chalicelib.core.model import CamelModel, Kind, Record, now_ms
from chalicelib.core.query import parse_list_query
from chalicelib.core.secrecy import public
from chalicelib.services.auth import AuthService

from .errors import ApiError, bad_request, error_body
from .resources import id_list, list_public
from .web import ApiRequest, Reply, Route

COOKIE_NAME: Final = "mc_access_token"
REFERENCE_COOKIE: Final = "__mc_auth"
"""MyController v2's cookie, accepted as well as ours (a client of the reference may set it itself)."""
QUERY_NAME: Final = "access_token"
UNAUTHORIZED: Final = "authentication required: a valid token as 'Authorization: Bearer <token>', the " \
                      f"'{COOKIE_NAME}' cookie or the '{QUERY_NAME}' query parameter"
WWW_AUTHENTICATE: Final = {"WWW-Authenticate": 'Bearer realm="mycontroller"'}


# --------------------------------------------------------------------------------------------- tokens


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    for key, item in headers.items():  # a plain dict (a websocket event) is not case-insensitive
        if key.lower() == name:
            return item
    return None


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, equals, value = part.strip().partition("=")
        if equals and key.strip() == name:
            return value.strip().strip('"') or None
    return None


def token_from_request(headers: Mapping[str, str] | None, query: Mapping[str, Any] | None) -> str | None:
    """The token a request carries: the Bearer header, else the cookie, else the ``access_token`` parameter."""
    headers = headers or {}
    authorization = _header(headers, "authorization")
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    cookie = _header(headers, "cookie")
    if cookie:
        from_cookie = _cookie(cookie, COOKIE_NAME) or _cookie(cookie, REFERENCE_COOKIE)
        if from_cookie:
            return from_cookie
    if query:
        given = query.get(QUERY_NAME)
        if isinstance(given, list | tuple):
            given = given[-1] if given else None
        if isinstance(given, str) and given:
            return given
    return None


def authenticate(auth: AuthService, headers: Mapping[str, str] | None,
                 query: Mapping[str, Any] | None) -> dict[str, Any] | None:
    token = token_from_request(headers, query)
    return auth.principal_from_token(token) if token else None


def unauthorized_body(message: str = UNAUTHORIZED) -> dict[str, Any]:
    """The 401 body: our error shape, plus ``error`` (the login contract's name for the message)."""
    return {**error_body(401, message, "authorization"), "error": message}


def forbidden_body(route: Route, principal: Mapping[str, Any]) -> dict[str, Any] | None:
    """The 403 body when the principal's role is below the route's, else None."""
    if route.role is None or core.allows(principal.get("role"), route.role):
        return None
    message = (f"forbidden: {route.method} {route.path} needs the {route.role.value} role "
               f"(yours is {principal.get('role') or 'none'})")
    return {**error_body(403, message, "authorization"), "required": route.role.value}


# --------------------------------------------------------------------------------------------- login


class LoginRequest(CamelModel):
    """A username and password, or (MyController v2's form) a service token ``<tokenId>_<secret>`` as ``token``."""

    username: str | None = PydField(default=None, min_length=1, max_length=256)
    password: str | None = PydField(default=None, min_length=1, max_length=1024, repr=False)
    token: str | None = PydField(default=None, min_length=1, max_length=4096, repr=False)
    expires_in: str | int | None = None


def _cookie_header(value: str, max_age: int, secure: bool, name: str = COOKIE_NAME) -> str:
    flags = "; Secure" if secure else ""
    return f"{name}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{flags}"


def _login_ttl(expires_in: str | int | None) -> int:
    """``expiresIn`` in seconds: ours (``24h``, ``7d``, seconds) or a Go duration as the reference's console sends it
    (``720h``, ``1h30m``, ``24h0m0s``); 400 naming ``expiresIn`` otherwise."""
    try:
        return core.parse_duration(expires_in)
    except ValueError as error:
        problem = str(error)
    if isinstance(expires_in, str) and re.fullmatch(r"\s*(\d+(\.\d+)?(ms|s|m|h|d|w))+\s*", expires_in):
        try:
            return core.parse_duration(max(1, metric_duration_ms(expires_in.strip()) // 1000))
        except (ValueError, MetricQueryError) as error:
            problem = str(error)
    raise bad_request(problem, "expiresIn")


def login(request: ApiRequest) -> Reply:
    """Log in: ``{username, password}`` or ``{token}`` (a service token); the answer carries the reference's
    ``{id, username, fullName, email, token}`` and ours (``expiresAt, userId, role``), and sets the cookie."""
    body = request.model(LoginRequest)
    ttl_s = _login_ttl(body.expires_in)
    auth = request.container.auth
    address = request.client_address or None
    if body.token is not None and body.username is None:
        principal, ttl_s = auth.token_login(body.token, ttl_s, address=address)
        token, user_id, role = body.token, str(principal["userId"]), str(principal["role"])
        expires = core.expires_at(now_ms() / 1000 + ttl_s)
    else:
        if not body.username or not body.password:
            raise ApiError(401, "please provide valid login details", "username",
                           extra={"success": False, "data": None})
        token, claims, role_ = auth.login(body.username, body.password, ttl_s, address=address)
        user_id, role, expires = str(claims["sub"]), role_.value, core.expires_at(claims["exp"])
    user = auth.user_view(user_id)
    secure = request.forwarded_proto == "https"
    return Reply(200, {"id": user_id, "username": user.get("username", ""), "fullName": user.get("fullName", ""),
                       "email": user.get("email", ""), "token": token, "expiresAt": expires, "userId": user_id,
                       "role": role},
                 {"Set-Cookie": _cookie_header(token, ttl_s, secure)})


def _caller(request: ApiRequest) -> dict[str, Any]:
    if request.principal is None:  # view_for authenticates first; a direct call without one is a bug
        raise ApiError(401, UNAUTHORIZED, "authorization")
    return request.principal


def logout(request: ApiRequest) -> Reply:
    """Revoke the calling login token (its ``jti`` until it expires) and clear the cookie. A service token is
    not revoked by logout (delete it instead)."""
    revoked = request.container.auth.logout(_caller(request))
    return Reply(200, {"loggedOut": True, "revoked": revoked},
                 {"Set-Cookie": _cookie_header("", 0, request.forwarded_proto == "https")})


def sign_out(request: ApiRequest) -> Reply:
    """MyController v2's logout (``/api/mc_auth/sign_out``, any method, no token needed): the caller's login token,
    when it has a valid one, is revoked as ``/api/user/logout`` does; both cookies are cleared; plain text."""
    if request.principal is not None:
        request.container.auth.logout(request.principal)
    secure = request.forwarded_proto == "https"
    return Reply(200, "Signout success",
                 {"Content-Type": "text/plain; charset=utf-8",
                  "Set-Cookie": [_cookie_header("", 0, secure), _cookie_header("", 0, secure, REFERENCE_COOKIE)]})


# --------------------------------------------------------------------------------------------- users


def get_profile(request: ApiRequest) -> Record:
    return core.public_user(request.container.auth.current_user(_caller(request)))


class ProfileUpdate(CamelModel):
    """Ours (``password``) or MyController v2's (``newPassword`` with ``confirmPassword``; its console sends the
    whole profile back with ``currentPassword``)."""

    email: str | None = None
    full_name: str | None = None
    labels: dict[str, str] | None = None
    current_password: str | None = PydField(default=None, repr=False)
    password: str | None = PydField(default=None, repr=False)
    new_password: str | None = PydField(default=None, repr=False)
    confirm_password: str | None = PydField(default=None, repr=False)


def update_profile(request: ApiRequest) -> Record:
    """The caller's own email, name, labels; a new password needs ``currentPassword``."""
    caller = _caller(request)
    update = request.model(ProfileUpdate)
    password = update.password or update.new_password or None
    if update.new_password and update.confirm_password is not None and update.new_password != update.confirm_password:
        raise bad_request("newPassword and confirmPassword differ", "confirmPassword")
    changes = {"email": update.email, "fullName": update.full_name, "labels": update.labels}
    return request.container.auth.update_profile(caller, changes, password=password,
                                                 current_password=update.current_password)


def list_users(request: ApiRequest) -> dict[str, Any]:
    return list_public(Kind.USER, request)


def get_user(request: ApiRequest) -> Record:
    return public(Kind.USER, request.container.records.find(Kind.USER, request.path_params.get("id", "")))


def upsert_user(request: ApiRequest) -> Record:
    """Create or update a user. ``password`` (write-only) is hashed; left out, an existing user keeps theirs."""
    body = request.json()
    if not isinstance(body, dict):
        raise bad_request("body must be a user object", "body")
    return request.container.auth.upsert_user(_caller(request), body)


def delete_users(request: ApiRequest) -> dict[str, int]:
    """Delete users by id (and their service tokens); one's own user cannot be deleted."""
    found = request.container.records.find_all(Kind.USER, id_list(request, Kind.USER))
    return request.container.auth.delete_users(_caller(request), found)


# --------------------------------------------------------------------------------------------- service tokens


def list_service_tokens(request: ApiRequest) -> dict[str, Any]:
    """An admin sees every service token, anyone else their own."""
    query = parse_list_query(request.query)
    return request.container.records.page(Kind.SERVICE_TOKEN,
                                          request.container.auth.token_query(_caller(request), query))


def create_service_token(request: ApiRequest) -> Record:
    """A new service token; the answer's ``token`` is the client form ``<tokenId>_<secret>``, shown this once."""
    body = request.model(core.ServiceTokenRequest)
    return request.container.auth.create_service_token(_caller(request), body)


def get_service_token(request: ApiRequest) -> Record:
    record = request.container.records.find(Kind.SERVICE_TOKEN, request.path_params.get("id", ""))
    return request.container.auth.service_token(_caller(request), record)


def update_service_token(request: ApiRequest) -> Record:
    """MyController v2's ``POST /api/servicetoken/update``: a token's name, description, labels and expiry."""
    body = request.json()
    if not isinstance(body, dict) or not isinstance(body.get("id"), str) or not body["id"]:
        raise bad_request("id should not be empty", "id")
    record = request.container.records.find(Kind.SERVICE_TOKEN, body["id"])
    return request.container.auth.update_service_token(_caller(request), record, body)


def delete_service_tokens(request: ApiRequest) -> dict[str, int]:
    found = request.container.records.find_all(Kind.SERVICE_TOKEN, id_list(request, Kind.SERVICE_TOKEN))
    return request.container.auth.delete_service_tokens(_caller(request), found)


# --------------------------------------------------------------------------------------------- schemas


class UserView(CamelModel):
    """A user as answered (no password, ever)."""

    id: str
    username: str
    email: str = ""
    full_name: str = ""
    role: core.Role = core.Role.USER
    labels: dict[str, str] = PydField(default_factory=dict)
    modified_on: str | None = None


class ServiceTokenView(CamelModel):
    """A service token as answered; ``token`` (the client form ``<tokenId>_<secret>``) only when created."""

    id: str
    user_id: str
    name: str
    description: str = ""
    token: str | None = None
    role: core.Role | None = None
    """What it may do, at most its owner's role (None on tokens made before roles: the owner's)."""
    created_by: str | None = None
    never_expire: bool = False
    expires_on: str | None = None
    created_on: str | None = None


class LoginReply(CamelModel):
    id: str
    username: str
    full_name: str = ""
    email: str = ""
    token: str
    expires_at: str
    user_id: str
    role: core.Role


LOGOUT_SCHEMA: Final = {
    "type": "object",
    "required": ["loggedOut", "revoked"],
    "properties": {"loggedOut": {"type": "boolean"},
                   "revoked": {"type": "boolean", "description": "A login token was put on the denylist"}},
}
