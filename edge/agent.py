"""The edge agent: gateways feed the spool, one sender drains it into the uplink, downlinks go back to devices.

Everything runs on one asyncio loop. Gateways call ``ctx.emit`` (synchronous, thread-safe), which numbers the
message and queues it for the spool; what the gateways emitted in one loop turn is committed in one transaction
when that turn ends, before the loop waits for more input or the sender reads the spool (from a plugin's own
thread, before ``emit`` returns; see ``spool.py``). The sender packs the oldest envelopes into publishes bounded
by ``max_publish_bytes`` and ``linger_ms`` (commands, requests and presentations do not wait for it:
``uplink/packing.py``), paces them under ``max_publishes_per_s``, keeps up to
``max_in_flight`` of them awaiting their PUBACK, and deletes envelopes from the spool only once their publish
is acknowledged, in spool order. A failed publish is retried from the spool with backoff, so an outage of
the network, of the broker or of the agent itself (SIGKILL) costs nothing but duplicates on the wire, which
the cloud drops by message id.

Order: publishes in flight share one MQTT connection, which delivers them in order and, on a disconnect,
re-sends the unacknowledged ones first, in order. Only a broker that refuses one publish (a PUBACK error
code) and accepts the next could make a retried envelope arrive after a newer one; the cloud applies a field
update only if its edge timestamp (then sequence) is newer, so that costs nothing either. Uplinks that cannot
promise this (in-process) get one publish at a time.

Every ``status_interval_s`` the agent writes ``<data_dir>/status.json`` (atomically): what
``python -m edge status`` shows.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mycontroller_protocol.envelope import Downlink, EnvelopeError, decode_downlinks, down_topic, encode_publish
from mycontroller_protocol.shadow import config_hash
from mycontroller_protocol.version import VERSION

from .config import EdgeConfig, EdgeConfigError, GatewaySection, format_errors, redact
from .gateways.base import Gateway, GatewayConfigError
from .gateways.util import parse_duration
from .preflight import agent_problems, build_plugin, gateway_where
from .schema import SectionError
from .shadow import Decision, ShadowClient
from .spool import Spool, SpoolRow, publish_body
from .uplink import Uplink, UplinkError, build_uplink
from .uplink.inprocess import PublishHandler
from .uplink.packing import is_urgent, publish_wait

log = logging.getLogger("edge.agent")

STATE_PROVIDER = "edge"
"""The provider of the envelopes that report a gateway's state (decoded by the cloud's edge-state provider)."""
_MIN_ENVELOPE_BYTES = 40
_RETRY_FIRST_S = 0.25
_RETRY_CAP_S = 30.0
_IDLE_WAKE_S = 0.25
"""How often the sender looks again while it cannot send (offline, window full) or lingers."""
_IDLE_SLEEP_S = 30.0
"""How long the sender sleeps with nothing to send: a gateway's message or a finished publish wakes it anyway."""
_DRAIN_TIMEOUT_S = 5.0
_FLUSH_TIMEOUT_S = 2.0
_GATEWAY_RESTART_FIRST_S = 0.5
_GATEWAY_RESTART_CAP_S = 60.0
_SHADOW_POLL_S = 0.25
SILENT_AFTER_S = 60.0
"""A gateway up for this long without one device message says so in the status and the log (``silenceWarning``)."""
_NOT_RECEIVING = frozenset({"system_monitor", "system_monitoring"})
"""Providers that make their messages themselves (on a timer): never silent, unless ``silenceWarning`` says so."""
_PUBLISH_OVERHEAD = len(encode_publish([]))
"""The bytes of an empty publish (``{"v":1,"e":[]}``); each further envelope adds its size and a comma."""


class _Context:
    """What one gateway sees of the agent (``edge.gateways.base.GatewayContext``)."""

    def __init__(self, agent: EdgeAgent, gateway_id: str, provider: str, data_dir: Path) -> None:
        self.agent = agent
        self.gateway_id = gateway_id
        self.provider = provider
        self.data_dir = data_dir
        self.state: dict[str, Any] = {"status": "unavailable", "message": "", "since": None}
        self.emitted = 0
        self.dropped = 0
        self.downlinks = 0
        self.downlink_errors = 0
        self.silent_after_s = SILENT_AFTER_S
        """A gateway up this long without a device message is reported silent (0: never)."""
        self.up_since: float | None = None
        """``time.monotonic()`` of the last transition to ``up``; None while not up."""
        self.emitted_at_up = 0
        self.silence_logged = False
        self._logger = logging.getLogger(f"edge.gateway.{gateway_id}")

    @property
    def logger(self) -> logging.Logger:
        return self._logger

    def emit(self, raw: str, topic: str | None = None, *, command: bool = False) -> None:
        agent = self.agent
        on_loop = threading.get_ident() == agent._loop_thread  # a plugin's own thread: written before returning
        if agent.spool.append(self.gateway_id, self.provider, raw, topic, command, defer=on_loop) is None:
            self.dropped += 1
            return
        self.emitted += 1
        if on_loop:
            agent.commit_soon()
        agent.wake(urgent=command)

    def silence(self) -> str:
        """What to say about a gateway that is up but has not had one device message since it came up (its topics
        or its baud rate may be wrong); '' when it has, or for less than ``silent_after_s``."""
        if self.up_since is None or not self.silent_after_s or self.emitted != self.emitted_at_up:
            return ""
        quiet = time.monotonic() - self.up_since
        if quiet < self.silent_after_s:
            return ""
        return f"nothing received in the {_duration(quiet)} since it connected"

    def announce_state(self) -> None:
        """Send the current state again (after the cloud showed something else for this gateway)."""
        status, message = self.state["status"], self.state["message"]
        if status in ("up", "down", "error"):
            self.state = {**self.state, "status": ""}
            self.set_state(status, message)

    def set_state(self, status: str, message: str = "") -> None:
        if self.state["status"] == status and self.state["message"] == message:
            return
        if status == "up" and self.state["status"] != "up":
            self.up_since, self.emitted_at_up, self.silence_logged = time.monotonic(), self.emitted, False
        elif status != "up":
            self.up_since = None
        self.state = {"status": status, "message": message, "since": _iso_now()}
        raw = json.dumps({"type": "gateway_state", "status": status, "message": message}, separators=(",", ":"))
        self.agent.spool.append(self.gateway_id, STATE_PROVIDER, raw, None, command=True)
        self.agent.wake(urgent=True)
        self._logger.info("gateway state", extra={"gateway": self.gateway_id, "status": status,
                                                  "detail": message})


@dataclass
class _Flight:
    """One publish awaiting its acknowledgement, with the spool rows it carries."""

    task: asyncio.Task[None]
    rows: list[SpoolRow]


@dataclass
class SenderStats:
    publishes: int = 0
    envelopes: int = 0
    bytes: int = 0
    retries: int = 0
    last_error: str = ""
    last_publish_at: str | None = None
    batch_sizes: collections.deque[int] = field(default_factory=lambda: collections.deque(maxlen=200))

    def as_dict(self, in_flight: int) -> dict[str, Any]:
        recent = list(self.batch_sizes)
        return {
            "publishes": self.publishes,
            "envelopes": self.envelopes,
            "bytes": self.bytes,
            "envelopes_per_publish": round(self.envelopes / self.publishes, 1) if self.publishes else None,
            "recent_envelopes_per_publish": round(sum(recent) / len(recent), 1) if recent else None,
            "in_flight": in_flight,
            "retries": self.retries,
            "last_error": self.last_error,
            "last_publish_at": self.last_publish_at,
        }


def _iso_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class EdgeAgent:
    """One agent process: its spool, its uplink, its gateways, the sender and the status file."""

    def __init__(self, config: EdgeConfig, uplink: Uplink | None = None,
                 publish_handler: PublishHandler | None = None) -> None:
        self.config = config
        problems = agent_problems(config) if uplink is None else []
        if problems:  # what ``python -m edge check`` reports too
            raise EdgeConfigError("\n".join(problems))
        config.edge.data_dir.mkdir(parents=True, exist_ok=True)
        self.spool = Spool(config.spool_path, config.spool.max_bytes, config.spool.max_messages,
                           config.spool.synchronous)
        try:
            self.uplink = uplink or build_uplink(config, publish_handler, logging.getLogger("edge.uplink"))
        except BaseException:
            self.spool.close()
            raise
        self.contexts: dict[str, _Context] = {}
        self.gateways: dict[str, Gateway] = {}
        self.gateway_errors: dict[str, str] = {}
        self.sender = SenderStats()
        self.started_at = _iso_now()
        self.stopped_at: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._commit_scheduled = False
        self._woken = False
        self._waiter: asyncio.Future[None] | None = None
        self._sender_waiting = False
        self._sender_lingering = False
        self._tasks: list[asyncio.Task[Any]] = []
        self._gateway_tasks: dict[str, asyncio.Task[None]] = {}
        self._downlink_tasks: dict[str, asyncio.Task[None]] = {}
        self._downlink_queues: dict[str, asyncio.Queue[Downlink]] = {}
        self.cloud_sections: dict[str, GatewaySection] = {}
        """Gateways the cloud assigned (running or disabled), by id, from the device shadow."""
        self._cloud_raw: dict[str, dict[str, Any]] = {}
        self._applied: dict[str, dict[str, Any]] = {}
        self._apply_lock = asyncio.Lock()
        self._side_tasks: set[asyncio.Task[Any]] = set()
        self.shadow = ShadowClient(config.edge.id, config.edge.shadow_name, config.edge.data_dir) \
            if config.edge.cloud_config else None
        if self.shadow is not None:
            self.uplink.set_down_topics([*self.uplink.down_topics, *self.shadow.subscriptions])
        self._in_flight: collections.deque[_Flight] = collections.deque()
        self._report_in_flight: dict[str, Any] | None = None
        """The shadow report being published (not sent a second time by the shadow loop meanwhile)."""
        self._retry_delay = _RETRY_FIRST_S
        self._stopping = False
        try:
            self._build_gateways()
        except BaseException:
            self.spool.close()
            raise

    # ------------------------------------------------------------------------------------------- building

    def _build_gateways(self) -> None:
        """Build every enabled gateway's plugin; one that cannot be built (an unknown type, options its plugin
        refuses: what ``python -m edge check`` reports) is not started, and the others run."""
        base = self.config.edge.data_dir / "gateways"
        for index, section in enumerate(self.config.gateways):
            if not section.enabled:
                continue
            provider = _provider_of(section)
            ctx = _Context(self, section.id, provider, base)
            ctx.silent_after_s = _silent_after(section)
            self.contexts[section.id] = ctx
            try:
                gateway = build_plugin(section, ctx)
            except GatewayConfigError as error:  # a plugin that cannot be built must not take the others down
                self.gateway_errors[section.id] = str(error)
                ctx.set_state("error", f"cannot start: {error}")
                log.error("gateway not started: %s: %s", gateway_where(index, section), error,
                          extra={"gateway": section.id, "error": str(error)})
                continue
            ctx.provider = getattr(gateway, "provider", provider) or provider
            self.gateways[section.id] = gateway

    # ------------------------------------------------------------------------------------------- running

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Run until ``stop`` is set (or the task is cancelled), then shut down cleanly."""
        try:
            await self.start()
            if stop is None:
                await asyncio.Event().wait()
            else:
                await stop.wait()
        finally:
            await self.stop()

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self.uplink.on_downlink(self._on_downlink)
        await self.uplink.start()
        log.info("agent started", extra={"edge": self.config.edge.id, "gateways": sorted(self.gateways),
                                         "spool_depth": self.spool.depth, "uplink": self.uplink.kind})
        for gateway_id in list(self.gateways):
            self._launch(gateway_id)
        if self.shadow is not None:
            saved = self.shadow.load()
            if saved is not None:  # start with what ran last time; the shadow may say otherwise once online
                await self.apply_cloud_config(Decision("apply", saved[0], saved[1]), report=False)
            self._tasks.append(asyncio.create_task(self._shadow_loop(), name="shadow"))
        self._tasks.append(asyncio.create_task(self._sender_loop(), name="sender"))
        self._tasks.append(asyncio.create_task(self._status_loop(), name="status"))

    def _launch(self, gateway_id: str) -> None:
        """Run a built gateway: its plugin task and its downlink worker."""
        gateway = self.gateways[gateway_id]
        self._gateway_tasks[gateway_id] = asyncio.create_task(self._run_gateway(gateway),
                                                              name=f"gateway-{gateway_id}")
        queue: asyncio.Queue[Downlink] = asyncio.Queue()
        self._downlink_queues[gateway_id] = queue
        worker = asyncio.create_task(self._downlink_worker(gateway, queue), name=f"downlink-{gateway_id}")
        self._downlink_tasks[gateway_id] = worker
        self._tasks.append(worker)

    async def _retire(self, gateway_id: str) -> None:
        """Stop one gateway (its plugin and downlink worker) and forget it."""
        tasks = [task for task in (self._gateway_tasks.pop(gateway_id, None),
                                   self._downlink_tasks.pop(gateway_id, None)) if task is not None]
        for task in tasks:
            task.cancel()
        await _settle(tasks, _DRAIN_TIMEOUT_S)
        self._tasks = [task for task in self._tasks if task not in tasks]
        self._downlink_queues.pop(gateway_id, None)
        self.gateways.pop(gateway_id, None)
        self.contexts.pop(gateway_id, None)
        self.gateway_errors.pop(gateway_id, None)

    async def stop(self) -> None:
        """Stop gateways, let in-flight publishes finish (bounded), disconnect, write the last status."""
        if self._stopping:
            return
        self._stopping = True
        side = list(self._side_tasks)  # a config being applied would start gateways behind our back
        for task in side:
            task.cancel()
        await _settle(side, _DRAIN_TIMEOUT_S)
        for task in self._gateway_tasks.values():
            task.cancel()
        await _settle(list(self._gateway_tasks.values()), _DRAIN_TIMEOUT_S)
        await self._flush(_FLUSH_TIMEOUT_S)
        for task in self._tasks:
            task.cancel()
        await _settle(self._tasks, _DRAIN_TIMEOUT_S)
        if self._in_flight:
            await _settle([flight.task for flight in self._in_flight], _DRAIN_TIMEOUT_S)
            self._complete_flights()
        await self.uplink.stop()
        for flight in self._in_flight:  # failed by the disconnect; their envelopes are still in the spool
            if flight.task.done() and not flight.task.cancelled():
                flight.task.exception()
        self.stopped_at = _iso_now()
        self.write_status()
        self.spool.close()
        log.info("agent stopped", extra={"edge": self.config.edge.id})

    async def _flush(self, timeout: float) -> None:
        """Give the sender a moment to send what the gateways said last (their "down" state, say)."""
        deadline = time.monotonic() + timeout
        while self.uplink.connected and (self.spool.depth or self._in_flight) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    async def _run_gateway(self, gateway: Gateway) -> None:
        """Run one plugin; if it crashes (a bug: plugins reconnect by themselves), restart it with backoff."""
        ctx = self.contexts[gateway.gateway_id]
        delay = _GATEWAY_RESTART_FIRST_S
        while True:
            started = time.monotonic()
            try:
                await gateway.run()
                return
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.exception("gateway crashed", extra={"gateway": gateway.gateway_id, "error": str(error)})
                ctx.set_state("error", f"crashed: {type(error).__name__}: {error}")
            if time.monotonic() - started > _GATEWAY_RESTART_CAP_S:
                delay = _GATEWAY_RESTART_FIRST_S
            await asyncio.sleep(delay)
            delay = min(delay * 2, _GATEWAY_RESTART_CAP_S)

    def commit_soon(self) -> None:
        """Have the spool write what the gateways emitted in this loop turn, in one transaction, as soon as the
        turn ends: before the loop waits for more input and before the sender reads the spool."""
        if not self._commit_scheduled and self._loop is not None:
            self._commit_scheduled = True
            self._loop.call_soon(self._commit)

    def _commit(self) -> None:
        self._commit_scheduled = False
        try:
            self.spool.commit()
        except Exception as error:  # a full or failing disk: those messages are lost (as an append would have been)
            log.error("spool write failed; the messages of this turn are lost", extra={"error": str(error)})

    def wake(self, urgent: bool = False) -> None:
        """Tell the sender there is something new (from any thread; cheap when it is busy anyway); an ``urgent``
        message also ends its packing window."""
        waiting = self._sender_waiting or (urgent and self._sender_lingering)
        if not waiting or self._loop is None:
            return
        self._sender_waiting = self._sender_lingering = False
        if threading.get_ident() == self._loop_thread:
            self._set_wake()
        else:
            with contextlib.suppress(RuntimeError):  # loop closed: the agent is stopping
                self._loop.call_soon_threadsafe(self._set_wake)

    def _set_wake(self) -> None:
        self._woken = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ------------------------------------------------------------------------------------------- cloud config

    def _spawn(self, coroutine: Coroutine[Any, Any, Any], name: str) -> None:
        task = asyncio.create_task(coroutine, name=name)
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)

    async def apply_cloud_config(self, decision: Decision, *, report: bool = True) -> dict[str, dict[str, Any]]:
        """Make the cloud's gateways those of ``decision``; returns (and reports) what each one's outcome is.

        Only gateways whose config changed are touched. A config that does not validate, or whose plugin cannot
        be built, is rejected and the gateway keeps running as it was; a gateway of the YAML file wins over a
        cloud one with the same id.
        """
        assert self.shadow is not None
        async with self._apply_lock:
            wanted = decision.gateways
            for gateway_id in [g for g in self.cloud_sections if g not in wanted]:
                await self._retire(gateway_id)
                del self.cloud_sections[gateway_id]
                self._cloud_raw.pop(gateway_id, None)
                log.info("cloud gateway removed", extra={"gateway": gateway_id})
            applied: dict[str, dict[str, Any]] = {}
            for gateway_id, raw in sorted(wanted.items()):
                applied[gateway_id] = await self._apply_one(gateway_id, raw)
            self._applied = applied
            self.shadow.config_version = decision.config_version
            self.shadow.applied_at = _iso_now()
            self.uplink.set_down_topics(self._wanted_topics())
            try:
                await asyncio.to_thread(self.shadow.save, dict(self._cloud_raw), decision.config_version)
            except OSError as error:  # a full disk must not stop the gateways; the shadow still has it
                log.warning("cloud config not saved", extra={"error": str(error)})
            log.info("cloud config applied", extra={"config_version": decision.config_version,
                                                    "gateways": {k: v["status"] for k, v in applied.items()}})
            if report:
                body = self.shadow.prepare_report(decision.config_version, applied, decision.reported)
                if body is not None:
                    await self._send_report(body)
            return applied

    async def _apply_one(self, gateway_id: str, raw: dict[str, Any]) -> dict[str, Any]:
        digest = config_hash(raw)
        if any(section.id == gateway_id for section in self.config.gateways):
            return {"status": "file", "hash": digest,
                    "message": "defined in the edge's own config file, which wins; the cloud's config is ignored"}
        running = self._cloud_raw.get(gateway_id)
        if running is not None and config_hash(running) == digest:  # unchanged (or back to what runs): leave it
            ctx = self.contexts.get(gateway_id)
            if self.gateway_errors.pop(gateway_id, None) is not None and ctx is not None:
                ctx.announce_state()  # the cloud showed the rejection as the gateway's state: say it again
            enabled = self.cloud_sections[gateway_id].enabled
            return {"status": "running" if enabled else "disabled", "message": "", "hash": digest}
        try:
            section = GatewaySection.model_validate({**raw, "id": gateway_id})
        except SectionError as error:
            lines = format_errors(error, {**raw, "id": gateway_id}).splitlines()[1:]
            return self._rejected(gateway_id, digest, "; ".join(line.strip() for line in lines))
        old_ctx = self.contexts.get(gateway_id)
        if not section.enabled:
            if old_ctx is not None and gateway_id in self.gateways:
                old_ctx.set_state("down", "disabled")
            await self._retire(gateway_id)
            self.cloud_sections[gateway_id] = section
            self._cloud_raw[gateway_id] = raw
            return {"status": "disabled", "message": "", "hash": digest}
        provider = _provider_of(section)
        ctx = _Context(self, gateway_id, provider, self.config.edge.data_dir / "gateways")
        ctx.silent_after_s = _silent_after(section)
        try:
            gateway = build_plugin(section, ctx)
        except GatewayConfigError as error:  # an unknown type or a plugin refusing its options: keep what runs
            return self._rejected(gateway_id, digest, str(error))
        ctx.provider = getattr(gateway, "provider", provider) or provider
        restarted = gateway_id in self.gateways
        await self._retire(gateway_id)
        self.contexts[gateway_id] = ctx
        self.gateways[gateway_id] = gateway
        self.cloud_sections[gateway_id] = section
        self._cloud_raw[gateway_id] = raw
        self._launch(gateway_id)
        log.info("cloud gateway restarted" if restarted else "cloud gateway started", extra={"gateway": gateway_id})
        return {"status": "running", "message": "", "hash": digest}

    def _rejected(self, gateway_id: str, digest: str, message: str) -> dict[str, Any]:
        message = message[:500]
        log.warning("cloud gateway config rejected", extra={"gateway": gateway_id, "error": message})
        if gateway_id in self.gateways:
            message += " (the previous config keeps running)"
        self.gateway_errors[gateway_id] = f"cloud config rejected: {message}"
        return {"status": "rejected", "message": message, "hash": digest}

    @property
    def down_topic(self) -> str:
        """``mc/<edge id>/down``: every downlink for this device's gateways, whichever runs them (the IoT policy
        lets the thing subscribe to this one only)."""
        return down_topic(self.config.edge.id, self.config.uplink.topic_prefix)

    def _wanted_topics(self) -> list[str]:
        return [self.down_topic, *(self.shadow.subscriptions if self.shadow is not None else [])]

    async def _request_shadow(self) -> bool:
        assert self.shadow is not None
        try:
            await self.uplink.publish_to(self.shadow.topic("get"), self.shadow.get_request())
            return True
        except UplinkError as error:
            self.shadow.last_error = str(error)
            log.warning("shadow get not sent", extra={"error": str(error)})
            return False

    async def _send_report(self, body: dict[str, Any]) -> None:
        """Send a report once: while it is on its way the shadow loop, which resends a pending report, leaves it."""
        assert self.shadow is not None
        if self._report_in_flight is body:
            return
        self._report_in_flight = body
        try:
            await self.uplink.publish_to(self.shadow.topic("update"), json.dumps(body).encode())
        except UplinkError as error:  # sent again by the shadow loop once the uplink is back
            self.shadow.last_error = str(error)
            log.warning("shadow report not sent; will retry", extra={"error": str(error)})
            return
        finally:
            self._report_in_flight = None
        self.shadow.report_sent(body)

    async def _shadow_loop(self) -> None:
        """Ask for the whole shadow on every (re)subscription; send a report that failed again."""
        assert self.shadow is not None
        ready_before = False
        while True:
            ready = self.uplink.subscribed
            if ready and not ready_before:
                ready = await self._request_shadow()
            elif ready and self.shadow.pending_report is not None:
                await self._send_report(self.shadow.pending_report)
            ready_before = ready
            await asyncio.sleep(_SHADOW_POLL_S)

    # ------------------------------------------------------------------------------------------- sender

    async def _sender_loop(self) -> None:
        uplink_config = self.config.uplink
        budget = uplink_config.max_publish_bytes
        max_envelopes = max(1, budget // _MIN_ENVELOPE_BYTES)
        linger_s = uplink_config.linger_s
        spacing_s = 1.0 / uplink_config.max_publishes_per_s
        window = uplink_config.max_in_flight if self.uplink.pipelined else 1
        pace = 0.0
        after = 0
        loop = asyncio.get_running_loop()
        while True:
            failed = self._complete_flights()
            if failed:
                # Wait for the whole window, keep what it got acknowledged, resend the rest in order.
                await _settle([flight.task for flight in self._in_flight], None)
                self._complete_flights(after_failure=True)
                self.sender.retries += 1
                log.warning("publish failed; retrying", extra={"error": self.sender.last_error,
                                                                "retry_in_s": self._retry_delay})
                await asyncio.sleep(self._retry_delay)
                self._retry_delay = min(self._retry_delay * 2, _RETRY_CAP_S)
                after = 0
                continue
            if not self._in_flight:
                after = 0
            room = len(self._in_flight) < window
            if room and self.uplink.connected:
                rows, full = self.spool.peek_batch(max_envelopes, budget - _PUBLISH_OVERHEAD, after, bodies=False)
                if rows:
                    wait = publish_wait(rows[0].timestamp, time.time(), linger_s, full=full,
                                        urgent=is_urgent(rows))
                    wait = max(wait, pace - spacing_s - loop.time())
                    if wait <= 0:
                        rows, body = _pack(self.spool, rows, budget)
                        await asyncio.to_thread(self.spool.sync)
                        # Pacing by "theoretical arrival time": a publish that went out late does not delay
                        # the next one, so the rate holds at max_publishes_per_s (bursts of two at most).
                        pace = max(pace, loop.time()) + spacing_s
                        task = asyncio.create_task(self._publish(body, rows))
                        task.add_done_callback(self._flight_done)
                        self._in_flight.append(_Flight(task, rows))
                        after = rows[-1].rowid
                        continue
                    # Linger or pacing: only an urgent message or a finished publish wakes us. Waking for every
                    # new message would re-read the batch from the spool hundreds of times a second for nothing.
                    await self._linger(min(wait, _IDLE_WAKE_S))
                    continue
            # Idle (nothing to send): new data wakes us. Window full or offline: only a finished publish does.
            ready = room and self.uplink.connected
            await self._wait(_IDLE_SLEEP_S if ready else _IDLE_WAKE_S, on_data=ready)

    async def _publish(self, body: bytes, rows: list[SpoolRow]) -> None:
        await self.uplink.publish(body)
        self.sender.publishes += 1
        self.sender.envelopes += len(rows)
        self.sender.bytes += len(body)
        self.sender.batch_sizes.append(len(rows))
        self.sender.last_publish_at = _iso_now()

    def _complete_flights(self, after_failure: bool = False) -> bool:
        """Ack, in order, the publishes at the head of the window that succeeded; True if one failed.

        After a failure every finished flight is looked at: those acknowledged are acked in the spool (they
        arrived), the failed ones are dropped from the window and will be read again from the spool.
        """
        failed = False
        while self._in_flight and self._in_flight[0].task.done():
            flight = self._in_flight.popleft()
            error = None if flight.task.cancelled() else flight.task.exception()
            if flight.task.cancelled() or error is not None:
                failed = True
                if error is not None:
                    self.sender.last_error = str(error) if isinstance(error, UplinkError) else repr(error)
                if not after_failure:
                    self._in_flight.appendleft(flight)
                    return True
                continue
            self.spool.ack(flight.rows)
            self._retry_delay = _RETRY_FIRST_S
        return failed

    async def _wait(self, timeout: float, on_data: bool) -> None:
        """Sleep until a publish finishes, the timeout, or (``on_data``) a gateway emits something."""
        self._woken = False
        if self._in_flight and self._in_flight[0].task.done():
            return
        self._sender_waiting = on_data
        try:
            await self._sleep(timeout)
        finally:
            self._sender_waiting = False

    async def _linger(self, timeout: float) -> None:
        """Sleep through the packing window; a command, request or presentation (``wake(urgent=True)``) or a
        finished publish ends it early."""
        self._woken = False
        self._sender_lingering = True
        try:
            await self._sleep(timeout)
        finally:
            self._sender_lingering = False

    async def _sleep(self, timeout: float) -> None:
        """Until ``_set_wake`` or the timeout: one future and one timer (``wait_for`` would make a task a sleep)."""
        if self._woken:
            return
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(max(timeout, 0.001), _resolve, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def _flight_done(self, _task: asyncio.Task[None]) -> None:
        """Ack what the broker acknowledged, here and now; wake the sender only if it waits for room in the window
        or a publish failed (lingering over a packing window or idle, it has nothing to do with this)."""
        failed = self._complete_flights()
        if failed or not (self._sender_waiting or self._sender_lingering):
            self._set_wake()

    # ------------------------------------------------------------------------------------------- downlink

    def _on_downlink(self, topic: str, payload: bytes) -> None:
        if self.shadow is not None and self.shadow.owns(topic):
            decision = self.shadow.interpret(topic, payload)
            if decision.action == "apply":
                self._spawn(self.apply_cloud_config(decision), "shadow-apply")
            elif decision.action == "get":
                self._spawn(self._request_shadow(), "shadow-get")
            return
        if topic and topic != self.down_topic:  # a broker without the IoT policy might deliver others' topics
            log.warning("downlink on another device's topic ignored", extra={"topic": topic})
            return
        try:
            downlinks = decode_downlinks(payload)
        except EnvelopeError as error:
            log.warning("downlink rejected", extra={"topic": topic, "error": str(error)})
            return
        for downlink in downlinks:  # each names its gateway: the one topic carries them all
            queue = self._downlink_queues.get(downlink.gateway_id)
            if queue is None:
                log.warning("downlink for a gateway this device does not run", extra={
                    "topic": topic, "gateway": downlink.gateway_id})
                continue
            queue.put_nowait(downlink)

    async def _downlink_worker(self, gateway: Gateway, queue: asyncio.Queue[Downlink]) -> None:
        """Write one gateway's downlinks in arrival order (a slow device does not hold up the others)."""
        ctx = self.contexts[gateway.gateway_id]
        while True:
            downlink = await queue.get()
            if downlink.expires_ms is not None and downlink.expires_ms < time.time() * 1000:
                log.info("downlink expired", extra={"gateway": gateway.gateway_id, "key": downlink.key})
                continue
            try:
                await gateway.send(downlink)
                ctx.downlinks += 1
            except asyncio.CancelledError:
                raise
            except Exception as error:
                ctx.downlink_errors += 1
                log.warning("downlink not written", extra={"gateway": gateway.gateway_id, "error": str(error)})

    # ------------------------------------------------------------------------------------------- status

    async def _status_loop(self) -> None:
        while True:
            try:
                status = self.status()
                await asyncio.to_thread(self._write_status, status)
            except Exception as error:  # a full disk must not stop the agent
                log.warning("status not written", extra={"error": str(error)})
            await asyncio.sleep(self.config.edge.status_interval_s)

    def status(self) -> dict[str, Any]:
        gateways: dict[str, Any] = {}
        file_ids = {section.id for section in self.config.gateways}
        cloud = [section for gateway_id, section in self.cloud_sections.items() if gateway_id not in file_ids]
        for section in [*self.config.gateways, *cloud]:
            ctx = self.contexts.get(section.id)
            entry: dict[str, Any] = {"type": _gateway_type(section), "enabled": section.enabled}
            if section.id in self.cloud_sections and section.id not in file_ids:
                entry["source"] = "cloud"
            if ctx is not None:
                entry.update(provider=ctx.provider, state=ctx.state, emitted=ctx.emitted, dropped=ctx.dropped,
                             downlinks=ctx.downlinks, downlink_errors=ctx.downlink_errors,
                             sequence=self.spool.sequence(section.id))
            gateway = self.gateways.get(section.id)
            if gateway is not None:
                try:
                    entry["plugin"] = redact(gateway.status())
                except Exception as error:
                    entry["plugin"] = {"error": str(error)}
                if ctx is not None:
                    silent = _silence(ctx, gateway)
                    if silent:
                        entry["silent"] = silent
            if section.id in self.gateway_errors:
                entry["error"] = self.gateway_errors[section.id]
            gateways[section.id] = entry
        return {
            "edge_id": self.config.edge.id,
            "version": VERSION,
            "pid": os.getpid(),
            "started_at": self.started_at,
            "stopped_at": self.stopped_at,
            "updated_at": _iso_now(),
            "updated_epoch": time.time(),
            "status_interval_s": self.config.edge.status_interval_s,
            "uplink": redact(self.uplink.status()),
            "sender": self.sender.as_dict(len(self._in_flight)),
            "spool": self.spool.stats(),
            "gateways": gateways,
            **({"cloud_config": {**self.shadow.status(), "applied": self._applied}} if self.shadow is not None else {}),
        }

    def write_status(self) -> None:
        self._write_status(self.status())

    def _write_status(self, status: dict[str, Any]) -> None:
        """Replace ``status.json`` atomically: a reader never sees half a file."""
        path = self.config.status_path
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(status, indent=2, default=str), encoding="utf-8")
        os.replace(tmp, path)


def _pack(spool: Spool, rows: list[SpoolRow], budget: int) -> tuple[list[SpoolRow], bytes]:
    """The publish body for the longest prefix of ``rows`` that fits ``budget`` (the first row always goes); the
    rows were read without their bodies, which are read now for those that go."""
    size = _PUBLISH_OVERHEAD - 1
    for count, row in enumerate(rows):
        size += row.size + 1
        if size > budget and count:
            rows = rows[:count]
            break
    rows = spool.with_bodies(rows)
    return rows, publish_body(rows).encode()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _settle(tasks: list[asyncio.Task[Any]], timeout: float | None) -> None:
    """Wait for tasks to finish (bounded), swallowing their outcome: the caller reads it if it cares."""
    pending = [task for task in tasks if not task.done()]
    if pending:
        await asyncio.wait(pending, timeout=timeout)


def _silent_after(section: GatewaySection) -> float:
    """``silenceWarning`` of the gateway (a duration; 0 turns the warning off), else the provider's default."""
    value = (section.model_extra or {}).get("silenceWarning")
    if value is None:
        return 0.0 if section.provider.type in _NOT_RECEIVING else SILENT_AFTER_S
    return max(0.0, parse_duration(value, SILENT_AFTER_S))


def _silence(ctx: _Context, gateway: Gateway) -> str:
    """The status line's warning for a gateway that receives nothing (logged once each time it comes up)."""
    silent = ctx.silence()
    if not silent:
        return ""
    settings = getattr(gateway, "settings", None)  # the MQTT gateways' MqttSettings
    topics = list(getattr(settings, "subscriptions", None) or [])
    if topics:
        silent += (f" on {', '.join(topics)} at {getattr(settings, 'broker', '')}: check that its devices publish"
                   " under these topics")
    if not ctx.silence_logged:
        ctx.silence_logged = True
        log.warning("gateway receives nothing", extra={"gateway": ctx.gateway_id, "detail": silent})
    return silent


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def _gateway_type(section: GatewaySection) -> str:
    protocol = section.provider.protocol
    return f"{section.provider.type}/{protocol.type}" if protocol is not None and protocol.type else \
        section.provider.type


def _provider_of(section: GatewaySection) -> str:
    """The envelope provider before the plugin says otherwise (its class attribute wins)."""
    return {"generic": "mc_json", "system_monitor": "mc_json", "system_monitoring": "mc_json"}.get(
        section.provider.type, section.provider.type)
