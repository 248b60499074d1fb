"""The AWS repository: one DynamoDB table (single-table design) through pynamodb.

Key design (attribute: meaning)

* ``pk`` (table hash key, no sort key): ``<kind>#<id>`` (``field#gw1.4.1.V_TEMP``, ``task#t1``). One item per
  record, so writes spread over every partition and a field update touches exactly one item.
* ``doc``: the record as compact JSON (exact round trip: no float/Decimal surprises, one attribute to read).
* ``version``: the record's version (conditional writes, ``ports.Repository``): a random 62-bit number + 2, new at
  every write, so that unconditional batch writes (BatchWriteItem takes no expressions) change it too. An item
  written before versions existed has none and reads as version 1 (``LEGACY_VERSION``). A conditional write is a
  PutItem with ``version = :expected`` (``attribute_not_exists(pk)`` for 0).
* ``ts`` / ``seq``: the record's ``current.timestamp`` (``""`` when none; fixed-width RFC 3339, so string order
  is time order) and ``current.sequence`` (0 when none), kept on every item for the order-safety condition
  ``attribute_not_exists(pk) OR ts < :ts OR (ts = :ts AND seq < :seq)``.
* GSI ``by_kind`` (KEYS_ONLY): ``kk`` = ``<kind>#<shard>`` hash, ``pk`` range. Lists a kind. Device kinds with
  many items are sharded (``crc32(id) % shards``) so that creating thousands of fields at once does not
  throttle one index partition; listing queries every shard.
* GSI ``by_tree`` (KEYS_ONLY): ``tree`` = the gateway id hash (device kinds only), ``pk`` range. A gateway's
  whole subtree is one partition of the index, so children are one Query with ``begins_with`` on ``pk``
  (sources of ``gw.n``: ``source#gw.n.``) and a gateway's cascade delete is one Query.
* Seen message ids (idempotence), in no index. The edge names messages ``<stream>-<seq>`` (stream: spool uuid
  and gateway id; seq: a decimal that increases per stream), so seen-tracking is one item per *stream*:
  ``STREAM#<stream>`` with ``hw`` (every seq <= hw was applied), ``above`` (the applied seqs > hw, as runs:
  comma-separated ``<gap>[:<length>]``, gap = seqs missing since the previous run or hw, length omitted when
  1; ``hw=10, above="2:3,1"`` is 13, 14, 15 and 17), ``version`` (optimistic concurrency: every write is a
  PutItem conditional on the version read) and ``ttl`` (30 days, refreshed on write, so dead streams go).
  Marking a batch costs one write per stream touched, not per message, on the state ``seen`` read for the batch.
  ``above`` is bounded (``SEEN_ABOVE_MAX_CHARS``, so the item stays within one write unit): when a write would
  exceed it, ``hw`` advances over the oldest gaps, and a message whose seq is in such a gap then counts as seen. Gaps
  are messages that failed, or were still in flight when ~100+ newer gaps appeared; only a failed message
  re-driven from a DLQ long after would be skipped. Any other id (no ``-<digits>`` tail, or digits with a
  leading zero) is "plain": one item ``SEEN#<message id>`` with a ``ttl`` of 7 days, as before. The two
  prefixes differ so that a plain id can never collide with a stream.

Both indexes are KEYS_ONLY and their keys never change after creation, so a field value update writes the table
item only (no index write units); reads through an index fetch the documents with BatchGetItem. Lists read all
records of a kind and filter/sort/page them with ``core/query.py``: a scan of one kind, fine for the thousands
of resources an installation has. At hundreds of thousands of records per kind it would need real indexes for
common filters (e.g. a GSI on ``labels`` values) or a search service, and keyset paging instead of offsets.

Every DynamoDB call is counted in ``calls`` (``get``, ``batch_get``, ``put``, ``batch_write``, ``query``; plus
``write_units`` estimated from item sizes, ``items_written``, ``items_deleted``, ``conditional_rejected``,
``retries``, ``seen_conflicts``: stream writes that lost a race, then re-read and retried) for the cost
benchmarks, and in ``consumed`` the read/write capacity units DynamoDB reports.
"""

from __future__ import annotations

import collections
import json
import math
import os
import random
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

from pynamodb.attributes import NumberAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.connection import TableConnection
from pynamodb.exceptions import PutError
from pynamodb.expressions.condition import Condition
from pynamodb.indexes import GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from chalicelib.adapters.errors import AdapterError
from chalicelib.core.model import CHILD_KIND, DEVICE_KINDS, ID_DEPTH, Kind, Record
from chalicelib.core.ports import ConditionFailed, ListQuery, ListResult, Versioned
from chalicelib.core.query import apply_query
from chalicelib.core.record_ids import checked_id
from chalicelib.core.seen import Run, decode_runs, encode_runs, merge_seqs, runs_contain, split_message_id

from .request_threads import RequestThreads

SEEN_PREFIX: Final = "SEEN#"
SEEN_TTL_S: Final = 7 * 24 * 3600
STREAM_PREFIX: Final = "STREAM#"
STREAM_TTL_S: Final = 30 * 24 * 3600
SEEN_ABOVE_MAX_CHARS: Final = 768
"""Bound of a stream item's encoded ``above``: with a stream name up to ~100 characters the item stays within
1 KB, one write unit. Typical runs take 2-6 characters, so a stream tolerates ~100-300 gaps before the
oldest is given up (``hw`` advanced over it)."""
BATCH_GET_MAX: Final = 100
BATCH_WRITE_MAX: Final = 25
MAX_ATTEMPTS: Final = 8
KIND_SHARDS: Final[dict[Kind, int]] = {Kind.FIELD: 8, Kind.SOURCE: 4, Kind.NODE: 4}
"""Partitions of the ``by_kind`` index per kind (1 for the others). Changing it needs a re-index."""
_DEPTH_ORDER: Final = {kind: depth for depth, kind in enumerate(DEVICE_KINDS)}
LEGACY_VERSION: Final = 1
"""The version of a record item written before items had one."""
_VERSIONS: Final = random.SystemRandom()

RawItem = dict[str, dict[str, Any]]


class RepositoryError(AdapterError, RuntimeError):
    """DynamoDB did not take a batch after retries; the message says how much is left unprocessed."""


class _ByKind(GlobalSecondaryIndex["_Item"]):
    class Meta:
        index_name = "by_kind"
        projection = KeysOnlyProjection()

    kk = UnicodeAttribute(hash_key=True)
    pk = UnicodeAttribute(range_key=True)


class _ByTree(GlobalSecondaryIndex["_Item"]):
    class Meta:
        index_name = "by_tree"
        projection = KeysOnlyProjection()

    tree = UnicodeAttribute(hash_key=True)
    pk = UnicodeAttribute(range_key=True)


class _Item(Model):
    """The table schema; each repository binds a subclass to its table name, region and endpoint."""

    class Meta:
        table_name = "mycontroller"
        billing_mode = "PAY_PER_REQUEST"

    pk = UnicodeAttribute(hash_key=True)
    kk = UnicodeAttribute(null=True)
    tree = UnicodeAttribute(null=True)
    doc = UnicodeAttribute(null=True)
    ts = UnicodeAttribute(null=True)
    seq = NumberAttribute(null=True)
    ttl = TTLAttribute(null=True)
    hw = NumberAttribute(null=True)
    above = UnicodeAttribute(null=True)
    version = NumberAttribute(null=True)
    by_kind = _ByKind()
    by_tree = _ByTree()


def _bind(table_name: str, region: str | None, host: str | None) -> type[_Item]:
    meta = type("Meta", (), {"table_name": table_name, "region": region, "host": host,
                             "billing_mode": "PAY_PER_REQUEST"})
    return type(f"_Item_{table_name}", (_Item,), {"Meta": meta, "__module__": __name__})


def _hash_first(key_schema: Iterable[Any]) -> list[dict[str, Any]]:
    """DynamoDB wants the HASH key listed before the RANGE key (pynamodb lists attributes by name)."""
    return sorted((dict(k) for k in key_schema), key=lambda k: k["KeyType"])


def table_definition(table_name: str | None = None) -> dict[str, Any]:
    """The table as CloudFormation ``AWS::DynamoDB::Table`` properties, derived from the pynamodb schema."""
    schema = _Item._get_schema()
    properties: dict[str, Any] = {
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [dict(a) for a in schema["attribute_definitions"]],
        "KeySchema": _hash_first(schema["key_schema"]),
        "GlobalSecondaryIndexes": [
            {
                "IndexName": index["index_name"],
                "KeySchema": _hash_first(index["key_schema"]),
                "Projection": dict(index["projection"]),
            }
            for index in sorted(schema["global_secondary_indexes"], key=lambda i: i["index_name"])
        ],
        "TimeToLiveSpecification": {"AttributeName": "ttl", "Enabled": True},
    }
    if table_name:
        properties = {"TableName": table_name, **properties}
    return properties


def create_table(table_name: str, region: str | None = None, host: str | None = None) -> None:
    """Create the table (on-demand, with TTL) if it does not exist and wait until it is active."""
    _bind(table_name, _region(region), host).create_table(wait=True, billing_mode="PAY_PER_REQUEST")


def _region(region: str | None) -> str:
    return region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def _key(kind: Kind, entity_id: str) -> str:
    return f"{kind.value}#{entity_id}"


def _kind_key(kind: Kind, entity_id: str) -> str:
    shards = KIND_SHARDS.get(kind, 1)
    shard = zlib.crc32(entity_id.encode("utf-8")) % shards if shards > 1 else 0
    return f"{kind.value}#{shard}"


def record_item(kind: Kind, record: Record) -> RawItem:
    """The table item holding a record, in DynamoDB's attribute-value form: what the repository writes, and what a
    tool writing with a client of its own (``infra.provision``) must write too."""
    entity_id = record["id"]
    current = record.get("current")
    if isinstance(current, dict):
        ts, seq = current.get("timestamp") or "", int(current.get("sequence") or 0)
    else:
        ts, seq = "", 0
    item: RawItem = {
        "pk": {"S": _key(kind, entity_id)},
        "kk": {"S": _kind_key(kind, entity_id)},
        "doc": {"S": json.dumps(record, ensure_ascii=False, separators=(",", ":"))},
        "ts": {"S": ts},
        "seq": {"N": str(seq)},
        "version": {"N": str(new_version())},
    }
    if kind in ID_DEPTH:
        item["tree"] = {"S": entity_id.partition(".")[0]}
    return item


def new_version() -> int:
    """A version no write has used (with 2**-62 odds per pair): above 0 (none stored) and 1 (``LEGACY_VERSION``)."""
    return _VERSIONS.getrandbits(62) + 2


def _version_of(item: RawItem) -> int:
    return int(item["version"]["N"]) if "version" in item else LEGACY_VERSION


def record_key(kind: Kind, entity_id: str) -> RawItem:
    """The table key of a record (``GetItem``'s ``Key``)."""
    return {"pk": {"S": _key(kind, entity_id)}}


def _units(item: RawItem) -> int:
    """Write units of an item: DynamoDB bills ceil(size / 1 KB), size = names + values in bytes."""
    size = 0
    for name, value in item.items():
        size += len(name)
        for type_, data in value.items():
            size += len(data.encode("utf-8")) if type_ == "S" else (len(data) + 1) // 2 + 1
    return max(1, math.ceil(size / 1024))


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


# --------------------------------------------------------------------------------------------- seen streams


@dataclass(slots=True)
class StreamState:
    """What a stream's seen item says: ``hw`` (all seqs <= hw applied) and the applied ``runs`` above it."""

    hw: int = -1
    runs: tuple[Run, ...] = ()
    version: int = 0
    """The stored item's version, 0 when there is none (the next write creates it)."""
    expires: int = 0

    def __contains__(self, seq: object) -> bool:
        return isinstance(seq, int) and runs_contain(self.hw, self.runs, seq)


def _stream_state(item: RawItem | None, now: int) -> StreamState:
    """A stream item as state; an expired one (TTL deletion lags) keeps only its version."""
    if not item:
        return StreamState()
    version = int(item.get("version", {}).get("N", 0))
    expires = int(item.get("ttl", {}).get("N", 0))
    if expires and expires <= now:
        return StreamState(version=version)
    hw = int(item.get("hw", {}).get("N", -1))
    return StreamState(hw, decode_runs(hw, item.get("above", {}).get("S", "")), version, expires)


def _split_ids(message_ids: Iterable[str]) -> tuple[list[str], dict[str, dict[int, str]]]:
    """Plain ids (deduplicated, in order) and, per stream, seq → message id."""
    plain: dict[str, None] = {}
    streams: dict[str, dict[int, str]] = {}
    for message_id in message_ids:
        parsed = split_message_id(message_id)
        if parsed is None:
            plain[message_id] = None
        else:
            streams.setdefault(parsed[0], {})[parsed[1]] = message_id
    return list(plain), streams


class DynamoDBRepository:
    """``Repository`` on one DynamoDB table. ``host`` is an endpoint URL (DynamoDB Local), ``None`` for AWS.

    Reads are strongly consistent by default (the processor reads then writes; stale reads would turn into
    stale writes of nodes and sources). Conditional field writes run on ``write_concurrency`` threads.
    """

    def __init__(self, table_name: str, region: str | None = None, host: str | None = None, *,
                 consistent_reads: bool = True, write_concurrency: int = 8) -> None:
        self.table_name = table_name
        self._model = _bind(table_name, _region(region), host)
        self._conn: TableConnection = self._model._get_connection()
        _ = self._conn.connection.client  # create the botocore client now, once (its creation is not thread-safe)
        self._consistent = consistent_reads
        self._threads = RequestThreads(write_concurrency, "dynamodb-put")
        self._local = threading.local()
        """``streams``: the seen streams' states this thread's last ``seen`` read (consistently), for its
        ``mark_seen``: one read of a stream item a batch, not two."""
        self._calls_lock = threading.Lock()
        self.calls: collections.Counter[str] = collections.Counter()
        self.consumed: dict[str, float] = {"read": 0.0, "write": 0.0}
        """Capacity units DynamoDB reports as consumed (``ReturnConsumedCapacity=TOTAL``)."""

    def create_table(self) -> None:
        """Create this repository's table if missing (tests, the local set-up); AWS deploys use ``infra/``."""
        self._model.create_table(wait=True, billing_mode="PAY_PER_REQUEST")

    # ----------------------------------------------------------------------------------------- plumbing

    def _count(self, name: str, amount: int = 1) -> None:
        with self._calls_lock:
            self.calls[name] += amount

    def _call(self, name: str, write: bool, fn: Callable[..., dict[str, Any]], *args: Any, **kwargs: Any
              ) -> dict[str, Any]:
        self._count(name)
        data = fn(*args, **kwargs) or {}
        capacity = data.get("ConsumedCapacity")
        if capacity:
            total = sum(c.get("CapacityUnits", 0) for c in (capacity if isinstance(capacity, list) else [capacity]))
            with self._calls_lock:
                self.consumed["write" if write else "read"] += total
        return data

    def _backoff(self, attempt: int, what: str, left: int) -> None:
        if attempt >= MAX_ATTEMPTS:
            raise RepositoryError(f"{what}: {left} request(s) still unprocessed after {MAX_ATTEMPTS} attempts "
                                  f"on table {self.table_name!r}")
        self._count("retries")
        time.sleep(min(2.0, 0.025 * 2**attempt) * (0.5 + random.random()))

    def _item(self, kind: Kind, record: Record) -> RawItem:
        return record_item(kind, record)

    def _batch_get(self, keys: Iterable[str], attributes: list[str], consistent: bool | None = None
                   ) -> list[RawItem]:
        """BatchGetItem in pages of 100, retrying unprocessed keys with backoff."""
        consistent = self._consistent if consistent is None else consistent
        unique = list(dict.fromkeys(keys))  # DynamoDB refuses duplicate keys in one batch
        found: list[RawItem] = []
        for chunk in _chunks(unique, BATCH_GET_MAX):
            pending: list[Any] = [{"pk": {"S": k}} for k in chunk]
            attempt = 0
            while pending:
                data = self._call("batch_get", False, self._conn.batch_get_item, pending,
                                  consistent_read=consistent, attributes_to_get=attributes)
                found.extend(data.get("Responses", {}).get(self.table_name, []))
                pending = data.get("UnprocessedKeys", {}).get(self.table_name, {}).get("Keys", [])
                if pending:
                    attempt += 1
                    self._backoff(attempt, "BatchGetItem", len(pending))
        return found

    def _batch_write(self, puts: Sequence[RawItem] = (), deletes: Sequence[str] = ()) -> None:
        """BatchWriteItem in batches of 25, retrying unprocessed items with backoff."""
        requests: list[tuple[str, Any]] = [("delete", {"pk": {"S": k}}) for k in deletes]
        requests += [("put", item) for item in puts]
        for chunk in _chunks(requests, BATCH_WRITE_MAX):
            put_items = [body for action, body in chunk if action == "put"]
            delete_items = [body for action, body in chunk if action == "delete"]
            with self._calls_lock:
                self.calls["write_units"] += sum(_units(i) for i in put_items) + len(delete_items)
                self.calls["items_written"] += len(put_items)
                self.calls["items_deleted"] += len(delete_items)
            attempt = 0
            while put_items or delete_items:
                data = self._call("batch_write", True, self._conn.batch_write_item,
                                  put_items=put_items, delete_items=delete_items)
                unprocessed = data.get("UnprocessedItems", {}).get(self.table_name, [])
                put_items = [u["PutRequest"]["Item"] for u in unprocessed if "PutRequest" in u]
                delete_items = [u["DeleteRequest"]["Key"] for u in unprocessed if "DeleteRequest" in u]
                if unprocessed:
                    attempt += 1
                    self._backoff(attempt, "BatchWriteItem", len(unprocessed))

    def _query_keys(self, index: str, hash_key: str, prefix: str | None = None) -> list[str]:
        """Table keys from a KEYS_ONLY index query, all pages."""
        condition = self._model.pk.startswith(prefix) if prefix else None
        keys: list[str] = []
        start: Any = None
        while True:
            data = self._call("query", False, self._conn.query, hash_key, range_key_condition=condition,
                              index_name=index, exclusive_start_key=start)
            keys.extend(item["pk"]["S"] for item in data.get("Items", []))
            start = data.get("LastEvaluatedKey")
            if not start:
                return keys

    def _docs(self, keys: Iterable[str]) -> dict[str, Record]:
        """Records by table key."""
        return {item["pk"]["S"]: json.loads(item["doc"]["S"])
                for item in self._batch_get(keys, ["pk", "doc"]) if "doc" in item}

    # ----------------------------------------------------------------------------------------- reads

    def get(self, kind: Kind, entity_id: str) -> Record | None:
        data = self._call("get", False, self._conn.get_item, _key(kind, entity_id),
                          consistent_read=self._consistent, attributes_to_get=["doc"])
        item = data.get("Item")
        return json.loads(item["doc"]["S"]) if item and "doc" in item else None

    def get_many(self, kind: Kind, ids: Iterable[str]) -> dict[str, Record]:
        """BatchGetItem, 100 keys a call (the processor's one read per kind per batch)."""
        prefix_len = len(kind.value) + 1
        return {key[prefix_len:]: record for key, record in self._docs(_key(kind, i) for i in ids).items()}

    def get_versioned(self, kind: Kind, entity_id: str) -> Versioned:
        data = self._call("get", False, self._conn.get_item, _key(kind, entity_id),
                          consistent_read=self._consistent, attributes_to_get=["doc", "version"])
        item = data.get("Item")
        if not item or "doc" not in item:
            return None, 0
        return json.loads(item["doc"]["S"]), _version_of(item)

    def get_many_versioned(self, kind: Kind, ids: Iterable[str], *, consistent: bool = True
                           ) -> dict[str, tuple[Record, int]]:
        prefix_len = len(kind.value) + 1
        return {item["pk"]["S"][prefix_len:]: (json.loads(item["doc"]["S"]), _version_of(item))
                for item in self._batch_get((_key(kind, i) for i in ids), ["pk", "doc", "version"],
                                            None if consistent else False)
                if "doc" in item}

    def query(self, kind: Kind, query: ListQuery) -> ListResult:
        """Reads every record of the kind (index keys, then documents), then filters/sorts/pages in Python."""
        keys: list[str] = []
        for shard in range(KIND_SHARDS.get(kind, 1)):
            keys.extend(self._query_keys("by_kind", f"{kind.value}#{shard}"))
        return apply_query(self._docs(keys).values(), query)

    def children(self, kind: Kind, parent_id: str) -> list[Record]:
        """One Query on the gateway's ``by_tree`` partition with the parent's id as key prefix."""
        child_kind = CHILD_KIND.get(kind)
        if child_kind is None or not parent_id:
            return []
        keys = self._query_keys("by_tree", parent_id.partition(".")[0], f"{child_kind.value}#{parent_id}.")
        return sorted(self._docs(keys).values(), key=lambda r: str(r.get("id")))

    def seen(self, message_ids: Sequence[str]) -> set[str]:
        """One BatchGetItem (per 100 keys) of the streams' items and the plain ids' ``SEEN#`` items; an expired
        item counts as forgotten even before TTL removes it."""
        plain, streams = _split_ids(message_ids)
        keys = [STREAM_PREFIX + stream for stream in streams] + [SEEN_PREFIX + m for m in plain]
        if not keys:
            return set()
        now = int(time.time())
        found: set[str] = set()
        states: dict[str, StreamState] = {stream: StreamState() for stream in streams}
        for item in self._batch_get(keys, ["pk", "ttl", "hw", "above", "version"]):
            key = item["pk"]["S"]
            if key.startswith(STREAM_PREFIX):
                state = states[key[len(STREAM_PREFIX):]] = _stream_state(item, now)
                found.update(m for seq, m in streams[key[len(STREAM_PREFIX):]].items() if seq in state)
            else:
                expires = item.get("ttl", {}).get("N")
                if expires is None or int(expires) > now:  # TTL deletion lags; expired means forgotten
                    found.add(key[len(SEEN_PREFIX):])
        if self._consistent:  # the batch's mark_seen writes on these (its conditional write catches any change)
            self._local.streams = states
        return found

    # ----------------------------------------------------------------------------------------- writes

    def put(self, kind: Kind, record: Record, *, expected_version: int | None = None) -> None:
        entity_id = checked_id(kind, record)
        if expected_version is not None:
            if self._put_conditional((self._item(kind, record), expected_version, False)) == "conflict":
                raise ConditionFailed(f"{kind.value} {entity_id}: changed since read", [entity_id])
            return
        item = self._item(kind, record)
        self._count("write_units", _units(item))
        self._count("items_written")
        self._call("put", True, self._conn.put_item, item["pk"]["S"],
                   attributes={k: v for k, v in item.items() if k != "pk"})

    def put_many(self, kind: Kind, records: Sequence[Record], *, if_newer: bool = False,
                 expected_versions: Mapping[str, int] | None = None) -> list[str]:
        """BatchWriteItem (25 a call) when unconditional; with ``if_newer`` one conditional PutItem per record,
        a failed condition meaning "newer already stored" (its id is returned, nothing raised). Records with an
        expected version: one conditional PutItem each, in parallel (see ``_put_conditional``)."""
        if not records:
            return []
        if expected_versions:
            return self._put_many_versioned(kind, records, if_newer, expected_versions)
        if not if_newer:
            last: dict[str, RawItem] = {}
            for record in records:  # the last write of an id wins, as it would one after another
                item = self._item(kind, record)
                last[item["pk"]["S"]] = item
            self._batch_write(puts=list(last.values()))
            return []
        # BatchWriteItem takes no conditions: one conditional PutItem per record, in parallel. Repeats of an
        # id go in later rounds so that they apply in order, as they would one after another.
        rounds: list[list[tuple[int, RawItem]]] = []
        occurrences: collections.Counter[str] = collections.Counter()
        for position, record in enumerate(records):
            item = self._item(kind, record)
            n = occurrences[item["pk"]["S"]]
            occurrences[item["pk"]["S"]] += 1
            if n == len(rounds):
                rounds.append([])
            rounds[n].append((position, item))
        rejected: list[tuple[int, str]] = []
        for batch in rounds:
            outcomes = self._threads.map(self._put_if_newer, [item for _, item in batch])
            rejected.extend((position, records[position]["id"])
                            for (position, _), written in zip(batch, outcomes, strict=True) if not written)
        return [entity_id for _, entity_id in sorted(rejected)]

    def _put_many_versioned(self, kind: Kind, records: Sequence[Record], if_newer: bool,
                            expected_versions: Mapping[str, int]) -> list[str]:
        conditional = [record for record in records if record["id"] in expected_versions]
        if len({record["id"] for record in conditional}) != len(conditional):
            raise ValueError("an id with an expected version may appear once in a put_many")
        others = [record for record in records if record["id"] not in expected_versions]
        stale = self.put_many(kind, others, if_newer=if_newer) if others else []
        work = [(self._item(kind, record), expected_versions[record["id"]], if_newer) for record in conditional]
        outcomes = self._threads.map(self._put_conditional, work)
        conflicts: list[str] = []
        for record, outcome in zip(conditional, outcomes, strict=True):
            if outcome == "conflict":
                conflicts.append(record["id"])
            elif outcome == "stale":
                stale.append(record["id"])
        order = {record["id"]: position for position, record in enumerate(records)}
        stale.sort(key=order.__getitem__)
        if conflicts:
            raise ConditionFailed(f"{kind.value} {', '.join(conflicts[:5])}: changed since read", conflicts, stale)
        return stale

    def _put_conditional(self, work: tuple[RawItem, int, bool]) -> str:
        """One PutItem on the stored version (and, with ``if_newer``, on the order key as ``_put_if_newer``):
        ``written``, ``conflict`` (another version stored) or ``stale`` (that version, but a newer value)."""
        item, expected, if_newer = work
        model = self._model
        if expected == 0:
            condition: Condition = model.pk.does_not_exist()
        elif expected == LEGACY_VERSION:
            condition = (model.version == LEGACY_VERSION) | (model.pk.exists() & model.version.does_not_exist())
        else:
            condition = model.version == expected
        if if_newer and expected:
            ts, seq = item["ts"]["S"], int(item["seq"]["N"])
            condition = condition & ((model.ts < ts) | ((model.ts == ts) & (model.seq < seq)))
        self._count("write_units", _units(item))  # a failed condition is billed too
        try:
            self._call("put", True, self._conn.put_item, item["pk"]["S"],
                       attributes={k: v for k, v in item.items() if k != "pk"}, condition=condition)
        except PutError as error:
            if error.cause_response_code != "ConditionalCheckFailedException":
                raise
            self._count("conditional_rejected")
            if not (if_newer and expected):
                return "conflict"
            data = self._call("get", False, self._conn.get_item, item["pk"]["S"], consistent_read=True,
                              attributes_to_get=["pk", "version"])
            stored = data.get("Item")
            return "stale" if stored and _version_of(stored) == expected else "conflict"
        self._count("items_written")
        return "written"

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """DynamoDB writes each call as it comes (TransactWriteItems would cost twice and hold 100 items)."""
        yield

    def _put_if_newer(self, item: RawItem) -> bool:
        ts, seq = item["ts"]["S"], int(item["seq"]["N"])
        model = self._model
        condition: Condition = (model.pk.does_not_exist() | (model.ts < ts)
                                | ((model.ts == ts) & (model.seq < seq)))
        self._count("write_units", _units(item))  # a failed condition is billed too
        try:
            self._call("put", True, self._conn.put_item, item["pk"]["S"],
                       attributes={k: v for k, v in item.items() if k != "pk"}, condition=condition)
        except PutError as error:
            if error.cause_response_code == "ConditionalCheckFailedException":
                self._count("conditional_rejected")
                return False
            raise
        self._count("items_written")
        return True

    def delete(self, kind: Kind, ids: Sequence[str]) -> list[tuple[Kind, Record]]:
        """Finds the subtree with ``by_tree`` prefix queries, reads it (to return it) and batch-deletes it.

        Not atomic: a child created by a concurrent batch between the query and the delete survives, as it
        would have if created just after; the next delete of the parent takes it.
        """
        deleted: list[tuple[Kind, Record]] = []
        done: set[str] = set()
        for entity_id in dict.fromkeys(ids):
            keys = [_key(kind, entity_id)]
            if kind in CHILD_KIND:
                tree = entity_id.partition(".")[0]
                if kind == Kind.GATEWAY:
                    keys += self._query_keys("by_tree", tree)
                else:
                    depth = _DEPTH_ORDER[kind]
                    for below in DEVICE_KINDS[depth + 1:]:
                        keys += self._query_keys("by_tree", tree, f"{below.value}#{entity_id}.")
            keys = [k for k in dict.fromkeys(keys) if k not in done]
            found = self._docs(keys)
            # Parents before children, each level in id order (the memory repository's order).
            items = sorted(((Kind(key.partition("#")[0]), record) for key, record in found.items()),
                           key=lambda kr: (_DEPTH_ORDER.get(kr[0], -1), str(kr[1].get("id"))))
            self._batch_write(deletes=list(found))
            done.update(found)
            deleted.extend(items)
        return deleted

    def mark_seen(self, message_ids: Sequence[str]) -> None:
        """Streams: the states this thread's ``seen`` just read of them (else one BatchGetItem), then one
        conditional PutItem per stream whose state changes (in parallel; a stream written meanwhile is read
        again). Plain ids: one small item each (BatchWriteItem), expiring after ``SEEN_TTL_S``."""
        plain, streams = _split_ids(message_ids)
        if plain:
            expires = str(int(time.time()) + SEEN_TTL_S)
            self._batch_write(puts=[{"pk": {"S": SEEN_PREFIX + m}, "ttl": {"N": expires}} for m in plain])
        if not streams:
            return
        now = int(time.time())
        known: dict[str, StreamState] = getattr(self._local, "streams", None) or {}
        self._local.streams = None
        missing = [stream for stream in streams if stream not in known]
        stored = {item["pk"]["S"][len(STREAM_PREFIX):]: item
                  for item in self._batch_get((STREAM_PREFIX + s for s in missing),
                                              ["pk", "ttl", "hw", "above", "version"], consistent=True)
                  } if missing else {}
        work = [(stream, list(seqs), known[stream] if stream in known else _stream_state(stored.get(stream), now))
                for stream, seqs in streams.items()]
        self._threads.map(self._mark_stream, work)

    def _mark_stream(self, work: tuple[str, list[int], StreamState]) -> bool:
        """Merge seqs into one stream's state and write it if it changed, conditional on the version read; on
        a lost race re-read (GetItem) and merge again. Returns whether a write happened."""
        stream, seqs, state = work
        key = STREAM_PREFIX + stream
        attempt = 0
        while True:
            now = int(time.time())
            hw, runs = merge_seqs(state.hw, state.runs, seqs, max_chars=SEEN_ABOVE_MAX_CHARS)
            if (hw, runs) == (state.hw, state.runs) and state.version and state.expires > now + STREAM_TTL_S // 2:
                return False  # nothing new, and the TTL is recent enough
            attributes: RawItem = {
                "hw": {"N": str(hw)},
                "version": {"N": str(state.version + 1)},
                "ttl": {"N": str(now + STREAM_TTL_S)},
            }
            if runs:
                attributes["above"] = {"S": encode_runs(hw, runs)}
            condition: Condition = (self._model.version == state.version if state.version
                                    else self._model.pk.does_not_exist())
            self._count("write_units", _units({"pk": {"S": key}, **attributes}))  # a failed condition is billed
            try:
                self._call("put", True, self._conn.put_item, key, attributes=attributes, condition=condition)
            except PutError as error:
                if error.cause_response_code != "ConditionalCheckFailedException":
                    raise
                self._count("seen_conflicts")
                attempt += 1
                if attempt > 1:  # the first conflict re-reads at once; repeated ones back off (and give up)
                    self._backoff(attempt, f"seen stream {stream!r}", 1)
                data = self._call("get", False, self._conn.get_item, key, consistent_read=True,
                                  attributes_to_get=["pk", "ttl", "hw", "above", "version"])
                state = _stream_state(data.get("Item"), int(time.time()))
                continue
            self._count("items_written")
            return True

    def close(self) -> None:
        """Stop the write threads and the HTTP client. Idempotent."""
        self._threads.close()
        client = getattr(self._conn.connection, "_client", None)
        if client is not None and hasattr(client, "close"):
            client.close()
