"""Action endpoints: set a field by quick id (also ``toggle``), node actions, gateway actions.

The reference's shapes are kept: ``POST /api/action`` takes ``[{"resource": quickId, "keyPath", "payload"}]``
(``id`` is accepted for ``resource``), ``GET /api/action?resource=&payload=``, and ``GET /api/action/node`` /
``/api/action/gateway`` with ``?action=&id=&id=``. The POST forms of the last two take
``{"action", "ids"}`` (``nodeIds``/``gatewayIds`` accepted). Every action of a request is checked before any is
sent, so a bad item sends nothing. Messages leave through the downlink port; the stored field value changes
only when the device reports back, as in the reference.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict
from pydantic import Field as PydField
from pydantic.alias_generators import to_camel

from chalicelib.config import Services, get_services
from chalicelib.core import actions as core_actions
from chalicelib.core.envelope import Downlink
from chalicelib.core.model import EventType, Kind, QuickIdError, Record, event, now_iso, parse_quick_id

from .errors import bad_request
from .resources import announce, find_record
from .web import ApiRequest, validate

MAX_ACTIONS = 100
"""Actions one request may carry."""


class _Body(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True, validate_by_alias=True,
                              serialize_by_alias=True, extra="ignore")


class ActionItem(_Body):
    """Send ``payload`` to the resource a quick id names: a field's value (or ``toggle``), a node action for a
    node, ``discover_nodes`` for a gateway."""

    resource: str | None = PydField(default=None, description="Quick id, e.g. field:gw.1.1.V_STATUS")
    id: str | None = PydField(default=None, description="Same as resource")
    key_path: str = PydField(default="", description="Accepted for compatibility; fields ignore it")
    payload: str | int | float | bool = PydField(description="The value, or 'toggle' for binary fields")


class NodeActionBody(_Body):
    action: Literal["heartbeat_request", "reboot", "refresh_node_info", "reset"]
    ids: list[str] = PydField(default_factory=list, validation_alias=AliasChoices("ids", "nodeIds", "id"),
                              description="Node ids or quick ids (nodeIds is accepted too)")


class GatewayActionBody(_Body):
    action: Literal["discover_nodes"]
    ids: list[str] = PydField(default_factory=list, validation_alias=AliasChoices("ids", "gatewayIds", "id"),
                              description="Gateway ids or quick ids (gatewayIds is accepted too)")


def _gateway_of(services: Services, record: Record, field: str) -> Record:
    gateway = services.repository.get(Kind.GATEWAY, str(record.get("gatewayId") or record.get("id")))
    if gateway is None:
        raise bad_request(f"gateway {record.get('gatewayId')!r} of {record.get('id')!r} does not exist", field)
    return gateway


def _plan_item(services: Services, item: ActionItem, prefix: str) -> tuple[Downlink | None, Record | None]:
    """The downlink one action item sends, and a node record to store first (``reset``)."""
    text = item.resource or item.id
    if not text:
        raise bad_request(f"{prefix}resource: a quick id is required", f"{prefix}resource")
    try:
        quick = parse_quick_id(text)
    except QuickIdError as error:
        raise bad_request(str(error), f"{prefix}resource") from None
    name = f"{prefix}resource"
    if quick.kind == Kind.FIELD:
        field = find_record(services, Kind.FIELD, quick.id, name)
        try:
            return core_actions.set_field(_gateway_of(services, field, name), field, item.payload), None
        except core_actions.ActionError as error:
            raise bad_request(str(error), f"{prefix}{error.field or 'payload'}") from None
    if quick.kind == Kind.NODE:
        node = find_record(services, Kind.NODE, quick.id, name)
        return _node_plan(services, node, str(item.payload), f"{prefix}payload", name)
    if quick.kind == Kind.GATEWAY:
        gateway = find_record(services, Kind.GATEWAY, quick.id, name)
        if not gateway.get("enabled", True):
            return None, None
        try:
            return core_actions.gateway_action(gateway, str(item.payload)), None
        except core_actions.ActionError as error:
            raise bad_request(str(error), f"{prefix}payload") from None
    raise bad_request(f"{quick.kind.value} resources take no actions here", name)


def _node_plan(services: Services, node: Record, action: str, action_field: str,
               target_field: str) -> tuple[Downlink, Record | None]:
    """The downlink of one node action (``action_field``/``target_field`` name the inputs in errors), and the
    node flagged for an EEPROM erase when the action is a MySensors ``reset``."""
    try:
        downlink = core_actions.node_action(_gateway_of(services, node, target_field), node, action)
    except core_actions.ActionError as error:
        raise bad_request(str(error), action_field if error.field in (None, "action") else target_field) from None
    flagged = None
    if action == "reset" and downlink.provider == core_actions.MYSENSORS:
        flagged = {**core_actions.reset_node_labels(node), "modifiedOn": now_iso()}
    return downlink, flagged


def _execute(services: Services, plans: list[tuple[Downlink | None, Record | None]]) -> dict[str, int]:
    """Store node flags first (a rebooting bootloader must find them), then send every downlink at once."""
    nodes = [node for _, node in plans if node is not None]
    for node in nodes:
        services.repository.put(Kind.NODE, node)
    announce(services, [event(EventType.UPDATED, Kind.NODE, node) for node in nodes])
    downlinks = [downlink for downlink, _ in plans if downlink is not None]
    if downlinks:
        services.downlink.send(downlinks)
    return {"sent": len(downlinks), "skipped": len(plans) - len(downlinks)}


def _items(body: Any) -> list[ActionItem]:
    if isinstance(body, dict):
        body = [body]
    if not isinstance(body, list):
        raise bad_request("body must be a JSON list of {resource, payload} actions", "body")
    if not body:
        raise bad_request("there is no action supplied", "body")
    if len(body) > MAX_ACTIONS:
        raise bad_request(f"at most {MAX_ACTIONS} actions a request, got {len(body)}", "body")
    return [validate(ActionItem, item, prefix=f"[{index}]") for index, item in enumerate(body)]


# --------------------------------------------------------------------------------------------- handlers


def post_action(request: ApiRequest) -> dict[str, int]:
    items = _items(request.json())
    services = get_services()
    plans = [_plan_item(services, item, f"[{index}].") for index, item in enumerate(items)]
    return _execute(services, plans)


def get_action(request: ApiRequest) -> dict[str, int]:
    data: dict[str, Any] = {"resource": request.param("resource", "id")}
    if request.param("payload") is not None:
        data["payload"] = request.param("payload")
    if request.param("keyPath") is not None:
        data["keyPath"] = request.param("keyPath")
    item = validate(ActionItem, data)
    services = get_services()
    return _execute(services, [_plan_item(services, item, "")])


def _check_ids(ids: list[str], what: str) -> None:
    if not ids:
        raise bad_request("required field(s) missing: ids", "ids")
    if len(ids) > MAX_ACTIONS:
        raise bad_request(f"at most {MAX_ACTIONS} {what} a request", "ids")


def _node_actions(body: NodeActionBody) -> dict[str, int]:
    _check_ids(body.ids, "nodes")
    services = get_services()
    nodes = [find_record(services, Kind.NODE, text, f"ids[{i}]") for i, text in enumerate(body.ids)]
    return _execute(services, [_node_plan(services, node, body.action, "action", f"ids[{i}]")
                               for i, node in enumerate(nodes)])


def _gateway_actions(body: GatewayActionBody) -> dict[str, int]:
    _check_ids(body.ids, "gateways")
    services = get_services()
    gateways = [find_record(services, Kind.GATEWAY, text, f"ids[{i}]") for i, text in enumerate(body.ids)]
    plans: list[tuple[Downlink | None, Record | None]] = []
    for gateway in gateways:
        if not gateway.get("enabled", True):
            plans.append((None, None))  # the reference skips disabled gateways
            continue
        try:
            plans.append((core_actions.gateway_action(gateway, body.action), None))
        except core_actions.ActionError as error:
            raise bad_request(str(error), "action") from None
    return _execute(services, plans)


def post_node_action(request: ApiRequest) -> dict[str, int]:
    return _node_actions(request.model(NodeActionBody))


def get_node_action(request: ApiRequest) -> dict[str, int]:
    return _node_actions(validate(NodeActionBody, {"action": request.param("action"), "ids": request.params("id")}))


def post_gateway_action(request: ApiRequest) -> dict[str, int]:
    return _gateway_actions(request.model(GatewayActionBody))


def get_gateway_action(request: ApiRequest) -> dict[str, int]:
    return _gateway_actions(validate(GatewayActionBody, {"action": request.param("action"),
                                                         "ids": request.params("id")}))
