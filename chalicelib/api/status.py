"""Status and version: open endpoints a load balancer, the dashboard's login page or a person can call.

Shapes after the reference's ``/api/status`` (minimal: nothing about the host) and ``/api/version``. The
build's commit and date come from ``GIT_COMMIT`` and ``BUILD_DATE`` when the deployment sets them.
"""

from __future__ import annotations

import os
import platform
import socket
import time
from typing import Any, Final

from chalicelib.core.model import iso_from_ms, now_ms
from chalicelib.core.settings import load_settings
from mycontroller_protocol.version import VERSION

from .web import ApiRequest

DOCUMENTATION_URL: Final = "https://v2.mycontroller.org"
_STARTED_MS: Final = now_ms()
_STARTED_MONO: Final = time.monotonic()


def status(request: ApiRequest) -> dict[str, Any]:
    """Open to everyone: no host name (the reference's ``hostname`` is empty here too). The login message and the
    language are the system settings' (``LOGIN_MESSAGE`` when the settings have none)."""
    settings = request.container.settings
    try:
        system = load_settings(request.container.repository)
        login = system.login.model_dump(mode="json", by_alias=True)
        language = system.language
    except Exception:  # the status answers even when the store does not
        login, language = {}, "en-us"
    return {
        "status": "ok",
        "version": VERSION,
        "hostname": "",
        "documentationUrl": os.environ.get("DOCUMENTATION_URL") or DOCUMENTATION_URL,
        "login": {"serverMessage": "", **login, "message": login.get("message") or os.environ.get("LOGIN_MESSAGE", "")},
        "metricsDBDisabled": settings.metrics == "none",
        "language": language,
        "startTime": iso_from_ms(_STARTED_MS),
        "serverTime": iso_from_ms(now_ms()),
        "uptime": int((time.monotonic() - _STARTED_MONO) * 1000),
    }


def server_status(request: ApiRequest) -> dict[str, Any]:
    """MyController v2's ``/api/server/status`` (signed in): the status with the host's name."""
    return {**status(request), "hostname": socket.gethostname()}


def version(_request: ApiRequest) -> dict[str, str]:
    return {
        "version": VERSION,
        "gitCommit": os.environ.get("GIT_COMMIT", "none"),
        "buildDate": os.environ.get("BUILD_DATE", "none"),
        "python": platform.python_version(),
        "goVersion": "",
        "compiler": platform.python_implementation().lower(),
        "hostId": "",
        "platform": platform.system().lower(),
        "arch": platform.machine(),
    }
