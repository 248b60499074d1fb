"""Actions on devices: set a field by quick id (also ``toggle``), node actions, gateway actions.

Every action of a request is checked before any is sent, so a bad item sends nothing. Messages leave through the
downlink port as provider-native downlinks (``core.actions``); the stored field value changes only when the
device reports back, as in the reference. A MySensors ``reset`` flags the node first (its bootloader must find
the flag when it asks for its firmware config).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from ..core import actions as core_actions
from ..core.envelope import Downlink
from ..core.model import EventType, Kind, QuickIdError, Record, event, now_iso, parse_quick_id
from ..core.ports import DownlinkSender
from .errors import InvalidInput
from .records import Records

MAX_ACTIONS: Final = 100
"""Actions one request may carry."""

Plan = tuple[Downlink | None, Record | None]
"""What one action sends (``None``: skipped, a disabled gateway) and a node record to store first."""


@dataclass(frozen=True, slots=True)
class Action:
    """Send ``payload`` to the resource a quick id names: a field's value (or ``toggle``), a node action for a
    node, ``discover_nodes`` for a gateway."""

    resource: str
    payload: str | int | float | bool


class ActionService:
    def __init__(self, records: Records, downlink: DownlinkSender) -> None:
        self.records = records
        self.downlink = downlink

    # ----------------------------------------------------------------------------------------- use cases

    def act(self, actions: Sequence[Action], *, prefix: str = "[{index}].") -> dict[str, int]:
        """Resource actions (quick id + payload); ``prefix`` names an item's inputs in errors."""
        self.check_count(len(actions))
        plans = [self._plan_item(item, prefix.format(index=index)) for index, item in enumerate(actions)]
        return self._execute(plans)

    def node_actions(self, action: str, ids: Sequence[str]) -> dict[str, int]:
        self._check_ids(ids, "nodes")
        nodes = [self.records.find(Kind.NODE, text, f"ids[{i}]") for i, text in enumerate(ids)]
        return self._execute([self._node_plan(node, action, "action", f"ids[{i}]") for i, node in enumerate(nodes)])

    def gateway_actions(self, action: str, ids: Sequence[str]) -> dict[str, int]:
        self._check_ids(ids, "gateways")
        gateways = [self.records.find(Kind.GATEWAY, text, f"ids[{i}]") for i, text in enumerate(ids)]
        plans: list[Plan] = []
        for gateway in gateways:
            if not gateway.get("enabled", True):
                plans.append((None, None))  # the reference skips disabled gateways
                continue
            try:
                plans.append((core_actions.gateway_action(gateway, action), None))
            except core_actions.ActionError as error:
                raise InvalidInput(str(error), "action") from None
        return self._execute(plans)

    # ----------------------------------------------------------------------------------------- planning

    @staticmethod
    def check_count(count: int) -> None:
        """A request carries one action at least, ``MAX_ACTIONS`` at most (checked before reading the items)."""
        if not count:
            raise InvalidInput("there is no action supplied", "body")
        if count > MAX_ACTIONS:
            raise InvalidInput(f"at most {MAX_ACTIONS} actions a request, got {count}", "body")

    @staticmethod
    def _check_ids(ids: Sequence[str], what: str) -> None:
        if not ids:
            raise InvalidInput("required field(s) missing: ids", "ids")
        if len(ids) > MAX_ACTIONS:
            raise InvalidInput(f"at most {MAX_ACTIONS} {what} a request", "ids")

    def _gateway_of(self, record: Record, field: str) -> Record:
        gateway = self.records.repository.get(Kind.GATEWAY, str(record.get("gatewayId") or record.get("id")))
        if gateway is None:
            raise InvalidInput(f"gateway {record.get('gatewayId')!r} of {record.get('id')!r} does not exist", field)
        return gateway

    def _plan_item(self, item: Action, prefix: str) -> Plan:
        """The downlink one action item sends, and a node record to store first (``reset``)."""
        name = f"{prefix}resource"
        if not item.resource:
            raise InvalidInput(f"{name}: a quick id is required", name)
        try:
            quick = parse_quick_id(item.resource)
        except QuickIdError as error:
            raise InvalidInput(str(error), name) from None
        if quick.kind == Kind.FIELD:
            field = self.records.find(Kind.FIELD, quick.id, name)
            try:
                return core_actions.set_field(self._gateway_of(field, name), field, item.payload), None
            except core_actions.ActionError as error:
                raise InvalidInput(str(error), f"{prefix}{error.field or 'payload'}") from None
        if quick.kind == Kind.NODE:
            node = self.records.find(Kind.NODE, quick.id, name)
            return self._node_plan(node, str(item.payload), f"{prefix}payload", name)
        if quick.kind == Kind.GATEWAY:
            gateway = self.records.find(Kind.GATEWAY, quick.id, name)
            if not gateway.get("enabled", True):
                return None, None
            try:
                return core_actions.gateway_action(gateway, str(item.payload)), None
            except core_actions.ActionError as error:
                raise InvalidInput(str(error), f"{prefix}payload") from None
        raise InvalidInput(f"{quick.kind.value} resources take no actions here", name)

    def _node_plan(self, node: Record, action: str, action_field: str,
                   target_field: str) -> tuple[Downlink, Record | None]:
        """The downlink of one node action (``action_field``/``target_field`` name the inputs in errors), and the
        node flagged for an EEPROM erase when the action is a MySensors ``reset``."""
        try:
            downlink = core_actions.node_action(self._gateway_of(node, target_field), node, action)
        except core_actions.ActionError as error:
            field = action_field if error.field in (None, "action") else target_field
            raise InvalidInput(str(error), field) from None
        flagged = None
        if action == "reset" and downlink.provider == core_actions.MYSENSORS:
            flagged = {**core_actions.reset_node_labels(node), "modifiedOn": now_iso()}
        return downlink, flagged

    def _execute(self, plans: list[Plan]) -> dict[str, int]:
        """Store node flags first (a rebooting bootloader must find them), then send every downlink at once."""
        nodes = [node for _, node in plans if node is not None]
        for node in nodes:
            self.records.repository.put(Kind.NODE, node)
        self.records.announce([event(EventType.UPDATED, Kind.NODE, node) for node in nodes])
        downlinks = [downlink for downlink, _ in plans if downlink is not None]
        if downlinks:
            self.downlink.send(downlinks)
        return {"sent": len(downlinks), "skipped": len(plans) - len(downlinks)}
