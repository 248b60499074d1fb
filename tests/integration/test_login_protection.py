"""Login protection as a guesser meets it: wrong passwords cost more each time, per username and per client
address (429 with Retry-After after the free failures, growing), the state is shared through the repository (a
second process sees the lock), it is logged without the guesses; new passwords follow NIST SP 800-63B."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from chalicelib.core import auth
from chalicelib.core.model import Kind
from chalicelib.services.auth import AuthService
from chalicelib.services.errors import TooManyAttempts, Unauthenticated
from chalicelib.services.login_guard import LoginGuard, LoginPolicy
from tests.integration.api_helpers import ADMIN_PASSWORD, Api

pytestmark = pytest.mark.integration
memory_only = pytest.mark.parametrize("api", ["memory"], indirect=True)


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def frozen(api: Api) -> Clock:
    clock = Clock()
    api.container.auth.guard.clock = clock
    return clock


def attempt(api: Api, password: str, username: str = "admin") -> tuple[int, Any, dict[str, str]]:
    return api.call("POST", "/api/user/login", {"username": username, "password": password}, auth=False)


def test_a_hundred_wrong_passwords_get_429_with_a_growing_retry_after_from_the_sixth(api: Api) -> None:
    clock = frozen(api)
    answers = [attempt(api, f"Wrong-Guess-{n:03d}") for n in range(100)]
    assert [status for status, _, _ in answers[:5]] == [401] * 5
    assert {status for status, _, _ in answers[5:]} == {429}
    status, body, headers = answers[5]
    assert int(headers["Retry-After"]) == 30 and body["retryAfter"] == 30 and "try again in 30 s" in body["message"]
    assert attempt(api, ADMIN_PASSWORD)[0] == 429  # while locked the password is not even checked
    clock.now += 31
    status, _, headers = attempt(api, "Wrong-Guess-again")
    assert status == 401  # this failure is counted, and locks for longer
    assert int(attempt(api, ADMIN_PASSWORD)[2]["Retry-After"]) == 60
    clock.now += 61
    attempt(api, "Wrong-Guess-once-more")
    assert int(attempt(api, ADMIN_PASSWORD)[2]["Retry-After"]) == 120
    clock.now += 121
    assert attempt(api, ADMIN_PASSWORD)[0] == 200
    stored = api.container.repository.query(Kind.LOGIN_ATTEMPT, auth_query()).data
    assert [record["scope"] for record in stored] == ["addr"]  # the username's count started again, not the address's


def auth_query() -> Any:
    from chalicelib.core.ports import ListQuery

    return ListQuery(limit=0)


@memory_only
def test_one_address_guessing_many_usernames_is_locked_too(api: Api) -> None:
    frozen(api)
    for n in range(5):
        assert attempt(api, "Wrong-Guess-000", f"user{n}")[0] == 401
    status, _body, headers = attempt(api, ADMIN_PASSWORD, "admin")
    assert status == 429 and int(headers["Retry-After"]) > 0


@memory_only
def test_the_username_is_locked_from_every_address_and_other_users_are_not(api: Api) -> None:
    clock = Clock()
    service: AuthService = api.container.auth
    service.guard.clock = clock
    for n in range(5):
        with pytest.raises(Unauthenticated):
            service.login("admin", "Wrong-Guess-000", 60, address=f"10.0.0.{n}")
    with pytest.raises(TooManyAttempts) as locked:
        service.login("admin", ADMIN_PASSWORD, 60, address="10.0.9.9")
    assert locked.value.retry_after_s == 30
    api.ok("POST", "/api/user", {"username": "olga", "password": "Juniper-Cascade-11"})
    assert service.login("olga", "Juniper-Cascade-11", 60, address="10.0.9.9")[0]


def test_the_lock_is_kept_in_the_repository_where_every_instance_sees_it(api: Api) -> None:
    clock = frozen(api)
    for _ in range(5):
        attempt(api, "Wrong-Guess-000")
    other = AuthService(api.container.repository, api.container.signing_secret, admin_password=lambda: None,
                        guard=LoginGuard(api.container.repository, clock=clock))  # another Lambda instance
    with pytest.raises(TooManyAttempts):
        other.login("admin", ADMIN_PASSWORD, 60, address="203.0.113.7")
    stored = api.container.repository.query(Kind.LOGIN_ATTEMPT, auth_query()).data
    assert len(stored) == 2 and all("admin" not in record["id"] and "127.0.0.1" not in record["id"]
                                    for record in stored)


@memory_only
def test_failures_are_logged_without_the_guesses_and_forgotten_in_time(api: Api,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    clock = frozen(api)
    with caplog.at_level(logging.INFO):
        for _ in range(6):
            attempt(api, "Secret-Guess-777", "Secret-Typed-As-Username")
    records = [r for r in caplog.records if r.name.startswith("chalicelib.services.login_guard")]
    assert [r.getMessage() for r in records] == ["login failed"] * 5 + ["login refused: locked after repeated failures"]
    assert records[4].__dict__["locked_s"] == 30 and records[4].__dict__["client_address"] == "127.0.0.1"
    assert "Secret-Guess-777" not in caplog.text and "Secret-Typed-As-Username" not in caplog.text
    clock.now += 900 + 31  # the lock is over and the window has passed since the last failure
    assert attempt(api, "Wrong-Guess-000", "someone")[0] == 401
    clock.now += 2 * 3600  # housekeeping drops what has expired (at the next failure)
    attempt(api, "Wrong-Guess-001", "someone-else")
    left = api.container.repository.query(Kind.LOGIN_ATTEMPT, auth_query()).data
    assert {r["failures"] for r in left} == {1}


def test_policy_arithmetic() -> None:
    policy = LoginPolicy(free_failures=5, lock_s=30, max_lock_s=900)
    assert [policy.lock_for(n) for n in range(1, 12)] == [0, 0, 0, 0, 30, 60, 120, 240, 480, 900, 900]
    assert policy.lock_for(10_000) == 900


# --------------------------------------------------------------------------------------------- password rules


@memory_only
def test_new_passwords_follow_nist_rules(api: Api) -> None:
    refused = {
        "Short-1": "at least 10 characters",
        "password123": "too common",
        "Password2024!": "too common",
        "qwertyuiop": "too common",
        "1234567890": "too common",
        "mycontroller": "too common",
        "aaaaaaaaaaaa": "one character repeated",
        "my-NINA-is-long-1": "contain the username",
        "x" * 73: "at most 72 bytes",
    }
    for password, reason in refused.items():
        status, body, _ = api.call("POST", "/api/user", {"username": "nina", "password": password})
        assert status == 400 and body["field"] == "password" and reason in body["message"], (password, body)
        mine = password.replace("NINA", "Admin")  # in the profile, the caller's own username counts
        status, body, _ = api.call("POST", "/api/user/profile", {"password": mine, "currentPassword": ADMIN_PASSWORD})
        assert status == 400 and body["field"] == "password" and reason in body["message"], (mine, body)
    assert api.ok("POST", "/api/user", {"username": "nina", "password": "Correct Horse Battery"})["id"] == "nina"
    assert auth.check_password_rules("Lantern-Harbor-42", "al") == "Lantern-Harbor-42"  # short usernames: no check
