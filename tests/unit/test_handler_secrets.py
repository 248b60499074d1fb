"""Handler secrets at rest: AES-256-GCM with a 0600 key file, bound to handler and key path; the SQLite
idempotency store claims a key once."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

from chalicelib.adapters.idempotency_sqlite import SqlitePersistenceLayer
from chalicelib.adapters.secrets_local import LocalSecretBox
from chalicelib.core.automation.handler_secrets import PREFIX, decrypt_spec, encrypt_spec, scrub
from chalicelib.core.automation.handlers import REDACTED
from chalicelib.core.ports import SecretError


def test_key_file_is_created_0600_and_reused(tmp_path: Path) -> None:
    box = LocalSecretBox(tmp_path / "data" / "secret.key")
    assert stat.S_IMODE((tmp_path / "data" / "secret.key").stat().st_mode) == 0o600
    sealed = box.encrypt("s3cret", {"handler": "h", "path": "token"})
    assert "s3cret" not in sealed
    assert LocalSecretBox(tmp_path / "data" / "secret.key").decrypt(sealed, {"handler": "h", "path": "token"}) \
        == "s3cret"
    assert box.encrypt("s3cret", {"handler": "h", "path": "token"}) != sealed  # fresh nonce each time


def test_ciphertext_is_bound_to_its_place_and_key(tmp_path: Path) -> None:
    box = LocalSecretBox(tmp_path / "a.key")
    sealed = box.encrypt("s3cret", {"handler": "h", "path": "token"})
    with pytest.raises(SecretError):
        box.decrypt(sealed, {"handler": "other", "path": "token"})
    with pytest.raises(SecretError):
        LocalSecretBox(tmp_path / "b.key").decrypt(sealed, {"handler": "h", "path": "token"})
    with pytest.raises(SecretError):
        box.decrypt(sealed[:-4] + "AAAA", {"handler": "h", "path": "token"})
    (tmp_path / "short.key").write_bytes(b"x")
    with pytest.raises(SecretError):
        LocalSecretBox(tmp_path / "short.key")


def test_spec_secrets_encrypt_and_decrypt_and_stored_ones_stay(tmp_path: Path) -> None:
    box = LocalSecretBox(tmp_path / "k")
    spec = {"url": "https://x.example", "password": "pw", "headers": {"Authorization": "Bearer t", "X-Plain": "p"}}
    sealed = encrypt_spec("h1", "webhook", spec, box)
    assert sealed["url"] == spec["url"] and sealed["headers"]["X-Plain"] == "p"
    assert sealed["password"].startswith(PREFIX) and sealed["headers"]["Authorization"].startswith(PREFIX)
    assert encrypt_spec("h1", "webhook", sealed, box) == sealed  # already encrypted: unchanged
    clear, secrets = decrypt_spec("h1", "webhook", sealed, box)
    assert clear == spec and sorted(secrets) == ["Bearer t", "pw"]
    with pytest.raises(SecretError):
        decrypt_spec("h2", "webhook", sealed, box)
    with pytest.raises(SecretError):
        decrypt_spec("h1", "webhook", sealed, None)
    assert decrypt_spec("h1", "telegram", {"token": "plain-old"}, box) == ({"token": "plain-old"}, ["plain-old"])
    assert scrub("401 for Bearer t and pw-ok", ["Bearer t"]) == f"401 for {REDACTED} and pw-ok"


def test_sqlite_idempotency_claims_a_key_once(tmp_path: Path) -> None:
    store = SqlitePersistenceLayer(tmp_path / "runs.sqlite3")
    far = 4_000_000_000
    store._put_record(DataRecord("k", status="INPROGRESS", expiry_timestamp=far,
                                 in_progress_expiry_timestamp=far * 1000))
    with pytest.raises(IdempotencyItemAlreadyExistsError) as caught:
        store._put_record(DataRecord("k", status="INPROGRESS", expiry_timestamp=far))
    assert caught.value.old_data_record is not None and caught.value.old_data_record.status == "INPROGRESS"
    store._update_record(DataRecord("k", status="COMPLETED", expiry_timestamp=far, response_data='{"a": 1}'))
    assert store._get_record("k").response_json_as_dict() == {"a": 1}
    # a run that died in progress (in-progress expiry passed) can be claimed again, as can an expired record
    store._put_record(DataRecord("dead", status="INPROGRESS", expiry_timestamp=far, in_progress_expiry_timestamp=1))
    store._put_record(DataRecord("dead", status="INPROGRESS", expiry_timestamp=far))
    store._put_record(DataRecord("old", status="COMPLETED", expiry_timestamp=1))
    store._put_record(DataRecord("old", status="INPROGRESS", expiry_timestamp=far))
    assert store.purge_expired() == 0
    store._delete_record(DataRecord("k"))
    with pytest.raises(IdempotencyItemNotFoundError):
        store._get_record("k")
    store.close()
