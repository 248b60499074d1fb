"""Actions on devices: set a field by quick id (also ``toggle``), node actions, gateway actions; and (MyController v2's)
a data repository written at a key path, a virtual device's trait acted on as the resource it names.

Every action of a request is checked before any is sent, so a bad item sends nothing. Messages leave through the
downlink port as provider-native downlinks (``core.actions``); the stored field value changes only when the
device reports back, as in the reference. A MySensors ``reset`` flags the node first (its bootloader must find
the flag when it asks for its firmware config). A MySensors ``firmware_update`` hands the edge the node's assigned
firmware (a short-lived URL of its file: presigned in AWS, the store's own path locally) and marks the node
``others.ota_state: assigned``; the edge reboots the node and serves its bootloader (``core.actions``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from mycontroller_protocol.envelope import Downlink

from ..core import actions as core_actions
from ..core import data_repository, virtual
from ..core.model import EventType, Kind, QuickIdError, Record, event, label, now_iso, now_ms, parse_quick_id
from ..core.ports import BlobStore, DownlinkSender
from .errors import InvalidInput
from .records import Records

log = logging.getLogger(__name__)

MAX_ACTIONS: Final = 100
"""Actions one request may carry."""

Plan = tuple[Downlink | tuple[Downlink, ...] | None, tuple[Kind, Record] | None]
"""What one action sends (``None``: skipped, a disabled gateway) and a record to store first (a node flagged for a
reset or marked for a firmware update, a data repository written)."""
FIRMWARE_PREFIX: Final = "firmware/"
SLEEP_LABELS: Final = ("sleep_node", "ignore_sleep_node")


@dataclass(frozen=True, slots=True)
class Action:
    """Send ``payload`` to the resource a quick id names: a field's value (or ``toggle``), a node action for a
    node, ``discover_nodes`` for a gateway; write it at ``key_path`` of a data repository; or act on what a
    virtual device's trait names (``virtual_device:<id>.<trait>``, or the trait as ``key_path``)."""

    resource: str
    payload: str | int | float | bool
    key_path: str = ""


class ActionService:
    def __init__(self, records: Records, downlink: DownlinkSender, blobs: BlobStore | None = None, *,
                 link_expires_s: int = 900) -> None:
        self.records = records
        self.downlink = downlink
        self.blobs = blobs
        """Where firmware files are (``firmware/<id>``): the edge is handed a URL of the node's one."""
        self.link_expires_s = link_expires_s

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
        if quick.kind == Kind.DATA_REPOSITORY:
            repository = self.records.find(Kind.DATA_REPOSITORY, quick.id, name)
            try:
                written = data_repository.write(repository, quick.key_path or item.key_path, item.payload)
            except data_repository.DataRepositoryError as error:
                raise InvalidInput(str(error), f"{prefix}keyPath") from None
            return None, None if written is None else (Kind.DATA_REPOSITORY, {**written, "modifiedOn": now_iso()})
        if quick.kind == Kind.VIRTUAL_DEVICE:
            device = self.records.find(Kind.VIRTUAL_DEVICE, quick.id, name)
            trait = quick.key_path or item.key_path
            if not trait:
                raise InvalidInput(f"{name}: name the trait to act on (virtual_device:<id>.<trait> or keyPath)", name)
            try:
                target = virtual.trait_target(device, trait)
            except virtual.VirtualError as error:
                raise InvalidInput(str(error), name) from None
            return self._plan_item(Action(target, item.payload), prefix)
        raise InvalidInput(f"{quick.kind.value} resources take no actions here", name)

    def _node_plan(self, node: Record, action: str, action_field: str, target_field: str) -> Plan:
        """The downlinks of one node action (``action_field``/``target_field`` name the inputs in errors), and the
        node flagged for an EEPROM erase (MySensors ``reset``) or marked for an update (MySensors
        ``firmware_update``). A ``firmware_update`` needs the node's ``assigned_firmware`` label to name a firmware
        with its file uploaded."""
        firmware = self._check_firmware(node, target_field) if action == "firmware_update" else None
        gateway = self._gateway_of(node, target_field)
        try:
            downlink = core_actions.node_action(gateway, node, action)
            if downlink.provider != core_actions.MYSENSORS or action not in ("reset", "firmware_update"):
                return downlink, None
            if firmware is not None:
                return self._firmware_plan(gateway, node, firmware)
            erase = core_actions.erase_eeprom(gateway, node)
        except core_actions.ActionError as error:
            field = action_field if error.field in (None, "action") else target_field
            raise InvalidInput(str(error), field) from None
        return (erase, downlink), (Kind.NODE, {**core_actions.reset_node_labels(node), "modifiedOn": now_iso()})

    def _firmware_plan(self, gateway: Record, node: Record, firmware: Record) -> Plan:
        """MySensors: the edge gets the firmware's URL and reboots the node itself once it has the file."""
        url, expires_ms = self._firmware_url(str(firmware["id"]), str((firmware.get("file") or {}).get("name") or ""))
        downlink = core_actions.firmware_assignment(gateway, node, firmware, url=url, url_expires_ms=expires_ms)
        others = {**(node.get("others") or {}), "ota_state": "assigned", "ota_firmware": str(firmware["id"]),
                  "ota_running": False, "ota_progress": 0, "ota_blocks_sent": 0, "ota_message": "",
                  "ota_status_on": now_iso()}
        return downlink, (Kind.NODE, {**node, "others": others, "modifiedOn": now_iso()})

    def _firmware_url(self, firmware_id: str, name: str) -> tuple[str, int | None]:
        """A URL the edge fetches the file from: presigned for ``link_expires_s`` (S3), or the local store's own
        path (``file://``, no expiry: the local stack's edge runs beside its store)."""
        key = FIRMWARE_PREFIX + firmware_id
        if self.blobs is not None:
            url = self.blobs.presign_download(key, expires_s=self.link_expires_s, filename=name or firmware_id)
            if url:
                return url, now_ms() + self.link_expires_s * 1000
            file_url = getattr(self.blobs, "file_url", None)
            if file_url is not None:
                return str(file_url(key)), None
        raise InvalidInput("this deployment's firmware store cannot hand files to an edge", "action")

    def firmware_link(self, gateway_id: str, node_id: str) -> Downlink | None:
        """A new URL of the firmware assigned to a node, for its edge (whose URL expired before it had the file):
        only the node's ``assigned_firmware``, on the gateway that asks. ``None`` when there is none to give."""
        node = self.records.repository.get(Kind.NODE, f"{gateway_id}.{node_id}")
        gateway = self.records.repository.get(Kind.GATEWAY, gateway_id)
        if node is None or gateway is None:
            return None
        try:
            firmware = self._check_firmware(node, "nodeId")
            url, expires_ms = self._firmware_url(str(firmware["id"]),
                                                 str((firmware.get("file") or {}).get("name") or ""))
            return core_actions.firmware_assignment(gateway, node, firmware, url=url, url_expires_ms=expires_ms,
                                                    refresh=True)
        except (InvalidInput, core_actions.ActionError) as error:
            log.warning("no new firmware URL for node %s.%s: %s", gateway_id, node_id, error)
            return None

    # ----------------------------------------------------------------------------------------- labels

    def after_node_upsert(self, node: Record, stored: Record | None) -> None:
        """A MySensors node whose sleep labels changed (``sleep_node``, ``ignore_sleep_node``): tell its edge."""
        labels, before = node.get("labels") or {}, (stored or {}).get("labels") or {}
        if stored is None and not any(labels.get(key) for key in SLEEP_LABELS):
            return
        if all(labels.get(key) == before.get(key) for key in SLEEP_LABELS):
            return
        gateway = self.records.repository.get(Kind.GATEWAY, str(node.get("gatewayId")))
        if gateway is None or not gateway.get("enabled", True):
            return
        try:
            keep_seen = labels.get("sleep_node") == before.get("sleep_node")  # unpinned only: as the edge saw it
            downlink = core_actions.sleep_mode(gateway, node, keep_seen=keep_seen)
        except core_actions.ActionError:
            return  # a provider that takes no actions, or a node id MySensors cannot have
        if downlink is not None:
            self.downlink.send([downlink])

    def _check_firmware(self, node: Record, field: str) -> Record:
        firmware_id = label(node.get("labels"), "assigned_firmware")
        if not firmware_id:
            raise InvalidInput(f"node {node.get('id')!r} has no assigned_firmware label: assign a firmware first",
                               field)
        firmware = self.records.repository.get(Kind.FIRMWARE, firmware_id)
        if firmware is None or not (firmware.get("file") or {}).get("size"):
            raise InvalidInput(f"firmware {firmware_id!r} (assigned to node {node.get('id')!r}) does not exist or "
                               "has no file uploaded", field)
        return firmware

    def _execute(self, plans: list[Plan]) -> dict[str, int]:
        """Store node flags first (a rebooting bootloader must find them), then send every downlink at once."""
        stored = [item for _, item in plans if item is not None]
        for kind, record in stored:
            self.records.repository.put(kind, record)
        self.records.announce([event(EventType.UPDATED, kind, record) for kind, record in stored])
        downlinks = [item for sent, _ in plans if sent is not None
                     for item in (sent if isinstance(sent, tuple) else (sent,))]
        if downlinks:
            self.downlink.send(downlinks)
        sent_count = sum(1 for sent, _ in plans if sent is not None)
        return {"sent": sent_count, "skipped": len(plans) - sent_count}
