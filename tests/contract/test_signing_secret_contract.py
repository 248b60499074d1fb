"""The signing secret contract: one JWT key per deployment, created on first use and the same ever after.

Every process (a Lambda cold start, a restart of the local stack) must sign with the same key, or tokens issued
by one are refused by another: so the key is created only when none is stored, two processes starting together
end up with one key, and a key stored beforehand (by the deployment) is used as it is. A stored value too short
to be a key is an error, never used. Stored means the file in the data directory, or the SSM parameter.
"""

from __future__ import annotations

import threading

import pytest

from tests.contract.harnesses import SigningHarness


def test_the_key_is_created_on_first_use(signing: SigningHarness) -> None:
    secret = signing.make()
    assert signing.stored() is None, "nothing is stored before the key is first asked for"

    key = secret.get()

    assert isinstance(key, bytes) and len(key) >= 32
    assert signing.stored() == key


def test_the_key_is_stable_within_and_across_processes(signing: SigningHarness) -> None:
    key = signing.make().get()

    same_process = signing.make()
    assert same_process.get() == key
    assert same_process.get() == key
    assert signing.make().get() == key
    assert signing.stored() == key


def test_two_processes_starting_together_agree_on_one_key(signing: SigningHarness) -> None:
    secrets = [signing.make() for _ in range(6)]
    keys: list[bytes] = []
    errors: list[BaseException] = []
    start = threading.Barrier(len(secrets))

    def first_use(index: int) -> None:
        start.wait()
        try:
            keys.append(secrets[index].get())
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=first_use, args=(i,)) for i in range(len(secrets))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert errors == []
    assert len(keys) == len(secrets) and len(set(keys)) == 1
    assert signing.stored() == keys[0]


def test_a_key_stored_beforehand_is_used_as_it_is(signing: SigningHarness) -> None:
    preset = "deployment-made-signing-key-0123456789abcdef"
    signing.preset(preset)

    assert signing.make().get() == preset.encode()
    assert signing.stored() == preset.encode()


def test_another_location_has_another_key(signing: SigningHarness) -> None:
    assert signing.make().get() != signing.elsewhere().get()


def test_a_stored_value_too_short_to_be_a_key_is_refused(signing: SigningHarness) -> None:
    signing.preset("too-short")

    with pytest.raises(RuntimeError, match="32"):
        signing.make().get()
    assert signing.stored() == b"too-short", "the stored value is not replaced behind the deployment's back"
