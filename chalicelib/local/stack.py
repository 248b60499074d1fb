"""The local stack: the cloud functions on one machine, with embedded defaults. ``make run`` starts it.

* One HTTP front on http://127.0.0.1:8000 (``front.py``, uvicorn): the Chalice app's routes at ``/api/*``, the
  websocket at ``/api/ws`` (fed by the bus), the console (``frontend/dist``) everywhere else; with timeouts, a
  connection cap and body limits, so that no client can make it hold memory or threads.
* Ingest: an in-process queue with SQS semantics feeding the very same ingest function Lambda runs.
* Resources in SQLite under ``./.mycontroller/`` (``repository.sqlite3``: each API write committed before its
  answer, each ingest batch one transaction, so ``kill -9`` or a power cut loses nothing answered), embedded
  (SQLite) metrics, in-process bus, in-process downlinks to the gateways.
* Gateways: a simulated MySensors gateway, or those of ``--edge-config edge.yaml`` (the edge agent's plugins).
* Users: on the first start (no user stored) ``admin`` is created with ``MC_ADMIN_PASSWORD``, or with a generated
  password printed once to the console; the JWT signing key is ``<DATA_DIR>/jwt-secret``.

Ctrl-C (or SIGTERM) stops it cleanly: gateways stop, the queue drains, stores close. The next start loads them.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from chalicelib.local.errors import LocalStackError

log = logging.getLogger("mycontroller.local")
SYSTEM_JOB_INTERVAL_S = 60.0
SYSTEM_JOB_TICK_S = 5.0

SIMULATOR: list[dict[str, Any]] = [{
    "id": "sim",
    "description": "Simulated MySensors gateway",
    "provider": {"type": "mysensors_v2", "protocol": {"type": "simulator", "nodes": 3, "interval": "2s"},
                 "timezone": "UTC", "unitSystem": "metric"},
    "labels": {"location": "simulation"},
}]


class GatewayConfigProblem(LocalStackError, ValueError):
    """``--edge-config`` cannot be used (a setting of the local stack's start); one line per problem."""


def load_gateways(edge_config: Path | None) -> list[dict[str, Any]]:
    """The gateways of ``--edge-config``, checked as the edge agent checks them (its ``edge`` and ``uplink`` are
    the local stack's own); ``GatewayConfigProblem`` names every mistake, one line each."""
    if edge_config is None:
        return SIMULATOR
    import yaml

    from edge.config import EdgeConfigError, parse_config

    try:
        data = yaml.safe_load(edge_config.read_text(encoding="utf-8")) or {}
    except OSError as error:
        raise GatewayConfigProblem(f"cannot read {edge_config}: {error.strerror or error}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        raise GatewayConfigProblem(f"{edge_config}: not valid YAML{where}: {problem}") from None
    gateways = data.get("gateways") if isinstance(data, dict) else None
    if not isinstance(gateways, list) or not all(isinstance(g, dict) and g.get("id") for g in gateways):
        raise GatewayConfigProblem(f"{edge_config}: expected a 'gateways' list of objects with an 'id'")
    try:  # as the local stack's agent will read them (a gateway its plugin refuses only stops that gateway)
        parse_config({"edge": {"id": "local"}, "uplink": {"type": "inprocess"}, "gateways": gateways},
                     source=str(edge_config))
    except EdgeConfigError as error:
        raise GatewayConfigProblem(str(error)) from None
    return gateways


def _local_environment(data_dir: Path) -> None:
    """Embedded defaults, unless the user chose otherwise in the environment."""
    os.environ.setdefault("DATA_DIR", str(data_dir))
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "mycontroller-local")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


def _register_gateways(repository: Any, gateways: list[dict[str, Any]]) -> None:
    """Gateways from the configuration become gateway resources of the local edge (``edgeId: local``, run from
    its file: ``cloudConfig: false``), unless the user already has them; one without an edge is claimed for it,
    one another edge owns is left alone (its messages from here are refused: ``core/identity.py``)."""
    from ..core.identity import LOCAL_EDGE, claimed, owner_of
    from ..core.model import Gateway, Kind

    secret_keys = {"password", "token", "secret", "key"}
    for config in gateways:
        stored = repository.get(Kind.GATEWAY, str(config["id"]))
        if stored is not None:
            owner = owner_of(stored)
            if owner is None:
                repository.put(Kind.GATEWAY, claimed(stored, LOCAL_EDGE))
            elif owner != LOCAL_EDGE:
                log.warning("gateway %s belongs to edge %s: this stack's messages for it will be refused; give it "
                            "another id or set its edgeId to %s", config["id"], owner, LOCAL_EDGE)
            continue
        provider = dict(config.get("provider") or {})
        protocol = {k: ("***" if k.lower() in secret_keys else v)
                    for k, v in dict(provider.get("protocol") or {}).items()}
        record = Gateway(id=str(config["id"]), description=str(config.get("description", "")),
                         provider={**provider, "protocol": protocol}, labels=config.get("labels") or {},
                         edge_id=LOCAL_EDGE, cloud_config=False).record()
        repository.put(Kind.GATEWAY, record)


class LocalStack:
    """The whole local stack in this process: the container, the ingest queue, the gateways and the HTTP front.

    What EventBridge rules, event source mappings and schedules do in AWS is wired here: the bus's subscribers
    (forward payload, tasks, websocket notify), the ingest queue feeding the ingest function, the handler queue and
    the schedule timer started, the system jobs ticking."""

    def __init__(self, host: str, port: int, data_dir: Path, gateways: list[dict[str, Any]]) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        _local_environment(data_dir)
        from ..adapters.bus_local import LocalEventBus
        from ..bootstrap import Container
        from ..services.websocket import NOTIFY_PATTERN
        from ..settings import Settings
        from .front import LocalFront
        from .gateways import LocalGatewayHost, local_shadow
        from .ingest_queue import LocalIngestQueue

        # the one composition root: every adapter, service and function of this process
        self.container = container = Container(Settings.from_env(), bus=LocalEventBus("thread"))
        bus = container.bus
        container.forward.subscribe(bus)
        container.tasks.subscribe(bus)
        bus.subscribe("websocket-notify", NOTIFY_PATTERN, container.websocket.on_event)
        self.handler_queue = container.handler_queue
        self._jobs_stop = threading.Event()
        self._jobs_thread = threading.Thread(target=self._run_jobs, name="system-jobs", daemon=True)
        self.queue = LocalIngestQueue(container.ingest.handle, dead_letter_path=data_dir / "ingest-dead-letters.jsonl")
        _register_gateways(container.repository, gateways)
        container.auth.ensure_admin()  # no user yet: admin, with MC_ADMIN_PASSWORD or a password printed once
        shadow = local_shadow(container)  # gateway resources with edgeId "local" run in the agent below
        self.gateways = LocalGatewayHost(gateways, self.queue.send, container.downlink, data_dir, shadow=shadow)
        from ..adapters.sleeping_queue_agent import AgentSleepingQueues  # the agent's queues, for the API

        agent = self.gateways.agent
        container.sleeping_queues.attach(AgentSleepingQueues(lambda: agent.gateways))
        # one HTTP front: /api/ws (websocket fed by the bus), /api/* (the Chalice app), the dashboard elsewhere
        self.server = LocalFront(container, host, port)
        self.url = f"http://{host}:{self.server.port}"
        self._server_thread = threading.Thread(target=self.server.serve_forever, name="api", daemon=True)

    def start(self) -> None:
        from ..adapters.handler_queue_local import LocalHandlerQueue

        if isinstance(self.handler_queue, LocalHandlerQueue):
            self.handler_queue.start()
        self.queue.start()
        self._server_thread.start()
        self.gateways.start()
        self._start_timer()
        self._jobs_thread.start()

    def _start_timer(self) -> None:
        """The local registry is in memory: put every enabled schedule and interval task again, then fire them."""
        from ..adapters.schedules_local import LocalScheduleRegistry
        from ..functions.schedules import reload_registry

        container = self.container
        try:
            log.info("schedule registry reloaded: %s", reload_registry(container.automation))
        except Exception:
            log.exception("schedule registry reload failed")
        if isinstance(container.schedules, LocalScheduleRegistry):
            container.schedules.start(container.scheduled.handle)

    def _run_jobs(self) -> None:
        """The system jobs Lambda runs on a schedule in AWS: node state, node discovery and the daily sun re-arm,
        each when due by the system settings (``SystemJobs.tick``)."""
        while not self._jobs_stop.wait(SYSTEM_JOB_TICK_S):
            try:
                self.container.jobs.tick()
            except Exception:
                log.exception("system jobs failed")

    def stop(self) -> None:
        self._jobs_stop.set()
        stop_timer = getattr(self.container.schedules, "stop", None)
        if callable(stop_timer):
            stop_timer()
        self.gateways.stop()
        self.queue.stop(timeout=15)
        from ..adapters.handler_queue_local import LocalHandlerQueue

        if isinstance(self.handler_queue, LocalHandlerQueue):
            self.handler_queue.stop(timeout=15)  # after ingest: the tasks it triggered have queued their runs
        self.server.shutdown()
        self.container.close()


_RECORD_FIELDS = (frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None)))
                  | {"message", "asctime", "color_message"})  # uvicorn's own copy of its message, coloured


class TextWithExtras(logging.Formatter):
    """A log line as text, with the record's ``extra`` fields after it (``state=up message=…``; secret-looking keys
    masked): the edge and the functions say what happened in those fields, "gateway state" alone says little."""

    def format(self, record: logging.LogRecord) -> str:
        from edge.config import redact

        text = super().format(record)
        extras = redact({key: value for key, value in record.__dict__.items()
                         if key not in _RECORD_FIELDS and not key.startswith("_")})
        return text + "".join(f" {key}={value}" for key, value in extras.items()) if extras else text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chalicelib.local", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("MC_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("MC_PORT", "8000")))
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("DATA_DIR", ".mycontroller")))
    parser.add_argument("--edge-config", type=Path, default=None,
                        help="run the gateways of this edge configuration instead of the simulator")
    parser.add_argument("--no-gateways", action="store_true", help="start without any gateway")
    args = parser.parse_args(argv)

    handler = logging.StreamHandler()
    handler.setFormatter(TextWithExtras("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO").upper(), handlers=[handler])
    try:
        gateways = [] if args.no_gateways else load_gateways(args.edge_config)
    except GatewayConfigProblem as error:
        for line in str(error).splitlines():
            print(f"mycontroller: {line.strip()}", file=sys.stderr)
        return 2
    stack = LocalStack(args.host, args.port, args.data_dir, gateways)
    stack.start()
    from chalicelib.runtime import tune_gc

    tune_gc()
    # said on stdout, as the first password is: the logs of this process start at WARNING (POWERTOOLS_LOG_LEVEL)
    print(f"MyController: open {stack.url}/ (data in {args.data_dir}; Ctrl-C stops it)", flush=True)

    stopping = threading.Event()

    def stop(signum: int, _frame: Any) -> None:
        log.info("stopping (%s)", signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    stopping.wait()
    stack.stop()
    log.info("stopped; state saved in %s", args.data_dir)
    return 0
