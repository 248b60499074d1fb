"""Seen-tracking of the DynamoDB repository per message stream (``<stream>-<seq>`` ids), under moto.

One item per stream (``STREAM#<stream>``: ``hw``, ``above`` runs, ``version``, ``ttl``) instead of one per
message: these tests check the answers, the stored layout, the bound, races between instances and the cost.
"""

from __future__ import annotations

import itertools
import random
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.adapters.repository_dynamodb import (
    SEEN_ABOVE_MAX_CHARS,
    STREAM_TTL_S,
    DynamoDBRepository,
    RepositoryError,
    decode_runs,
    encode_runs,
    merge_seqs,
    split_message_id,
)

pytestmark = pytest.mark.integration

STREAM = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0-gw1"


def ids(*seqs: int, stream: str = STREAM) -> list[str]:
    return [f"{stream}-{s}" for s in seqs]


@pytest.fixture
def repo(aws_mock: None) -> Iterator[DynamoDBRepository]:
    repository = DynamoDBRepository(f"mc-seen-{uuid.uuid4().hex[:8]}", write_concurrency=4)
    repository.create_table()
    yield repository
    repository.close()


@pytest.fixture
def twin(repo: DynamoDBRepository) -> Iterator[DynamoDBRepository]:
    """A second repository on the same table: another Lambda instance."""
    other = DynamoDBRepository(repo.table_name, write_concurrency=4)
    yield other
    other.close()


def raw(repo: DynamoDBRepository, key: str) -> dict[str, Any] | None:
    import boto3

    client = boto3.client("dynamodb", region_name="us-east-1")
    item = client.get_item(TableName=repo.table_name, Key={"pk": {"S": key}}, ConsistentRead=True).get("Item")
    if item is None:
        return None
    return {name: next(iter(value.values())) for name, value in item.items()}


def stream_item(repo: DynamoDBRepository, stream: str = STREAM) -> dict[str, Any]:
    item = raw(repo, f"STREAM#{stream}")
    assert item is not None
    return item


# --------------------------------------------------------------------------------------------- pure helpers


@pytest.mark.parametrize(("message_id", "expected"), [
    (f"{STREAM}-0", (STREAM, 0)),
    (f"{STREAM}-42", (STREAM, 42)),
    ("edge1-gw1-7", ("edge1-gw1", 7)),
    ("a-1", ("a", 1)),
    ("m1", None),
    ("-5", None),            # no stream
    ("gw-", None),           # no seq
    ("gw-007", None),        # not canonical: "gw-7" is seq 7, this is another id
    ("gw-1x", None),
    ("gw-\u0663", None),     # a non-ASCII digit
    ("gw-" + "9" * 19, None),  # too long for a seq
])
def test_split_message_id(message_id: str, expected: tuple[str, int] | None) -> None:
    assert split_message_id(message_id) == expected


def test_runs_encoding_round_trips() -> None:
    assert encode_runs(10, [(13, 15), (17, 17)]) == "2:3,1"
    assert decode_runs(10, "2:3,1") == ((13, 15), (17, 17))
    assert decode_runs(-1, "") == ()
    for bad in ("x", "0", "1:0", "1,,-3", "1:2:3"):
        assert decode_runs(10, bad) == ()  # unreadable text is no runs, never an exception


def test_merge_matches_a_set_model() -> None:
    rng = random.Random(7)
    hw: int = -1
    runs: tuple[tuple[int, int], ...] = ()
    applied: set[int] = set()
    for _ in range(300):
        batch = [rng.randrange(0, 400) for _ in range(rng.randrange(1, 12))]
        applied.update(batch)
        hw, runs = merge_seqs(hw, runs, batch, max_chars=10_000)
        expected_hw = -1
        while expected_hw + 1 in applied:
            expected_hw += 1
        assert hw == expected_hw
        assert {s for first, last in runs for s in range(first, last + 1)} == {s for s in applied if s > hw}
        assert decode_runs(hw, encode_runs(hw, runs)) == runs
        assert all(b[0] > a[1] + 1 for a, b in itertools.pairwise(runs))  # disjoint, not adjacent


def test_merge_bound_gives_up_the_oldest_gaps() -> None:
    hw, runs = merge_seqs(-1, (), range(0, 100, 2), max_chars=20)  # 0, then 49 single runs "1" (2 chars each)
    assert len(encode_runs(hw, runs)) <= 20
    assert runs[-1] == (98, 98) and len(runs) == 10
    assert hw == runs[0][0] - 2  # advanced to the end of the last run given up


# --------------------------------------------------------------------------------------------- behaviour


def test_out_of_order_marks(repo: DynamoDBRepository) -> None:
    repo.mark_seen(ids(5))
    repo.mark_seen(ids(3, 1))
    assert repo.seen(ids(*range(7))) == set(ids(1, 3, 5))
    item = stream_item(repo)
    assert (item["hw"], item["above"], item["version"]) == ("-1", "1,1,1", "2")
    repo.mark_seen(ids(0))
    item = stream_item(repo)
    assert (item["hw"], item["above"]) == ("1", "1,1")
    assert repo.seen(ids(*range(7))) == set(ids(0, 1, 3, 5))


def test_duplicates_cost_no_write(repo: DynamoDBRepository) -> None:
    repo.mark_seen(ids(1, 1, 2, 2, 0))
    assert repo.calls["put"] == 1
    assert stream_item(repo)["hw"] == "2" and "above" not in stream_item(repo)
    repo.mark_seen(ids(0, 1, 2))  # a redelivered batch: nothing new, the TTL is fresh
    assert repo.calls["put"] == 1
    assert repo.seen(ids(0, 1, 2, 3)) == set(ids(0, 1, 2))


def test_gaps_then_fill_in_advance_hw(repo: DynamoDBRepository) -> None:
    repo.mark_seen(ids(*[s for s in range(10) if s not in (4, 7)]))
    item = stream_item(repo)
    assert (item["hw"], item["above"]) == ("3", "1:2,1:2")  # 5-6, 8-9
    assert repo.seen(ids(*range(11))) == set(ids(0, 1, 2, 3, 5, 6, 8, 9))
    repo.mark_seen(ids(4))
    assert (stream_item(repo)["hw"], stream_item(repo)["above"]) == ("6", "1:2")
    repo.mark_seen(ids(7))
    item = stream_item(repo)
    assert item["hw"] == "9" and "above" not in item
    assert repo.seen(ids(*range(11))) == set(ids(*range(10)))


def test_overflow_is_bounded_and_keeps_one_write_unit(repo: DynamoDBRepository) -> None:
    evens = list(range(0, 4000, 2))  # every odd seq missing: 1,999 gaps
    repo.mark_seen(ids(*evens))
    item = stream_item(repo)
    assert len(item["above"]) <= SEEN_ABOVE_MAX_CHARS
    assert repo.calls["write_units"] == 1
    hw = int(item["hw"])
    assert 3000 < hw < 3998  # the oldest gaps were given up
    assert repo.seen(ids(3998, 3997, hw + 2, hw + 1)) == set(ids(3998, hw + 2))
    # Documented: a seq in a gap given up counts as seen (a failed message re-driven much later is skipped).
    assert repo.seen(ids(1, 2)) == set(ids(1, 2))
    puts = repo.calls["put"]
    repo.mark_seen(ids(1))
    assert repo.calls["put"] == puts  # already "seen": nothing to write
    repo.mark_seen(ids(*range(hw + 1, 3998, 2)))  # the gaps above hw fill in
    item = stream_item(repo)
    assert item["hw"] == "3998" and "above" not in item


def test_plain_ids_keep_their_own_items(repo: DynamoDBRepository) -> None:
    plain = ["m1", "gw-007", "edge1-gw1", "tail-"]
    repo.mark_seen([*plain, "edge1-gw1-5"])
    assert repo.seen([*plain, "edge1-gw1-5", "edge1-gw1-6", "gw-7", "m2"]) == {*plain, "edge1-gw1-5"}
    now = int(time.time())
    for message_id in plain:
        item = raw(repo, f"SEEN#{message_id}")
        assert item is not None and set(item) == {"pk", "ttl"}
        assert now + 6 * 86400 < int(item["ttl"]) <= now + 7 * 86400 + 5
    # "edge1-gw1" as a plain id and as a stream are different items: neither overwrites the other.
    assert raw(repo, "STREAM#edge1-gw1") is not None
    repo.mark_seen(["edge1-gw1"])
    assert repo.seen(["edge1-gw1-5", "edge1-gw1"]) == {"edge1-gw1-5", "edge1-gw1"}
    assert repo.calls["batch_write"] == 2


def test_stream_ttl_is_refreshed_and_expired_items_are_forgotten(repo: DynamoDBRepository) -> None:
    import boto3

    repo.mark_seen(ids(0, 1))
    now = int(time.time())
    assert now + STREAM_TTL_S - 5 <= int(stream_item(repo)["ttl"]) <= now + STREAM_TTL_S + 5
    client = boto3.client("dynamodb", region_name="us-east-1")
    client.update_item(TableName=repo.table_name, Key={"pk": {"S": f"STREAM#{STREAM}"}},
                       UpdateExpression="SET #t = :t", ExpressionAttributeNames={"#t": "ttl"},
                       ExpressionAttributeValues={":t": {"N": str(now - 1)}})
    assert repo.seen(ids(0, 1)) == set()  # expired: forgotten even before TTL deletion removes it
    repo.mark_seen(ids(5))
    item = stream_item(repo)
    assert (item["hw"], item["above"], item["version"]) == ("-1", "5", "2")  # fresh state, next version
    assert int(item["ttl"]) > now + STREAM_TTL_S - 5


def test_two_instances_racing_on_a_stream_merge_both(repo: DynamoDBRepository, twin: DynamoDBRepository,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    repo.mark_seen(ids(0))
    real_put = twin._conn.put_item
    raced = {"done": False}

    def put_after_the_other(*args: Any, **kwargs: Any) -> Any:
        if not raced["done"]:  # the other instance writes between this one's read and its write
            raced["done"] = True
            repo.mark_seen(ids(1, 2, 5))
        return real_put(*args, **kwargs)

    monkeypatch.setattr(twin._conn, "put_item", put_after_the_other)
    twin.mark_seen(ids(3, 4, 7))
    assert (twin.calls["seen_conflicts"], twin.calls["get"], twin.calls["put"]) == (1, 1, 2)
    item = stream_item(repo)
    assert (item["hw"], item["above"], item["version"]) == ("5", "1", "3")  # 0-5 and 7
    assert repo.seen(ids(*range(9))) == twin.seen(ids(*range(9))) == set(ids(0, 1, 2, 3, 4, 5, 7))


def test_a_stream_that_always_loses_the_race_gives_up(repo: DynamoDBRepository, twin: DynamoDBRepository,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.adapters import repository_dynamodb

    monkeypatch.setattr(repository_dynamodb.time, "sleep", lambda _s: None)
    repo.mark_seen(ids(0))
    real_put = twin._conn.put_item
    other = iter(range(100, 200))

    def always_behind(*args: Any, **kwargs: Any) -> Any:
        repo.mark_seen(ids(next(other)))
        return real_put(*args, **kwargs)

    monkeypatch.setattr(twin._conn, "put_item", always_behind)
    with pytest.raises(RepositoryError, match="seen stream"):
        twin.mark_seen(ids(1))
    assert twin.calls["seen_conflicts"] == repository_dynamodb.MAX_ATTEMPTS


def test_threads_racing_on_a_stream_lose_nothing(repo: DynamoDBRepository, twin: DynamoDBRepository,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from moto.dynamodb.models.table import Table

    # moto checks a condition and then stores the item without a lock, so two threads can both pass the check;
    # DynamoDB applies writes to one item one at a time. Serialise moto's puts as DynamoDB would.
    lock = threading.Lock()
    real_put = Table.put_item

    def atomic_put(self: Table, *args: Any, **kwargs: Any) -> Any:
        with lock:
            return real_put(self, *args, **kwargs)

    monkeypatch.setattr(Table, "put_item", atomic_put)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda start: (repo if start % 100 else twin).mark_seen(ids(*range(start, start + 50))),
                      range(0, 400, 50)))
    assert repo.seen(ids(*range(401))) == set(ids(*range(400)))
    assert stream_item(repo)["hw"] == "399"
    assert repo.calls["put"] + twin.calls["put"] == 8 + repo.calls["seen_conflicts"] + twin.calls["seen_conflicts"]


# --------------------------------------------------------------------------------------------- cost


def test_a_stream_written_between_seen_and_mark_seen_is_read_again_and_merged(repo: DynamoDBRepository,
                                                                              twin: DynamoDBRepository) -> None:
    """#17: mark_seen writes on the state seen read; another writer in between fails that write, and the stream is
    read again and the batch's seqs merged into what that writer stored."""
    assert repo.seen(ids(0, 1)) == set()
    twin.mark_seen(ids(2, 3))
    repo.mark_seen(ids(0, 1))
    assert repo.calls["seen_conflicts"] == 1 and repo.calls["batch_get"] == 1
    assert repo.seen(ids(*range(5))) == set(ids(*range(4)))
    repo.mark_seen(ids(4))  # on the state that seen read: no conflict, no other read
    assert repo.calls["seen_conflicts"] == 1 and repo.calls["batch_get"] == 2
    assert twin.seen(ids(*range(6))) == set(ids(*range(5)))


def test_cost_follows_streams_not_messages(repo: DynamoDBRepository) -> None:
    message_ids = ids(*range(1000))
    for start in range(0, 1000, 500):
        assert repo.seen(message_ids[start:start + 500]) == set()
        repo.mark_seen(message_ids[start:start + 500])
    assert (repo.calls["put"], repo.calls["batch_write"], repo.calls["items_written"]) == (2, 0, 2)
    assert repo.calls["write_units"] == 2
    assert repo.calls["batch_get"] == 2  # per batch: seen, whose read the conditional write is made on (#17)
    assert repo.seen(message_ids) == set(message_ids)
    item = stream_item(repo)
    assert item["hw"] == "999" and "above" not in item


def test_several_streams_cost_one_write_each(repo: DynamoDBRepository) -> None:
    streams = [f"{uuid.uuid4()}-gw{n}" for n in range(3)]
    batch = [m for s in streams for m in ids(*range(100), stream=s)] + ["plain-a", "plain-b"]
    random.Random(3).shuffle(batch)
    repo.mark_seen(batch)
    assert (repo.calls["put"], repo.calls["batch_write"], repo.calls["batch_get"]) == (3, 1, 1)
    assert repo.seen(batch) == set(batch)
    assert repo.calls["batch_get"] == 2  # 5 keys for 302 ids
