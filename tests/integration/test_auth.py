"""Authentication through the API: every non-public route refuses a request without a valid token; expired,
forged and revoked tokens are refused; the header, cookie and query forms and service tokens work; passwords,
hashes, the signing key and tokens never show in an answer or a log line."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import stat
import time
from pathlib import Path
from typing import Any

import jwt
import pytest

from chalicelib.api import auth as api_auth
from chalicelib.api.routes import ROUTES, document
from chalicelib.core import auth
from chalicelib.core.model import Kind
from chalicelib.services.auth import AuthService
from tests.integration.api_helpers import ADMIN_PASSWORD, Api

pytestmark = pytest.mark.integration
memory_only = pytest.mark.parametrize("api", ["memory"], indirect=True)

PUBLIC = {("GET", "/api/status"), ("POST", "/api/user/login"), ("GET", "/api/openapi.json"),
          ("GET", "/api/mc_auth/sign_out"), ("POST", "/api/mc_auth/sign_out")}


def concrete(path: str) -> str:
    return path.replace("{id}", "sim.1")


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def key_of(api: Api) -> bytes:
    return api.container.auth.signing_key()


def first_admin(api: Api, shown: list[str]) -> AuthService:
    """The auth service as a process starts it (nothing checked yet), showing a generated password to ``shown``."""
    return AuthService(api.container.repository, api.container.signing_secret,
                       admin_password=lambda: os.environ.get("MC_ADMIN_PASSWORD"), show_password=shown.append)


def claims_for(user: str = "admin", **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": user, "username": user, "jti": "j" * 32, "iat": now, "exp": now + 3600, "iss": auth.ISSUER,
            "typ": auth.TOKEN_TYPE, **extra}


# --------------------------------------------------------------------------------------------- the guard


@memory_only
def test_every_route_of_the_table_without_a_token_is_401(api: Api) -> None:
    guarded = [route for route in ROUTES if not route.public]
    assert len(guarded) > 40 and {(r.method, r.path) for r in ROUTES if r.public} == PUBLIC
    for route in guarded:
        status, body, headers = api.call(route.method, concrete(route.path), ["x"] if route.body else None,
                                         auth=False)
        assert status == 401, (route.method, route.path, status, body)
        assert body["status"] == 401 and body["error"] and body["field"] == "authorization"
        assert headers["WWW-Authenticate"].startswith("Bearer")
    for method, path in PUBLIC - {("POST", "/api/user/login")}:
        assert api.call(method, path, auth=False)[0] == 200


@memory_only
def test_forged_expired_and_malformed_tokens_are_refused(api: Api) -> None:
    key = key_of(api)
    stamp = auth.password_stamp(key, api.container.repository.get(Kind.USER, "admin") or {})

    def mine(user: str = "admin", **extra: Any) -> dict[str, Any]:
        return claims_for(user, **{"pst": stamp, **extra})

    good = jwt.encode(mine(), key, algorithm="HS256")
    assert api.call("GET", "/api/gateway", auth=good)[0] == 200  # the forging kit itself is right
    header, payload, signature = good.split(".")
    now = int(time.time())
    forged = {
        "expired": jwt.encode(mine(iat=now - 7200, exp=now - 3600), key, algorithm="HS256"),
        "wrong key": jwt.encode(mine(), b"k" * 64, algorithm="HS256"),
        "alg none": f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(mine())}.",
        "alg none signed": f"{b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.{signature}",
        "HS512": jwt.encode(mine(), key, algorithm="HS512"),
        "tampered payload": f"{header}.{b64(mine(sub='root', username='root'))}.{signature}",
        "tampered signature": f"{header}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}",
        "no exp": jwt.encode({k: v for k, v in mine().items() if k != "exp"}, key, algorithm="HS256"),
        "other issuer": jwt.encode(mine(iss="someone"), key, algorithm="HS256"),
        "not an access token": jwt.encode(mine(typ="refresh"), key, algorithm="HS256"),
        "unknown user": jwt.encode(mine("ghost"), key, algorithm="HS256"),
        "no password stamp": jwt.encode({k: v for k, v in mine().items() if k != "pst"}, key, algorithm="HS256"),
        "old password stamp": jwt.encode(mine(pst="0" * 16), key, algorithm="HS256"),
        "garbage": "not-a-token",
        "service-token shape": "abc123_not-the-secret",
        "huge": "a" * 10_000,
    }
    for what, token in forged.items():
        status, body, _ = api.call("GET", "/api/gateway", auth=token)
        assert status == 401, (what, body)
        assert api.call("GET", "/api/gateway", auth=False, access_token=token)[0] == 401, what
        assert api.call("GET", "/api/gateway", auth=False, headers={"Cookie": f"mc_access_token={token}"}
                        )[0] == 401, what


def test_login_logout_and_revocation(api: Api) -> None:
    status, body, headers = api.call("POST", "/api/user/login",
                                     {"username": "admin", "password": ADMIN_PASSWORD, "expiresIn": "1h"}, auth=False)
    assert status == 200 and body["username"] == "admin"
    token = body["token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert jwt.get_unverified_header(token)["alg"] == "HS256" and claims["exp"] - claims["iat"] == 3600
    assert body["expiresAt"] == auth.expires_at(claims["exp"])
    cookie = headers["Set-Cookie"]
    assert cookie.startswith(f"mc_access_token={token};")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie and "Max-Age=3600" in cookie

    assert api.ok("GET", "/api/user/profile", auth=token)["username"] == "admin"
    status, body, headers = api.call("POST", "/api/user/logout", auth=token)
    assert (status, body) == (200, {"loggedOut": True, "revoked": True})
    assert headers["Set-Cookie"].startswith("mc_access_token=;") and "Max-Age=0" in headers["Set-Cookie"]
    assert api.call("GET", "/api/user/profile", auth=token)[0] == 401
    assert api.call("POST", "/api/user/logout", auth=token)[0] == 401
    assert api.container.repository.get(Kind.REVOKED_TOKEN, claims["jti"])["exp"] == claims["exp"]
    assert api.ok("GET", "/api/user/profile")["username"] == "admin"  # other sessions live on


def test_wrong_credentials_are_one_401_for_unknown_user_and_bad_password(api: Api) -> None:
    answers = []
    for username, password in (("admin", "wrong-password"), ("nobody", ADMIN_PASSWORD), ("admin", "")):
        status, body, headers = api.call("POST", "/api/user/login", {"username": username, "password": password},
                                         auth=False)
        answers.append((status, body.get("error"), "Set-Cookie" in headers))
    assert answers[0] == answers[1] == (401, "invalid username or password", False)
    assert answers[2][0] == 400  # an empty password is a malformed request
    status, body, _ = api.call("POST", "/api/user/login", {"username": "admin", "password": ADMIN_PASSWORD,
                                                          "expiresIn": "forever"}, auth=False)
    assert status == 400 and body["field"] == "expiresIn"


@memory_only
def test_cookie_and_query_forms_are_accepted(api: Api) -> None:
    token = api.login()
    assert api.call("GET", "/api/gateway", auth=False, headers={"Cookie": f"theme=dark; mc_access_token={token}"}
                    )[0] == 200
    assert api.call("GET", "/api/gateway", auth=False, access_token=token)[0] == 200
    assert api.call("GET", "/api/gateway", auth=False, headers={"Authorization": f"bearer {token}"})[0] == 200
    assert api.call("GET", "/api/gateway", auth=False, headers={"Authorization": f"Basic {token}"})[0] == 401


def test_service_token_works_until_deleted(api: Api) -> None:
    created = api.ok("POST", "/api/servicetoken", {"name": "backup script", "neverExpire": True})
    token_id, secret = auth.split_service_token(created["token"]) or ("", "")
    assert token_id == created["id"] and created["userId"] == "admin"
    assert api.ok("GET", "/api/gateway", auth=created["token"])["count"] == 0
    assert api.call("GET", "/api/gateway", auth=False, access_token=created["token"])[0] == 200
    assert api.call("GET", "/api/gateway", auth=f"{token_id}_{secret}x")[0] == 401
    stored = api.container.repository.get(Kind.SERVICE_TOKEN, token_id)
    assert stored["token"] == auth.hash_secret(secret) and secret not in json.dumps(stored)
    listed = api.ok("GET", "/api/servicetoken")["data"]
    assert [t["id"] for t in listed] == [token_id] and "token" not in listed[0]
    # logout with a service token does not revoke it (delete does)
    assert api.ok("POST", "/api/user/logout", auth=created["token"])["revoked"] is False
    assert api.call("GET", "/api/gateway", auth=created["token"])[0] == 200
    assert api.ok("DELETE", "/api/servicetoken", [token_id]) == {"deleted": 1, "cascaded": 0}
    assert api.call("GET", "/api/gateway", auth=created["token"])[0] == 401


@memory_only
def test_service_token_expiry(api: Api) -> None:
    status, body, _ = api.call("POST", "/api/servicetoken", {"name": "x"})
    assert status == 400 and body["field"] == "expiresOn"
    status, body, _ = api.call("POST", "/api/servicetoken", {"name": "x", "expiresOn": "2020-01-01T00:00:00Z"})
    assert status == 400 and body["field"] == "expiresOn"
    created = api.ok("POST", "/api/servicetoken", {"name": "x", "expiresOn": "2099-01-01T00:00:00Z"})
    assert api.call("GET", "/api/node", auth=created["token"])[0] == 200
    stored = api.container.repository.get(Kind.SERVICE_TOKEN, created["id"])
    api.container.repository.put(Kind.SERVICE_TOKEN, {**stored, "expiresOn": "2020-01-01T00:00:00.000Z"})
    assert api.call("GET", "/api/node", auth=created["token"])[0] == 401


# --------------------------------------------------------------------------------------------- users


def test_users_crud_hashes_passwords_and_never_returns_them(api: Api) -> None:
    created = api.ok("POST", "/api/user", {"username": "alice", "email": "alice@example.com",
                                           "fullName": "Alice", "password": "Orchid-Velvet-91"})
    assert created["id"] == "alice" and "password" not in created
    stored = api.container.repository.get(Kind.USER, "alice")
    assert stored["password"].startswith("$2b$") and auth.verify_password("Orchid-Velvet-91", stored["password"])
    alice = api.login("alice", "Orchid-Velvet-91")
    assert api.ok("GET", "/api/user/profile", auth=alice)["email"] == "alice@example.com"

    updated = api.ok("POST", "/api/user", {"id": "alice", "username": "alice", "fullName": "Alice B."})
    assert updated["fullName"] == "Alice B." and "password" not in updated
    assert api.container.repository.get(Kind.USER, "alice")["password"] == stored["password"]  # kept
    status, body, _ = api.call("POST", "/api/user", {"username": "bob"})
    assert status == 400 and body["field"] == "password"
    status, body, _ = api.call("POST", "/api/user", {"username": "bob", "password": "short"})
    assert status == 400 and body["field"] == "password"
    status, body, _ = api.call("POST", "/api/user", {"id": "other", "username": "alice", "password": "Granite-Fox-57"})
    assert status == 400 and body["field"] == "username"

    users = api.ok("GET", "/api/user", sortBy="username")["data"]
    assert [u["username"] for u in users] == ["admin", "alice"] and all("password" not in u for u in users)
    assert "password" not in api.ok("GET", "/api/user/alice")
    status, body, _ = api.call("GET", "/api/user", filter=json.dumps([{"k": "password", "o": "regex", "v": "^."}]))
    assert status == 400 and body["field"] == "filter"
    status, _, _ = api.call("GET", "/api/quickid", id="user:alice.password")
    assert status == 400

    status, body, _ = api.call("DELETE", "/api/user", ["admin"])
    assert status == 400  # not oneself
    service = api.ok("POST", "/api/servicetoken", {"name": "a", "neverExpire": True}, auth=alice)
    assert api.ok("DELETE", "/api/user", ["alice"]) == {"deleted": 1, "cascaded": 1}
    assert api.call("GET", "/api/gateway", auth=alice)[0] == 401
    assert api.call("GET", "/api/gateway", auth=service["token"])[0] == 401


@memory_only
def test_profile_password_change_needs_the_current_one(api: Api) -> None:
    status, body, _ = api.call("POST", "/api/user/profile", {"password": "Saffron-Meadow-44",
                                                              "currentPassword": "wrong"})
    assert status == 400 and body["field"] == "currentPassword"
    profile = api.ok("POST", "/api/user/profile", {"password": "Saffron-Meadow-44", "currentPassword": ADMIN_PASSWORD,
                                                   "fullName": "Boss"})
    assert profile["fullName"] == "Boss" and "password" not in profile
    assert api.call("POST", "/api/user/login", {"username": "admin", "password": ADMIN_PASSWORD},
                    auth=False)[0] == 401
    assert api.call("GET", "/api/user/profile")[0] == 401  # sessions of the old password end
    assert api.ok("GET", "/api/user/profile", auth=api.login("admin", "Saffron-Meadow-44"))["fullName"] == "Boss"


# --------------------------------------------------------------------------------------------- first admin


@memory_only
def test_first_admin_gets_a_generated_password_shown_once(api: Api, monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.delenv("MC_ADMIN_PASSWORD")
    api.container.repository.delete(Kind.USER, ["admin"])
    shown: list[str] = []
    service = first_admin(api, shown)
    with caplog.at_level(logging.DEBUG):
        assert service.ensure_admin() is True
        assert service.ensure_admin() is False
        service.forget_admin_check()
        assert service.ensure_admin() is False  # a user exists now
    [password] = shown
    assert len(password) >= 16 and password != "admin"
    assert password not in caplog.text
    api.login("admin", password)


@memory_only
def test_in_lambda_no_password_is_generated_without_mc_admin_password(api: Api, monkeypatch: pytest.MonkeyPatch,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.delenv("MC_ADMIN_PASSWORD")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "mycontroller-dev")
    api.container.repository.delete(Kind.USER, ["admin"])
    shown: list[str] = []
    service = first_admin(api, shown)
    with caplog.at_level(logging.DEBUG):
        assert service.ensure_admin() is False
    assert shown == [] and api.container.repository.get(Kind.USER, "admin") is None
    assert "MC_ADMIN_PASSWORD is not set" in caplog.text
    monkeypatch.setenv("MC_ADMIN_PASSWORD", "Operator-Chosen-1!")
    assert service.ensure_admin() is True and shown == []
    api.login("admin", "Operator-Chosen-1!")


# --------------------------------------------------------------------------------------------- no leaks


@memory_only
def test_no_secret_in_any_answer_or_log_line(api: Api, monkeypatch: pytest.MonkeyPatch,
                                             caplog: pytest.LogCaptureFixture) -> None:
    from chalicelib.api.observability import logger

    stream = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", stream)
    answers: list[str] = []

    def call(method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        status, data, headers = api.call(method, path, body, **kwargs)
        answers.append(json.dumps(data))
        return status, data, headers

    with caplog.at_level(logging.DEBUG):
        api.ok("POST", "/api/gateway", {"id": "sim"})
        call("POST", "/api/user", {"username": "carol", "password": "Quartz-Ember-63"})
        _, login, _ = api.call("POST", "/api/user/login", {"username": "carol", "password": "Quartz-Ember-63"},
                               auth=False)  # the one answer that carries a token, by design
        call("POST", "/api/user/login", {"username": "carol", "password": "Quartz-Ember-64"}, auth=False)
        call("POST", "/api/user/login", {"username": "Quartz-Ember-63", "password": "x"}, auth=False)
        _, service, _ = api.call("POST", "/api/servicetoken", {"name": "s", "neverExpire": True})
        call("POST", "/api/dashboard", {"id": "d1", "title": "Home"})
        for route in ROUTES:
            body: Any = None
            if route.body is not None:
                body = {"username": "carol", "password": "Quartz-Ember-63"} if route.path.startswith("/api/user") \
                    else ["sim"] if route.method == "DELETE" else {}
            if route.method == "DELETE" or route.name in ("logout", "login"):
                continue  # keep the data; logout and login are covered above
            call(route.method, concrete(route.path).replace("sim.1", "carol" if "user" in route.path else "sim"),
                 body, auth=service["token"])
            call(route.method, concrete(route.path), body, auth=False)
        call("POST", "/api/user/logout", auth=login["token"])
    secrets = {
        "carol's password": "Quartz-Ember-63",
        "admin's password": ADMIN_PASSWORD,
        "a bcrypt hash": "$2b$",
        "a token digest": auth.SECRET_HASH_PREFIX,
        "carol's token": login["token"],
        "the default token": str(api.token),
        "the service token secret": service["token"].partition("_")[2],
        "the signing key (hex)": key_of(api).hex(),
        "the signing key (base64)": base64.b64encode(key_of(api)).decode(),
    }
    everything = "\n".join(answers)
    assert len(answers) > 60 and '"username": "carol"' in everything
    logs = stream.getvalue() + caplog.text
    assert "request" in logs
    for what, secret in secrets.items():
        assert secret not in everything, f"{what} in an answer"
        assert secret not in logs, f"{what} in a log line"


# --------------------------------------------------------------------------------------------- pieces


def test_openapi_declares_the_security_schemes() -> None:
    doc = document()
    assert set(doc["components"]["securitySchemes"]) == {"bearerAuth", "cookieAuth", "queryAuth"}
    assert doc["components"]["securitySchemes"]["cookieAuth"]["name"] == "mc_access_token"
    for route in ROUTES:
        operation = doc["paths"][route.path][route.method.lower()]
        if route.public:
            assert operation["security"] == []
            assert ("401" in operation["responses"]) == (route.name == "login")  # bad credentials
        else:
            assert "security" not in operation and "401" in operation["responses"], route.name


def test_token_from_request_order_and_forms() -> None:
    assert api_auth.token_from_request({"authorization": "Bearer a", "cookie": "mc_access_token=b"},
                                       {"access_token": "c"}) == "a"
    assert api_auth.token_from_request({"Cookie": "x=1; mc_access_token=b"}, {"access_token": "c"}) == "b"
    assert api_auth.token_from_request({}, {"access_token": ["c", "d"]}) == "d"
    assert api_auth.token_from_request(None, None) is None
    assert api_auth.token_from_request({"Authorization": "Basic abc"}, None) is None


def test_local_signing_secret_file(tmp_path: Path) -> None:
    from chalicelib.adapters.signing_secret_local import LocalSigningSecret

    path = tmp_path / "data" / "jwt-secret"
    key = LocalSigningSecret(path).get()
    assert len(key) == 64 and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert LocalSigningSecret(path).get() == key  # survives a restart


def test_ssm_signing_secret(aws_mock: None) -> None:
    import boto3

    from chalicelib.adapters.signing_secret_ssm import SsmSigningSecret

    client = boto3.client("ssm", region_name="us-east-1")
    key = SsmSigningSecret("/mc-test/jwt-secret", client=client).get()
    stored = client.get_parameter(Name="/mc-test/jwt-secret", WithDecryption=True)["Parameter"]
    assert stored["Type"] == "SecureString" and stored["Value"].encode() == key and len(key) == 128
    assert SsmSigningSecret("/mc-test/jwt-secret", client=client).get() == key
    with pytest.raises(RuntimeError):
        SsmSigningSecret("/mc-test/absent", client=client, create=False).get()


def test_password_and_token_core() -> None:
    hashed = auth.hash_password("correct horse")
    assert auth.verify_password("correct horse", hashed) and not auth.verify_password("wrong horse", hashed)
    assert not auth.verify_password("anything", None) and not auth.verify_password("x" * 100, hashed)
    assert not auth.verify_password("correct horse", "$2b$corrupt")
    assert auth.parse_duration("24h") == 86400 and auth.parse_duration(None) == auth.DEFAULT_TTL_S
    assert auth.parse_duration("90") == 90 and auth.parse_duration("7d") == 7 * 86400
    for bad in ("0s", "31d", "1y", "-1h"):
        with pytest.raises(ValueError):
            auth.parse_duration(bad)
    token, claims = auth.issue_token(b"k" * 64, {"id": "u1", "username": "u"}, 60, now_s=1000)
    assert claims["exp"] == 1060
    assert auth.decode_token(b"k" * 64, token, now_s=1059)["sub"] == "u1"
    with pytest.raises(auth.AuthError):
        auth.decode_token(b"k" * 64, token, now_s=1060)
    assert auth.split_service_token("abc_def_ghi") == ("abc", "def_ghi") and auth.split_service_token("abc") is None


@memory_only
def test_principal_from_token_for_the_websocket(api: Api) -> None:
    principal = api.container.auth.principal_from_token(str(api.token))
    assert principal is not None
    assert (principal["type"], principal["userId"], principal["username"]) == ("user", "admin", "admin")
    assert principal["exp"] > time.time() and principal["expiresAt"].endswith("Z") and len(principal["tokenId"]) == 32
    service = api.ok("POST", "/api/servicetoken", {"name": "ws", "neverExpire": True})
    assert api.container.auth.principal_from_token(service["token"]) == {
        "type": "service_token", "userId": "admin", "username": "admin", "tokenId": service["id"], "exp": None,
        "expiresAt": None, "role": "admin", "epoch": 0}
    for bad in ("", "x", "a.b.c", service["token"] + "x", "y" * 5000):
        assert api.container.auth.principal_from_token(bad) is None
    assert api_auth.authenticate(api.container.auth, {"cookie": f"mc_access_token={api.token}"}, None) == principal


@memory_only
def test_login_by_username_when_the_id_differs(api: Api) -> None:
    api.ok("POST", "/api/user", {"id": "u-42", "username": "dave", "password": "Cobalt-Willow-28"})
    token = api.login("dave", "Cobalt-Willow-28")
    assert api.ok("GET", "/api/user/profile", auth=token)["id"] == "u-42"
    assert api.call("POST", "/api/user/login", {"username": "u-42", "password": "Cobalt-Willow-28"},
                    auth=False)[0] == 401
