"""API errors: one JSON shape for every error, ``{"status": <code>, "message": "...", "field": <name or null>}``.

Handlers raise ``ApiError`` (or let a core error that names its input through ``to_api_error``); the view
wrapper turns it into a response, and ``normalize_error_response`` rewrites the errors Chalice produces itself
(405, 415, its 500) into the same shape, so Chalice's ``{"Code", "Message"}`` never reaches a client.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from pydantic import ValidationError

from chalicelib.services.errors import invalid_input

JSON: Final = "application/json"
JSON_HEADERS: Final = {"Content-Type": JSON}
WWW_AUTHENTICATE: Final = {"WWW-Authenticate": 'Bearer realm="mycontroller"'}

ERROR_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["status", "message"],
    "properties": {
        "status": {"type": "integer", "description": "The HTTP status code, repeated."},
        "message": {"type": "string", "description": "What went wrong, for people."},
        "field": {"type": "string", "nullable": True,
                  "description": "The body field or query parameter at fault, when one is."},
    },
}

REASONS: Final[dict[int, str]] = {
    400: "Bad request", 401: "No valid token", 403: "The caller's role does not allow it", 404: "Not found",
    405: "Method not allowed", 413: "Request body too large", 415: "Unsupported media type",
    429: "Too many failed logins: wait Retry-After seconds", 500: "Internal server error",
}


class ApiError(Exception):
    """An error answer: HTTP status, message and the field or parameter at fault."""

    def __init__(self, status: int, message: str, field: str | None = None,
                 headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.headers = headers or {}
        self.extra = extra or {}
        """More keys of the body (a 401's ``error``, the login contract's name for the message)."""

    def body(self) -> dict[str, Any]:
        return {**error_body(self.status, self.message, self.field), **self.extra}


def json_headers(headers: Mapping[str, str | list[str]] | None = None) -> dict[str, str | list[str]]:
    return {**JSON_HEADERS, **(headers or {})}


def error_body(status: int, message: str, field: str | None = None) -> dict[str, Any]:
    return {"status": status, "message": message, "field": field}


def bad_request(message: str, field: str | None = None) -> ApiError:
    return ApiError(400, message, field)


def not_found(message: str, field: str | None = None) -> ApiError:
    return ApiError(404, message, field)


def from_validation_error(error: ValidationError, prefix: str = "") -> ApiError:
    """A pydantic error as 400 naming the first bad field by its JSON (camelCase) name."""
    invalid = invalid_input(error, prefix)
    return ApiError(400, invalid.message, invalid.field)


def from_json_error(error: json.JSONDecodeError) -> ApiError:
    return ApiError(400, f"body is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}", "body")


def normalize_error_body(status: int, body: Any) -> dict[str, Any] | None:
    """Our error body for one Chalice made (``{"Code", "Message"}``), or None when it is not one of those."""
    if status < 400 or not isinstance(body, dict) or "Code" not in body or "status" in body:
        return None
    code = str(body.get("Code", ""))
    message = str(body.get("Message") or REASONS.get(status, "error"))
    if status == 415:
        message = f"{message}; send application/json"
    elif status == 500 and code == "InternalServerError":
        message = "internal server error"
    field = "Content-Type" if status == 415 else None
    return error_body(status, message, field)
