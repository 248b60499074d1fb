"""Provider ``edge``: what the edge agent says about its gateways (connection state)."""

from __future__ import annotations

from mycontroller_protocol.envelope import Downlink, Envelope

from ..model import Record, StateStatus
from ..ops import GatewayState, InterpretError, Op, json_object

_STATUSES = frozenset(s.value for s in StateStatus)


class EdgeStateInterpreter:
    provider = "edge"

    def interpret(self, envelope: Envelope, gateway: Record) -> list[Op]:
        data = json_object(envelope.raw, "edge message")
        if data.get("type") != "gateway_state":
            raise InterpretError("edge message must be an object with type 'gateway_state'")
        status = data.get("status")
        if status not in _STATUSES:
            raise InterpretError(f"gateway state status {status!r} is not one of {sorted(_STATUSES)}")
        message = data.get("message", "")
        return [GatewayState(str(status), str(message)[:500])]

    def reply_value(self, gateway: Record, field: Record) -> Downlink | None:
        return None

    def node_id_response(self, gateway: Record, node_id: int) -> Downlink:
        raise InterpretError("edge state messages never ask for node ids")
