"""Authentication, the pure part: password hashing, access tokens (JWT), service tokens, the user model.

After MyController v2: users with bcrypt password hashes, a login that issues an HS256 JWT (24 h by default),
and service tokens for scripts whose client form is ``<tokenId>_<secret>``. What is ours:

* An access token carries ``sub`` (user id), ``username``, ``jti`` (for logout's denylist), ``iat``, ``exp``,
  ``iss`` and ``typ``; decoding pins the algorithm to HS256, so ``alg: none`` or an RS/HS confusion is refused.
* A service token's secret has 256 bits of entropy, so it is stored as a SHA-256 digest (fast to check on every
  request; bcrypt is for the low-entropy secrets people choose). The stored record never holds the secret.
* Unknown user and wrong password cost the same bcrypt check (``verify_password`` with no hash runs it against a
  dummy hash), so the answer time does not tell which usernames exist.
* Roles: ``viewer`` < ``user`` < ``admin`` (``Role``). A user's role is read from its record on every request, so a
  demotion counts at once; users stored before roles existed read as ``legacy_role`` says.
* Sessions: a user record's ``sessionEpoch`` is copied into each token it logs in (``sep``); revoking every session
  of a user (password or role change) is one write, ``sessionEpoch + 1``, checked on every request.
* Passwords follow NIST SP 800-63B: at least 10 characters, not a common password (``common_passwords``), not
  containing the username; no composition rules.

No I/O here: the signing secret comes through the ``SigningSecret`` port (a file locally, SSM in AWS).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
import uuid
from enum import StrEnum
from typing import Any, Final, Protocol

import bcrypt
import jwt
from pydantic import Field as PydField
from pydantic import field_validator

from .common_passwords import is_common
from .errors import DomainError
from .model import CamelModel, Record, iso_from_ms, ms_from_iso

ALGORITHM: Final = "HS256"
ISSUER: Final = "mycontroller"
TOKEN_TYPE: Final = "access"
DEFAULT_TTL_S: Final = 24 * 3600
MAX_TTL_S: Final = 30 * 24 * 3600
BCRYPT_ROUNDS: int = 12
"""bcrypt cost for new hashes (tests lower it; verification uses the cost stored in each hash)."""
MAX_PASSWORD_BYTES: Final = 72
"""bcrypt reads 72 bytes at most; longer passwords are refused rather than silently truncated."""
MIN_PASSWORD_CHARS: Final = 10
"""NIST SP 800-63B asks for at least 8; 10 leaves a margin for offline guessing of a stolen hash."""
MIN_USERNAME_IN_PASSWORD: Final = 3
"""Usernames this long or longer may not appear inside the password (shorter ones would refuse too much)."""
SERVICE_TOKEN_SEPARATOR: Final = "_"
SECRET_HASH_PREFIX: Final = "sha256:"
USERNAME_PATTERN: Final = re.compile(r"^[A-Za-z0-9_.@\-]{1,64}\Z")
_DURATION: Final = re.compile(r"^\s*(\d{1,9})\s*([smhd]?)\s*\Z", re.IGNORECASE)
_UNIT_S: Final = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class Role(StrEnum):
    """What a principal may do; each role may do everything the roles below it may."""

    VIEWER = "viewer"
    """Read and subscribe."""
    USER = "user"
    """Devices, actions, dashboards, automation; their own service tokens."""
    ADMIN = "admin"
    """Users, every service token, backups and restore, settings, firmware."""


ROLE_RANK: Final[dict[Role, int]] = {Role.VIEWER: 0, Role.USER: 1, Role.ADMIN: 2}
FIRST_ADMIN_ID: Final = "admin"
"""The id ``ensure_admin`` gives the first user: a user stored before roles existed with this id reads as admin."""
SESSION_EPOCH_KEY: Final = "sessionEpoch"


def as_role(value: Any) -> Role | None:
    """``value`` as a role, or None when it is not one."""
    try:
        return Role(value)
    except ValueError:
        return None


def allows(role: Any, needed: Role | str) -> bool:
    """Whether ``role`` may do what ``needed`` may (an unknown role may do nothing)."""
    held = as_role(role)
    return held is not None and ROLE_RANK[held] >= ROLE_RANK[Role(needed)]


def lesser(first: Role, second: Role) -> Role:
    return first if ROLE_RANK[first] <= ROLE_RANK[second] else second


def legacy_role(user: Record) -> Role:
    """The role of a user stored before roles existed: the first admin (id ``admin``) stays ``admin``, anyone
    else becomes ``user`` (they could do everything before; ``user`` keeps their devices and automation and takes
    users, tokens of others, backups, settings and firmware away). ``AuthService.migrate_roles`` writes it down."""
    return Role.ADMIN if str(user.get("id")) == FIRST_ADMIN_ID else Role.USER


def user_role(user: Record) -> Role:
    """A stored user's role: its ``role``; none stored: ``legacy_role``; an unreadable one: ``viewer``."""
    raw = user.get("role")
    if raw is None or raw == "":
        return legacy_role(user)
    return as_role(raw) or Role.VIEWER


def session_epoch(user: Record) -> int:
    """The user's session epoch: tokens carrying another one were revoked (0 for users stored before it)."""
    value = user.get(SESSION_EPOCH_KEY)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class AuthError(DomainError):
    """A credential that cannot be accepted; the message is for logs and never names the secret."""


class SigningSecret(Protocol):
    """Where the JWT signing key comes from (``signing_secret_local``, ``signing_secret_ssm``)."""

    def get(self) -> bytes:
        """The key (at least 32 bytes), created on first use when there is none."""
        ...


class LoadedOnceSecret:
    """A ``SigningSecret`` whose key is loaded (or created) once, on first use, and then kept in memory; the
    adapters say how in ``_load``."""

    def __init__(self) -> None:
        self._key: bytes | None = None
        self._lock = threading.Lock()

    def get(self) -> bytes:
        key = self._key
        if key is not None:
            return key
        with self._lock:
            if self._key is None:
                self._key = self._load()
            return self._key

    def _load(self) -> bytes:
        raise NotImplementedError


# --------------------------------------------------------------------------------------------- passwords

_dummy_hash: bytes | None = None


def check_password_rules(password: str, username: str | None = None) -> str:
    """``password`` when NIST SP 800-63B's rules allow it as a new password for ``username``; ``ValueError`` saying
    which rule it breaks otherwise (length, bcrypt's limit, a common password, the username inside it)."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise ValueError(f"password must have at least {MIN_PASSWORD_CHARS} characters")
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        raise ValueError(f"password must be at most {MAX_PASSWORD_BYTES} bytes (bcrypt's limit)")
    if len(set(password)) == 1:
        raise ValueError("password must not be one character repeated")
    if is_common(password):
        raise ValueError("password is too common (it is on a list of passwords attackers try first)")
    name = (username or "").strip().casefold()
    if len(name) >= MIN_USERNAME_IN_PASSWORD and name in password.casefold():
        raise ValueError("password must not contain the username")
    return password


def hash_password(password: str) -> str:
    """A bcrypt hash (``$2b$…``). Rules are the API's to check (``check_password_rules``); here only bcrypt's
    72-byte limit, which would otherwise truncate silently."""
    if not password or len(password.encode()) > MAX_PASSWORD_BYTES:
        raise ValueError(f"password must be 1 to {MAX_PASSWORD_BYTES} bytes")
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=BCRYPT_ROUNDS)).decode()


def verify_password(password: str, hashed: str | None) -> bool:
    """Whether ``password`` matches ``hashed``; with no hash (unknown user) a dummy check of the same cost runs."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = bcrypt.hashpw(secrets.token_bytes(16).hex().encode(), bcrypt.gensalt(rounds=BCRYPT_ROUNDS))
    candidate = password.encode() if isinstance(password, str) else b""
    target = hashed.encode() if isinstance(hashed, str) and hashed.startswith("$2") else None
    if len(candidate) > MAX_PASSWORD_BYTES or not candidate:
        candidate = b"\x00" * 8
        target = None
    try:
        matched = bcrypt.checkpw(candidate, target if target is not None else _dummy_hash)
    except ValueError:  # a corrupt stored hash
        bcrypt.checkpw(candidate, _dummy_hash)
        return False
    return matched and target is not None


def generate_password() -> str:
    """A password for the first admin when none is configured (~96 bits)."""
    return secrets.token_urlsafe(12)


# --------------------------------------------------------------------------------------------- access tokens


def parse_duration(text: str | int | None, default_s: int = DEFAULT_TTL_S) -> int:
    """``"24h"``, ``"30m"``, ``"7d"``, ``"90s"`` or a number of seconds; between 60 s and 30 days."""
    if text is None or text == "":
        return default_s
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"expiresIn must look like 24h, 30m, 7d or seconds, got {text!r}")
    seconds = int(match.group(1)) * _UNIT_S[match.group(2).lower()]
    if not 60 <= seconds <= MAX_TTL_S:
        raise ValueError(f"expiresIn must be between 1m and {MAX_TTL_S // 86400}d, got {text!r}")
    return seconds


def password_stamp(secret: bytes, user: Record) -> str:
    """A short keyed digest of the user's stored hash: tokens carry it (``pst``), so a password change ends the
    sessions opened with the old one. Keyed, so the token tells nothing about the hash."""
    hashed = str(user.get("password") or "")
    return hmac.new(secret, hashed.encode(), hashlib.sha256).hexdigest()[:16]


def issue_token(secret: bytes, user: Record, ttl_s: int = DEFAULT_TTL_S, now_s: float | None = None
                ) -> tuple[str, dict[str, Any]]:
    """A signed access token for ``user`` and its claims."""
    issued = int(time.time() if now_s is None else now_s)
    claims = {
        "sub": str(user["id"]),
        "username": str(user.get("username") or user["id"]),
        "jti": uuid.uuid4().hex,
        "iat": issued,
        "exp": issued + int(ttl_s),
        "iss": ISSUER,
        "typ": TOKEN_TYPE,
        "pst": password_stamp(secret, user),
        "sep": session_epoch(user),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM), claims


def decode_token(secret: bytes, token: str, now_s: float | None = None) -> dict[str, Any]:
    """The claims of a token this service signed and that has not expired; ``AuthError`` otherwise."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token, secret, algorithms=[ALGORITHM], issuer=ISSUER,
            options={"require": ["exp", "iat", "jti", "sub", "iss"], "verify_exp": now_s is None},
        )
    except jwt.PyJWTError as error:
        raise AuthError(f"token refused: {type(error).__name__}") from None
    if claims.get("typ") != TOKEN_TYPE:
        raise AuthError("token refused: not an access token")
    if now_s is not None and not now_s < float(claims["exp"]):
        raise AuthError("token refused: ExpiredSignatureError")
    return claims


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2


def expires_at(exp_s: int | float) -> str:
    return iso_from_ms(int(exp_s * 1000))


# --------------------------------------------------------------------------------------------- service tokens


def new_service_token() -> tuple[str, str]:
    """``(token id, secret)``; the client form is ``client_form(id, secret)``, shown once."""
    return uuid.uuid4().hex, secrets.token_urlsafe(32)


def client_form(token_id: str, secret: str) -> str:
    return f"{token_id}{SERVICE_TOKEN_SEPARATOR}{secret}"


def split_service_token(text: str) -> tuple[str, str] | None:
    """``<tokenId>_<secret>`` → ``(tokenId, secret)``; None when it is not of that form."""
    token_id, separator, secret = text.partition(SERVICE_TOKEN_SEPARATOR)
    if not separator or not token_id or not secret or not token_id.isalnum() or len(token_id) > 64:
        return None
    return token_id, secret


def hash_secret(secret: str) -> str:
    return SECRET_HASH_PREFIX + hashlib.sha256(secret.encode()).hexdigest()


def service_token_matches(record: Record, secret: str, now_ms: int) -> bool:
    """The secret is this token's and the token has not expired."""
    stored = record.get("token")
    if not isinstance(stored, str) or not hmac.compare_digest(stored, hash_secret(secret)):
        return False
    return not service_token_expired(record, now_ms)


def service_token_expired(record: Record, now_ms: int) -> bool:
    """Past its ``expiresOn`` (or without a readable one) unless it never expires."""
    if record.get("neverExpire"):
        return False
    expires_on = record.get("expiresOn")
    if not isinstance(expires_on, str) or not expires_on:
        return True
    try:
        return now_ms >= ms_from_iso(expires_on)
    except ValueError:
        return True


# --------------------------------------------------------------------------------------------- models


class User(CamelModel):
    """A user in the reference's shape. ``password`` is write-only: set through upsert, stored as a hash."""

    id: str = ""
    username: str
    email: str = ""
    full_name: str = ""
    password: str | None = PydField(default=None, repr=False)
    role: Role | None = None
    """Left out on an update: the stored role is kept; on a new user: ``user``."""
    labels: dict[str, str] = PydField(default_factory=dict)
    modified_on: str | None = None

    @field_validator("username")
    @classmethod
    def _username(cls, value: str) -> str:
        if not USERNAME_PATTERN.match(value):
            raise ValueError("username must be 1-64 letters, digits, '_', '.', '@' or '-'")
        return value

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if value and not USERNAME_PATTERN.match(value):
            raise ValueError("id must be 1-64 letters, digits, '_', '.', '@' or '-'")
        return value

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        if value and (len(value) > 254 or not re.match(r"^[^@\s]+@[^@\s]+\Z", value)):
            raise ValueError("email is not an e-mail address")
        return value

    def model_post_init(self, _context: Any) -> None:
        if not self.id:
            self.id = self.username


class ServiceTokenRequest(CamelModel):
    """What a client sends to create a service token. ``role``: at most the maker's and the owner's; left out,
    the owner's."""

    name: str = PydField(min_length=1, max_length=128)
    user_id: str | None = None
    role: Role | None = None
    never_expire: bool = False
    expires_on: str | None = None
    description: str = ""

    @field_validator("expires_on")
    @classmethod
    def _expires_on(cls, value: str | None) -> str | None:
        if value:
            try:
                ms_from_iso(value)
            except ValueError:
                raise ValueError("expiresOn must be an RFC 3339 timestamp") from None
        return value


class ServiceToken(CamelModel):
    """A stored service token (the reference's shape); ``token`` is the secret's digest, never the secret."""

    id: str
    user_id: str
    name: str
    description: str = ""
    token: str = PydField(default="", repr=False)
    role: Role | None = None
    """None on tokens made before roles: they act with their owner's role."""
    created_by: str | None = None
    never_expire: bool = False
    expires_on: str | None = None
    created_on: str | None = None


def token_role(record: Record, owner: Record) -> Role:
    """What a service token may do: its role, never more than its owner's role now (a demotion of the owner
    demotes the tokens too)."""
    owner_role = user_role(owner)
    own = as_role(record.get("role"))
    return owner_role if own is None else lesser(own, owner_role)


USER_SECRET_KEYS: Final = ("password",)
USER_INTERNAL_KEYS: Final = (SESSION_EPOCH_KEY,)
"""Kept on the record, never shown: the session epoch (not secret, but no client's business)."""
TOKEN_SECRET_KEYS: Final = ("token",)


def public_user(record: Record) -> Record:
    """A user as the API shows it: never the password hash; always its role (the legacy one if none is stored)."""
    shown = {k: v for k, v in record.items() if k not in USER_SECRET_KEYS and k not in USER_INTERNAL_KEYS}
    if "id" in record:
        shown["role"] = user_role(record).value
    return shown


def public_service_token(record: Record) -> Record:
    """A service token as the API lists it: never the digest."""
    return {k: v for k, v in record.items() if k not in TOKEN_SECRET_KEYS}


def principal(kind: str, user: Record, token_id: str, exp_s: float | None, role: Role | None = None
              ) -> dict[str, Any]:
    """Who a request is from: what handlers, the websocket and logs may know (no secret in it). ``role`` is
    what it may do now; ``epoch`` the user's session epoch it was accepted under (the websocket re-checks both)."""
    return {
        "type": kind,
        "userId": str(user["id"]),
        "username": str(user.get("username") or user["id"]),
        "tokenId": token_id,
        "exp": int(exp_s) if exp_s is not None else None,
        "expiresAt": expires_at(exp_s) if exp_s is not None else None,
        "role": (role or user_role(user)).value,
        "epoch": session_epoch(user),
    }
