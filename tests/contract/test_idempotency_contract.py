"""The idempotency store contract: the records that make a handler run at most once per trigger.

Both stores are Powertools persistence layers: SQLite locally, and Powertools' own DynamoDB layer on the
resource table (``pk``/``ttl``) in AWS, built as the composition root builds it. What the handler function relies
on: a key is claimed (``INPROGRESS``) by one caller only; a completed key answers with its stored result until
it expires; an expired record, or an in-progress one whose run died (its in-progress expiry passed), may be
claimed again; a failed run's record is deleted so the retry runs. Layers sharing a store are functions running
side by side.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
)

from tests.contract.harnesses import IDEMPOTENCY_PREFIX, IdempotencyHarness

MINUTE_MS = 60_000


def job(key: str) -> dict[str, Any]:
    return {"key": key}


class LambdaContext:
    """A minute left to run: the handler function registers its invocation's context the same way."""

    def get_remaining_time_in_millis(self) -> int:
        return MINUTE_MS


def handler_config() -> IdempotencyConfig:
    config = IdempotencyConfig(event_key_jmespath="key", expires_after_seconds=3600,
                               raise_on_no_idempotency_key=True)
    config.register_lambda_context(LambdaContext())  # type: ignore[arg-type]
    return config


def test_an_unknown_key_has_no_record(idempotency: IdempotencyHarness) -> None:
    with pytest.raises(IdempotencyItemNotFoundError):
        idempotency.layer().get_record(job("trigger-1/h1"))


def test_a_claimed_key_is_in_progress_until_it_expires(idempotency: IdempotencyHarness) -> None:
    layer = idempotency.layer(ttl_s=3600)
    before = int(time.time())

    layer.save_inprogress(job("trigger-1/h1"), remaining_time_in_millis=MINUTE_MS)

    record = layer.get_record(job("trigger-1/h1"))
    assert record.status == "INPROGRESS"
    assert record.response_json_as_dict() is None
    assert before + 3600 <= record.expiry_timestamp <= int(time.time()) + 3600
    assert before * 1000 + MINUTE_MS <= record.in_progress_expiry_timestamp <= time.time() * 1000 + MINUTE_MS


def test_a_key_in_progress_cannot_be_claimed_again(idempotency: IdempotencyHarness) -> None:
    first, second = idempotency.layer(), idempotency.layer()
    first.save_inprogress(job("trigger-1/h1"), remaining_time_in_millis=MINUTE_MS)

    with pytest.raises(IdempotencyItemAlreadyExistsError) as exists:
        second.save_inprogress(job("trigger-1/h1"), remaining_time_in_millis=MINUTE_MS)

    assert exists.value.old_data_record is not None and exists.value.old_data_record.status == "INPROGRESS"
    second.save_inprogress(job("trigger-2/h1"), remaining_time_in_millis=MINUTE_MS)  # other keys are free


def test_a_completed_key_keeps_its_result_and_cannot_be_claimed(idempotency: IdempotencyHarness) -> None:
    layer = idempotency.layer()
    layer.save_inprogress(job("trigger-1/h1"), remaining_time_in_millis=MINUTE_MS)

    layer.save_success(job("trigger-1/h1"), {"status": 200, "body": "Grüße", "calls": [1, 2]})

    record = idempotency.layer().get_record(job("trigger-1/h1"))
    assert record.status == "COMPLETED"
    assert record.response_json_as_dict() == {"status": 200, "body": "Grüße", "calls": [1, 2]}
    with pytest.raises(IdempotencyItemAlreadyExistsError) as exists:
        idempotency.layer().save_inprogress(job("trigger-1/h1"), remaining_time_in_millis=MINUTE_MS)
    old = exists.value.old_data_record
    assert old is not None and old.status == "COMPLETED"
    assert old.response_json_as_dict() == {"status": 200, "body": "Grüße", "calls": [1, 2]}


def test_a_deleted_record_frees_its_key(idempotency: IdempotencyHarness) -> None:
    layer = idempotency.layer()
    layer.save_inprogress(job("trigger-1/h1"), remaining_time_in_millis=MINUTE_MS)

    layer.delete_record(job("trigger-1/h1"), RuntimeError("the webhook is down"))

    with pytest.raises(IdempotencyItemNotFoundError):
        layer.get_record(job("trigger-1/h1"))
    idempotency.layer().save_inprogress(job("trigger-1/h1"), remaining_time_in_millis=MINUTE_MS)


def test_an_expired_record_reads_as_expired_and_may_be_claimed(idempotency: IdempotencyHarness) -> None:
    stale = idempotency.layer(ttl_s=-60)  # records that expired a minute ago
    stale.save_inprogress(job("trigger-1/h1"), remaining_time_in_millis=MINUTE_MS)
    stale.save_success(job("trigger-1/h1"), {"old": True})
    fresh = idempotency.layer()

    assert fresh.get_record(job("trigger-1/h1")).status == "EXPIRED"
    fresh.save_inprogress(job("trigger-1/h1"), remaining_time_in_millis=MINUTE_MS)

    record = fresh.get_record(job("trigger-1/h1"))
    assert record.status == "INPROGRESS" and record.response_json_as_dict() is None


def test_a_run_that_died_may_be_claimed_again(idempotency: IdempotencyHarness) -> None:
    idempotency.layer().save_inprogress(job("died/h1"), remaining_time_in_millis=-1_000)  # its time ran out
    idempotency.layer().save_inprogress(job("running/h1"), remaining_time_in_millis=MINUTE_MS)
    other = idempotency.layer()

    other.save_inprogress(job("died/h1"), remaining_time_in_millis=MINUTE_MS)
    with pytest.raises(IdempotencyItemAlreadyExistsError):
        other.save_inprogress(job("running/h1"), remaining_time_in_millis=MINUTE_MS)

    assert other.get_record(job("died/h1")).in_progress_expiry_timestamp > time.time() * 1000


def test_only_one_of_many_concurrent_claims_wins(idempotency: IdempotencyHarness) -> None:
    layers = [idempotency.layer() for _ in range(8)]
    won: list[int] = []
    lost: list[int] = []
    start = threading.Barrier(len(layers))

    def claim(index: int) -> None:
        start.wait()
        try:
            layers[index].save_inprogress(job("trigger-1/h1"), remaining_time_in_millis=MINUTE_MS)
        except IdempotencyItemAlreadyExistsError:
            lost.append(index)
        else:
            won.append(index)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(layers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert len(won) == 1 and len(lost) == len(layers) - 1


def test_an_idempotent_function_runs_once_per_key(idempotency: IdempotencyHarness) -> None:
    calls: list[str] = []
    config = handler_config()

    def make(layer: Any) -> Any:
        def run(job: dict[str, Any], fail: bool = False) -> dict[str, Any]:
            calls.append(job["key"])
            if fail:
                raise RuntimeError("the handler failed")
            return {"ran": job["key"], "n": len(calls)}

        return idempotent_function(run, data_keyword_argument="job", persistence_store=layer, config=config,
                                   key_prefix=IDEMPOTENCY_PREFIX)

    first, second = make(idempotency.layer()), make(idempotency.layer())

    assert first(job=job("t1/h1")) == {"ran": "t1/h1", "n": 1}
    assert second(job=job("t1/h1")) == {"ran": "t1/h1", "n": 1}, "a redelivery answers with the stored result"
    with pytest.raises(RuntimeError):
        first(job=job("t2/h1"), fail=True)
    assert second(job=job("t2/h1")) == {"ran": "t2/h1", "n": 3}, "a failed run does not block its retry"
    assert calls == ["t1/h1", "t2/h1", "t2/h1"]


def test_a_run_in_progress_elsewhere_is_reported_as_such(idempotency: IdempotencyHarness) -> None:
    config = handler_config()
    idempotency.layer().save_inprogress(job("t1/h1"), remaining_time_in_millis=MINUTE_MS)

    def run(job: dict[str, Any]) -> dict[str, Any]:
        raise AssertionError("must not run while another run holds the key")

    guarded = idempotent_function(run, data_keyword_argument="job", persistence_store=idempotency.layer(),
                                  config=config, key_prefix=IDEMPOTENCY_PREFIX)
    with pytest.raises(IdempotencyAlreadyInProgressError):
        guarded(job=job("t1/h1"))
