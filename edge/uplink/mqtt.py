"""The MQTT 5 uplink: AWS IoT Core with mutual TLS, or any MQTT 5 broker (mosquitto) over TCP or TLS.

One awscrt ``mqtt5.Client`` does the work: it reconnects by itself with exponential backoff and jitter, keeps
QoS 1 publishes that were not acknowledged across a reconnect and sends them again first (the default offline
queue behaviour), and rejoins the broker session on every connection, the first after an agent restart
included (``REJOIN_ALWAYS`` with a session expiry: a persistent session, so downlinks published while the
agent was away wait for it; mosquitto also persists to disk only sessions opened without clean start). The
CRT notes that this mode cannot resend QoS 1 publishes of a previous process: the spool does that. Without a
TLS context the client speaks plain TCP, which is what a local mosquitto wants.

``publish`` awaits the PUBACK; a PUBACK with a failure reason code (e.g. "not authorized" from an IoT policy)
raises, and so does an ack timeout: in both cases the envelopes stay in the spool and go out again.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from awscrt import io, mqtt5

from ..config import UplinkSection
from ..mqtt_errors import Peer, error_code, explain_connect_failure, explain_disconnect, reason_code
from .base import Uplink, UplinkError

_OK_PUBACK = frozenset({mqtt5.PubackReasonCode.SUCCESS, mqtt5.PubackReasonCode.NO_MATCHING_SUBSCRIBERS})
_SUBSCRIPTIONS_PER_PACKET = 8
"""AWS IoT Core accepts at most 8 topic filters in one SUBSCRIBE."""
_STOP_TIMEOUT_S = 5.0


class MqttUplink(Uplink):
    """The agent's connection to AWS IoT Core or an MQTT 5 broker."""

    def __init__(self, config: UplinkSection, client_id: str, up_topic: str, down_topics: list[str],
                 logger: logging.Logger | None = None) -> None:
        super().__init__(up_topic, down_topics, logger)
        self.config = config
        self.kind = config.type
        self.client_id = client_id
        self._connected = threading.Event()
        self._stopped = threading.Event()
        self._client: mqtt5.Client | None = None
        self.connects = 0
        self.disconnects = 0
        self.session_present: bool | None = None
        self._confirmed: set[str] = set()
        """Down topics the broker confirmed on the current connection."""

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    # ------------------------------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._client = self._build()
        self._stopped.clear()
        self._client.start()
        host, port = self.config.address
        self.logger.info("uplink connecting", extra={"uplink": self.kind, "host": host, "port": port,
                                                     "client_id": self.client_id})

    async def stop(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        client.stop()
        await asyncio.to_thread(self._stopped.wait, _STOP_TIMEOUT_S)
        self._connected.clear()

    def _build(self) -> mqtt5.Client:
        config = self.config
        host, port = config.address
        tls = config.tls
        for name, path in (("ca", tls.ca), ("cert", tls.cert), ("key", tls.key)) if tls is not None else ():
            if path is not None and not path.is_file():
                raise UplinkError(f"uplink.tls.{name}: {path} is not a readable file")
        password = config.password.get_secret_value() if config.password else None
        common: dict[str, Any] = {
            "session_behavior": mqtt5.ClientSessionBehaviorType.REJOIN_ALWAYS,
            "min_reconnect_delay_ms": config.min_reconnect_delay_ms,
            "max_reconnect_delay_ms": config.max_reconnect_delay_ms,
            "min_connected_time_to_reset_reconnect_delay_ms": 10_000,
            "ack_timeout_sec": config.ack_timeout_s,
            "connack_timeout_ms": 10_000,
            "ping_timeout_ms": 10_000,
        }
        callbacks: dict[str, Any] = {
            "on_publish_callback_fn": self._on_publish,
            "on_lifecycle_event_connection_success_fn": self._on_connection_success,
            "on_lifecycle_event_connection_failure_fn": self._on_connection_failure,
            "on_lifecycle_event_disconnection_fn": self._on_disconnection,
            "on_lifecycle_event_stopped_fn": self._on_stopped,
        }
        if config.type == "aws_iot":
            from awsiot import mqtt5_client_builder

            assert tls is not None and tls.cert is not None and tls.key is not None  # checked by the config
            return mqtt5_client_builder.mtls_from_path(
                cert_filepath=str(tls.cert), pri_key_filepath=str(tls.key),
                ca_filepath=str(tls.ca) if tls.ca else None, endpoint=host, port=port, client_id=self.client_id,
                keep_alive_interval_sec=config.keep_alive, session_expiry_interval_sec=config.session_expiry,
                extended_validation_and_flow_control_options=(
                    mqtt5.ExtendedValidationAndFlowControlOptions.AWS_IOT_CORE_DEFAULTS),
                on_publish_received=self._on_publish,
                on_lifecycle_connection_success=self._on_connection_success,
                on_lifecycle_connection_failure=self._on_connection_failure,
                on_lifecycle_disconnection=self._on_disconnection,
                on_lifecycle_stopped=self._on_stopped,
                **common)
        options = mqtt5.ClientOptions(
            host_name=host, port=port, tls_ctx=self._tls_context(),
            connect_options=mqtt5.ConnectPacket(
                client_id=self.client_id, keep_alive_interval_sec=config.keep_alive,
                session_expiry_interval_sec=config.session_expiry, username=config.username, password=password),
            disable_metrics=True,  # the SDK metrics go into the username, which a plain broker would reject
            **common, **callbacks)
        return mqtt5.Client(options)

    def _tls_context(self) -> io.ClientTlsContext | None:
        """None (plain TCP) without a ``tls`` section; mutual TLS when it names a certificate."""
        tls = self.config.tls
        if tls is None:
            return None
        if tls.cert is not None and tls.key is not None:
            options = io.TlsContextOptions.create_client_with_mtls_from_path(str(tls.cert), str(tls.key))
        else:
            options = io.TlsContextOptions()
        if tls.ca is not None:
            options.override_default_trust_store_from_path(None, str(tls.ca))
        return io.ClientTlsContext(options)

    # ------------------------------------------------------------------------------------------- callbacks
    # These run on the CRT's event-loop thread: they only flip flags, log, and hand work to our loop.

    def _on_connection_success(self, data: mqtt5.LifecycleConnectSuccessData) -> None:
        self.connects += 1
        connack = data.connack_packet
        self.session_present = bool(connack.session_present) if connack is not None else None
        self._confirmed = set()
        self._connected.set()
        self.logger.info("uplink connected", extra={"uplink": self.kind, "session_present": self.session_present,
                                                    "connects": self.connects})
        self._subscribe()

    def _peer(self) -> Peer:
        """What an explanation of a refused connection names (``edge/mqtt_errors.py``)."""
        host, port = self.config.address
        tls = self.config.tls
        return Peer(f"{host}:{port}", self.config.type == "aws_iot" or tls is not None,
                    cert=str(tls.cert) if tls is not None and tls.cert else None,
                    ca=str(tls.ca) if tls is not None and tls.ca else None, client_id=self.client_id,
                    username=self.config.username)

    def _on_connection_failure(self, data: mqtt5.LifecycleConnectFailureData) -> None:
        self._connected.clear()
        reason = explain_connect_failure(data.exception, data.connack_packet, self._peer())
        self.last_error = f"connect failed: {reason}"
        self.logger.warning("uplink connect failed: %s", reason, extra={
            "uplink": self.kind, "error": reason, "code": error_code(data.exception),
            "connack_reason": reason_code(data.connack_packet)})

    def _on_disconnection(self, data: mqtt5.LifecycleDisconnectData) -> None:
        self._connected.clear()
        if self._client is None:  # our own stop()
            self.logger.info("uplink disconnected", extra={"uplink": self.kind})
            return
        self.disconnects += 1
        reason = explain_disconnect(data.exception, data.disconnect_packet, self._peer())
        self.last_error = f"disconnected: {reason}"
        self.logger.warning("uplink disconnected: %s", reason, extra={
            "uplink": self.kind, "error": reason, "code": error_code(data.exception),
            "disconnect_reason": reason_code(data.disconnect_packet)})

    def _on_stopped(self, _data: mqtt5.LifecycleStoppedData) -> None:
        self._connected.clear()
        self._stopped.set()

    def _on_publish(self, data: mqtt5.PublishReceivedData) -> None:
        packet = data.publish_packet
        payload = packet.payload
        self._deliver(packet.topic, payload if isinstance(payload, bytes) else str(payload or "").encode())

    def _subscribe(self, only: list[str] | None = None) -> None:
        """Subscribe to the gateways' down topics on every connection (cheap when the session kept them)."""
        client = self._client
        wanted = list(self.down_topics) if only is None else only
        if client is None or not wanted:
            return
        for start in range(0, len(wanted), _SUBSCRIPTIONS_PER_PACKET):
            topics = wanted[start:start + _SUBSCRIPTIONS_PER_PACKET]
            packet = mqtt5.SubscribePacket(subscriptions=[
                mqtt5.Subscription(topic_filter=topic, qos=mqtt5.QoS.AT_LEAST_ONCE) for topic in topics])
            future = client.subscribe(packet)
            future.add_done_callback(lambda f, topics=topics: self._subscribed(f, topics))

    def _subscribed(self, future: Any, topics: list[str]) -> None:
        error = future.exception()
        if error is not None:
            self.logger.warning("uplink subscribe failed", extra={"topics": topics, "error": str(error)})
            return
        codes = [int(code) if code is not None else -1 for code in future.result().reason_codes]
        if any(code < 0 or code >= 0x80 for code in codes):
            self.last_error = f"subscribe refused: {dict(zip(topics, codes, strict=False))}"
            self.logger.warning("uplink subscribe refused", extra={"topics": topics, "reason_codes": codes})
        else:
            self._confirmed |= set(topics)
            self.logger.info("uplink subscribed", extra={"topics": topics})

    def set_down_topics(self, topics: list[str]) -> None:
        """Subscribe to the new topics and unsubscribe from the dropped ones now; reconnects use the new list."""
        old = set(self.down_topics)
        super().set_down_topics(topics)
        added = [topic for topic in self.down_topics if topic not in old]
        removed = sorted(old - set(self.down_topics))
        client = self._client
        if client is None or not self.connected:
            return
        if added:
            self._subscribe(added)
        if removed:
            self._confirmed -= set(removed)
            future = client.unsubscribe(mqtt5.UnsubscribePacket(topic_filters=removed))
            future.add_done_callback(lambda f: self._unsubscribed(f, removed))

    def _unsubscribed(self, future: Any, topics: list[str]) -> None:
        error = future.exception()
        if error is not None:
            self.logger.warning("uplink unsubscribe failed", extra={"topics": topics, "error": str(error)})

    @property
    def subscribed(self) -> bool:
        """Whether every down topic is confirmed on the current connection."""
        return self.connected and self._confirmed >= set(self.down_topics)

    # ------------------------------------------------------------------------------------------- publish

    async def publish(self, body: bytes) -> None:
        client = self._client
        if client is None:
            raise UplinkError("uplink is not started")
        try:
            future = client.publish(mqtt5.PublishPacket(topic=self.up_topic, payload=body,
                                                        qos=mqtt5.QoS.AT_LEAST_ONCE))
            result: mqtt5.PublishCompletionData = await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self.failed += 1
            self.last_error = self.last_publish_error = f"publish failed: {error}"
            raise UplinkError(self.last_error) from error
        puback = result.puback
        code = puback.reason_code if puback is not None else None
        if code not in _OK_PUBACK:
            self.failed += 1
            reason = getattr(code, "name", code)
            self.last_error = f"publish refused by the broker: {reason} {getattr(puback, 'reason_string', '') or ''}"
            self.last_publish_error = self.last_error = self.last_error.strip()
            raise UplinkError(self.last_error)
        self.published += 1

    async def publish_to(self, topic: str, body: bytes) -> None:
        """QoS 1 to ``topic`` (the device shadow's ``update``/``get``); raises ``UplinkError`` unless acknowledged."""
        client = self._client
        if client is None:
            raise UplinkError("uplink is not started")
        try:
            future = client.publish(mqtt5.PublishPacket(topic=topic, payload=body, qos=mqtt5.QoS.AT_LEAST_ONCE))
            # shielded: cancelling the caller must not cancel the CRT's future, which the CRT completes later
            result: mqtt5.PublishCompletionData = await asyncio.shield(asyncio.wrap_future(future))
        except asyncio.CancelledError:
            raise
        except Exception as error:
            raise UplinkError(f"publish to {topic} failed: {error}") from error
        code = result.puback.reason_code if result.puback is not None else None
        if code not in _OK_PUBACK:
            raise UplinkError(f"publish to {topic} refused by the broker: {getattr(code, 'name', code)}")

    def status(self) -> dict[str, Any]:
        host, port = self.config.address
        return {**super().status(), "host": host, "port": port, "client_id": self.client_id,
                "connects": self.connects, "disconnects": self.disconnects, "subscribed": self.subscribed,
                "session_present": self.session_present}
