"""Every Lambda function's entry, over one container: what ``app.py``'s decorated functions call, one to one.

Keeping the bodies here (rather than in ``app.py``) lets tests and the local stack run the very entry Lambda runs
over a container of their own; ``app.py`` only names the functions for Chalice and hands each trigger over.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from . import bus_consumers
from . import websocket as ws

if TYPE_CHECKING:  # for the annotations only: a cold start imports what its function touches
    from ..services.gateway_sync import GatewaySync
    from ..services.websocket import WebsocketService
    from .forward import ForwardPayloadFunction
    from .handlers import HandlerFunction
    from .ingest import Ingest
    from .jobs import SystemJobs
    from .scheduled import ScheduledFunction
    from .tasks import TaskFunction

Event = dict[str, Any]


class Parts(Protocol):
    """What the entries use of a container (``bootstrap.Container``): each part built when first read."""

    @property
    def ingest(self) -> Ingest: ...
    @property
    def forward(self) -> ForwardPayloadFunction: ...
    @property
    def tasks(self) -> TaskFunction: ...
    @property
    def websocket(self) -> WebsocketService: ...
    @property
    def handler_function(self) -> HandlerFunction: ...
    @property
    def gateway_sync(self) -> GatewaySync: ...
    @property
    def scheduled(self) -> ScheduledFunction: ...
    @property
    def jobs(self) -> SystemJobs: ...


class LambdaEntries:
    def __init__(self, container: Parts) -> None:
        self.container = container

    def ingest(self, event: Event, context: Any = None) -> Event:
        """SQS batches of edge publishes (the ingest queue's event source, ReportBatchItemFailures)."""
        return self.container.ingest.handle(event, context)

    def forward_payload(self, event: Event, context: Any = None) -> Event:
        """``field.updated`` events (rule → SQS queue, batches with partial failures) → downlinks to the mappings'
        destination fields."""
        return bus_consumers.forward_payload(self.container.forward, event, context)

    def tasks(self, event: Event, context: Any = None) -> Event:
        """Every domain event on the bus (rule → SQS queue, batches in order with partial failures) → the tasks it
        matches, evaluated."""
        return bus_consumers.tasks(self.container.tasks, event, context)

    def websocket_notify(self, event: Event, context: Any = None) -> Event:
        """Every domain event on the bus (rule → SQS queue, one notify a batch) → the websocket clients subscribed
        to it; gone ones removed."""
        return bus_consumers.websocket_notify(self.container.websocket, event, context)

    def handlers(self, event: Event, context: Any = None) -> Event:
        """The SQS-fed handler function: runs each queued handler request once per trigger."""
        return self.container.handler_function.handle(event, context)

    def shadow_reported(self, event: Event, context: Any = None) -> Event:
        """An edge's shadow ``update/documents`` (the IoT rule adds ``thing``) → its gateway resources."""
        changed = self.container.gateway_sync.on_documents(event.get("thing"), event)
        return {"updated": [record["id"] for record in changed]}

    def scheduled(self, event: Event, context: Any = None) -> Event:
        """The target of every EventBridge Scheduler schedule: a schedule, an interval task or a task's timer."""
        return self.container.scheduled.handle(event)

    def node_state_job(self) -> Event:
        """Nodes silent past their inactive duration (label ``inactive_duration``, else the settings') go down."""
        return {"down": self.container.jobs.run("node_state")}

    def node_discover_job(self) -> Event:
        """The MySensors discover broadcast to every enabled gateway (unless the settings turn it off)."""
        return {"gateways": self.container.jobs.run("node_discover")}

    def sun_job(self) -> Event:
        """Daily: sunrise and sunset schedules re-armed from the configured location."""
        return {"rearmed": self.container.jobs.run("sun")}

    def websocket_connect(self, event: Event) -> Event:
        """``$connect``: the token (``?access_token=``, cookie or header) must name a principal; 401 refuses."""
        return ws.handle_connect_event(self.container.websocket, event)

    def websocket_message(self, event: Event) -> Event:
        """subscribe / unsubscribe / ping; answers go back through ``post_to_connection``."""
        return ws.handle_message_event(self.container.websocket, event)

    def websocket_disconnect(self, event: Event) -> Event:
        return ws.handle_disconnect_event(self.container.websocket, event)
