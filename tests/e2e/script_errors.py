"""Script errors in the browser tests' tabs: console errors and uncaught exceptions, recorded per context."""

from __future__ import annotations

import re
import threading
from typing import Any


class ScriptErrors:
    """Console errors (``console.error``, failed resource loads) and uncaught exceptions of the watched contexts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._errors: list[str] = []
        self._allowed: list[re.Pattern[str]] = []
        self._always: list[re.Pattern[str]] = []
        self._contexts: list[Any] = []

    def watch(self, context: Any) -> Any:
        """Record every tab of ``context`` (a Playwright ``BrowserContext``), those opened later included."""
        context.on("console", self._on_console)
        context.on("weberror", self._on_weberror)
        context.on("close", lambda closed: self._contexts.remove(closed) if closed in self._contexts else None)
        self._contexts.append(context)
        return context

    def allow(self, pattern: str, *, always: bool = False) -> None:
        """The running test (or, ``always``, every test) provokes console errors matching ``pattern``, a regex
        searched in the recorded line: ``console.error at <url>: <text>``."""
        (self._always if always else self._allowed).append(re.compile(pattern))

    def take(self) -> list[str]:
        """The errors recorded since the last call that nothing allowed; forgets them and the allowances."""
        self._settle()
        with self._lock:
            errors, self._errors = self._errors, []
            allowed, self._allowed = [*self._always, *self._allowed], []
        return [error for error in errors if not any(pattern.search(error) for pattern in allowed)]

    def _settle(self) -> None:
        """One round trip to every open tab, so that events the browser sent before it have been dispatched."""
        for context in list(self._contexts):
            for tab in list(context.pages):
                try:
                    tab.evaluate("0")
                except Exception:  # a tab closing or navigating away: nothing left to wait for
                    continue

    def _on_console(self, message: Any) -> None:
        if message.type != "error":
            return
        location = message.location or {}
        where = location.get("url") or (message.page.url if message.page is not None else "?")
        self._record(f"console.error at {where}: {message.text}")

    def _on_weberror(self, web_error: Any) -> None:
        where = web_error.page.url if web_error.page is not None else "?"
        self._record(f"uncaught exception at {where}: {web_error.error}")

    def _record(self, line: str) -> None:
        with self._lock:
            self._errors.append(line)
