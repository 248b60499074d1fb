"""Requests devices make of the controller, answered from what the batch knows: a field's value (after the batch's
own values for it are applied) and a free node id."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from ..model import DomainEvent, EventType, Kind, Node, State, StateStatus, event
from ..ops import FieldRequest
from .state import EntityAcc

if TYPE_CHECKING:
    from .batch import Batch

FIRST_NODE_ID: Final = 1
LAST_NODE_ID: Final = 254


def answer_field_request(batch: Batch, gw: str, op: FieldRequest, ts: int, provider: str) -> None:
    """A ``requested`` event for the field, and a reply with its value when it has one and the provider can send
    it. Runs after the batch's values are folded, so the answer is the newest value."""
    batch.node(gw, op.node_id, ts)
    batch.source(gw, op.node_id, op.source_id, ts)
    key = f"{gw}.{op.node_id}.{op.source_id}.{op.field_id}"
    acc = batch.fields.get(key)
    record = acc.materialize() if acc is not None else batch.stored_fields.get(key)
    if record is None:
        batch.requested.append(DomainEvent(EventType.REQUESTED.value, Kind.FIELD.value, key, f"field:{key}", None))
        return
    batch.requested.append(event(EventType.REQUESTED, Kind.FIELD, record))
    if (record.get("current") or {}).get("value") is None:
        return
    interpreter = batch.p.interpreters.get(provider)
    if interpreter is None:
        return
    reply = interpreter.reply_value(batch.gateways[gw].record, record)
    if reply is not None:
        batch.result.downlinks.append(reply)


def assign_node_id(batch: Batch, gw: str, provider: str) -> str | None:
    """Answer an id request with the first id no node of the gateway has (stored, made in this batch, or spoken
    for by the batch's messages) and create that node; the reason when there is none to give."""
    taken = batch.node_ids_by_gateway.get(gw)
    if taken is None:
        taken = {r["nodeId"] for r in batch.repo.children(Kind.GATEWAY, gw)}
        prefix = gw + "."
        taken.update(key[len(prefix):] for key in batch.nodes if key.startswith(prefix))
        taken.update(key[len(prefix):] for key in batch.stored_nodes if key.startswith(prefix))
        taken.update(batch.batch_node_ids.get(gw, ()))
        taken.update(group.template.node_id for group in batch.groups.values() if group.gateway_id == gw)
        batch.node_ids_by_gateway[gw] = taken
    for candidate in range(FIRST_NODE_ID, LAST_NODE_ID + 1):
        if str(candidate) not in taken:
            break
    else:
        return f"no free node id in {FIRST_NODE_ID}-{LAST_NODE_ID} on gateway {gw}"
    interpreter = batch.p.interpreters.get(provider)
    if interpreter is None:
        return f"provider {provider!r} cannot answer an id request"
    gateway = batch.gateways[gw].record
    batch.result.downlinks.append(interpreter.node_id_response(gateway, candidate))
    node_id = str(candidate)
    taken.add(node_id)
    record = Node(gateway_id=gw, node_id=node_id, name=node_id,
                  state=State(status=StateStatus.UNAVAILABLE, message="id assigned")).record()
    batch.nodes[record["id"]] = EntityAcc(record, created=True)
    return None
