"""Connections under the outbound policy (``core/outbound.py``): resolve once, check every address, connect to a
checked one.

``connect_checked`` is what the webhook calls (``http_call``), the SMTP client of email handlers and the MQTT
client of handlers with their own broker use in place of ``socket.create_connection``: the address judged is the
address connected to, so a name that answers a public address to the check and a private one to the connect (DNS
rebinding) gains nothing. TLS still verifies the host name (the callers wrap the socket with ``server_hostname``).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any

from chalicelib.core.outbound import OutboundPolicy, OutboundRefused

PolicyOf = Callable[[], OutboundPolicy]
"""Where an executor reads the current policy (``core.outbound.PolicySource``, or a fixed one in tests)."""

__all__ = ["OutboundPolicy", "OutboundRefused", "PolicyOf", "connect_checked", "default_policy"]


def private_allowed(setting: str = "auto") -> bool:
    """``OUTBOUND_PRIVATE``: ``auto`` allows private networks except in AWS Lambda."""
    if setting in ("allow", "deny"):
        return setting == "allow"
    return not os.environ.get("AWS_LAMBDA_FUNCTION_NAME")


def default_policy() -> OutboundPolicy:
    """The policy without an allow list, for executors built without a policy source (tools, tests)."""
    return OutboundPolicy(private=private_allowed())


def connect_checked(host: str, port: int, timeout: float | None, policy: OutboundPolicy,
                    source_address: Any = None) -> socket.socket:
    """A connected socket to ``host:port`` at an address the policy allows; ``OutboundRefused`` when it allows none
    of the addresses ``host`` resolves to, ``OSError`` when none of the allowed ones answers."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except UnicodeError as bad:
        raise OSError(f"bad host name {host!r}: {bad}") from None
    refusals: list[str] = []
    failure: OSError | None = None
    for family, kind, proto, _, address in found:
        reason = policy.refusal(host, str(address[0]))
        if reason is not None:
            refusals.append(reason)
            continue
        sock = socket.socket(family, kind, proto)
        try:
            if timeout is not None:
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(address)
            return sock
        except OSError as failed:
            sock.close()
            failure = failed
    if failure is not None:
        raise failure
    if refusals:
        raise OutboundRefused(refusals[0])
    raise OSError(f"{host} resolved to no address")
