"""``python -m edge``: run the agent, show its status, or check a config.

    python -m edge --config edge.yaml                  run (SIGTERM/SIGINT stop it cleanly)
    python -m edge status --config edge.yaml [--json]  what the running agent last reported
    python -m edge check --config edge.yaml            what the agent would refuse (exit 2), or the config with
                                                       secrets masked (exit 0)
    python -m edge pair-hue --host <bridge> --config edge.yaml   press the bridge's link button: its key is kept

Logs are JSON, one line per event on stderr (journald keeps them), never with a secret in them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib
import json
import logging
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .config import EdgeConfig, EdgeConfigError, load_config, redact

EXIT_CONFIG = 2
EXIT_NO_STATUS = 3

_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the record's ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(redact(entry), default=str, separators=(",", ":"))


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m edge", description="MyController edge agent")
    parser.add_argument("command", nargs="?", default="run", choices=["run", "status", "check", "pair-hue"])
    parser.add_argument("--config", "-c", default="edge.yaml", help="the agent's YAML config (default edge.yaml)")
    parser.add_argument("--json", action="store_true", help="status: print the raw JSON")
    parser.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                        help="import MODULE before starting, so that the gateway plugins it registers are known")
    parser.add_argument("--host", help="pair-hue: the Hue bridge's address (host or host:port)")
    parser.add_argument("--gateway", help="pair-hue: the id of the philips_hue gateway to write the key into")
    parser.add_argument("--timeout", type=float, default=60.0, help="pair-hue: seconds to wait for the link button")
    parser.add_argument("--print", dest="print_key", action="store_true",
                        help="pair-hue: print the key instead of writing it into the config")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "pair-hue":  # before the config is checked: it may not have the key yet
        from .gateways.hue.pairing import pair_command

        return pair_command(args)
    try:
        config = load_config(args.config)
    except EdgeConfigError as error:
        print(f"edge: {error}", file=sys.stderr)
        return EXIT_CONFIG
    if args.command == "status":
        return show_status(config, as_json=args.json)
    if args.command == "check":
        return check_command(config, args.config, args.plugin)
    setup_logging(config.edge.log_level)
    return run(config, args.plugin)


def check_command(config: EdgeConfig, path: str, plugins: list[str]) -> int:
    """What the agent would refuse, one line each (exit 2), or the config with secrets masked (exit 0)."""
    from .preflight import check

    for module in plugins:
        importlib.import_module(module)
    fatal, gateways = check(config)
    if not fatal and not gateways:
        print(json.dumps(config.redacted(), indent=2))
        return 0
    print(f"edge: {path}: {len(fatal) + len(gateways)} problem(s)", file=sys.stderr)
    for line in fatal + gateways:
        print(f"  {line}", file=sys.stderr)
    if not fatal:
        print("  (the agent would run, without the gateways above)", file=sys.stderr)
    return EXIT_CONFIG


def run(config: EdgeConfig, plugins: list[str]) -> int:
    import edge.gateways  # noqa: F401 - registers the built-in plugins

    from .agent import EdgeAgent
    from .uplink import UplinkError

    log = logging.getLogger("edge")
    for module in plugins:
        importlib.import_module(module)
    try:
        agent = EdgeAgent(config)
    except (ValueError, OSError) as error:  # the config (EdgeConfigError), or a data directory it cannot use
        text = str(error) if isinstance(error, ValueError) else f"{error.strerror or error}: {error.filename}"
        for line in text.splitlines():
            log.error("cannot start: %s", line, extra={"error": line})
            print(f"edge: cannot start: {line}", file=sys.stderr)
        return EXIT_CONFIG
    # Start-up's objects (modules, the config's models) live as long as the process: the collector need not scan
    # them again every few seconds, and a first generation of 10,000 collects a few times a second at 500 msg/s.
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)

    async def main_loop() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        # The agent's blocking calls (an fsync before a publish, the status file, opening a port) are few and short:
        # two threads, not the default six, each with its own stack and malloc arena.
        loop.set_default_executor(ThreadPoolExecutor(max_workers=2, thread_name_prefix="edge-io"))
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(signum, stop.set)
        await agent.run(stop)

    try:
        asyncio.run(main_loop())
    except UplinkError as error:  # cannot even begin to connect (a certificate file missing…)
        log.error("cannot start", extra={"error": str(error)})
        print(f"edge: {error}", file=sys.stderr)
        return EXIT_CONFIG
    return 0


def show_status(config: EdgeConfig, as_json: bool = False) -> int:
    path = config.status_path
    try:
        status = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        print(f"edge: no status at {path}: the agent has not run with this config yet", file=sys.stderr)
        return EXIT_NO_STATUS
    except (OSError, ValueError) as error:
        print(f"edge: cannot read {path}: {error}", file=sys.stderr)
        return EXIT_NO_STATUS
    if as_json:
        print(json.dumps(status, indent=2))
    else:
        print(format_status(status, path))
    return 0


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def format_status(status: dict[str, Any], path: Path | None = None) -> str:
    """The status file as a person reads it: is it running, is it connected, is anything piling up or lost."""
    age = time.time() - float(status.get("updated_epoch") or 0)
    interval = float(status.get("status_interval_s") or 5)
    if status.get("stopped_at"):
        running = f"stopped at {status['stopped_at']}"
    else:
        running = "running" if age <= 3 * interval + 2 else f"NOT RUNNING? (last update {_age(age)} ago)"
    uplink = status.get("uplink", {})
    spool = status.get("spool", {})
    sender = status.get("sender", {})
    where = f"{uplink.get('host')}:{uplink.get('port')}" if uplink.get("host") else uplink.get("up_topic", "")
    lines = [
        f"edge {status.get('edge_id')}  version {status.get('version') or '-'}  pid {status.get('pid')}  {running}  "
        f"started {status.get('started_at')}",
        f"uplink   {uplink.get('type')} {where}  {'connected' if uplink.get('connected') else 'DISCONNECTED'}"
        + (f"  last error: {uplink.get('last_error')}" if uplink.get("last_error") else ""),
        f"sender   {sender.get('publishes', 0)} publishes, {sender.get('envelopes', 0)} envelopes "
        f"({sender.get('recent_envelopes_per_publish') or '-'} per publish recently), "
        f"{sender.get('in_flight', 0)} in flight, {sender.get('retries', 0)} retries",
        f"spool    {spool.get('depth', 0)} waiting ({spool.get('bytes', 0) / 1e6:.1f} MB of "
        f"{spool.get('max_bytes', 0) / 1e6:.0f} MB, {spool.get('commands', 0)} commands), "
        f"oldest {_age(spool.get('oldest_age_s'))}",
        f"         dropped: {spool.get('dropped_evicted_telemetry', 0)} evicted telemetry, "
        f"{spool.get('dropped_refused_telemetry', 0)} refused telemetry, "
        f"{spool.get('rejected_oversize', 0)} oversize; {spool.get('commands_over_bound', 0)} commands over bound",
    ]
    cloud = status.get("cloud_config")
    if isinstance(cloud, dict):
        rejected = [gw for gw, outcome in (cloud.get("applied") or {}).items()
                    if isinstance(outcome, dict) and outcome.get("status") == "rejected"]
        lines.append(f"cloud    shadow {cloud.get('shadow')} of {cloud.get('thing')}: config version "
                     f"{cloud.get('config_version') or '-'} applied {cloud.get('applied_at') or 'never'}"
                     + ("  (report pending)" if cloud.get("report_pending") else "")
                     + (f"  rejected: {', '.join(rejected)}" if rejected else "")
                     + (f"  last error: {cloud['last_error']}" if cloud.get("last_error") else ""))
    lines.append("gateways")
    for gateway_id, gateway in (status.get("gateways") or {}).items():
        state = gateway.get("state") or {}
        if not gateway.get("enabled", True):
            lines.append(f"  {gateway_id:<20} {gateway.get('type', ''):<24} disabled")
            continue
        detail = "; ".join(text for text in (state.get("message") or gateway.get("error") or "",
                                             f"SILENT: {gateway['silent']}" if gateway.get("silent") else "")
                           if text)
        lines.append(f"  {gateway_id:<20} {gateway.get('type', ''):<24} {state.get('status', '?'):<11} "
                     f"emitted {gateway.get('emitted', 0)}, dropped {gateway.get('dropped', 0)}, "
                     f"downlinks {gateway.get('downlinks', 0)}" + (f"  ({detail})" if detail else ""))
    if path is not None:
        lines.append(f"(from {path})")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
