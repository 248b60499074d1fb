"""Action endpoints: set a field by quick id (also ``toggle``), node actions, gateway actions.

The reference's shapes are kept: ``POST /api/action`` takes ``[{"resource": quickId, "keyPath", "payload"}]``
(``id`` is accepted for ``resource``), ``GET /api/action?resource=&payload=``, and ``GET /api/action/node`` /
``/api/action/gateway`` with ``?action=&id=&id=``. The POST forms of the last two take
``{"action", "ids"}`` (``nodeIds``/``gatewayIds`` accepted). The use case is ``services.actions.ActionService``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict
from pydantic import Field as PydField
from pydantic.alias_generators import to_camel

from chalicelib.services.actions import Action, ActionService

from .errors import bad_request
from .web import ApiRequest, validate


class _Body(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True, validate_by_alias=True,
                              serialize_by_alias=True, extra="ignore")


class ActionItem(_Body):
    """Send ``payload`` to the resource a quick id names: a field's value (or ``toggle``), a node action for a
    node, ``discover_nodes`` for a gateway."""

    resource: str | None = PydField(default=None, description="Quick id, e.g. field:gw.1.1.V_STATUS")
    id: str | None = PydField(default=None, description="Same as resource")
    key_path: str = PydField(default="", description="A data repository's key path, or a virtual device's trait; "
                                                      "fields ignore it")
    payload: str | int | float | bool = PydField(description="The value, or 'toggle' for binary fields")


class NodeActionBody(_Body):
    action: Literal["heartbeat_request", "reboot", "refresh_node_info", "reset", "firmware_update"]
    ids: list[str] = PydField(default_factory=list, validation_alias=AliasChoices("ids", "nodeIds", "id"),
                              description="Node ids or quick ids (nodeIds is accepted too)")


class GatewayActionBody(_Body):
    action: Literal["discover_nodes"]
    ids: list[str] = PydField(default_factory=list, validation_alias=AliasChoices("ids", "gatewayIds", "id"),
                              description="Gateway ids or quick ids (gatewayIds is accepted too)")


def _items(body: Any) -> list[Action]:
    if isinstance(body, dict):
        body = [body]
    if not isinstance(body, list):
        raise bad_request("body must be a JSON list of {resource, payload} actions", "body")
    ActionService.check_count(len(body))
    return [_action(validate(ActionItem, item, prefix=f"[{index}]")) for index, item in enumerate(body)]


def _action(item: ActionItem) -> Action:
    return Action(item.resource or item.id or "", item.payload, item.key_path)


# --------------------------------------------------------------------------------------------- handlers


def post_action(request: ApiRequest) -> dict[str, int]:
    return request.container.actions.act(_items(request.json()))


def get_action(request: ApiRequest) -> dict[str, int]:
    data: dict[str, Any] = {"resource": request.param("resource", "id")}
    if request.param("payload") is not None:
        data["payload"] = request.param("payload")
    if request.param("keyPath") is not None:
        data["keyPath"] = request.param("keyPath")
    return request.container.actions.act([_action(validate(ActionItem, data))], prefix="")


def post_node_action(request: ApiRequest) -> dict[str, int]:
    body = request.model(NodeActionBody)
    return request.container.actions.node_actions(body.action, body.ids)


def get_node_action(request: ApiRequest) -> dict[str, int]:
    body = validate(NodeActionBody, {"action": request.param("action"), "ids": request.params("id")})
    return request.container.actions.node_actions(body.action, body.ids)


def post_gateway_action(request: ApiRequest) -> dict[str, int]:
    body = request.model(GatewayActionBody)
    return request.container.actions.gateway_actions(body.action, body.ids)


def get_gateway_action(request: ApiRequest) -> dict[str, int]:
    body = validate(GatewayActionBody, {"action": request.param("action"), "ids": request.params("id")})
    return request.container.actions.gateway_actions(body.action, body.ids)
