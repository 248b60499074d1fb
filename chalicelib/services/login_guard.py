"""Login protection: each failed login makes the next ones cost more, per username and per client address.

The rule (``LoginPolicy``): the first ``free_failures`` failures within ``window_s`` of each other cost nothing;
the next failure locks that username (and, separately, that address) for ``lock_s``, each later one for twice the
one before, up to ``max_lock_s``. While locked, a login is answered 429 with ``Retry-After`` *before* the password
is checked, so a guesser learns nothing more, right or wrong. A success clears its username's count (never the
address's: a guesser with an account of their own must not be able to wash their address clean). A count is
forgotten ``window_s`` after its last failure, once no lock is running.

State lives in the repository (``Kind.LOGIN_ATTEMPT``, one record per username or address, keyed by a digest so
neither a username typed as a password nor an address is stored in the clear), so every Lambda instance and the
local stack see the same counts; records past their ``expiresAt`` are purged now and then. Within one process a
lock serialises the read-modify-write; across Lambda instances concurrent failures may each count from the same
stored value, so a burst can slip a few more guesses through before the first lock is stored (the repository's
conditional write would close that).
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Final

from ..core.conflicts import update
from ..core.model import Kind, Record
from ..core.ports import Filter, ListQuery, Repository
from .errors import TooManyAttempts

log = logging.getLogger(__name__)

PURGE_EVERY_S: Final = 300.0
PURGE_BATCH: Final = 500


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    free_failures: int = 5
    window_s: int = 900
    lock_s: int = 30
    max_lock_s: int = 900

    def lock_for(self, failures: int) -> int:
        """Seconds a key is locked after its ``failures``-th failure (0: not locked)."""
        beyond = failures - self.free_failures
        if beyond < 0:
            return 0
        return int(min(self.max_lock_s, self.lock_s * 2 ** min(beyond, 30)))


def _key(scope: str, value: str) -> str:
    return f"{scope}-{hashlib.sha256(value.encode('utf-8', 'surrogatepass')).hexdigest()[:40]}"


class LoginGuard:
    """Counts failed logins per username and per client address in the repository, and refuses while locked."""

    def __init__(self, repository: Repository, policy: LoginPolicy | None = None, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.repository = repository
        self.policy = policy or LoginPolicy()
        self.clock = clock
        self._lock = threading.Lock()
        self._purged_at = 0.0

    def _keys(self, username: str, address: str | None) -> list[str]:
        keys = [_key("user", username.casefold())]
        if address:
            keys.append(_key("addr", address))
        return keys

    def check(self, username: str, address: str | None) -> None:
        """``TooManyAttempts`` while the username or the address is locked."""
        now = self.clock()
        found = self.repository.get_many(Kind.LOGIN_ATTEMPT, self._keys(username, address))
        wait = max((float(record.get("lockedUntil") or 0) - now for record in found.values()), default=0.0)
        if wait > 0:
            retry_after = math.ceil(wait)
            log.warning("login refused: locked after repeated failures", extra={
                "client_address": address or "", "retry_after_s": retry_after})
            raise TooManyAttempts(f"too many failed logins; try again in {retry_after} s", retry_after,
                                  "authorization")

    def failed(self, username: str, address: str | None, *, known_user: bool) -> int:
        """Count one failure against the username and the address; the seconds they are now locked (0: not)."""
        now = self.clock()
        policy = self.policy
        locked = 0
        failures = 0
        def counted(record: Record | None, key: str) -> Record:
            fresh = record is None or (float(record.get("lockedUntil") or 0) <= now
                                       and now - float(record.get("lastFailure") or 0) > policy.window_s)
            count = 1 if fresh or record is None else int(record.get("failures") or 0) + 1
            lock_s = policy.lock_for(count)
            until = now + lock_s if lock_s else 0.0
            return {"id": key, "scope": key.partition("-")[0], "failures": count, "lastFailure": now,
                    "lockedUntil": until, "expiresAt": int(max(until, now) + policy.window_s) + 1}

        with self._lock:  # (and across processes each count is written on the version read: none is lost)
            for key in self._keys(username, address):
                written = update(self.repository, Kind.LOGIN_ATTEMPT, key, partial(counted, key=key))
                count = int((written or {}).get("failures") or 0)
                locked = max(locked, policy.lock_for(count))
                failures = max(failures, count)
        log.warning("login failed", extra={"client_address": address or "", "known_user": known_user,
                                           "failures": failures, "locked_s": locked})
        self._purge(now)
        return locked

    def succeeded(self, username: str) -> None:
        """A correct password: the username's count starts again (the address's does not)."""
        key = _key("user", username.casefold())
        with self._lock:
            if self.repository.get(Kind.LOGIN_ATTEMPT, key) is not None:
                self.repository.delete(Kind.LOGIN_ATTEMPT, [key])

    def _purge(self, now: float) -> None:
        """Drop records whose time is up (at most every ``PURGE_EVERY_S`` per process; housekeeping only)."""
        if now - self._purged_at < PURGE_EVERY_S:
            return
        self._purged_at = now
        try:
            stale: list[Record] = self.repository.query(Kind.LOGIN_ATTEMPT, ListQuery(
                filters=[Filter("expiresAt", "lt", int(now))], limit=PURGE_BATCH)).data
            if stale:
                self.repository.delete(Kind.LOGIN_ATTEMPT, [str(record["id"]) for record in stale])
        except Exception:
            log.exception("purging old login failures failed")
