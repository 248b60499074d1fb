"""MyController v2's gateway routes besides CRUD: ``POST /api/gateway/enable``, ``/disable`` and ``/reload`` with an
id list, and the sleeping queue (``GET /api/gateway-sleeping-queue?gatewayId=&nodeId=`` and ``/clear``).

Enable, disable and reload act on the edge agent that runs each gateway (``services.gateway_sync``): the change
reaches its device shadow and the agent starts, stops or restarts the gateway. The answers count what changed (the
reference answered the JSON strings ``"Enabled"``, ``"Disabled"``, ``"Reloaded"``, which its console does not
read)."""

from __future__ import annotations

from typing import Any

from chalicelib.core.model import Kind

from .errors import bad_request
from .resources import id_list
from .web import ApiRequest


def set_enabled(enabled: bool, request: ApiRequest) -> dict[str, int]:
    container = request.container
    found = container.records.find_all(Kind.GATEWAY, id_list(request, Kind.GATEWAY))
    changed = container.gateway_sync.set_enabled(found.values(), enabled)
    return {"updated": len(changed), "unchanged": len(found) - len(changed)}


def reload(request: ApiRequest) -> dict[str, int]:
    container = request.container
    found = container.records.find_all(Kind.GATEWAY, id_list(request, Kind.GATEWAY))
    return {"reloaded": len(container.gateway_sync.reload(found.values()))}


def sleeping_queue(request: ApiRequest) -> Any:
    """``[message]`` for a node, ``{nodeId: [message]}`` for the whole gateway (``services.sleeping_queue``)."""
    gateway_id = request.param("gatewayId") or ""
    if not gateway_id:
        raise bad_request("gatewayId is required", "gatewayId")
    return request.container.sleeping_queues.listing(gateway_id, request.param("nodeId") or None)


def clear_sleeping_queue(request: ApiRequest) -> dict[str, Any]:
    gateway_id = request.param("gatewayId") or ""
    if not gateway_id:
        raise bad_request("gatewayId is required", "gatewayId")
    return request.container.sleeping_queues.clear(gateway_id, request.param("nodeId") or None)
