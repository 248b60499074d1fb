"""Authentication at the API: who a request is from, login and logout, users and service tokens.

A token is accepted as ``Authorization: Bearer <t>``, the ``mc_access_token`` cookie or the ``access_token`` query
parameter (the reference's three forms), and is either a JWT from login or a service token ``<tokenId>_<secret>``.
``view_for`` (``chalicelib/api/__init__.py``) calls ``authenticate`` for every route of the table that is not
``public`` and answers 401 itself, so routes added later are covered without doing anything. The websocket
handler calls ``principal_from_token`` on connect.

A JWT is refused when its signature, algorithm, issuer or expiry is wrong, when logout put its ``jti`` on the
denylist (``Kind.REVOKED_TOKEN``, purged once expired), when its user is gone or when that user's password
changed since it was issued (its ``pst`` claim). Nothing here logs a token, a
password or a hash, and no answer carries one: users leave through ``public_user``, service tokens through
``public_service_token`` (the secret is shown once, when created).

No default admin/admin: when no user exists, ``ensure_admin`` creates ``admin`` with ``MC_ADMIN_PASSWORD`` or a
generated password shown once (the local stack calls it at start; login calls it otherwise, e.g. in Lambda).
"""

from __future__ import annotations

import hmac
import logging
import os
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any, Final

from pydantic import Field as PydField

from chalicelib.config import Services, build_signing_secret, get_services
from chalicelib.core import auth as core
from chalicelib.core.model import CamelModel, Kind, Record, ms_from_iso, now_iso, now_ms
from chalicelib.core.ports import Filter, ListQuery

from . import secrecy
from .errors import ApiError, bad_request, error_body, not_found
from .resources import existing_records, find_record
from .web import ApiRequest, Reply, validate

COOKIE_NAME: Final = "mc_access_token"
QUERY_NAME: Final = "access_token"
ADMIN_USERNAME: Final = "admin"
ADMIN_PASSWORD_ENV: Final = "MC_ADMIN_PASSWORD"
MAX_TOKEN_CHARS: Final = 4096
UNAUTHORIZED: Final = "authentication required: a valid token as 'Authorization: Bearer <token>', the " \
                      f"'{COOKIE_NAME}' cookie or the '{QUERY_NAME}' query parameter"
BAD_CREDENTIALS: Final = "invalid username or password"
WWW_AUTHENTICATE: Final = {"WWW-Authenticate": 'Bearer realm="mycontroller"'}
_ADMIN_CHECKED: Final = "auth.admin_checked"

log = logging.getLogger(__name__)
_admin_lock = threading.Lock()


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
        from_cookie = _cookie(cookie, COOKIE_NAME)
        if from_cookie:
            return from_cookie
    if query:
        given = query.get(QUERY_NAME)
        if isinstance(given, list | tuple):
            given = given[-1] if given else None
        if isinstance(given, str) and given:
            return given
    return None


def signing_key(services: Services) -> bytes:
    source = services.signing_secret
    if source is None:
        source = services.signing_secret = build_signing_secret(services.settings)
    return source.get()


def _principal(services: Services, token: str) -> dict[str, Any]:
    repository = services.repository
    if core.looks_like_jwt(token):
        key = signing_key(services)
        claims = core.decode_token(key, token)
        if repository.get(Kind.REVOKED_TOKEN, str(claims["jti"])) is not None:
            raise core.AuthError("token refused: revoked")
        user = repository.get(Kind.USER, str(claims["sub"]))
        if user is None:
            raise core.AuthError("token refused: its user is gone")
        if not hmac.compare_digest(str(claims.get("pst") or ""), core.password_stamp(key, user)):
            raise core.AuthError("token refused: the password changed since")
        return core.principal("user", user, str(claims["jti"]), claims["exp"])
    parts = core.split_service_token(token)
    if parts is None:
        raise core.AuthError("token refused: neither a JWT nor a service token")
    record = repository.get(Kind.SERVICE_TOKEN, parts[0])
    if record is None or not core.service_token_matches(record, parts[1], now_ms()):
        raise core.AuthError("service token refused")
    user = repository.get(Kind.USER, str(record.get("userId")))
    if user is None:
        raise core.AuthError("service token refused: its user is gone")
    expires_on = record.get("expiresOn")
    exp = None if record.get("neverExpire") or not expires_on else ms_from_iso(str(expires_on)) / 1000
    return core.principal("service_token", user, str(record["id"]), exp)


def principal_from_token(token: str) -> dict[str, Any] | None:
    """Who ``token`` (a login JWT or a service token) stands for, or None when it is not valid now.

    ``{"type": "user"|"service_token", "userId", "username", "tokenId", "exp", "expiresAt"}``. A failing store
    raises (that is not the caller's fault, and must not read as "logged out").
    """
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
        return None
    try:
        return _principal(get_services(), token)
    except core.AuthError as error:
        log.debug("%s", error)
        return None


def authenticate(headers: Mapping[str, str] | None, query: Mapping[str, Any] | None) -> dict[str, Any] | None:
    token = token_from_request(headers, query)
    return principal_from_token(token) if token else None


def unauthorized_body(message: str = UNAUTHORIZED) -> dict[str, Any]:
    """The 401 body: our error shape, plus ``error`` (the login contract's name for the message)."""
    return {**error_body(401, message, "authorization"), "error": message}


def _unauthorized(message: str = UNAUTHORIZED) -> Reply:
    return Reply(401, unauthorized_body(message), dict(WWW_AUTHENTICATE))


# --------------------------------------------------------------------------------------------- first admin


def _show_generated(password: str) -> None:
    print(f"MyController: created user '{ADMIN_USERNAME}' with password {password} "
          "(shown this once; change it, or set MC_ADMIN_PASSWORD before the first start)",
          file=sys.stderr, flush=True)


def ensure_admin(services: Services, show: Callable[[str], None] | None = None) -> bool:
    """Create ``admin`` when there is no user at all; True when it did. A generated password goes to ``show``
    (stderr by default), once, and nowhere else."""
    if services.extras.get(_ADMIN_CHECKED):
        return False
    with _admin_lock:
        if services.extras.get(_ADMIN_CHECKED):
            return False
        if services.repository.query(Kind.USER, ListQuery(limit=1)).count:
            services.extras[_ADMIN_CHECKED] = True
            return False
        password = os.environ.get(ADMIN_PASSWORD_ENV) or ""
        generated = not password
        if generated and os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
            # In Lambda "shown once" would mean written to CloudWatch Logs: no admin until the operator sets one.
            log.error("no user exists and %s is not set: set it on the API function to create %r",
                      ADMIN_PASSWORD_ENV, ADMIN_USERNAME)
            return False
        if generated:
            password = core.generate_password()
        record = {**core.User(username=ADMIN_USERNAME, full_name="Administrator").record(),
                  "password": core.hash_password(password), "modifiedOn": now_iso()}
        services.repository.put(Kind.USER, record)
        services.extras[_ADMIN_CHECKED] = True
        log.warning("created the first user %r (password from %s)", ADMIN_USERNAME,
                    "a generated value shown once" if generated else ADMIN_PASSWORD_ENV)
        if generated:
            (show or _show_generated)(password)
        return True


# --------------------------------------------------------------------------------------------- login


class LoginRequest(CamelModel):
    username: str = PydField(min_length=1, max_length=256)
    password: str = PydField(min_length=1, max_length=1024, repr=False)
    expires_in: str | int | None = None


def _cookie_header(value: str, max_age: int, secure: bool) -> str:
    flags = "; Secure" if secure else ""
    return f"{COOKIE_NAME}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{flags}"


def _find_user(services: Services, username: str) -> Record | None:
    user = services.repository.get(Kind.USER, username)
    if user is not None and user.get("username") == username:
        return user
    found = services.repository.query(Kind.USER, ListQuery(filters=[Filter("username", "eq", username)], limit=1))
    return found.data[0] if found.data else None


def login(request: ApiRequest) -> Reply:
    body = request.model(LoginRequest)
    try:
        ttl_s = core.parse_duration(body.expires_in)
    except ValueError as error:
        raise bad_request(str(error), "expiresIn") from None
    services = get_services()
    ensure_admin(services)
    user = _find_user(services, body.username)
    if not core.verify_password(body.password, user.get("password") if user else None) or user is None:
        log.info("login refused")
        return _unauthorized(BAD_CREDENTIALS)
    token, claims = core.issue_token(signing_key(services), user, ttl_s)
    return Reply(200, {"token": token, "expiresAt": core.expires_at(claims["exp"]), "username": claims["username"],
                       "userId": claims["sub"]},
                 {"Set-Cookie": _cookie_header(token, ttl_s, request.forwarded_proto == "https")})


def _caller(request: ApiRequest) -> dict[str, Any]:
    if request.principal is None:  # view_for authenticates first; a direct call without one is a bug
        raise ApiError(401, UNAUTHORIZED, "authorization")
    return request.principal


def _purge_revoked(services: Services) -> None:
    """Drop denylist entries whose tokens have expired anyway (cheap: there are few)."""
    expired = services.repository.query(
        Kind.REVOKED_TOKEN, ListQuery(filters=[Filter("exp", "lt", int(now_ms() / 1000))], limit=0)).data
    if expired:
        services.repository.delete(Kind.REVOKED_TOKEN, [str(record["id"]) for record in expired])


def logout(request: ApiRequest) -> Reply:
    """Revoke the calling login token (its ``jti`` until it expires) and clear the cookie. A service token is
    not revoked by logout (delete it instead)."""
    caller = _caller(request)
    services = get_services()
    revoked = False
    if caller["type"] == "user":
        services.repository.put(Kind.REVOKED_TOKEN, {"id": caller["tokenId"], "userId": caller["userId"],
                                                     "exp": caller["exp"], "expiresAt": caller["expiresAt"]})
        revoked = True
        try:
            _purge_revoked(services)
        except Exception:  # housekeeping only; the revocation above is what counts
            log.exception("purging expired revoked tokens failed")
    return Reply(200, {"loggedOut": True, "revoked": revoked},
                 {"Set-Cookie": _cookie_header("", 0, request.forwarded_proto == "https")})


# --------------------------------------------------------------------------------------------- users


def _current_user(services: Services, request: ApiRequest) -> Record:
    user = services.repository.get(Kind.USER, _caller(request)["userId"])
    if user is None:
        raise ApiError(401, UNAUTHORIZED, "authorization")
    return user


def get_profile(request: ApiRequest) -> Record:
    return core.public_user(_current_user(get_services(), request))


class ProfileUpdate(CamelModel):
    email: str | None = None
    full_name: str | None = None
    labels: dict[str, str] | None = None
    current_password: str | None = PydField(default=None, repr=False)
    password: str | None = PydField(default=None, repr=False)


def update_profile(request: ApiRequest) -> Record:
    """The caller's own email, name, labels; a new password needs ``currentPassword``."""
    services = get_services()
    user = _current_user(services, request)
    update = request.model(ProfileUpdate)
    record = dict(user)
    for key, value in (("email", update.email), ("fullName", update.full_name), ("labels", update.labels)):
        if value is not None:
            record[key] = value
    if update.password:
        if not core.verify_password(update.current_password or "", user.get("password")):
            raise bad_request("currentPassword does not match", "currentPassword")
        record["password"] = _hashed(update.password)
    checked = validate(core.User, {**record, "password": None}).record()
    stored = {**checked, "password": record.get("password"), "modifiedOn": now_iso()}
    services.repository.put(Kind.USER, stored)
    return core.public_user(stored)


def _hashed(password: str) -> str:
    try:
        core.check_password_rules(password)
    except ValueError as error:
        raise bad_request(f"password: {error}", "password") from None
    return core.hash_password(password)


def list_users(request: ApiRequest) -> dict[str, Any]:
    return secrecy.list_public(Kind.USER, request)


def get_user(request: ApiRequest) -> Record:
    return secrecy.public(Kind.USER, find_record(get_services(), Kind.USER, request.path_params.get("id", "")))


def upsert_user(request: ApiRequest) -> Record:
    """Create or update a user. ``password`` (write-only) is hashed; left out, an existing user keeps theirs."""
    body = request.json()
    if not isinstance(body, dict):
        raise bad_request("body must be a user object", "body")
    password = body.get("password")
    if password is not None and not isinstance(password, str):
        raise bad_request("password must be a string", "password")
    model = validate(core.User, {**body, "password": None})
    services = get_services()
    stored = services.repository.get(Kind.USER, model.id)
    same_name = _find_user(services, model.username)
    if same_name is not None and same_name["id"] != model.id:
        raise bad_request(f"username {model.username!r} is taken", "username")
    if password:
        hashed = _hashed(password)
    elif stored is not None and stored.get("password"):
        hashed = str(stored["password"])
    else:
        raise bad_request("password is required for a new user", "password")
    record = {**model.record(), "password": hashed, "modifiedOn": now_iso()}
    services.repository.put(Kind.USER, record)
    return core.public_user(record)


def delete_users(request: ApiRequest) -> dict[str, int]:
    """Delete users by id (and their service tokens); one's own user cannot be deleted."""
    services = get_services()
    found = existing_records(services, Kind.USER, request)
    caller = _caller(request)
    if caller["userId"] in found:
        raise bad_request("you cannot delete your own user", "body")
    tokens = services.repository.query(
        Kind.SERVICE_TOKEN, ListQuery(filters=[Filter("userId", "in", list(found))], limit=0)).data
    deleted = services.repository.delete(Kind.USER, list(found))
    if tokens:
        services.repository.delete(Kind.SERVICE_TOKEN, [str(token["id"]) for token in tokens])
    return {"deleted": len(deleted), "cascaded": len(tokens)}


# --------------------------------------------------------------------------------------------- service tokens


def list_service_tokens(request: ApiRequest) -> dict[str, Any]:
    return secrecy.list_public(Kind.SERVICE_TOKEN, request)


def create_service_token(request: ApiRequest) -> Record:
    """A new service token; the answer's ``token`` is the client form ``<tokenId>_<secret>``, shown this once."""
    body = request.model(core.ServiceTokenRequest)
    services = get_services()
    user_id = body.user_id or _caller(request)["userId"]
    if services.repository.get(Kind.USER, user_id) is None:
        raise not_found(f"user {user_id!r} not found", "userId")
    if not body.never_expire:
        if not body.expires_on:
            raise bad_request("expiresOn is required unless neverExpire is true", "expiresOn")
        if ms_from_iso(body.expires_on) <= now_ms():
            raise bad_request("expiresOn is in the past", "expiresOn")
    token_id, secret = core.new_service_token()
    record = core.ServiceToken(id=token_id, user_id=user_id, name=body.name, description=body.description,
                               token=core.hash_secret(secret), never_expire=body.never_expire,
                               expires_on=None if body.never_expire else body.expires_on,
                               created_on=now_iso()).record()
    services.repository.put(Kind.SERVICE_TOKEN, record)
    return {**core.public_service_token(record), "token": core.client_form(token_id, secret)}


def delete_service_tokens(request: ApiRequest) -> dict[str, int]:
    services = get_services()
    found = existing_records(services, Kind.SERVICE_TOKEN, request)
    deleted = services.repository.delete(Kind.SERVICE_TOKEN, list(found))
    return {"deleted": len(deleted), "cascaded": 0}


# --------------------------------------------------------------------------------------------- schemas


class UserView(CamelModel):
    """A user as answered (no password, ever)."""

    id: str
    username: str
    email: str = ""
    full_name: str = ""
    labels: dict[str, str] = PydField(default_factory=dict)
    modified_on: str | None = None


class ServiceTokenView(CamelModel):
    """A service token as answered; ``token`` (the client form ``<tokenId>_<secret>``) only when created."""

    id: str
    user_id: str
    name: str
    description: str = ""
    token: str | None = None
    never_expire: bool = False
    expires_on: str | None = None
    created_on: str | None = None


class LoginReply(CamelModel):
    token: str
    expires_at: str
    username: str
    user_id: str


LOGOUT_SCHEMA: Final = {
    "type": "object",
    "required": ["loggedOut", "revoked"],
    "properties": {"loggedOut": {"type": "boolean"},
                   "revoked": {"type": "boolean", "description": "A login token was put on the denylist"}},
}
