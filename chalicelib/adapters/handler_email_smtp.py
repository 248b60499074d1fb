"""Email handler calls over SMTP (smtplib): the handler spec's ``host``, ``port``, ``tls`` (starttls, ssl,
none), ``username``/``password`` and ``from``.

Refused recipients, a refused login and a missing sender cannot succeed as configured (not retried); a
connection or server error is retryable. The password never appears in a message. The host is connected to under
the outbound policy (``core/outbound.py``): an address it refuses fails at once, not retried.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from email.message import EmailMessage
from typing import Any

from chalicelib.core.ports import HandlerCallError

from .outbound import OutboundPolicy, OutboundRefused, PolicyOf, connect_checked, default_policy


def build_message(sender: str, params: dict[str, Any]) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(params.get("to") or [])
    message["Subject"] = str(params.get("subject") or "")
    message.set_content(str(params.get("body") or ""))
    return message


class _CheckedSMTP(smtplib.SMTP):
    """smtplib's client connecting through ``connect_checked`` (built without a host, then ``connect``ed)."""

    policy: OutboundPolicy

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return connect_checked(host, port, timeout, self.policy, self.source_address)


class _CheckedSMTPSSL(smtplib.SMTP_SSL, _CheckedSMTP):
    """``SMTP_SSL._get_socket`` wraps what ``_CheckedSMTP._get_socket`` connected (verifying the host name)."""


def _connected(tls: str, host: str, port: int, timeout: float, policy: OutboundPolicy) -> smtplib.SMTP:
    client: _CheckedSMTP = _CheckedSMTPSSL(timeout=timeout, context=ssl.create_default_context()) \
        if tls == "ssl" else _CheckedSMTP(timeout=timeout)
    client.policy = policy
    code, message = client.connect(host, port)
    if code != 220:
        client.close()
        raise smtplib.SMTPConnectError(code, message)
    return client


class SmtpEmailExecutor:
    def __init__(self, timeout_s: float = 15.0, default_sender: str = "", policy: PolicyOf = default_policy) -> None:
        self.timeout_s = timeout_s
        self.default_sender = default_sender
        self.policy = policy

    def execute(self, spec: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        host = str(spec.get("host") or "")
        sender = str(params.get("from") or spec.get("from") or self.default_sender)
        if not host:
            raise HandlerCallError("email: the handler has no SMTP host", retryable=False)
        if not sender:
            raise HandlerCallError("email: no sender (the handler's 'from')", retryable=False)
        port = int(spec.get("port") or 587)
        tls = str(spec.get("tls") or "starttls")
        message = build_message(sender, params)
        try:
            client = _connected(tls, host, port, self.timeout_s, self.policy())
            with client:
                if tls == "starttls":
                    client.starttls(context=ssl.create_default_context())
                if spec.get("username"):
                    client.login(str(spec["username"]), str(spec.get("password") or ""))
                refused = client.send_message(message)
        except OutboundRefused as error:
            raise HandlerCallError(f"email via {host}:{port}: refused: {error}", retryable=False) from None
        except smtplib.SMTPAuthenticationError as error:
            raise HandlerCallError(f"email: SMTP login refused ({error.smtp_code})", retryable=False) from None
        except smtplib.SMTPRecipientsRefused as error:
            raise HandlerCallError(f"email: recipients refused: {', '.join(sorted(error.recipients))}",
                                   retryable=False) from None
        except smtplib.SMTPSenderRefused as error:
            raise HandlerCallError(f"email: sender {error.sender!r} refused ({error.smtp_code})",
                                   retryable=False) from None
        except smtplib.SMTPNotSupportedError as error:
            raise HandlerCallError(f"email: {host}:{port} {error} (check 'tls')", retryable=False) from None
        except (smtplib.SMTPException, OSError) as error:
            raise HandlerCallError(f"email via {host}:{port}: {type(error).__name__}: {error}") from None
        return {"sent": len(params.get("to") or []) - len(refused), "refused": sorted(refused)}
