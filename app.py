"""The Chalice app: each Lambda function named for Chalice, its trigger handed to its entry in ``LambdaEntries``.

No business rule lives here. ``container`` is this process's composition root (``chalicelib.bootstrap``), each part
built from the environment on first use; the REST routes come from ``chalicelib.api.build_api`` (the same table the
OpenAPI document is generated from). The triggers themselves (queues, rules, schedules) are in ``infra/``.
"""

from __future__ import annotations

from typing import Any

from chalice import Cron, Rate

from chalicelib.api import build_api
from chalicelib.bootstrap import Container
from chalicelib.functions.entries import LambdaEntries
from chalicelib.runtime import tune_gc

container = Container.from_env()
entries = LambdaEntries(container)
app = build_api(container)


@app.lambda_function(name="ingest")
def ingest(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return entries.ingest(event, context)


@app.lambda_function(name="forward_payload")
def forward_payload(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return entries.forward_payload(event, context)


@app.lambda_function(name="handlers")
def handlers(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return entries.handlers(event, context)


@app.lambda_function(name="shadow_reported")
def shadow_reported(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return entries.shadow_reported(event, context)


@app.lambda_function(name="tasks")
def tasks(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return entries.tasks(event, context)


@app.lambda_function(name="scheduled")
def scheduled(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return entries.scheduled(event, context)


@app.lambda_function(name="websocket_notify")
def websocket_notify(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return entries.websocket_notify(event, context)


@app.schedule(Rate(5, unit=Rate.MINUTES), name="node_state_job")
def node_state_job(event: Any) -> dict[str, Any]:
    return entries.node_state_job()


@app.schedule(Rate(1, unit=Rate.HOURS), name="node_discover_job")
def node_discover_job(event: Any) -> dict[str, Any]:
    return entries.node_discover_job()


@app.schedule(Cron(5, 0, "*", "*", "?", "*"), name="sun_job")
def sun_job(event: Any) -> dict[str, Any]:
    return entries.sun_job()


# --------------------------------------------------------------------------------------------- websocket API

app.experimental_feature_flags.update(["WEBSOCKETS"])


@app.on_ws_connect(name="websocket_connect")
def websocket_connect(event: Any) -> dict[str, Any]:
    return entries.websocket_connect(event.to_dict())


@app.on_ws_message(name="websocket_message")
def websocket_message(event: Any) -> dict[str, Any]:
    return entries.websocket_message(event.to_dict())


@app.on_ws_disconnect(name="websocket_disconnect")
def websocket_disconnect(event: Any) -> dict[str, Any]:
    return entries.websocket_disconnect(event.to_dict())


tune_gc()  # a warm Lambda keeps this process: start-up's objects out of the collector's way
