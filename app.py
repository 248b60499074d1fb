"""The Chalice app: routes and functions that translate a trigger into a call of the API or the core.

No business rule lives here. Every REST operation comes from ``chalicelib.api.routes.ROUTES`` (the same table
the OpenAPI document is generated from); adapters come from the composition root, ``chalicelib.config``.
"""

from __future__ import annotations

from typing import Any

from chalice import Chalice, Rate

from chalicelib.api import view_for
from chalicelib.api.observability import http_middleware
from chalicelib.api.routes import ROUTES, not_allowed_routes
from chalicelib.api.web import method_not_allowed
from chalicelib.automation_functions import NodeStateJob, get_forward_function
from chalicelib.config import get_ingest, get_services

app = Chalice(app_name="mycontroller")
app.register_middleware(http_middleware, "http")

AUTHORIZER: Any = None
"""Issue 6 sets the authorizer here; it then guards every route that is not ``public``."""
CORS = True
"""Any origin, as the reference allows (the dashboard may be served from another origin than the API)."""

for _route in ROUTES:
    app.route(_route.path, methods=[_route.method], name=_route.name, cors=CORS,
              authorizer=None if _route.public else AUTHORIZER)(view_for(_route, app))

for _path, _others, _name, _allowed in not_allowed_routes():
    app.route(_path, methods=_others, name=_name, cors=CORS)(method_not_allowed(_path, _allowed))


@app.lambda_function(name="ingest")
def ingest(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The SQS-fed ingest function (the event source mapping, with ReportBatchItemFailures, is in infra/)."""
    return get_ingest().handle(event, context)


@app.lambda_function(name="forward_payload")
def forward_payload(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """EventBridge ``field.updated`` events (rule in infra/) → downlinks to the mappings' destination fields."""
    plan = get_forward_function().handle(event.get("detail") or {})
    return {"sent": len(plan.downlinks), "failed": [f.mapping_id for f in plan.failures]}


@app.schedule(Rate(5, unit=Rate.MINUTES), name="node_state_job")
def node_state_job(event: Any) -> dict[str, Any]:
    """Nodes silent past their inactive duration (label ``inactive_duration``, default 15 min) go down."""
    services = get_services()
    return {"down": [record["id"] for record in NodeStateJob(services.repository, services.bus).run()]}
