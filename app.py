"""The Chalice app: routes and functions that translate a trigger into a call of the API or the core.

No business rule lives here. Every REST operation comes from ``chalicelib.api.routes.ROUTES`` (the same table
the OpenAPI document is generated from); adapters come from the composition root, ``chalicelib.config``.
"""

from __future__ import annotations

from typing import Any

from chalice import Chalice, Cron, Rate

from chalicelib.api import view_for
from chalicelib.api.observability import http_middleware
from chalicelib.api.routes import ROUTES, not_allowed_routes
from chalicelib.api.web import DEFAULT_CONTENT_TYPES, method_not_allowed
from chalicelib.automation_functions import get_forward_function, get_functions
from chalicelib.config import get_ingest, get_services
from chalicelib.runtime import tune_gc

app = Chalice(app_name="mycontroller")
app.register_middleware(http_middleware, "http")
app.api.binary_types.append("multipart/form-data")  # firmware and backup uploads reach Lambda as bytes

AUTHORIZER: Any = None
"""No API Gateway authorizer: ``view_for`` authenticates every route that is not ``public`` (Bearer header, the
``mc_access_token`` cookie or ``?access_token=``), the same in Lambda, ``chalice.test`` and the local stack; an
authorizer could not read the cookie and query forms alike, and would add a Lambda call per uncached token."""
CORS = True
"""Any origin, as the reference allows (the dashboard may be served from another origin than the API)."""

for _route in ROUTES:
    app.route(_route.path, methods=[_route.method], name=_route.name, cors=CORS,
              content_types=list(_route.content_types) if _route.content_types == DEFAULT_CONTENT_TYPES else ["*/*"],
              authorizer=None if _route.public else AUTHORIZER)(view_for(_route, app))

for _path, _others, _name, _allowed in not_allowed_routes():
    app.route(_path, methods=_others, name=_name, cors=CORS)(method_not_allowed(_path, _allowed))


@app.lambda_function(name="ingest")
def ingest(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The SQS-fed ingest function (the event source mapping, with ReportBatchItemFailures, is in infra/)."""
    return get_ingest().handle(event, context)


@app.lambda_function(name="forward_payload")
def forward_payload(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """``field.updated`` events (rule → SQS queue in infra/, batches with partial failures; or one EventBridge
    event) → downlinks to the mappings' destination fields."""
    from chalicelib import bus_consumers

    return bus_consumers.forward_payload(get_forward_function(), event, context)


@app.lambda_function(name="handlers")
def handlers(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The SQS-fed handler function (queue, DLQ and the event source mapping with ReportBatchItemFailures are in
    infra/): runs each queued handler request once per trigger."""
    from chalicelib.handler_function import handle_event

    return handle_event(event, context)


@app.lambda_function(name="shadow_reported")
def shadow_reported(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """An edge's shadow ``update/documents`` (IoT rule in infra/ adds ``thing``) → its gateway resources."""
    from chalicelib.api.shadow_sync import on_documents

    changed = on_documents(get_services(), event.get("thing"), event)
    return {"updated": [record["id"] for record in changed]}


@app.schedule(Rate(5, unit=Rate.MINUTES), name="node_state_job")
def node_state_job(event: Any) -> dict[str, Any]:
    """Nodes silent past their inactive duration (label ``inactive_duration``, else the settings' default) go
    down."""
    return {"down": get_functions().jobs.run("node_state")}


@app.lambda_function(name="tasks")
def tasks(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Every domain event on the bus (rule → SQS queue in infra/, batches in order with partial failures; or one
    EventBridge event) → the tasks it matches, evaluated."""
    from chalicelib import bus_consumers

    return bus_consumers.tasks(get_functions().tasks, event, context)


@app.lambda_function(name="scheduled")
def scheduled(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The target of every EventBridge Scheduler schedule: a schedule, an interval task or a task's timer."""
    return get_functions().scheduled.handle(event)


@app.schedule(Rate(1, unit=Rate.HOURS), name="node_discover_job")
def node_discover_job(event: Any) -> dict[str, Any]:
    """The MySensors discover broadcast to every enabled gateway (unless the settings turn it off)."""
    return {"gateways": get_functions().jobs.run("node_discover")}


@app.schedule(Cron(5, 0, "*", "*", "?", "*"), name="sun_job")
def sun_job(event: Any) -> dict[str, Any]:
    """Daily: sunrise and sunset schedules re-armed from the configured location."""
    return {"rearmed": get_functions().jobs.run("sun")}


# --------------------------------------------------------------------------------------------- websocket API

app.experimental_feature_flags.update(["WEBSOCKETS"])


@app.on_ws_connect(name="websocket_connect")
def websocket_connect(event: Any) -> dict[str, Any]:
    """``$connect``: the token (``?access_token=``, cookie or header) must name a principal; 401 refuses."""
    from chalicelib.config import get_websocket
    from chalicelib.websocket import handle_connect_event

    return handle_connect_event(get_websocket(), event.to_dict())


@app.on_ws_message(name="websocket_message")
def websocket_message(event: Any) -> dict[str, Any]:
    """subscribe / unsubscribe / ping; answers go back through ``post_to_connection``."""
    from chalicelib.config import get_websocket
    from chalicelib.websocket import handle_message_event

    return handle_message_event(get_websocket(), event.to_dict())


@app.on_ws_disconnect(name="websocket_disconnect")
def websocket_disconnect(event: Any) -> dict[str, Any]:
    from chalicelib.config import get_websocket
    from chalicelib.websocket import handle_disconnect_event

    return handle_disconnect_event(get_websocket(), event.to_dict())


@app.lambda_function(name="websocket_notify")
def websocket_notify(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Every domain event on the bus (rule → SQS queue in infra/, one notify a batch; or one EventBridge event) →
    the websocket clients subscribed to it; gone ones removed."""
    from chalicelib import bus_consumers
    from chalicelib.config import get_websocket

    return bus_consumers.websocket_notify(get_websocket(), event, context)


tune_gc()  # a warm Lambda keeps this process: start-up's objects out of the collector's way
