"""One ESPHome device: its native-API connection, kept up with backoff, and what it says sent up.

On every (re)connect the device's info and entity list are sent up (as commands: the spool keeps them when
full, and they do not wait for the packing window), then every state the device reports. A device that goes
away is reported ``offline`` (its node goes down) and reconnected after a growing delay, capped by the
gateway's ``reconnectDelay``. ``aioesphomeapi`` pings every ``aliveCheckInterval`` and drops a connection
whose device does not answer, which is how a device that lost power without closing its socket is noticed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from aioesphomeapi import APIClient, APIConnectionError, APIVersion, EntityState
from aioesphomeapi.core import InvalidAuthAPIError, InvalidEncryptionKeyAPIError, RequiresEncryptionAPIError

from ..util import Backoff
from .config import EspHomeNodeConfig
from .entities import (
    Entity,
    EspHomeCommandRefused,
    climate_unit,
    device_message,
    entity_message,
    index_entities,
    run_command,
    state_message,
)

Emit = Callable[[dict[str, Any], bool], None]
"""(message, command) → the gateway's emit."""

CLIENT_INFO = "MyController edge"


def explain(error: BaseException) -> str:
    """What a user can do about a connection failure, in one line."""
    if isinstance(error, InvalidEncryptionKeyAPIError):
        return "the device refused the encryption key (check api: encryption: key in its YAML)"
    if isinstance(error, RequiresEncryptionAPIError):
        return "the device requires encryption: set encryptionKey for it"
    if isinstance(error, InvalidAuthAPIError):
        return "the device refused the API password"
    if isinstance(error, TimeoutError):
        return "timed out"
    cause: BaseException | None = error
    while cause is not None:  # "Error connecting to [AddrInfo(…)]: [Errno 111] …" → "Connection refused"
        if isinstance(cause, OSError) and cause.errno:
            return os.strerror(cause.errno)
        cause = cause.__cause__ or cause.__context__
    return str(error) or type(error).__name__


class EspHomeDevice:
    """Connects, reads, reconnects; ``command`` and ``action`` act on the device while it is connected."""

    def __init__(self, config: EspHomeNodeConfig, emit: Emit, on_change: Callable[[], None], reconnect_cap: float,
                 logger: logging.Logger) -> None:
        self.config = config
        self.node_id = config.node_id
        self.emit = emit
        self.on_change = on_change
        self.reconnect_cap = reconnect_cap
        self.logger = logger
        self.client: APIClient | None = None
        self.api_version: APIVersion | None = None
        self.entities: dict[str, Entity] = {}
        self.by_key: dict[tuple[int, int], Entity] = {}
        self.states: dict[str, dict[str, Any]] = {}
        self.connected = False
        self.message = f"connecting to {config.address}"
        self.connects = 0
        self.states_received = 0
        self.commands = 0
        self.last_error = ""
        self.device_info: dict[str, Any] = {}
        self.deep_sleep = False
        """A device that sleeps drops its connection on purpose: it is not reported offline for it."""
        self._closed: asyncio.Event | None = None
        self._close_reason = ""

    # ----------------------------------------------------------------------------------------- the loop

    async def run(self) -> None:
        """Connect and stay connected until cancelled."""
        backoff = Backoff(self.reconnect_cap, first=0.5)
        while True:
            began = time.monotonic()
            reason = await self._session()
            if self.connected:
                self.connected = False
                if not self.deep_sleep:
                    self.emit({"t": "offline", "n": self.node_id, "m": reason}, True)
            self._set(f"disconnected: {reason}" if self.connects else f"cannot connect: {reason}")
            if time.monotonic() - began > 60:  # a connection that held a while: start the backoff over
                backoff.reset()
            await asyncio.sleep(backoff.next())

    async def _session(self) -> str:
        """One connection, from connect to loss; returns why it ended."""
        config = self.config
        client = APIClient(config.host, config.port, config.password, client_info=CLIENT_INFO,
                           keepalive=config.alive_check_s, noise_psk=config.encryption_key)
        closed = self._closed = asyncio.Event()
        self._close_reason = "connection closed"
        close_error: list[BaseException] = []

        def on_closed(event: Any) -> None:
            if event.error is not None:
                close_error.append(event.error)
                self._close_reason = explain(event.error)
            closed.set()

        async def on_stop(_expected: bool) -> None:
            closed.set()

        try:
            client.add_connection_closed_callback(on_closed)
            # log_errors off: every failed attempt would be a warning; the gateway reports what changes instead
            await asyncio.wait_for(client.connect(on_stop=on_stop, login=True, log_errors=False), config.timeout_s)
            info, infos, _services = await asyncio.wait_for(client.device_info_and_list_entities(),
                                                            config.timeout_s)
            self.client = client
            self.api_version = client.api_version
            self.entities = index_entities(infos)
            self.by_key = {(e.key, e.device_id): e for e in self.entities.values()}
            self.states = {}
            self.deep_sleep = bool(info.has_deep_sleep)
            self.connected = True
            self.connects += 1
            self._send_info(info)
            client.subscribe_states(self._on_state)
            self._set(f"connected to {config.address} (ESPHome {info.esphome_version or '?'}, "
                      f"{len(self.entities)} entities)")
            self.logger.info("esphome %s connected to %s", self.node_id, config.address)
            await closed.wait()
            return self._close_reason
        except asyncio.CancelledError:
            raise
        except (APIConnectionError, TimeoutError, OSError) as error:
            # a device that refuses the password closes the connection: that, not the request it broke, is why
            self.last_error = explain(close_error[0] if close_error else error)
            return self.last_error
        finally:
            self.client = None
            with contextlib.suppress(Exception):
                await client.disconnect(force=True)

    def _set(self, message: str) -> None:
        if message != self.message:
            self.message = message
            if not self.connected:
                self.logger.warning("esphome %s %s", self.node_id, message)
            self.on_change()

    # ----------------------------------------------------------------------------------------- up

    def _send_info(self, info: Any) -> None:
        assert self.api_version is not None
        self.device_info = device_message(self.node_id, info, self.config.host)
        self.emit(self.device_info, True)
        for entity in self.entities.values():
            self.emit(entity_message(self.node_id, entity, self.api_version), True)

    def _on_state(self, state: EntityState) -> None:
        entity = self.by_key.get((state.key, state.device_id)) or self.by_key.get((state.key, 0))
        if entity is None or self.api_version is None:
            return
        message = state_message(self.node_id, entity, state, self.api_version, climate_unit(entity.info))
        if message is None:
            return
        self.states_received += 1
        self.states[entity.source] = message
        self.emit(message, False)

    # ----------------------------------------------------------------------------------------- down

    def command(self, source: str, field: str, value: Any) -> str:
        """Carry out one field's new value; ``EspHomeCommandRefused`` or ``ConnectionError`` when it cannot be."""
        client = self.client
        if client is None or not self.connected:
            raise ConnectionError(f"esphome {self.node_id} is not connected ({self.message})")
        entity = self.entities.get(source)
        if entity is None:
            raise EspHomeCommandRefused(f"esphome {self.node_id} has no entity {source!r}")
        done = run_command(client, entity, field, value)
        self.commands += 1
        return done

    async def action(self, action: str) -> str:
        """A node action: ``heartbeat_request`` asks the device for its info (a reply marks the node seen),
        ``refresh_node_info`` sends info, entities and the last states again, ``reboot`` presses the device's
        restart button."""
        client = self.client
        if client is None or not self.connected:
            raise ConnectionError(f"esphome {self.node_id} is not connected ({self.message})")
        if action == "reboot":
            restart = next((e for e in self.entities.values()
                            if e.kind == "button" and getattr(e.info, "device_class", "") == "restart"), None)
            if restart is None:
                raise EspHomeCommandRefused(f"esphome {self.node_id} has no restart button (button: platform: "
                                            "restart in its YAML)")
            client.button_command(restart.key, device_id=restart.device_id)
            return f"pressed {restart.source}"
        info = await asyncio.wait_for(client.device_info(), self.config.timeout_s)
        if action == "heartbeat_request":
            self.emit(device_message(self.node_id, info, self.config.host), False)
            return "device answered"
        self._send_info(info)
        for message in list(self.states.values()):
            self.emit(message, False)
        return f"sent {len(self.entities)} entities and {len(self.states)} states again"

    def status(self) -> dict[str, Any]:
        return {"address": self.config.address, "connected": self.connected, "message": self.message,
                "entities": len(self.entities), "states": self.states_received, "commands": self.commands,
                "connects": self.connects, "encrypted": bool(self.config.encryption_key),
                "discovered": self.config.discovered}


def dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)
