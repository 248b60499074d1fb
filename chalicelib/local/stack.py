"""The local stack: the cloud functions on one machine, with embedded defaults. ``make run`` starts it.

* REST API on http://127.0.0.1:8000: the Chalice app's own routes, served by Chalice's local server.
* Ingest: an in-process queue with SQS semantics feeding the very same ingest function Lambda runs.
* Memory repository dumped under ``./.mycontroller/``, embedded (SQLite) metrics, in-process bus, in-process
  downlinks to the gateways.
* Gateways: a simulated MySensors gateway, or those of ``--edge-config edge.yaml`` (the edge agent's plugins).

Ctrl-C (or SIGTERM) stops it cleanly: gateways stop, the queue drains, state is dumped. The next start loads it.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger("mycontroller.local")
SYSTEM_JOB_INTERVAL_S = 60.0

SIMULATOR: list[dict[str, Any]] = [{
    "id": "sim",
    "description": "Simulated MySensors gateway",
    "provider": {"type": "mysensors_v2", "protocol": {"type": "simulator", "nodes": 3, "interval": "2s"},
                 "timezone": "UTC", "unitSystem": "metric"},
    "labels": {"location": "simulation"},
}]


def load_gateways(edge_config: Path | None) -> list[dict[str, Any]]:
    if edge_config is None:
        return SIMULATOR
    import yaml

    data = yaml.safe_load(edge_config.read_text(encoding="utf-8")) or {}
    gateways = data.get("gateways") if isinstance(data, dict) else None
    if not isinstance(gateways, list) or not all(isinstance(g, dict) and g.get("id") for g in gateways):
        raise SystemExit(f"{edge_config}: expected a 'gateways' list of objects with an 'id'")
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
    """Gateways from the configuration become gateway resources (unless the user already has them)."""
    from ..core.model import Gateway, Kind

    secret_keys = {"password", "token", "secret", "key"}
    for config in gateways:
        if repository.get(Kind.GATEWAY, str(config["id"])) is not None:
            continue
        provider = dict(config.get("provider") or {})
        protocol = {k: ("***" if k.lower() in secret_keys else v)
                    for k, v in dict(provider.get("protocol") or {}).items()}
        record = Gateway(id=str(config["id"]), description=str(config.get("description", "")),
                         provider={**provider, "protocol": protocol},
                         labels=config.get("labels") or {}).record()
        repository.put(Kind.GATEWAY, record)


class LocalStack:
    """The whole local stack in this process: services, ingest queue, gateways and the HTTP server."""

    def __init__(self, host: str, port: int, data_dir: Path, gateways: list[dict[str, Any]]) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        _local_environment(data_dir)
        from chalice.config import Config
        from chalice.local import create_local_server

        from app import app, ingest

        from .. import config
        from ..adapters.bus_local import LocalEventBus
        from ..adapters.downlink_local import LocalDownlink
        from .gateways import LocalGatewayHost
        from .ingest_queue import LocalIngestQueue

        self.config = config
        settings = config.Settings.from_env()
        self.downlink = LocalDownlink()
        self.services = config.Services(
            settings=settings,
            repository=config.build_repository(settings),
            metrics=config.build_metrics(settings),
            bus=LocalEventBus("thread"),
            downlink=self.downlink,
        )
        config.set_services(self.services)
        from ..automation_functions import NodeStateJob, get_forward_function, reset_forward_function

        reset_forward_function()
        get_forward_function().subscribe(self.services.bus)
        self.node_state_job = NodeStateJob(self.services.repository, self.services.bus)
        self._jobs_stop = threading.Event()
        self._jobs_thread = threading.Thread(target=self._run_jobs, name="system-jobs", daemon=True)
        self.queue = LocalIngestQueue(ingest, dead_letter_path=data_dir / "ingest-dead-letters.jsonl")
        _register_gateways(self.services.repository, gateways)
        self.gateways = LocalGatewayHost(gateways, self.queue.send, self.downlink, data_dir)
        self.services.extras.update(ingest_queue=self.queue, gateways=self.gateways)
        self.server = create_local_server(app, Config.create(app_name="mycontroller", chalice_stage="local"),
                                          host, port)
        self.url = f"http://{host}:{port}"
        self._server_thread = threading.Thread(target=self.server.serve_forever, name="api", daemon=True)

    def start(self) -> None:
        self.queue.start()
        self._server_thread.start()
        self.gateways.start()
        self._jobs_thread.start()

    def _run_jobs(self) -> None:
        """The system jobs Lambda runs on a schedule in AWS (node state: every minute here)."""
        while not self._jobs_stop.wait(SYSTEM_JOB_INTERVAL_S):
            try:
                self.node_state_job.run()
            except Exception:
                log.exception("node state job failed")

    def stop(self) -> None:
        self._jobs_stop.set()
        self.gateways.stop()
        self.queue.stop(timeout=15)
        self.server.shutdown()
        self.services.close()
        self.config.reset_services()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chalicelib.local", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("MC_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("MC_PORT", "8000")))
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("DATA_DIR", ".mycontroller")))
    parser.add_argument("--edge-config", type=Path, default=None,
                        help="run the gateways of this edge configuration instead of the simulator")
    parser.add_argument("--no-gateways", action="store_true", help="start without any gateway")
    args = parser.parse_args(argv)

    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    gateways = [] if args.no_gateways else load_gateways(args.edge_config)
    stack = LocalStack(args.host, args.port, args.data_dir, gateways)
    stack.start()
    log.info("MyController local stack on %s (data in %s)", stack.url, args.data_dir)

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
