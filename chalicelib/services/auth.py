"""Who a token stands for, logging in and out, users and service tokens: the use cases behind the API's auth
routes, the check every authenticated route makes, and the websocket's connect and re-check.

A token is either a JWT from login or a service token ``<tokenId>_<secret>``. A JWT is refused when its signature,
algorithm, issuer or expiry is wrong, when logout put its ``jti`` on the denylist (``Kind.REVOKED_TOKEN``, purged
once expired), when its user is gone, when that user's password changed since it was issued (its ``pst`` claim) or
when the user's sessions were revoked since (its ``sep`` claim is not the user's ``sessionEpoch``). Nothing here
logs a token, a password or a hash, and nothing returned carries one: users leave through ``public_user``,
service tokens through ``public_service_token`` (the secret is shown once, when created).

Roles (``core.auth.Role``): the principal's role is read from the stored user on every request (a service
token's is its own, never above its owner's), the API checks each route's declared role, and the rules that
depend on whom a change touches live here: only an admin changes another user, their role or their tokens; one's
own password needs the current one; the last admin can be neither deleted nor demoted; a service token's role is
at most its maker's. A refusal is ``Forbidden`` (403).

Revocation ends sessions everywhere, durably: logout denylists the token; a password or role change bumps the
user's ``sessionEpoch``; deleting a user or a token removes what the token names. Each is announced on the bus
(``REVOCATION_SOURCE``) so the websocket service closes the affected connections at once, and the websocket
service re-checks its connections every few seconds anyway (``session_problems``).

No default admin/admin: when no user exists, ``ensure_admin`` creates ``admin`` with the configured password
(``MC_ADMIN_PASSWORD``) or a generated one shown once (the local stack calls it at start; login otherwise).
"""

from __future__ import annotations

import hmac
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

from ..core import auth as core
from ..core.auth import Role, SigningSecret
from ..core.model import Kind, Record, ms_from_iso, now_iso, now_ms
from ..core.ports import ConditionFailed, Filter, ListQuery, Repository
from .errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated, validate
from .login_guard import LoginGuard

ADMIN_USERNAME: Final = core.FIRST_ADMIN_ID
MAX_TOKEN_CHARS: Final = 4096
BAD_CREDENTIALS: Final = "invalid username or password"
REVOCATION_SOURCE: Final = "mycontroller.auth"
"""The bus source of ``session.revoked`` events: not a domain event (tasks never see it), only the websocket
notify subscription listens (``services.websocket.NOTIFY_PATTERN``)."""
REVOKED_TYPE: Final = "session.revoked"

log = logging.getLogger(__name__)

Principal = dict[str, Any]
"""``{"type": "user"|"service_token", "userId", "username", "tokenId", "exp", "expiresAt", "role", "epoch"}``."""
Announce = Callable[[dict[str, Any]], None]
"""Hands a ``session.revoked`` detail to the bus (``{"userId", "tokenIds", "reason"}``)."""


def _show_generated(password: str) -> None:
    print(f"MyController: created user '{ADMIN_USERNAME}' with password {password} "
          "(shown this once; change it, or set MC_ADMIN_PASSWORD before the first start)",
          file=sys.stderr, flush=True)


def hashed(password: str, username: str | None = None) -> str:
    """The password's hash, or ``InvalidInput`` naming ``password`` when it breaks the rules."""
    try:
        core.check_password_rules(password, username)
    except ValueError as error:
        raise InvalidInput(f"password: {error}", "password") from None
    return core.hash_password(password)


def role_of(caller: Mapping[str, Any]) -> str:
    return str(caller.get("role") or "none")


def require(caller: Mapping[str, Any], role: Role, what: str) -> None:
    """``Forbidden`` unless the caller's role allows ``role``; the message says what needs which role."""
    if not core.allows(caller.get("role"), role):
        raise Forbidden(f"forbidden: {what} needs the {role.value} role (yours is {role_of(caller)})",
                        "authorization")


class AuthService:
    def __init__(self, repository: Repository, signing_secret: SigningSecret, *,
                 admin_password: Callable[[], str | None], show_password: Callable[[str], None] | None = None,
                 in_lambda: bool | None = None, guard: LoginGuard | None = None,
                 announce: Announce | None = None) -> None:
        self.repository = repository
        self.signing_secret = signing_secret
        self.admin_password = admin_password
        self.show_password = show_password or _show_generated
        self.in_lambda = bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME")) if in_lambda is None else in_lambda
        """In Lambda "shown once" would mean written to CloudWatch Logs: no generated first password there."""
        self.guard = guard if guard is not None else LoginGuard(repository)
        self.announce = announce
        """Where revocations are announced (the bus); None: only the websocket's periodic re-check sees them."""
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
            if claims.get("sep", 0) != core.session_epoch(user):
                raise core.AuthError("token refused: the user's sessions were revoked since")
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
        return core.principal("service_token", user, str(record["id"]), exp, core.token_role(record, user))

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

    def session_problems(self, principals: Sequence[Mapping[str, Any]], now_s: float | None = None
                         ) -> list[str | None]:
        """For each principal a connection was opened with, why it may no longer act (``None``: it still may):
        expired, logged out, sessions revoked (password or role change), user or token deleted, role changed.
        Reads each user, denylisted token and service token once (a few batch reads for any number of
        connections), and needs no signing key, so the websocket notify function can run it."""
        now = now_ms() / 1000 if now_s is None else now_s
        users = self.repository.get_many(Kind.USER, {str(p.get("userId")) for p in principals})
        jwt_ids = {str(p.get("tokenId")) for p in principals if p.get("type") == "user"}
        token_ids = {str(p.get("tokenId")) for p in principals if p.get("type") == "service_token"}
        revoked = self.repository.get_many(Kind.REVOKED_TOKEN, jwt_ids) if jwt_ids else {}
        tokens = self.repository.get_many(Kind.SERVICE_TOKEN, token_ids) if token_ids else {}
        problems: list[str | None] = []
        for principal in principals:
            problems.append(self._problem(principal, users, revoked, tokens, now))
        return problems

    @staticmethod
    def _problem(principal: Mapping[str, Any], users: Mapping[str, Record], revoked: Mapping[str, Record],
                 tokens: Mapping[str, Record], now_s: float) -> str | None:
        exp = principal.get("exp")
        if isinstance(exp, int | float) and exp <= now_s:
            return "token expired"
        user = users.get(str(principal.get("userId")))
        if user is None:
            return "user deleted"
        token_id = str(principal.get("tokenId"))
        if principal.get("type") == "user":
            if token_id in revoked:
                return "logged out"
            if principal.get("epoch") != core.session_epoch(user):
                return "sessions revoked"
            role = core.user_role(user)
        elif principal.get("type") == "service_token":
            record = tokens.get(token_id)
            if record is None:
                return "service token deleted"
            if core.service_token_expired(record, int(now_s * 1000)):
                return "token expired"
            role = core.token_role(record, user)
        else:
            return "unknown principal"
        return None if principal.get("role") == role.value else "role changed"

    def _revoked(self, user_id: str, token_ids: Iterable[str] = (), reason: str = "") -> None:
        """Announce that sessions of ``user_id`` (or only ``token_ids`` of it) ended: the websocket service closes
        their connections. The durable part was written before; a failed announcement is only logged (the
        websocket's periodic re-check catches up within seconds)."""
        log.info("sessions revoked", extra={"user_id": user_id, "reason": reason})
        if self.announce is None:
            return
        try:
            self.announce({"type": "revoked", "entityType": "session", "userId": user_id,
                           "tokenIds": sorted(set(token_ids)), "reason": reason})
        except Exception:
            log.exception("announcing a revocation failed; open websockets close at their next re-check")

    # ----------------------------------------------------------------------------------------- first admin

    def ensure_admin(self) -> bool:
        """Create ``admin`` when there is no user at all; True when it did. A generated password goes to
        ``show_password``, once, and nowhere else. Users stored before roles existed get theirs written down
        (``migrate_roles``) the first time a process looks."""
        if self._admin_checked:
            return False
        with self._admin_lock:
            if self._admin_checked:
                return False
            if self.repository.query(Kind.USER, ListQuery(limit=1)).count:
                self.migrate_roles()
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
            else:
                try:
                    core.check_password_rules(password, ADMIN_USERNAME)
                except ValueError as error:
                    log.warning("the configured admin password is weak (%s): change it after logging in", error)
            record = {**core.User(username=ADMIN_USERNAME, full_name="Administrator", role=Role.ADMIN).record(),
                      "password": core.hash_password(password), "modifiedOn": now_iso()}
            self.repository.put(Kind.USER, record)
            self._admin_checked = True
            log.warning("created the first user %r (password from %s)", ADMIN_USERNAME,
                        "a generated value shown once" if generated else "the configured admin password")
            if generated:
                self.show_password(password)
            return True

    def migrate_roles(self) -> int:
        """Write a role on every user stored without one: ``core.legacy_role`` (``admin`` for the first admin,
        ``user`` for the others). Should that leave no admin at all (the first admin was deleted), the users
        without a role all become ``admin``, as they effectively were, and the log says so: demote them from
        there. Returns how many users were written."""
        users = self.repository.query(Kind.USER, ListQuery(limit=0)).data
        roleless = [user for user in users if not user.get("role")]
        if not roleless:
            return 0
        any_admin = any(core.user_role(user) == Role.ADMIN for user in users)
        for user in roleless:
            role = core.legacy_role(user) if any_admin else Role.ADMIN
            self.repository.put(Kind.USER, {**user, "role": role.value})
        log.warning("users stored without a role got one", extra={
            "users": len(roleless), "rule": "admin for 'admin', user for the others" if any_admin
            else "admin for all (no admin would be left otherwise)"})
        return len(roleless)

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

    def login(self, username: str, password: str, ttl_s: int, *, address: str | None = None
              ) -> tuple[str, dict[str, Any], Role]:
        """A login token, its claims and the user's role, or ``Unauthenticated`` (the same for an unknown user and
        a wrong password, in the same time), or ``TooManyAttempts`` while the username or the client address is
        locked after repeated failures (``LoginGuard``; checked before the password)."""
        self.ensure_admin()
        self.guard.check(username, address)
        user = self.find_user(username)
        if not core.verify_password(password, user.get("password") if user else None) or user is None:
            self.guard.failed(username, address, known_user=user is not None)
            raise Unauthenticated(BAD_CREDENTIALS, "authorization")
        self.guard.succeeded(username)
        token, claims = core.issue_token(self.signing_key(), user, ttl_s)
        return token, claims, core.user_role(user)

    def token_login(self, token: str, ttl_s: int, *, address: str | None = None) -> tuple[Principal, int]:
        """A service token as a login (MyController v2's ``{"token"}``): its principal and how long the session
        may last (``ttl_s``, never past the token's own expiry). The answer and the cookie carry the service token
        itself, so deleting it ends the session as it ends every other use of it (the reference's JWT outlived
        its token). Refused like a bad password, and counted as one per client address (``LoginGuard``)."""
        key = f"token:{token.partition(core.SERVICE_TOKEN_SEPARATOR)[0][:64]}"
        self.guard.check(key, address)
        principal = self.principal_from_token(token) if core.split_service_token(token) else None
        if principal is None or principal.get("type") != "service_token":
            self.guard.failed(key, address, known_user=False)
            raise Unauthenticated("invalid token", "token")
        self.guard.succeeded(key)
        exp = principal.get("exp")
        if isinstance(exp, int | float):
            ttl_s = max(0, min(ttl_s, int(exp - now_ms() / 1000)))
        return principal, ttl_s

    def user_view(self, user_id: str) -> Record:
        """A user as the login answer shows it (``id, username, fullName, email``…), never its password."""
        user = self.repository.get(Kind.USER, user_id)
        if user is None:
            raise Unauthenticated("authentication required: the token's user is gone", "authorization")
        return core.public_user(user)

    def logout(self, caller: Principal) -> bool:
        """Revoke the calling login token (its ``jti`` until it expires); True when one was. A service token is
        not revoked by logout (delete it instead)."""
        if caller["type"] != "user":
            return False
        self.repository.put(Kind.REVOKED_TOKEN, {"id": caller["tokenId"], "userId": caller["userId"],
                                                 "exp": caller["exp"], "expiresAt": caller["expiresAt"]})
        self._revoked(caller["userId"], [caller["tokenId"]], "logout")
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

    def _admins(self) -> list[str]:
        users = self.repository.query(Kind.USER, ListQuery(limit=0)).data
        return [str(user["id"]) for user in users if core.user_role(user) == Role.ADMIN]

    def _store_user(self, stored: Record | None, record: Record, *, revoke: str = "") -> Record:
        """Write a user (keeping its session epoch, plus one when ``revoke`` names why its sessions end), only over
        the very record the change was made from: a password or role changed meanwhile by another request must not
        be undone (409, to be tried again on the new record)."""
        epoch = core.session_epoch(stored or {})
        record = {**record, core.SESSION_EPOCH_KEY: epoch + 1 if revoke and stored is not None else epoch,
                  "modifiedOn": now_iso()}
        fresh, version = self.repository.get_versioned(Kind.USER, str(record["id"]))
        changed = Conflict(f"user {record['id']!r} was changed by another request meanwhile; read it again and "
                           "retry", "id")
        if fresh != stored:
            raise changed
        try:
            self.repository.put(Kind.USER, record, expected_version=version)
        except ConditionFailed:
            raise changed from None
        if revoke and stored is not None:
            self._revoked(str(record["id"]), (), revoke)
        return core.public_user(record)

    def update_profile(self, caller: Principal, changes: dict[str, Any], *, password: str | None = None,
                       current_password: str | None = None) -> Record:
        """The caller's own email, name, labels (``changes``); a new password needs the current one and ends
        every login session of the user (the caller's included: the console logs in again)."""
        user = self.current_user(caller)
        record = dict(user)
        record.update({key: value for key, value in changes.items() if value is not None})
        if password:
            if not core.verify_password(current_password or "", user.get("password")):
                raise InvalidInput("currentPassword does not match", "currentPassword")
            record["password"] = hashed(password, str(user.get("username") or ""))
        checked = validate(core.User, {**record, "password": None}).record()
        return self._store_user(user, {**checked, "password": record.get("password")},
                                revoke="password changed" if password else "")

    def upsert_user(self, caller: Principal, body: dict[str, Any]) -> Record:
        """Create or update a user (admins only). ``password`` (write-only) is hashed; left out, an existing user
        keeps theirs; one's own needs ``currentPassword``. ``role`` left out: a new user is ``user``, an existing
        one keeps theirs; the last admin cannot be demoted. A new password or role ends the user's sessions."""
        require(caller, Role.ADMIN, "creating or changing users")
        password = body.get("password")
        if password is not None and not isinstance(password, str):
            raise InvalidInput("password must be a string", "password")
        model = validate(core.User, {**body, "password": None})
        stored = self.repository.get(Kind.USER, model.id)
        same_name = self.find_user(model.username)
        if same_name is not None and same_name["id"] != model.id:
            raise InvalidInput(f"username {model.username!r} is taken", "username")
        if password and stored is not None and model.id == caller["userId"]:
            current = body.get("currentPassword")
            if not isinstance(current, str) or not core.verify_password(current, stored.get("password")):
                raise InvalidInput("currentPassword does not match (needed to change one's own password)",
                                   "currentPassword")
        if password:
            password_hash = hashed(password, model.username)
        elif stored is not None and stored.get("password"):
            password_hash = str(stored["password"])
        else:
            raise InvalidInput("password is required for a new user", "password")
        old_role = core.user_role(stored) if stored is not None else None
        role = Role(model.role) if model.role else old_role or Role.USER
        if old_role == Role.ADMIN and role != Role.ADMIN and self._admins() == [model.id]:
            raise Forbidden(f"forbidden: {model.id!r} is the last admin and cannot be demoted; make another "
                            "admin first", "role")
        reasons = [why for why, changed in (("password changed", bool(password)),
                                            ("role changed", old_role is not None and role != old_role)) if changed]
        record = {**model.record(), "role": role.value, "password": password_hash}
        return self._store_user(stored, record, revoke=" and ".join(reasons))

    def reset_password(self, username: str, password: str) -> Record:
        """A new password for ``username`` set on the host itself (``mycontroller admin reset-password``: whoever
        can run it owns the data directory, so no caller and no current password); the user's sessions end."""
        stored = self.find_user(username)
        if stored is None:
            raise NotFound(f"no user named {username!r}", "username")
        record = {**stored, "password": hashed(password, username)}
        return self._store_user(stored, record, revoke="password reset on the host")

    def end_all_sessions(self, caller: Principal, reason: str = "JWT secret reset") -> int:
        """End every login session of every user, the caller's included (MyController v2's JWT secret reset): each
        user's session epoch goes up, which every process checks on every request, so it holds at once
        everywhere without rotating the signing key. Service tokens stay valid (delete them to end them). Returns
        how many users were touched."""
        require(caller, Role.ADMIN, "ending every session")
        users = self.repository.query(Kind.USER, ListQuery(limit=0)).data
        for user in users:
            self._store_user(user, dict(user), revoke=reason)
        return len(users)

    def delete_users(self, caller: Principal, user_ids: Iterable[str]) -> dict[str, int]:
        """Delete users and their service tokens (admins only); not one's own user, not the last admin."""
        require(caller, Role.ADMIN, "deleting users")
        found = list(user_ids)
        if caller["userId"] in found:
            raise InvalidInput("you cannot delete your own user", "body")
        admins = self._admins()
        if admins and set(admins) <= set(found):
            raise Forbidden("forbidden: the last admin cannot be deleted", "body")
        tokens = self.repository.query(
            Kind.SERVICE_TOKEN, ListQuery(filters=[Filter("userId", "in", found)], limit=0)).data
        with self.repository.transaction():  # the users and their tokens go together
            deleted = self.repository.delete(Kind.USER, found)
            if tokens:
                self.repository.delete(Kind.SERVICE_TOKEN, [str(token["id"]) for token in tokens])
        for _kind, user in deleted:
            self._revoked(str(user["id"]), (), "user deleted")
        return {"deleted": len(deleted), "cascaded": len(tokens)}

    # ----------------------------------------------------------------------------------------- service tokens

    def create_service_token(self, caller: Principal, request: core.ServiceTokenRequest) -> Record:
        """A new service token; the answer's ``token`` is the client form ``<tokenId>_<secret>``, shown this once.
        Its role is at most the caller's and its owner's (left out: the lesser of the two); only an admin makes
        one for another user."""
        user_id = request.user_id or caller["userId"]
        if user_id != caller["userId"]:
            require(caller, Role.ADMIN, "a service token for another user")
        owner = self.repository.get(Kind.USER, user_id)
        if owner is None:
            raise NotFound(f"user {user_id!r} not found", "userId")
        caller_role = core.as_role(caller.get("role")) or Role.VIEWER
        ceiling = core.lesser(caller_role, core.user_role(owner))
        role = Role(request.role) if request.role else ceiling
        if not core.allows(ceiling, role):
            raise Forbidden(f"forbidden: a service token's role can be at most {ceiling.value} here (the maker's "
                            "and the owner's role)", "role")
        if not request.never_expire:
            if not request.expires_on:
                raise InvalidInput("expiresOn is required unless neverExpire is true", "expiresOn")
            if ms_from_iso(request.expires_on) <= now_ms():
                raise InvalidInput("expiresOn is in the past", "expiresOn")
        token_id, secret = core.new_service_token()
        record = core.ServiceToken(id=token_id, user_id=user_id, name=request.name, description=request.description,
                                   token=core.hash_secret(secret), role=role, created_by=caller["userId"],
                                   never_expire=request.never_expire,
                                   expires_on=None if request.never_expire else request.expires_on,
                                   created_on=now_iso()).record()
        self.repository.put(Kind.SERVICE_TOKEN, record)
        return {**core.public_service_token(record), "token": core.client_form(token_id, secret)}

    def service_token(self, caller: Principal, record: Record) -> Record:
        """One service token as the API shows it (never its digest); another user's: admins only."""
        if str(record.get("userId")) != caller["userId"]:
            require(caller, Role.ADMIN, "another user's service token")
        return core.public_service_token(record)

    def update_service_token(self, caller: Principal, record: Record, changes: Mapping[str, Any]) -> Record:
        """MyController v2's ``/api/servicetoken/update``: name, description, labels, expiry; the owner, the role
        and the secret's digest are kept (make a new token for another secret). Another user's: admins only."""
        if str(record.get("userId")) != caller["userId"]:
            require(caller, Role.ADMIN, "changing another user's service token")
        updated = {**record}
        for key in ("name", "description", "labels"):
            if key in changes and changes[key] is not None:
                updated[key] = changes[key]
        if "neverExpire" in changes or "expiresOn" in changes:
            never = bool(changes.get("neverExpire", record.get("neverExpire")))
            expires_on = changes.get("expiresOn", record.get("expiresOn"))
            if not never:
                if not isinstance(expires_on, str) or not expires_on:
                    raise InvalidInput("expiresOn is required unless neverExpire is true", "expiresOn")
                try:
                    ms = ms_from_iso(expires_on)
                except ValueError:
                    raise InvalidInput("expiresOn must be an RFC 3339 time", "expiresOn") from None
                if ms <= now_ms():
                    raise InvalidInput("expiresOn is in the past", "expiresOn")
            updated.update(neverExpire=never, expiresOn=None if never else expires_on)
        checked = validate(core.ServiceToken, updated).record()
        record = {**checked, "token": record.get("token"), "userId": record.get("userId"), "role": record.get("role"),
                  **({"labels": updated["labels"]} if isinstance(updated.get("labels"), dict) else {})}
        self.repository.put(Kind.SERVICE_TOKEN, record)
        return core.public_service_token(record)

    def token_query(self, caller: Principal, query: ListQuery) -> ListQuery:
        """The list query a caller may run on service tokens: an admin's as given, anyone else's narrowed to
        their own tokens."""
        if core.allows(caller.get("role"), Role.ADMIN):
            return query
        return ListQuery(filters=[*query.filters, Filter("userId", "eq", caller["userId"])], sort_by=query.sort_by,
                         limit=query.limit, offset=query.offset)

    def delete_service_tokens(self, caller: Principal, records: Mapping[str, Record]) -> dict[str, int]:
        """Delete service tokens (found by ``Records.find_all``); only an admin deletes another user's."""
        if any(str(record.get("userId")) != caller["userId"] for record in records.values()):
            require(caller, Role.ADMIN, "deleting another user's service tokens")
        deleted = self.repository.delete(Kind.SERVICE_TOKEN, list(records))
        for _kind, record in deleted:
            self._revoked(str(record.get("userId")), [str(record["id"])], "service token deleted")
        return {"deleted": len(deleted), "cascaded": 0}
