"""What a use case tells its caller went wrong, by kind; the API maps each kind to its HTTP status.

Every error names the input at fault (``field``: a body key such as ``geoLocation.latitude``, ``[0].payload`` in a
list, or a query parameter) when there is one, so clients can point at it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class ServiceError(Exception):
    """A use case refused or could not finish; ``field`` names the input at fault."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(ServiceError):
    """The input cannot be used as given (a bad value, a missing key, a reference to nothing)."""


class NotFound(ServiceError):
    """What the input names does not exist."""


class Conflict(ServiceError):
    """The request clashes with work in progress (one backup at a time)."""


class TooLarge(ServiceError):
    """The result would exceed what is stored or sent (a record over the size limit)."""


class Unauthenticated(ServiceError):
    """The credentials are missing, wrong or no longer valid."""


class Forbidden(ServiceError):
    """The caller is known but its role does not allow this (or the rule protects the last admin)."""


class TooManyAttempts(ServiceError):
    """Too many failures lately (logins): try again after ``retry_after_s`` seconds."""

    def __init__(self, message: str, retry_after_s: int, field: str | None = None) -> None:
        super().__init__(message, field)
        self.retry_after_s = max(1, int(retry_after_s))


class DependencyFailed(ServiceError):
    """Another service (shadow, scheduler, key service) failed; what could be saved was saved."""


def loc_name(loc: Sequence[int | str], prefix: str = "") -> str:
    """``("labels", "room")`` → ``labels.room``; list indexes as ``[0]`` (``[0].payload``)."""
    name = prefix
    for part in loc:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += f".{part}" if name else str(part)
    return name


def invalid_input(error: ValidationError, prefix: str = "") -> InvalidInput:
    """A pydantic error as ``InvalidInput`` naming the first bad field by its JSON (camelCase) name."""
    first = error.errors(include_url=False)[0]
    name = loc_name(first.get("loc", ()), prefix) or prefix or "body"
    message = str(first.get("msg", "invalid value"))
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    return InvalidInput(f"{name}: {message}", name)


def validate(model: type[M], data: Any, *, prefix: str = "") -> M:
    """``model`` from ``data``, or ``InvalidInput`` naming the first bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise invalid_input(error, prefix) from None
