"""Why an MQTT connection failed, in words: the uplink's and the MQTT gateways' connect and disconnect reasons.

awscrt reports what its socket saw (``AWS_IO_TLS_ERROR_READ_FAILURE``: the broker closed the TLS handshake) and,
when the broker answered the CONNECT, the CONNACK's reason code. A person setting up a device needs the cause:
the broker refused the client certificate, it does not trust us, the password is wrong, the client id is not
allowed. The awscrt code name stays available (``code``) for the log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CONNACK_REASONS: dict[int, str] = {
    0x80: "unspecified error",
    0x81: "malformed packet",
    0x82: "protocol error",
    0x83: "implementation specific error",
    0x84: "unsupported protocol version (the broker does not speak MQTT 5)",
    0x85: "client identifier not valid",
    0x86: "bad user name or password",
    0x87: "not authorized",
    0x88: "server unavailable",
    0x89: "server busy",
    0x8A: "banned",
    0x8C: "bad authentication method",
    0x90: "topic name invalid",
    0x95: "packet too large",
    0x97: "quota exceeded",
    0x99: "payload format invalid",
    0x9A: "retain not supported",
    0x9B: "QoS not supported",
    0x9C: "use another server",
    0x9D: "server moved",
    0x9F: "connection rate exceeded",
}
"""MQTT 5 CONNACK reason codes (section 3.2.2.2), as the specification names them."""

DISCONNECT_REASONS: dict[int, str] = {
    **CONNACK_REASONS,
    0x8B: "server shutting down",
    0x8D: "keep alive timeout",
    0x8E: "session taken over (another client connected with the same client id)",
    0x8F: "topic filter invalid",
    0x93: "receive maximum exceeded",
    0x94: "topic alias invalid",
    0x96: "message rate too high",
    0x98: "administrative action",
    0xA0: "maximum connect time",
    0xA1: "subscription identifiers not supported",
    0xA2: "wildcard subscriptions not supported",
}
"""MQTT 5 DISCONNECT reason codes a broker sends (section 3.14.2.1)."""


@dataclass(frozen=True)
class Peer:
    """What the client was told to use: to name the right setting in an explanation."""

    address: str
    """``host:port`` or the broker URL."""
    tls: bool
    cert: str | None = None
    """The client certificate's path, when mutual TLS is configured."""
    ca: str | None = None
    client_id: str = ""
    username: str | None = None
    setting: str = "uplink"
    """Where these come from in the config: ``uplink`` or a gateway's ``provider.protocol``."""

    def key(self, what: str) -> str:
        """The config key of ``cert``, ``key``, ``ca``, ``username`` for this side."""
        if self.setting == "uplink":
            return f"uplink.{'tls.' if what in ('cert', 'key', 'ca') else ''}{what}"
        return f"{self.setting}.{ {'cert': 'certFile', 'key': 'keyFile', 'ca': 'caFile'}.get(what, what)}"


def error_code(error: Any) -> str:
    """The awscrt error name (``AWS_IO_TLS_ERROR_READ_FAILURE``), or the exception's class name."""
    return str(getattr(error, "name", "") or type(error).__name__) if error is not None else ""


def reason_code(packet: Any) -> int | None:
    code = getattr(packet, "reason_code", None) if packet is not None else None
    return int(code) if code is not None else None


def _connack(code: int, reason: str, peer: Peer) -> str:
    words = CONNACK_REASONS.get(code, "refused")
    text = f"the broker at {peer.address} refused the connection: CONNACK reason 0x{code:02X} {words}"
    if code in (0x86, 0x87):
        if peer.username:
            hint = f"check {peer.key('username')} and {peer.key('password')}"
        elif peer.cert:
            hint = (f"for AWS IoT Core: the policy attached to the certificate does not allow iot:Connect as client "
                    f"id {peer.client_id!r}, or the certificate is not attached to that thing")
        else:
            hint = f"it wants a user name and password: {peer.key('username')} and {peer.key('password')}"
        text += f" ({hint})"
    elif code == 0x85:
        text += f" (client id {peer.client_id!r})"
    return text + (f": {reason}" if reason else "")


def _tls_explanation(code: str, peer: Peer) -> str:
    if code == "AWS_IO_TLS_ERROR_READ_FAILURE":  # the broker ended the handshake: it did not take our side of it
        if peer.cert:
            return (f"the broker at {peer.address} refused the client certificate {peer.cert} ({peer.key('cert')}):"
                    " it is not signed by a CA the broker trusts, or it is revoked or inactive (AWS IoT Core: not "
                    "registered, or not ACTIVE)")
        return (f"the broker at {peer.address} ended the TLS handshake: it wants a client certificate "
                f"({peer.key('cert')} and {peer.key('key')})")
    trust = f"{peer.key('ca')} {peer.ca}" if peer.ca else "the system trust store"
    return (f"TLS with the broker at {peer.address} failed: its certificate is not trusted by {trust}, or does not "
            "name the host connected to")


def explain_connect_failure(error: Any, connack: Any, peer: Peer) -> str:
    """One sentence saying why a connection attempt failed, naming the setting to look at."""
    code = reason_code(connack)
    if code is not None and code >= 0x80:
        return _connack(code, str(getattr(connack, "reason_string", "") or ""), peer)
    name = error_code(error)
    if name in ("AWS_IO_TLS_ERROR_READ_FAILURE", "AWS_IO_TLS_ERROR_NEGOTIATION_FAILURE",
                "AWS_IO_TLS_ERROR_ALERT_RECEIVED", "AWS_IO_TLS_ERROR_NOT_NEGOTIATED") and peer.tls:
        return _tls_explanation(name, peer)
    if name == "AWS_IO_SOCKET_CONNECTION_REFUSED":
        return f"nothing accepts connections at {peer.address} (connection refused): is the broker running there?"
    if name in ("AWS_IO_DNS_INVALID_NAME", "AWS_IO_DNS_QUERY_FAILED", "AWS_IO_DNS_NO_ADDRESS_FOR_HOST"):
        return f"the host name of {peer.address} cannot be resolved"
    if name in ("AWS_IO_SOCKET_TIMEOUT", "AWS_ERROR_MQTT5_CONNACK_TIMEOUT", "AWS_IO_SOCKET_NO_ROUTE_TO_HOST",
                "AWS_IO_SOCKET_NETWORK_DOWN"):
        return f"no answer from {peer.address} ({_words(error)})"
    if name in ("AWS_IO_SOCKET_CLOSED", "AWS_ERROR_MQTT5_DECODE_PROTOCOL_ERROR"):
        other = "without TLS (add a tls section?)" if not peer.tls else "with TLS (is it a plain MQTT port?)"
        return f"the broker at {peer.address} closed the connection before answering: spoken to {other}"
    return f"cannot connect to {peer.address}: {_words(error)}"


def explain_disconnect(error: Any, packet: Any, peer: Peer) -> str:
    """Why an established connection ended: the broker's DISCONNECT reason when it sent one."""
    code = reason_code(packet)
    if code is not None and code >= 0x80:
        reason = str(getattr(packet, "reason_string", "") or "")
        text = (f"the broker at {peer.address} disconnected us: reason 0x{code:02X} "
                f"{DISCONNECT_REASONS.get(code, 'error')}")
        if code == 0x87:
            text += " (for AWS IoT Core: a publish or subscribe the policy does not allow)"
        return text + (f": {reason}" if reason else "")
    return f"connection to {peer.address} lost: {_words(error)}"


def _words(error: Any) -> str:
    if error is None:
        return "no reason given"
    message = str(getattr(error, "message", "") or "").rstrip(".")
    return message or str(error)
