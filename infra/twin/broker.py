"""IoT Core's data plane as mosquitto: mutual TLS on ``<endpoint>:8883`` and each device's IoT policy as ACLs.

The device listener wants a client certificate signed by the twin's CA (``pki.py``; what ``CreateKeysAndCertificate``
issues against the twin), so any other certificate is refused during the TLS handshake. ``use_identity_as_username``
makes the certificate's common name the MQTT username, and ``write_acl`` gives each registered, ACTIVE certificate
the rights its attached IoT policies grant for each thing it is attached to, with ``${iot:Connection.Thing.ThingName}``
(and ``${iot:ClientId}``) replaced by that thing:

* ``iot:Publish`` on ``topic/T`` → ``topic write T``; ``iot:Receive`` on ``topic/T`` → ``topic read T`` (mosquitto
  checks a SUBSCRIBE against the same read lines, so a filter is allowed only inside what the device may receive;
  the ``iot:Subscribe`` statements are compared with them and every difference is reported);
* an AWS ``*`` that is a whole topic level becomes ``+`` (``#`` at the end); a ``*`` inside a level has no MQTT
  equivalent and is reported, not guessed;
* ``Deny`` statements become ``topic deny`` lines; a certificate that is inactive, attached to no thing, or whose
  policies do not allow ``iot:Connect`` as ``client/<thing>`` gets no line at all (so it can do nothing).

The ACL file is rewritten and mosquitto reloads it (SIGHUP) whenever the IoT control plane changes (a certificate,
attachment or policy), before the call that changed it is answered. The twin's own client connects on a second,
password-protected loopback listener with full rights (it is the shadow service, the rules engine and iot-data).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pwd
import secrets
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .iam import wildcard_match
from .pki import Authority

log = logging.getLogger("twin.broker")
IOT_PORT = 8883
"""AWS IoT Core's MQTT port, which ``infra.provision`` writes into edge.yaml."""
THING_VARIABLES = ("${iot:Connection.Thing.ThingName}", "${iot:ClientId}")


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def endpoint_address(preferred: str | None = None) -> str:
    """A loopback address whose port 8883 is free: the twin's "IoT data endpoint" (every 127.x address is this
    machine, so several twins can each have their own 8883)."""
    candidates = [preferred] if preferred else []
    candidates += [f"127.0.{(n >> 8) & 255}.{n & 255}" for n in range(2 + secrets.randbelow(200), 60000, 97)]
    for host in candidates:
        if host and _port_free(host, IOT_PORT):
            return host
    raise RuntimeError("no loopback address with port 8883 free")


def aws_topic_to_mqtt(resource_topic: str) -> str | None:
    """``mc/*/down`` → ``mc/+/down``, ``$aws/things/x/shadow/*`` → ``$aws/things/x/shadow/#``; None when an AWS
    wildcard sits inside a level (no MQTT equivalent)."""
    levels = resource_topic.split("/")
    out: list[str] = []
    for index, level in enumerate(levels):
        if level == "*":
            out.append("#" if index == len(levels) - 1 else "+")
        elif "*" in level or "?" in level:
            return None
        else:
            out.append(level)
    return "/".join(out)


@dataclass
class Grants:
    """One certificate's rights for one thing, in mosquitto's terms."""

    write: set[str] = field(default_factory=set)
    read: set[str] = field(default_factory=set)
    deny: set[str] = field(default_factory=set)
    subscribe: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)
    connect: bool = False


def grants_for(documents: list[dict[str, Any]], thing: str, region: str, account: str) -> Grants:
    grants = Grants()
    prefix = f"arn:aws:iot:{region}:{account}:"
    for document in documents:
        statements = document.get("Statement") or []
        for statement in statements if isinstance(statements, list) else [statements]:
            actions = statement.get("Action") or []
            actions = [actions] if isinstance(actions, str) else actions
            resources = statement.get("Resource") or []
            resources = [resources] if isinstance(resources, str) else resources
            deny = statement.get("Effect") == "Deny"
            for resource in resources:
                for variable in THING_VARIABLES:
                    resource = resource.replace(variable, thing)
                if "${" in resource:
                    grants.notes.append(f"policy variable in {resource} is not known to the twin")
                    continue
                for action in actions:
                    for kind in ("Publish", "Receive", "Subscribe", "Connect"):
                        if not wildcard_match(action, f"iot:{kind}", case=False):
                            continue
                        if kind == "Connect":
                            if not deny and wildcard_match(resource, f"{prefix}client/{thing}"):
                                grants.connect = True
                            continue
                        head = "topicfilter/" if kind == "Subscribe" else "topic/"
                        if resource == "*":
                            pattern: str | None = "#"
                        elif wildcard_match(resource, prefix + head + "x") or resource.startswith(prefix + head):
                            pattern = aws_topic_to_mqtt(resource[len(prefix + head):]) \
                                if resource.startswith(prefix + head) else "#"
                        else:
                            continue
                        if pattern is None:
                            grants.notes.append(f"{action} on {resource}: a '*' inside a topic level has no MQTT "
                                                "equivalent; not granted")
                            continue
                        if deny:
                            grants.deny.add(pattern)
                        elif kind == "Publish":
                            grants.write.add(pattern)
                        elif kind == "Receive":
                            grants.read.add(pattern)
                        else:
                            grants.subscribe.add(pattern)
    if grants.subscribe != grants.read:
        grants.notes.append(f"iot:Subscribe allows {sorted(grants.subscribe)} but iot:Receive {sorted(grants.read)}: "
                            "mosquitto enforces subscriptions through the Receive topics")
    return grants


class Broker:
    """The mosquitto process of one twin."""

    def __init__(self, directory: Path, authority: Authority, host: str) -> None:
        self.directory = directory
        self.host = host
        self.port = IOT_PORT
        self.internal_port = free_port()
        self.internal_user = "twin"
        self.internal_password = secrets.token_urlsafe(16)
        self.acl_path = directory / "acl"
        self.log_path = directory / "mosquitto.log"
        self._lock = threading.Lock()
        self.process: subprocess.Popen[bytes] | None = None
        self.notes: dict[str, list[str]] = {}
        directory.mkdir(parents=True, exist_ok=True)
        cert, key = authority.server_certificate(directory, [host, "localhost"])
        passwords = directory / "passwords"
        passwords.write_text("")
        subprocess.run(["mosquitto_passwd", "-b", str(passwords), self.internal_user, self.internal_password],
                       check=True, capture_output=True)
        self.acl_path.write_text("# no device yet\n")
        (directory / "mosquitto.conf").write_text("\n".join([
            "per_listener_settings true",
            f"user {pwd.getpwuid(os.geteuid()).pw_name}",  # as root mosquitto would drop to a user that cannot read
            "max_packet_size 131072",
            "persistence false",
            f"log_dest file {self.log_path}",
            "log_type error", "log_type warning", "log_type notice", "log_type information",
            "connection_messages true",
            "max_keepalive 1200",
            f"listener {self.port} {host}",
            f"cafile {authority.ca_path}", f"certfile {cert}", f"keyfile {key}",
            "require_certificate true", "use_identity_as_username true", "allow_anonymous false",
            f"acl_file {self.acl_path}",
            f"listener {self.internal_port} 127.0.0.1",
            "allow_anonymous false", f"password_file {passwords}",
            "",
        ]))

    def start(self) -> None:
        self.process = subprocess.Popen(["mosquitto", "-c", str(self.directory / "mosquitto.conf")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.process.poll() is not None:
                error = (self.process.stderr.read() if self.process.stderr else b"").decode()
                raise RuntimeError(f"mosquitto exited: {error or self.log_path.read_text()[-2000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.internal_port), 0.2):
                return
            time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not start (see {self.log_path})")

    def write_acl(self, certificates: list[dict[str, Any]], region: str, account: str) -> None:
        """``certificates``: ``{"username", "status", "things", "documents"}`` each; writes and reloads."""
        lines = ["# written by the cloud twin from the IoT policies attached to each certificate"]
        notes: dict[str, list[str]] = {}
        for cert in certificates:
            if cert["status"] != "ACTIVE" or not cert["username"]:
                continue
            block: list[str] = []
            for thing in cert["things"]:
                grants = grants_for(cert["documents"], thing, region, account)
                if grants.notes:
                    notes[thing] = grants.notes
                if not grants.connect:
                    notes.setdefault(thing, []).append(f"certificate {cert['username']}: no iot:Connect as "
                                                       f"client/{thing}: no rights")
                    continue
                block += [f"topic deny {t}" for t in sorted(grants.deny)]
                block += [f"topic write {t}" for t in sorted(grants.write)]
                block += [f"topic read {t}" for t in sorted(grants.read)]
            if block:
                lines += ["", f"user {cert['username']}", *block]
        with self._lock:
            self.acl_path.write_text("\n".join(lines) + "\n")
            for thing, items in notes.items():
                if self.notes.get(thing) != items:
                    for note in items:
                        log.warning("IoT policy for %s: %s", thing, note)
            self.notes = notes
            if self.process is not None and self.process.poll() is None:
                self.process.send_signal(signal.SIGHUP)
                time.sleep(0.05)  # mosquitto reloads between two network passes

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def acl_documents(self) -> str:
        return json.dumps({"acl": self.acl_path.read_text(), "notes": self.notes})
