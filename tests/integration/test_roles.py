"""Roles through the API, as each kind of account would try: every route of the table declares the least role
that may call it, and a viewer, a user and an admin get 403 exactly below it; the rules that depend on whom a
change touches (another user's password, role or tokens; the last admin; a service token's role) hold; users
stored before roles existed read and migrate as documented."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.api.routes import LIST_PARAMS, ROUTES, document
from chalicelib.api.web import Body, Ok, Route
from chalicelib.core import auth
from chalicelib.core.auth import Role
from chalicelib.core.model import Kind
from tests.integration.api_helpers import ADMIN_PASSWORD, Api

pytestmark = pytest.mark.integration
memory_only = pytest.mark.parametrize("api", ["memory"], indirect=True)

PASSWORDS = {"vera": "Lilac-Horizon-Tide-3", "uma": "Copper-Kettle-Song-8", "ada": "Silent-Glacier-Pine-5"}
RANK = {Role.VIEWER: 0, Role.USER: 1, Role.ADMIN: 2}


def add_user(api: Api, username: str, role: str) -> str:
    """A user with ``role`` (made by the admin); the token of a login as them."""
    made = api.ok("POST", "/api/user", {"username": username, "password": PASSWORDS[username], "role": role})
    assert made["role"] == role and "password" not in made and "sessionEpoch" not in made
    return api.login(username, PASSWORDS[username])


def tokens(api: Api) -> dict[Role, str]:
    return {Role.VIEWER: add_user(api, "vera", "viewer"), Role.USER: add_user(api, "uma", "user"),
            Role.ADMIN: str(api.token)}


def concrete(path: str) -> str:
    return path.replace("{id}", "nothing-here").replace("{name}", "nothing-here.zip")


def body_for(route: Route) -> Any:
    if route.body is None:
        return None
    return ["nothing-here"] if route.method == "DELETE" else {}


# --------------------------------------------------------------------------------------------- the table


def test_every_route_that_is_not_public_declares_a_role() -> None:
    guarded = [route for route in ROUTES if not route.public]
    assert len(guarded) > 60
    assert all(isinstance(route.role, Role) for route in guarded), [r.name for r in guarded if r.role is None]
    by_role = {role: {(r.method, r.path) for r in guarded if r.role == role} for role in Role}
    assert ("POST", "/api/user") in by_role[Role.ADMIN] and ("POST", "/api/backup/restore") in by_role[Role.ADMIN]
    assert ("POST", "/api/settings/system") in by_role[Role.ADMIN] and ("POST", "/api/firmware") in by_role[Role.ADMIN]
    assert ("POST", "/api/gateway") in by_role[Role.USER] and ("POST", "/api/action") in by_role[Role.USER]
    assert ("POST", "/api/dashboard") in by_role[Role.USER] and ("POST", "/api/task") in by_role[Role.USER]
    assert ("GET", "/api/action") in by_role[Role.USER]  # a GET that acts is a write
    assert all(method == "GET" or path in ("/api/metric", "/api/user/logout", "/api/user/profile")
               for method, path in by_role[Role.VIEWER])
    assert {(r.method, r.path) for r in ROUTES if r.path.startswith("/api/backup")} <= by_role[Role.ADMIN]
    operations = document()["paths"]
    for route in guarded:
        operation = operations[route.path][route.method.lower()]
        assert operation["x-required-role"] == route.role and "403" in operation["responses"], route.name
    assert "429" in operations["/api/user/login"]["post"]["responses"]


def test_a_route_cannot_be_declared_without_a_role() -> None:
    with pytest.raises(ValueError, match="declares no role"):
        Route("GET", "/api/new", "new_route", lambda _request: {}, "New", "new", Ok("Ok"))
    Route("GET", "/api/open", "open_route", lambda _request: {}, "Open", "new", Ok("Ok"), public=True)
    Route("POST", "/api/new", "new_route", lambda _request: {}, "New", "new", Ok("Ok"), body=Body("x"),
          role=Role.USER)


ENDS_EVERY_SESSION = {"reset_jwt_secret"}
"""Routes after which no login token works (MyController v2's JWT reset; its own test is in
tests/integration/test_reference_console.py)."""


@memory_only
def test_each_role_is_refused_exactly_below_each_routes_role(api: Api) -> None:
    held = tokens(api)
    for route in ROUTES:
        if route.public or route.name in ENDS_EVERY_SESSION:
            continue
        for role, token in held.items():
            if route.name == "logout":
                token = api.login(*(("admin", ADMIN_PASSWORD) if role == Role.ADMIN else
                                    ({Role.VIEWER: "vera", Role.USER: "uma"}[role],
                                     PASSWORDS[{Role.VIEWER: "vera", Role.USER: "uma"}[role]])))
            status, answer, _ = api.call(route.method, concrete(route.path), body_for(route), auth=token)
            allowed = RANK[role] >= RANK[route.role or Role.VIEWER]
            what = (route.method, route.path, role.value, status, answer)
            if allowed:
                assert status not in (401, 403), what
                if route.method == "GET" and "{" not in route.path and route.params in ((), LIST_PARAMS):
                    assert status == 200, what  # a read without arguments simply answers
            else:
                assert status == 403, what
                assert answer["field"] == "authorization" and answer["required"] == route.role
                assert f"needs the {route.role} role (yours is {role})" in answer["message"]


@memory_only
def test_what_each_role_does_succeeds(api: Api) -> None:
    held = tokens(api)
    viewer, user = held[Role.VIEWER], held[Role.USER]
    api.ok("POST", "/api/gateway", {"id": "sim", "provider": {"type": "mysensors_v2"}})
    for path in ("/api/gateway", "/api/gateway/sim", "/api/node", "/api/dashboard", "/api/task",
                 "/api/settings/system", "/api/firmware", "/api/user/profile", "/api/version"):
        assert api.call("GET", path, auth=viewer)[0] == 200, path
    assert api.ok("GET", "/api/user/profile", auth=viewer)["role"] == "viewer"
    assert api.ok("POST", "/api/user/profile", {"fullName": "Vera V."}, auth=viewer)["fullName"] == "Vera V."
    assert api.ok("POST", "/api/gateway", {"id": "house", "provider": {"type": "mysensors_v2"}}, auth=user)
    assert api.ok("POST", "/api/dashboard", {"id": "d1", "title": "Home"}, auth=user)["id"] == "d1"
    assert api.ok("POST", "/api/action/gateway", {"action": "discover_nodes", "ids": ["sim"]}, auth=user)
    assert api.ok("DELETE", "/api/gateway", ["house"], auth=user)["deleted"] == 1
    assert api.ok("POST", "/api/backup/run", {})["jobId"]
    assert api.ok("POST", "/api/settings/system", {"language": "en"})["language"] == "en"


@memory_only
def test_a_viewer_cannot_write_anything(api: Api) -> None:
    viewer = tokens(api)[Role.VIEWER]
    for method, path, body in (("POST", "/api/gateway", {"id": "x"}), ("DELETE", "/api/node", ["sim.1"]),
                               ("POST", "/api/action", [{"resource": "field:sim.1.1.V_STATUS", "payload": "1"}]),
                               ("POST", "/api/dashboard", {"title": "mine"}), ("POST", "/api/task", {}),
                               ("POST", "/api/servicetoken", {"name": "script", "neverExpire": True}),
                               ("POST", "/api/user", {"username": "eve", "password": "Pumpkin-Orbit-Lark-1"})):
        status, answer, _ = api.call(method, path, body, auth=viewer)
        assert status == 403, (method, path, answer)
    assert api.call("GET", "/api/action", auth=viewer, resource="field:sim.1.1.V_STATUS", payload="1")[0] == 403
    assert api.sent == []


@memory_only
def test_a_user_cannot_manage_users_backups_settings_or_firmware(api: Api) -> None:
    user = tokens(api)[Role.USER]
    refused = (("POST", "/api/user", {"username": "eve", "password": "Pumpkin-Orbit-Lark-1", "role": "admin"}),
               ("POST", "/api/user", {"id": "uma", "username": "uma", "role": "admin"}),
               ("POST", "/api/user", {"id": "admin", "username": "admin", "password": "Mallory-Was-Here-99"}),
               ("DELETE", "/api/user", ["admin"]), ("GET", "/api/user", None),
               ("POST", "/api/backup/run", {}), ("POST", "/api/backup/restore", {"name": "x.zip"}),
               ("GET", "/api/backup", None), ("POST", "/api/settings/system", {"language": "de"}),
               ("POST", "/api/firmware", {"id": "fw"}))
    for method, path, body in refused:
        status, answer, _ = api.call(method, path, body, auth=user)
        assert status == 403, (method, path, answer)
    stored = api.container.repository.get(Kind.USER, "admin")
    assert auth.verify_password(ADMIN_PASSWORD, stored["password"])
    assert api.container.repository.get(Kind.USER, "uma")["role"] == "user"
    assert api.container.repository.get(Kind.USER, "eve") is None


# --------------------------------------------------------------------------------------------- who a change touches


@memory_only
def test_only_an_admin_changes_another_users_password_and_ones_own_needs_the_current_one(api: Api) -> None:
    tokens(api)
    status, answer, _ = api.call("POST", "/api/user", {"id": "admin", "username": "admin",
                                                        "password": "Brand-New-Secret-42"})
    assert status == 400 and answer["field"] == "currentPassword"
    api.ok("POST", "/api/user", {"id": "admin", "username": "admin", "password": "Brand-New-Secret-42",
                                 "currentPassword": ADMIN_PASSWORD})
    assert api.call("GET", "/api/gateway")[0] == 401  # the old sessions ended
    api.token = None
    api.login("admin", "Brand-New-Secret-42")
    api.ok("POST", "/api/user", {"id": "uma", "username": "uma", "password": "Reset-By-Admin-Seven-7"})
    api.login("uma", "Reset-By-Admin-Seven-7")


@memory_only
def test_the_last_admin_can_be_neither_demoted_nor_deleted(api: Api) -> None:
    tokens(api)
    status, answer, _ = api.call("POST", "/api/user", {"id": "admin", "username": "admin", "role": "user"})
    assert status == 403 and "last admin" in answer["message"] and answer["field"] == "role"
    assert api.container.repository.get(Kind.USER, "admin")["role"] == "admin"
    ada = add_user(api, "ada", "admin")
    status, answer, _ = api.call("DELETE", "/api/user", ["admin"], auth=ada)
    assert status == 200  # another admin is left: ada
    status, answer, _ = api.call("POST", "/api/user", {"id": "ada", "username": "ada", "role": "viewer"}, auth=ada)
    assert status == 403 and "last admin" in answer["message"]
    status, answer, _ = api.call("DELETE", "/api/user", ["ada"], auth=ada)
    assert status == 400  # not oneself (and the last admin anyway)


@memory_only
def test_a_service_token_carries_a_role_no_higher_than_its_makers(api: Api) -> None:
    held = tokens(api)
    user = held[Role.USER]
    status, answer, _ = api.call("POST", "/api/servicetoken", {"name": "escalate", "neverExpire": True,
                                                               "role": "admin"}, auth=user)
    assert status == 403 and answer["field"] == "role" and "at most user" in answer["message"]
    status, answer, _ = api.call("POST", "/api/servicetoken", {"name": "x", "neverExpire": True, "userId": "admin"},
                                 auth=user)
    assert status == 403  # a token for someone else
    made = api.ok("POST", "/api/servicetoken", {"name": "script", "neverExpire": True}, auth=user)
    assert made["role"] == "user" and made["userId"] == "uma" and made["createdBy"] == "uma"
    script = made["token"]
    assert api.call("POST", "/api/gateway", {"id": "g2"}, auth=script)[0] == 200
    assert api.call("POST", "/api/user", {"username": "eve", "password": "Pumpkin-Orbit-Lark-1"}, auth=script)[0] == 403
    reader = api.ok("POST", "/api/servicetoken", {"name": "reader", "neverExpire": True, "role": "viewer"}, auth=user)
    assert api.call("GET", "/api/gateway", auth=reader["token"])[0] == 200
    assert api.call("POST", "/api/gateway", {"id": "g3"}, auth=reader["token"])[0] == 403
    # the admin makes one for uma: never above uma's role
    status, answer, _ = api.call("POST", "/api/servicetoken", {"name": "x", "neverExpire": True, "userId": "uma",
                                                               "role": "admin"})
    assert status == 403
    # a demotion of the owner demotes the tokens: uma becomes a viewer
    api.ok("POST", "/api/user", {"id": "uma", "username": "uma", "role": "viewer"})
    assert api.call("POST", "/api/gateway", {"id": "g4"}, auth=script)[0] == 403
    assert api.call("GET", "/api/gateway", auth=script)[0] == 200
    # only their own tokens show and go, for anyone but an admin
    mine = api.ok("POST", "/api/servicetoken", {"name": "admin-script", "neverExpire": True})
    api.ok("POST", "/api/user", {"id": "uma", "username": "uma", "role": "user"})
    uma = api.login("uma", PASSWORDS["uma"])
    listed = api.ok("GET", "/api/servicetoken", auth=uma, limit=0)["data"]
    assert {t["id"] for t in listed} == {made["id"], reader["id"]}
    assert {t["id"] for t in api.ok("GET", "/api/servicetoken", limit=0)["data"]} >= {mine["id"], made["id"]}
    assert api.call("DELETE", "/api/servicetoken", [mine["id"]], auth=uma)[0] == 403
    assert api.call("GET", "/api/gateway", auth=mine["token"])[0] == 200
    assert api.ok("DELETE", "/api/servicetoken", [made["id"]], auth=uma)["deleted"] == 1
    assert api.call("GET", "/api/gateway", auth=script)[0] == 401


@memory_only
def test_a_role_change_ends_the_users_sessions_and_the_next_login_has_the_new_role(api: Api) -> None:
    user = tokens(api)[Role.USER]
    api.ok("POST", "/api/user", {"id": "uma", "username": "uma", "role": "viewer"})
    assert api.call("GET", "/api/gateway", auth=user)[0] == 401
    status, answer, _ = api.call("POST", "/api/user/login", {"username": "uma", "password": PASSWORDS["uma"]},
                                 auth=False)
    assert status == 200 and answer["role"] == "viewer"
    assert api.call("POST", "/api/gateway", {"id": "x"}, auth=answer["token"])[0] == 403
    unchanged = api.login("uma", PASSWORDS["uma"])
    api.ok("POST", "/api/user", {"id": "uma", "username": "uma", "fullName": "Uma"})  # no role or password: kept
    assert api.call("GET", "/api/gateway", auth=unchanged)[0] == 200


# --------------------------------------------------------------------------------------------- users before roles


@memory_only
def test_users_stored_before_roles_read_and_migrate_as_documented(api: Api) -> None:
    repository = api.container.repository
    admin = repository.get(Kind.USER, "admin")
    legacy = {"id": "bob", "username": "bob", "password": admin["password"]}
    repository.put(Kind.USER, {k: v for k, v in admin.items() if k != "role"})
    repository.put(Kind.USER, legacy)
    assert api.ok("GET", "/api/user/admin")["role"] == "admin"  # read as admin before any migration
    assert api.ok("GET", "/api/user/bob")["role"] == "user"
    service = api.container.auth
    service.forget_admin_check()
    service.ensure_admin()
    assert repository.get(Kind.USER, "admin")["role"] == "admin" and repository.get(Kind.USER, "bob")["role"] == "user"
    # no first admin left: every user stored without a role becomes admin, so nobody is locked out
    repository.delete(Kind.USER, ["admin", "bob"])
    for name in ("carl", "dina"):
        repository.put(Kind.USER, {"id": name, "username": name, "password": admin["password"]})
    assert service.migrate_roles() == 2
    assert {repository.get(Kind.USER, n)["role"] for n in ("carl", "dina")} == {"admin"}
    assert service.migrate_roles() == 0


def test_roles_core() -> None:
    assert auth.allows("admin", Role.USER) and auth.allows("user", Role.USER) and not auth.allows("viewer", "user")
    assert not auth.allows(None, Role.VIEWER) and not auth.allows("root", Role.VIEWER)
    assert auth.user_role({"id": "x", "role": "superuser"}) == Role.VIEWER  # unreadable: the least
    assert auth.token_role({"role": "admin"}, {"id": "u", "role": "user"}) == Role.USER
    assert auth.token_role({}, {"id": "u", "role": "viewer"}) == Role.VIEWER
    assert json.loads(json.dumps(auth.public_user({"id": "a", "password": "h", "sessionEpoch": 3}))) == {
        "id": "a", "role": "user"}
