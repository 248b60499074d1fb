"""The websocket connection store contract: connections and their subscriptions, in memory or DynamoDB.

A connection round-trips as it was put; subscriptions are added, replaced and removed one at a time without
touching the others; a subscription for a connection that is gone is refused (``False``) and never recreates
it; deleting or unsubscribing what is not there is not an error. Records handed out are the caller's: changing
one changes nothing stored.
"""

from __future__ import annotations

from typing import Any

from chalicelib.core.ports import ConnectionStore

FIELD_FILTER = {"entityType": "field", "filter": [{"k": "gatewayId", "o": "eq", "v": "gw1"}]}
NODE_FILTER = {"entityType": "node", "ids": ["gw1.1", "gw1.2"], "label": "Grüße"}


def connection(connection_id: str, **extra: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"connectionId": connection_id,
                              "principal": {"sub": "u-1", "username": "admin", "role": "admin"},
                              "connectedAt": 1_767_225_600_123, "expiresAt": 1_767_232_800, "subscriptions": {}}
    return {**record, **extra}


def test_put_then_get_returns_the_connection(connections: ConnectionStore) -> None:
    record = connection("c-1", subscriptions={"s1": FIELD_FILTER})

    connections.put(record)

    assert connections.get("c-1") == record


def test_a_missing_connection_is_none(connections: ConnectionStore) -> None:
    connections.put(connection("c-1"))

    assert connections.get("c-2") is None


def test_put_replaces_the_connection(connections: ConnectionStore) -> None:
    connections.put(connection("c-1", subscriptions={"s1": FIELD_FILTER}))
    replacement = connection("c-1", principal={"sub": "svc", "role": "viewer"}, connectedAt=5, expiresAt=7)

    connections.put(replacement)

    assert connections.get("c-1") == replacement
    assert [c["connectionId"] for c in connections.list_all()] == ["c-1"]


def test_list_all_returns_every_connection(connections: ConnectionStore) -> None:
    records = [connection(f"c-{i}", subscriptions={f"s{i}": FIELD_FILTER} if i % 2 else {}) for i in range(7)]
    for record in records:
        connections.put(record)

    listed = connections.list_all()

    assert sorted(listed, key=lambda c: c["connectionId"]) == records


def test_delete_removes_one_and_ignores_missing(connections: ConnectionStore) -> None:
    connections.put(connection("c-1"))
    connections.put(connection("c-2"))

    connections.delete("c-1")
    connections.delete("c-1")
    connections.delete("never-was")

    assert connections.get("c-1") is None
    assert [c["connectionId"] for c in connections.list_all()] == ["c-2"]


def test_subscriptions_are_added_and_replaced_one_at_a_time(connections: ConnectionStore) -> None:
    connections.put(connection("c-1", subscriptions={"s1": FIELD_FILTER}))

    assert connections.set_subscription("c-1", "s2", NODE_FILTER) is True
    assert connections.set_subscription("c-1", "s1", {"entityType": "gateway"}) is True

    stored = connections.get("c-1")
    assert stored is not None
    assert stored["subscriptions"] == {"s1": {"entityType": "gateway"}, "s2": NODE_FILTER}
    assert stored["principal"] == connection("c-1")["principal"], "subscribing leaves the rest as it was"


def test_a_subscription_for_a_missing_connection_is_refused(connections: ConnectionStore) -> None:
    assert connections.set_subscription("gone", "s1", FIELD_FILTER) is False

    assert connections.get("gone") is None
    assert connections.list_all() == []


def test_remove_subscription_removes_only_that_one(connections: ConnectionStore) -> None:
    connections.put(connection("c-1", subscriptions={"s1": FIELD_FILTER, "s2": NODE_FILTER}))
    connections.put(connection("c-2", subscriptions={"s1": FIELD_FILTER}))

    connections.remove_subscription("c-1", "s1")
    connections.remove_subscription("c-1", "never-was")
    connections.remove_subscription("gone", "s1")

    assert (connections.get("c-1") or {})["subscriptions"] == {"s2": NODE_FILTER}
    assert (connections.get("c-2") or {})["subscriptions"] == {"s1": FIELD_FILTER}
    assert connections.get("gone") is None


def test_subscription_ids_with_punctuation_are_plain_keys(connections: ConnectionStore) -> None:
    connections.put(connection("c-1"))

    for subscription_id in ("a.b", "x#1", "with space", "ü-1"):
        assert connections.set_subscription("c-1", subscription_id, {"id": subscription_id})
    connections.remove_subscription("c-1", "a.b")

    assert (connections.get("c-1") or {})["subscriptions"] == {
        "x#1": {"id": "x#1"}, "with space": {"id": "with space"}, "ü-1": {"id": "ü-1"}}


def test_records_handed_out_are_copies(connections: ConnectionStore) -> None:
    record = connection("c-1", subscriptions={"s1": FIELD_FILTER})
    connections.put(record)
    record["subscriptions"]["s2"] = NODE_FILTER  # the caller keeps changing its own dict

    got = connections.get("c-1")
    assert got is not None
    got["subscriptions"].clear()
    got["principal"]["role"] = "viewer"
    connections.list_all()[0]["subscriptions"]["s3"] = {}

    assert connections.get("c-1") == connection("c-1", subscriptions={"s1": FIELD_FILTER})
