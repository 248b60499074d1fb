"""The secret box contract: secrets at rest are opaque, bound to their place, and tamper-evident.

A ciphertext decrypts to its plaintext with the same key and context (also in a new box over the same key: a
restart, another function); anything else (another context, another key, a changed or truncated ciphertext,
text that is not a ciphertext at all) is ``SecretError``, never a wrong plaintext and never another exception.
"""

from __future__ import annotations

import base64
import string
from collections.abc import Callable

import pytest

from chalicelib.core.ports import SecretError
from tests.contract.harnesses import SecretsHarness

CONTEXT = {"handler": "notify-phone", "path": "token"}
PLAINTEXTS = ["hunter2", "Grüße: ♥ \"quoted\" \\ \n\t", "x" * 1000, "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11"]


@pytest.mark.parametrize("plaintext", PLAINTEXTS, ids=["short", "unicode", "1000-chars", "bot-token"])
def test_decrypt_returns_what_was_encrypted(secrets: SecretsHarness, plaintext: str) -> None:
    ciphertext = secrets.box.encrypt(plaintext, CONTEXT)

    assert secrets.box.decrypt(ciphertext, CONTEXT) == plaintext
    assert secrets.reopen().decrypt(ciphertext, dict(CONTEXT)) == plaintext


def test_the_ciphertext_is_printable_and_does_not_show_the_secret(secrets: SecretsHarness) -> None:
    ciphertext = secrets.box.encrypt("hunter2-password", CONTEXT)

    assert isinstance(ciphertext, str) and ciphertext
    assert set(ciphertext) <= set(string.printable) - set(string.whitespace)
    assert "hunter2" not in ciphertext
    assert b"hunter2" not in base64.b64decode(ciphertext)


def test_the_context_key_order_does_not_matter(secrets: SecretsHarness) -> None:
    ciphertext = secrets.box.encrypt("hunter2", {"handler": "h1", "path": "password"})

    assert secrets.box.decrypt(ciphertext, {"path": "password", "handler": "h1"}) == "hunter2"


@pytest.mark.parametrize("context", [
    {"handler": "another-handler", "path": "token"},
    {"handler": "notify-phone", "path": "password"},
    {"handler": "notify-phone"},
    {"handler": "notify-phone", "path": "token", "extra": "x"},
    {},
], ids=["other-handler", "other-path", "missing-key", "extra-key", "empty"])
def test_a_ciphertext_moved_elsewhere_does_not_decrypt(secrets: SecretsHarness, context: dict[str, str]) -> None:
    ciphertext = secrets.box.encrypt("hunter2", CONTEXT)

    with pytest.raises(SecretError):
        secrets.box.decrypt(ciphertext, context)


def test_another_key_cannot_decrypt(secrets: SecretsHarness) -> None:
    ciphertext = secrets.box.encrypt("hunter2", CONTEXT)
    other = secrets.other()

    with pytest.raises(SecretError):
        other.decrypt(ciphertext, CONTEXT)
    assert other.decrypt(other.encrypt("hunter2", CONTEXT), CONTEXT) == "hunter2"


def test_every_changed_byte_is_detected(secrets: SecretsHarness) -> None:
    raw = base64.b64decode(secrets.box.encrypt("hunter2", CONTEXT))
    undetected = []
    for index in range(len(raw)):
        tampered = bytearray(raw)
        tampered[index] ^= 0x01
        try:
            secrets.box.decrypt(base64.b64encode(bytes(tampered)).decode(), CONTEXT)
        except SecretError:
            continue
        undetected.append(index)

    assert undetected == [], f"changed bytes at {undetected} decrypted without an error"


@pytest.mark.parametrize("mangle", [
    lambda text: text[: len(text) // 2],
    lambda text: text[:-4],
    lambda text: text + "AAAA",
    lambda text: "",
    lambda text: "not a ciphertext!",
    lambda text: base64.b64encode(b"short").decode(),
], ids=["halved", "truncated", "extended", "empty", "not-base64", "too-short"])
def test_text_that_is_not_a_whole_ciphertext_is_a_secret_error(secrets: SecretsHarness,
                                                                mangle: Callable[[str], str]) -> None:
    ciphertext = secrets.box.encrypt("hunter2", CONTEXT)

    with pytest.raises(SecretError):
        secrets.box.decrypt(mangle(ciphertext), CONTEXT)
