"""What the API, the bus and the websocket may show of a record, per kind: one place for every kind with secrets.

Gateways (broker passwords in ``provider``), handlers (passwords, tokens, authorization headers in ``spec``), users
(the password hash) and service tokens (the token digest). Lists, gets, quick-id lookups and bus events all go
through ``public``; list queries through ``check_query``, because a filter or a sort on a secret key path would
answer questions about the secret even when the value itself is never shown.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from mycontroller_protocol.shadow import redact_secrets, secret_key_path

from . import auth as core_auth
from .automation.handlers import redact
from .model import Kind, Record
from .ports import ListQuery
from .query import QueryError

HANDLER_SECRET_PATHS: Final = ("spec.password", "spec.token", "spec.headers")
"""Handler key paths (and everything beneath) a list may not filter or sort on; ``spec`` itself neither."""


def _handler_secret_path(key: str) -> bool:
    key = key.strip()
    return key == "spec" or any(key == path or key.startswith(path + ".") for path in HANDLER_SECRET_PATHS)


def _top_level(names: tuple[str, ...]) -> Callable[[str], bool]:
    return lambda key: key.strip().split(".")[0] in names


def _public_gateway(record: Record) -> Record:
    provider = record.get("provider")
    return {**record, "provider": redact_secrets(provider)} if isinstance(provider, dict) else record


def _public_assistant(record: Record) -> Record:
    """A virtual assistant's ``config`` may hold an integration's client secret or token."""
    config = record.get("config")
    return {**record, "config": redact_secrets(config)} if isinstance(config, dict) else record


SECRET_PATHS: Final[dict[Kind, Callable[[str], bool]]] = {
    Kind.GATEWAY: secret_key_path,
    Kind.HANDLER: _handler_secret_path,
    Kind.USER: _top_level(core_auth.USER_SECRET_KEYS),
    Kind.SERVICE_TOKEN: _top_level(core_auth.TOKEN_SECRET_KEYS),
    Kind.VIRTUAL_ASSISTANT: lambda key: key.strip() == "config" or key.strip().startswith("config."),
}
PUBLIC: Final[dict[Kind, Callable[[Record], Record]]] = {
    Kind.GATEWAY: _public_gateway,
    Kind.VIRTUAL_ASSISTANT: _public_assistant,
    Kind.HANDLER: redact,
    Kind.USER: core_auth.public_user,
    Kind.SERVICE_TOKEN: core_auth.public_service_token,
}


def public(kind: Kind, record: Record) -> Record:
    """The record as the API and the bus may show it: secrets replaced or left out."""
    shown = PUBLIC.get(kind)
    return shown(record) if shown is not None else record


def check_query(kind: Kind, query: ListQuery) -> None:
    """Refuse filters and sorts on the kind's secret key paths (400 naming ``filter`` or ``sortBy``)."""
    secret = SECRET_PATHS.get(kind)
    if secret is None:
        return
    for item in query.filters:
        if secret(item.key):
            raise QueryError(f"cannot filter {kind.value} records on {item.key!r} (it may hold secrets)", "filter")
    for sort in query.sort_by:
        if secret(sort.field):
            raise QueryError(f"cannot sort {kind.value} records on {sort.field!r} (it may hold secrets)", "sortBy")
