"""MQTT handler calls: publish a payload to a topic.

With a ``broker`` in the handler's spec (``mqtt://host:1883``, ``mqtts://host:8883``, ``tcp://``, ``ssl://``) the
call connects there with paho-mqtt (``username``/``password``, ``insecure`` skips certificate checks) and waits
for the publish to complete. Without one it publishes on the platform's own broker: IoT Core through iot-data in
AWS (``IotDataPublisher``), or the broker ``MQTT_BROKER`` names locally (``PahoPublisher``). A refused connection
or a timeout is retryable; a bad broker URL or bad credentials are not. A handler's own broker is connected to under
the outbound policy (``core/outbound.py``; an address it refuses fails at once); the platform broker is the
operator's and is not checked.
"""

from __future__ import annotations

import ssl
import threading
import urllib.parse
import uuid
from collections.abc import Callable
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.core.ports import HandlerCallError

from .outbound import OutboundPolicy, OutboundRefused, PolicyOf, connect_checked, default_policy

Publisher = Callable[[str, str, int, bool], None]
"""``publish(topic, payload, qos, retain)``; raises ``HandlerCallError``."""
TLS_SCHEMES: Final = ("mqtts", "ssl", "tls")
PLAIN_SCHEMES: Final = ("mqtt", "tcp")


class PahoPublisher:
    """One connection per call (handler calls are rare; a held connection would outlive a Lambda freeze)."""

    def __init__(self, broker: str, *, username: str = "", password: str = "", insecure: bool = False,
                 timeout_s: float = 10.0, policy: OutboundPolicy | None = None) -> None:
        parts = urllib.parse.urlsplit(broker if "://" in broker else f"mqtt://{broker}")
        if parts.scheme not in TLS_SCHEMES + PLAIN_SCHEMES or not parts.hostname:
            raise HandlerCallError(f"mqtt: broker must be mqtt://host:port or mqtts://host:port, got {broker!r}",
                                   retryable=False)
        self.tls = parts.scheme in TLS_SCHEMES
        self.host = parts.hostname
        self.port = parts.port or (8883 if self.tls else 1883)
        self.username = username or urllib.parse.unquote(parts.username or "")
        self.password = password or urllib.parse.unquote(parts.password or "")
        self.insecure = insecure
        self.timeout_s = timeout_s
        self.policy = policy
        """Connections checked against it (a handler's own broker); None: not checked (the platform broker)."""

    def __call__(self, topic: str, payload: str, qos: int, retain: bool) -> None:
        import paho.mqtt.client as mqtt

        where = f"mqtt {self.host}:{self.port}"
        client_class = mqtt.Client if self.policy is None else _checked_client(self.policy)
        client = client_class(mqtt.CallbackAPIVersion.VERSION2, client_id=f"mc-handler-{uuid.uuid4().hex[:12]}")
        client.connect_timeout = self.timeout_s
        if self.username:
            client.username_pw_set(self.username, self.password)
        if self.tls:
            context = ssl.create_default_context()
            if self.insecure:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            client.tls_set_context(context)
        connected = threading.Event()
        refused: list[str] = []

        def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any = None) -> None:
            if getattr(reason, "is_failure", False):
                refused.append(str(reason))
            connected.set()

        client.on_connect = on_connect
        try:
            client.connect(self.host, self.port, keepalive=30)
        except OutboundRefused as error:
            raise HandlerCallError(f"{where}: refused: {error}", retryable=False) from None
        except (OSError, ValueError) as error:
            raise HandlerCallError(f"{where}: {type(error).__name__}: {error}") from None
        client.loop_start()
        try:
            if not connected.wait(self.timeout_s):
                raise HandlerCallError(f"{where}: no CONNACK within {self.timeout_s:g}s")
            if refused:
                raise HandlerCallError(f"{where}: connection refused: {refused[0]}", retryable=False)
            info = client.publish(topic, payload, qos=qos, retain=retain)
            info.wait_for_publish(self.timeout_s)
            if not info.is_published():
                raise HandlerCallError(f"{where}: publish to {topic!r} not completed within {self.timeout_s:g}s")
        except (RuntimeError, ValueError) as error:
            raise HandlerCallError(f"{where}: {type(error).__name__}: {error}") from None
        finally:
            client.disconnect()
            client.loop_stop()


def _checked_client(policy: OutboundPolicy) -> Any:
    """paho's client connecting through ``connect_checked`` (TLS still verifies the broker's name)."""
    import paho.mqtt.client as mqtt

    class CheckedClient(mqtt.Client):
        def _create_socket_connection(self) -> Any:
            return connect_checked(self._host, self._port, self._connect_timeout, policy)

    return CheckedClient


class IotDataPublisher:
    """The platform broker in AWS: IoT Core's ``Publish`` (QoS 0 or 1; 2 is sent as 1)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def __call__(self, topic: str, payload: str, qos: int, retain: bool) -> None:
        try:
            self.client.publish(topic=topic, qos=min(qos, 1), retain=retain, payload=payload.encode())
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            raise HandlerCallError(f"mqtt via iot-data: {code}",
                                   retryable=code not in ("InvalidRequestException", "UnauthorizedException")
                                   ) from None
        except BotoCoreError as error:
            raise HandlerCallError(f"mqtt via iot-data: {type(error).__name__}") from None


class MqttExecutor:
    def __init__(self, platform: Publisher | None = None, policy: PolicyOf = default_policy) -> None:
        self.platform = platform
        self.policy = policy

    def execute(self, spec: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        topic, payload = str(params["topic"]), str(params.get("payload") or "")
        qos, retain = int(params.get("qos") or 0), bool(params.get("retain"))
        broker = str(spec.get("broker") or "")
        if broker:
            publish: Publisher = PahoPublisher(broker, username=str(spec.get("username") or ""),
                                               password=str(spec.get("password") or ""),
                                               insecure=bool(spec.get("insecure")), policy=self.policy())
        elif self.platform is not None:
            publish = self.platform
        else:
            raise HandlerCallError("mqtt: the handler has no broker and none is configured (MQTT_BROKER)",
                                   retryable=False)
        publish(topic, payload, qos, retain)
        return {"topic": topic, "bytes": len(payload.encode())}
