"""Handler secrets at rest: the spec values ``handlers.secret_paths`` names are stored as ``enc:v1:<ciphertext>``.

The API encrypts them on upsert (``encrypt_spec``) and only the handler function decrypts them (``decrypt_spec``),
right before a call. The ciphertext is bound to the handler id and the key path (the box's context), so copying
it into another handler or field does not reveal it. Pure: the encryption itself is the ``SecretBox`` port's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ..ports import SecretBox, SecretError
from .handlers import REDACTED, secret_paths

PREFIX: Final = "enc:v1:"


def is_encrypted(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def _get(spec: Mapping[str, Any], path: str) -> Any:
    head, _, rest = path.partition(".")
    if not rest:
        return spec.get(head)
    inner = spec.get(head)
    return inner.get(rest) if isinstance(inner, Mapping) else None


def _set(spec: dict[str, Any], path: str, value: Any) -> None:
    head, _, rest = path.partition(".")
    if not rest:
        spec[head] = value
    else:
        spec[head] = {**(spec.get(head) or {}), rest: value}


def _context(handler_id: str, path: str) -> dict[str, str]:
    return {"handler": handler_id, "path": path}


def encrypt_spec(handler_id: str, handler_type: str, spec: Mapping[str, Any], box: SecretBox) -> dict[str, Any]:
    """The spec with every plaintext secret encrypted; values already encrypted (a stored secret the client kept
    with the placeholder) are left as they are. ``SecretError`` when the box fails."""
    result = {**spec}
    for path in secret_paths(handler_type, spec):
        value = _get(spec, path)
        if is_encrypted(value) or value == REDACTED:
            continue
        _set(result, path, PREFIX + box.encrypt(str(value), _context(handler_id, path)))
    return result


def decrypt_spec(handler_id: str, handler_type: str, spec: Mapping[str, Any], box: SecretBox | None
                 ) -> tuple[dict[str, Any], list[str]]:
    """The spec with its secrets in clear, and the clear values (to scrub from messages and logs).

    A plaintext secret (stored before encryption existed, or written around the API) is used as it is."""
    result = {**spec}
    clear: list[str] = []
    for path in secret_paths(handler_type, spec):
        value = _get(spec, path)
        if is_encrypted(value):
            if box is None:
                raise SecretError(f"spec.{path} is encrypted but no secret box is configured")
            value = box.decrypt(value[len(PREFIX):], _context(handler_id, path))
            _set(result, path, value)
        if isinstance(value, str) and value:
            clear.append(value)
    return result, clear


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` with every secret value replaced by the placeholder (error messages may echo a URL or header).
    Values under four characters are left alone: replacing them would garble messages, and no real token is
    that short."""
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    return text
