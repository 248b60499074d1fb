"""Who a token stands for, logging in and out, users and service tokens: the use cases behind the API's auth
routes, the check every authenticated route makes, and the websocket's connect.

A token is either a JWT from login or a service token ``<tokenId>_<secret>``. A JWT is refused when its signature,
algorithm, issuer or expiry is wrong, when logout put its ``jti`` on the denylist (``Kind.REVOKED_TOKEN``, purged
once expired), when its user is gone or when that user's password changed since it was issued (its ``pst``
claim). Nothing here logs a token, a password or a hash, and nothing returned carries one: users leave through
``public_user``, service tokens through ``public_service_token`` (the secret is shown once, when created).

No default admin/admin: when no user exists, ``ensure_admin`` creates ``admin`` with the configured password
(``MC_ADMIN_PASSWORD``) or a generated one shown once (the local stack calls it at start; login otherwise).
"""

from __future__ import annotations

import hmac
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any, Final

from ..core import auth as core
from ..core.auth import SigningSecret
from ..core.model import Kind, Record, ms_from_iso, now_iso, now_ms
from ..core.ports import Filter, ListQuery, Repository
from .errors import InvalidInput, NotFound, Unauthenticated, validate

ADMIN_USERNAME: Final = "admin"
MAX_TOKEN_CHARS: Final = 4096
BAD_CREDENTIALS: Final = "invalid username or password"

log = logging.getLogger(__name__)

Principal = dict[str, Any]
"""``{"type": "user"|"service_token", "userId", "username", "tokenId", "exp", "expiresAt"}``."""


def _show_generated(password: str) -> None:
    print(f"MyController: created user '{ADMIN_USERNAME}' with password {password} "
          "(shown this once; change it, or set MC_ADMIN_PASSWORD before the first start)",
          file=sys.stderr, flush=True)


def hashed(password: str) -> str:
    """The password's hash, or ``InvalidInput`` naming ``password`` when it breaks the rules."""
    try:
        core.check_password_rules(password)
    except ValueError as error:
        raise InvalidInput(f"password: {error}", "password") from None
    return core.hash_password(password)


class AuthService:
    def __init__(self, repository: Repository, signing_secret: SigningSecret, *,
                 admin_password: Callable[[], str | None], show_password: Callable[[str], None] | None = None,
                 in_lambda: bool | None = None) -> None:
        self.repository = repository
        self.signing_secret = signing_secret
        self.admin_password = admin_password
        self.show_password = show_password or _show_generated
        self.in_lambda = bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME")) if in_lambda is None else in_lambda
        """In Lambda "shown once" would mean written to CloudWatch Logs: no generated first password there."""
        self._admin_checked = False
        self._admin_lock = threading.Lock()

    # ----------------------------------------------------------------------------------------- tokens

    def signing_key(self) -> bytes:
        return self.signing_secret.get()

    def _principal(self, token: str) -> Principal:
        repository = self.repository
        if core.looks_like_jwt(token):
            key = self.signing_key()
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

    def principal_from_token(self, token: str) -> Principal | None:
        """Who ``token`` stands for, or None when it is not valid now. A failing store raises (that is not the
        caller's fault, and must not read as "logged out")."""
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
            return None
        try:
            return self._principal(token)
        except core.AuthError as error:
            log.debug("%s", error)
            return None

    def principal_or_none(self, token: str) -> Principal | None:
        """``principal_from_token``, refusing (None) when the store fails: a websocket connect is retried by its
        client, and one failure must not take down the handler."""
        try:
            return self.principal_from_token(token)
        except Exception as error:
            log.warning("token check failed (%s); refused", type(error).__name__)
            return None

    # ----------------------------------------------------------------------------------------- first admin

    def ensure_admin(self) -> bool:
        """Create ``admin`` when there is no user at all; True when it did. A generated password goes to
        ``show_password``, once, and nowhere else."""
        if self._admin_checked:
            return False
        with self._admin_lock:
            if self._admin_checked:
                return False
            if self.repository.query(Kind.USER, ListQuery(limit=1)).count:
                self._admin_checked = True
                return False
            password = self.admin_password() or ""
            generated = not password
            if generated and self.in_lambda:
                log.error("no user exists and MC_ADMIN_PASSWORD is not set: set the admin password to create %r",
                          ADMIN_USERNAME)
                return False
            if generated:
                password = core.generate_password()
            record = {**core.User(username=ADMIN_USERNAME, full_name="Administrator").record(),
                      "password": core.hash_password(password), "modifiedOn": now_iso()}
            self.repository.put(Kind.USER, record)
            self._admin_checked = True
            log.warning("created the first user %r (password from %s)", ADMIN_USERNAME,
                        "a generated value shown once" if generated else "the configured admin password")
            if generated:
                self.show_password(password)
            return True

    def forget_admin_check(self) -> None:
        """Check again for users on the next login (after a restore replaced them all)."""
        self._admin_checked = False

    # ----------------------------------------------------------------------------------------- login

    def find_user(self, username: str) -> Record | None:
        user = self.repository.get(Kind.USER, username)
        if user is not None and user.get("username") == username:
            return user
        found = self.repository.query(Kind.USER, ListQuery(filters=[Filter("username", "eq", username)], limit=1))
        return found.data[0] if found.data else None

    def login(self, username: str, password: str, ttl_s: int) -> tuple[str, dict[str, Any]]:
        """A login token and its claims, or ``Unauthenticated`` (the same for an unknown user and a wrong password,
        in the same time)."""
        self.ensure_admin()
        user = self.find_user(username)
        if not core.verify_password(password, user.get("password") if user else None) or user is None:
            log.info("login refused")
            raise Unauthenticated(BAD_CREDENTIALS, "authorization")
        return core.issue_token(self.signing_key(), user, ttl_s)

    def logout(self, caller: Principal) -> bool:
        """Revoke the calling login token (its ``jti`` until it expires); True when one was. A service token is
        not revoked by logout (delete it instead)."""
        if caller["type"] != "user":
            return False
        self.repository.put(Kind.REVOKED_TOKEN, {"id": caller["tokenId"], "userId": caller["userId"],
                                                 "exp": caller["exp"], "expiresAt": caller["expiresAt"]})
        try:
            self._purge_revoked()
        except Exception:  # housekeeping only; the revocation above is what counts
            log.exception("purging expired revoked tokens failed")
        return True

    def _purge_revoked(self) -> None:
        """Drop denylist entries whose tokens have expired anyway (cheap: there are few)."""
        expired = self.repository.query(
            Kind.REVOKED_TOKEN, ListQuery(filters=[Filter("exp", "lt", int(now_ms() / 1000))], limit=0)).data
        if expired:
            self.repository.delete(Kind.REVOKED_TOKEN, [str(record["id"]) for record in expired])

    # ----------------------------------------------------------------------------------------- users

    def current_user(self, caller: Principal) -> Record:
        user = self.repository.get(Kind.USER, caller["userId"])
        if user is None:
            raise Unauthenticated("authentication required: the token's user is gone", "authorization")
        return user

    def update_profile(self, caller: Principal, changes: dict[str, Any], *, password: str | None = None,
                       current_password: str | None = None) -> Record:
        """The caller's own email, name, labels (``changes``); a new password needs the current one."""
        user = self.current_user(caller)
        record = dict(user)
        record.update({key: value for key, value in changes.items() if value is not None})
        if password:
            if not core.verify_password(current_password or "", user.get("password")):
                raise InvalidInput("currentPassword does not match", "currentPassword")
            record["password"] = hashed(password)
        checked = validate(core.User, {**record, "password": None}).record()
        stored = {**checked, "password": record.get("password"), "modifiedOn": now_iso()}
        self.repository.put(Kind.USER, stored)
        return core.public_user(stored)

    def upsert_user(self, body: dict[str, Any]) -> Record:
        """Create or update a user. ``password`` (write-only) is hashed; left out, an existing user keeps theirs."""
        password = body.get("password")
        if password is not None and not isinstance(password, str):
            raise InvalidInput("password must be a string", "password")
        model = validate(core.User, {**body, "password": None})
        stored = self.repository.get(Kind.USER, model.id)
        same_name = self.find_user(model.username)
        if same_name is not None and same_name["id"] != model.id:
            raise InvalidInput(f"username {model.username!r} is taken", "username")
        if password:
            password_hash = hashed(password)
        elif stored is not None and stored.get("password"):
            password_hash = str(stored["password"])
        else:
            raise InvalidInput("password is required for a new user", "password")
        record = {**model.record(), "password": password_hash, "modifiedOn": now_iso()}
        self.repository.put(Kind.USER, record)
        return core.public_user(record)

    def delete_users(self, caller: Principal, user_ids: Iterable[str]) -> dict[str, int]:
        """Delete users (and their service tokens); one's own user cannot be deleted."""
        found = list(user_ids)
        if caller["userId"] in found:
            raise InvalidInput("you cannot delete your own user", "body")
        tokens = self.repository.query(
            Kind.SERVICE_TOKEN, ListQuery(filters=[Filter("userId", "in", found)], limit=0)).data
        deleted = self.repository.delete(Kind.USER, found)
        if tokens:
            self.repository.delete(Kind.SERVICE_TOKEN, [str(token["id"]) for token in tokens])
        return {"deleted": len(deleted), "cascaded": len(tokens)}

    # ----------------------------------------------------------------------------------------- service tokens

    def create_service_token(self, caller: Principal, request: core.ServiceTokenRequest) -> Record:
        """A new service token; the answer's ``token`` is the client form ``<tokenId>_<secret>``, shown this once."""
        user_id = request.user_id or caller["userId"]
        if self.repository.get(Kind.USER, user_id) is None:
            raise NotFound(f"user {user_id!r} not found", "userId")
        if not request.never_expire:
            if not request.expires_on:
                raise InvalidInput("expiresOn is required unless neverExpire is true", "expiresOn")
            if ms_from_iso(request.expires_on) <= now_ms():
                raise InvalidInput("expiresOn is in the past", "expiresOn")
        token_id, secret = core.new_service_token()
        record = core.ServiceToken(id=token_id, user_id=user_id, name=request.name, description=request.description,
                                   token=core.hash_secret(secret), never_expire=request.never_expire,
                                   expires_on=None if request.never_expire else request.expires_on,
                                   created_on=now_iso()).record()
        self.repository.put(Kind.SERVICE_TOKEN, record)
        return {**core.public_service_token(record), "token": core.client_form(token_id, secret)}

    def delete_service_tokens(self, token_ids: Iterable[str]) -> dict[str, int]:
        deleted = self.repository.delete(Kind.SERVICE_TOKEN, list(token_ids))
        return {"deleted": len(deleted), "cascaded": 0}
