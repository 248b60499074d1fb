"""Status and version: open endpoints a load balancer, the dashboard's login page or a person can call.

Shapes after the reference's ``/api/status`` (minimal: nothing about the host) and ``/api/version``. The
build's commit and date come from ``GIT_COMMIT`` and ``BUILD_DATE`` when the deployment sets them.
"""

from __future__ import annotations

import os
import platform
import time
from typing import Any, Final

from chalicelib.core.model import iso_from_ms, now_ms
from chalicelib.version import VERSION

from .web import ApiRequest

DOCUMENTATION_URL: Final = "https://v2.mycontroller.org"
_STARTED_MS: Final = now_ms()
_STARTED_MONO: Final = time.monotonic()


def status(request: ApiRequest) -> dict[str, Any]:
    settings = request.container.settings
    return {
        "status": "ok",
        "version": VERSION,
        "documentationUrl": os.environ.get("DOCUMENTATION_URL") or DOCUMENTATION_URL,
        "login": {"message": os.environ.get("LOGIN_MESSAGE", "")},
        "metricsDBDisabled": settings.metrics == "none",
        "language": "en_us",
        "startTime": iso_from_ms(_STARTED_MS),
        "serverTime": iso_from_ms(now_ms()),
        "uptime": int((time.monotonic() - _STARTED_MONO) * 1000),
    }


def version(_request: ApiRequest) -> dict[str, str]:
    return {
        "version": VERSION,
        "gitCommit": os.environ.get("GIT_COMMIT", "none"),
        "buildDate": os.environ.get("BUILD_DATE", "none"),
        "python": platform.python_version(),
        "platform": platform.system().lower(),
        "arch": platform.machine(),
    }
