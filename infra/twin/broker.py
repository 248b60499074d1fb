"""IoT Core's data plane as mosquitto: mutual TLS on ``<endpoint>:8883`` and each device's IoT policy enforced.

The device listener wants a client certificate signed by the twin's CA (``pki.py``; what ``CreateKeysAndCertificate``
issues against the twin), so any other certificate is refused during the TLS handshake. ``use_identity_as_username``
makes the certificate's common name the MQTT username, and mosquitto's dynamic-security plugin gives each
registered, ACTIVE certificate the rights its attached IoT policies grant for each thing it is attached to, with
``${iot:Connection.Thing.ThingName}`` (and ``${iot:ClientId}``) replaced by that thing:

* ``iot:Publish`` on ``topic/T`` → ``publishClientSend T``; ``iot:Receive`` on ``topic/T`` → ``publishClientReceive
  T``; ``iot:Subscribe`` on ``topicfilter/F`` → ``subscribeLiteral F`` (AWS matches a filter literally), or
  ``subscribePattern`` when ``F`` holds an AWS ``*``; so a refused SUBSCRIBE gets 0x87 and a refused PUBLISH a
  PUBACK 0x87, as from AWS;
* an AWS ``*`` that is a whole topic level becomes ``+`` (``#`` at the end); a ``*`` inside a level has no MQTT
  equivalent and is reported, not guessed;
* ``Deny`` statements become denying ACLs of higher priority; a certificate that is inactive, attached to no thing,
  or whose policies do not allow ``iot:Connect`` as ``client/<thing>`` gets no rights at all.

The rights are sent to the plugin (``$CONTROL/dynamic-security/v1``, by the twin's admin certificate) whenever the
IoT control plane changes (a certificate, attachment or policy), before the call that changed it is answered. The
twin's own client connects on a second, password-protected loopback listener with full rights (it is the shadow
service, the rules engine and iot-data).
"""

from __future__ import annotations

import contextlib
import glob
import json
import logging
import os
import pwd
import secrets
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
DYNSEC_PLUGIN_GLOBS = ("/usr/lib/*/mosquitto_dynamic_security.so", "/usr/lib/mosquitto_dynamic_security.so",
                       "/usr/local/lib/mosquitto_dynamic_security.so", "/usr/lib/*/mosquitto/*dynamic_security.so")


def dynsec_plugin() -> str:
    """mosquitto's dynamic-security plugin (Debian ships it with mosquitto, under the architecture's lib dir)."""
    for pattern in DYNSEC_PLUGIN_GLOBS:
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    raise RuntimeError("mosquitto's dynamic-security plugin (mosquitto_dynamic_security.so) is not installed")


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


SEND, RECEIVE, SUBSCRIBE_LITERAL, SUBSCRIBE_PATTERN = ("publishClientSend", "publishClientReceive",
                                                       "subscribeLiteral", "subscribePattern")
"""mosquitto's dynamic-security ACL types: AWS's iot:Publish, iot:Receive and iot:Subscribe (a filter without AWS
wildcards is literal, as in AWS; one with a whole-level ``*`` is a pattern)."""


@dataclass
class Grants:
    """One certificate's rights for one thing, as dynamic-security ACLs: ACL type → topics."""

    allow: dict[str, set[str]] = field(default_factory=dict)
    deny: dict[str, set[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    connect: bool = False

    def add(self, deny: bool, kind: str, topic: str) -> None:
        (self.deny if deny else self.allow).setdefault(kind, set()).add(topic)

    def acls(self) -> list[dict[str, Any]]:
        """Denials first (higher priority), then what is allowed, in a stable order."""
        acls = [{"acltype": kind, "topic": topic, "priority": 10, "allow": False}
                for kind, topics in sorted(self.deny.items()) for topic in sorted(topics)]
        return acls + [{"acltype": kind, "topic": topic, "priority": 0, "allow": True}
                       for kind, topics in sorted(self.allow.items()) for topic in sorted(topics)]


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
                        if wildcard_match(action, f"iot:{kind}", case=False):
                            _grant(grants, kind, resource, prefix, thing, deny, action)
    return grants


def _grant(grants: Grants, kind: str, resource: str, prefix: str, thing: str, deny: bool, action: str) -> None:
    if kind == "Connect":
        if not deny and wildcard_match(resource, f"{prefix}client/{thing}"):
            grants.connect = True
        return
    head = prefix + ("topicfilter/" if kind == "Subscribe" else "topic/")
    if resource == "*":
        topic = "*"
    elif resource.startswith(head):
        topic = resource[len(head):]
    else:
        return
    if kind == "Subscribe" and "*" not in topic and "?" not in topic:
        grants.add(deny, SUBSCRIBE_LITERAL, topic)
        return
    pattern = aws_topic_to_mqtt(topic)
    if pattern is None:
        grants.notes.append(f"{action} on {resource}: a '*' inside a topic level has no MQTT equivalent; not granted")
        return
    grants.add(deny, {"Publish": SEND, "Receive": RECEIVE, "Subscribe": SUBSCRIBE_PATTERN}[kind], pattern)


class DynsecAdmin:
    """The twin's administrative connection to mosquitto's dynamic-security plugin (``$CONTROL`` topics)."""

    TOPIC = "$CONTROL/dynamic-security/v1"

    def __init__(self, host: str, port: int, ca: Path, cert: Path, key: Path) -> None:
        import ssl

        import paho.mqtt.client as mqtt

        self._lock = threading.Lock()
        self._answer = threading.Event()
        self._responses: list[dict[str, Any]] = []
        self._ready = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="twin-dynsec-admin",
                                  protocol=mqtt.MQTTv5)
        context = ssl.create_default_context(cafile=str(ca))
        context.load_cert_chain(str(cert), str(key))
        self.client.tls_set_context(context)
        self.client.on_connect = lambda c, u, f, reason, p: c.subscribe(f"{self.TOPIC}/response", qos=1)
        self.client.on_subscribe = lambda c, u, mid, codes, p: self._ready.set()
        self.client.on_message = self._on_message
        self.client.connect(host, port, keepalive=60)
        self.client.loop_start()
        if not self._ready.wait(10):
            raise RuntimeError("the twin could not reach the broker's dynamic-security plugin")

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        try:
            self._responses = list(json.loads(message.payload).get("responses") or [])
        except ValueError:
            self._responses = [{"error": "unreadable response"}]
        self._answer.set()

    def run(self, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send the commands in one message; the plugin's responses (each with ``error`` when it failed)."""
        if not commands:
            return []
        with self._lock:
            self._answer.clear()
            self.client.publish(self.TOPIC, json.dumps({"commands": commands}), qos=1)
            if not self._answer.wait(10):
                raise RuntimeError("the broker's dynamic-security plugin did not answer")
            return self._responses

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _desired_roles(certificates: list[dict[str, Any]], region: str,
                   account: str) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[str]]]:
    """Each active certificate's ACLs (the union over its things' grants), and the notes per thing."""
    desired: dict[str, list[dict[str, Any]]] = {}
    notes: dict[str, list[str]] = {}
    for cert in certificates:
        if cert["status"] != "ACTIVE" or not cert["username"]:
            continue
        acls: list[dict[str, Any]] = []
        for thing in cert["things"]:
            grants = grants_for(cert["documents"], thing, region, account)
            if grants.notes:
                notes[thing] = grants.notes
            if not grants.connect:
                notes.setdefault(thing, []).append(f"certificate {cert['username']}: no iot:Connect as "
                                                   f"client/{thing}: no rights")
                continue
            acls += [acl for acl in grants.acls() if acl not in acls]
        desired[cert["username"]] = acls
    return desired, notes


def _role_commands(current: dict[str, list[dict[str, Any]]],
                   desired: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The dynamic-security commands that turn the ``current`` roles into the ``desired`` ones (a changed role is
    deleted with its client and created again)."""
    commands: list[dict[str, Any]] = []
    for username in sorted(set(current) | set(desired)):
        if current.get(username) == desired.get(username):
            continue
        if username in current:
            commands += [{"command": "deleteClient", "username": username},
                         {"command": "deleteRole", "rolename": username}]
        if username in desired:
            commands.append({"command": "createRole", "rolename": username})
            commands += [{"command": "addRoleACL", "rolename": username, **acl} for acl in desired[username]]
            commands.append({"command": "createClient", "username": username, "roles": [{"rolename": username}]})
    return commands


class Broker:
    """The mosquitto process of one twin."""

    def __init__(self, directory: Path, authority: Authority, host: str) -> None:
        self.directory = directory
        self.host = host
        self.port = IOT_PORT
        self.internal_port = free_port()
        self.internal_user = "twin"
        self.internal_password = secrets.token_urlsafe(16)
        self.authority = authority
        self.dynsec_path = directory / "dynamic-security.json"
        self.log_path = directory / "mosquitto.log"
        self.roles: dict[str, list[dict[str, Any]]] = {}
        """Each certificate's (username's) ACLs as the plugin has them."""
        self.admin: DynsecAdmin | None = None
        self._lock = threading.Lock()
        self.process: subprocess.Popen[bytes] | None = None
        self.notes: dict[str, list[str]] = {}
        directory.mkdir(parents=True, exist_ok=True)
        cert, key = authority.server_certificate(directory, [host, "localhost"])
        passwords = directory / "passwords"
        passwords.write_text("")
        subprocess.run(["mosquitto_passwd", "-b", str(passwords), self.internal_user, self.internal_password],
                       check=True, capture_output=True)
        admin = authority.device_certificate()
        self.admin_files = (directory / "admin.pem", directory / "admin.key")
        self.admin_files[0].write_text(admin.certificate_pem)
        self.admin_files[1].write_text(admin.private_key_pem)
        self.admin_files[1].chmod(0o600)
        control = "$CONTROL/dynamic-security/#"
        self.dynsec_path.write_text(json.dumps({
            "defaultACLAccess": {SEND: False, RECEIVE: False, "subscribe": False, "unsubscribe": True},
            "clients": [{"username": admin.common_name, "roles": [{"rolename": "twin-admin"}]}],
            "groups": [],
            "roles": [{"rolename": "twin-admin", "acls": [
                {"acltype": SEND, "topic": control, "allow": True},
                {"acltype": RECEIVE, "topic": control, "allow": True},
                {"acltype": SUBSCRIBE_PATTERN, "topic": control, "allow": True}]}]}))
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
            f"plugin {dynsec_plugin()}", f"plugin_opt_config_file {self.dynsec_path}",
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
                self.admin = DynsecAdmin(self.host, self.port, self.authority.ca_path, *self.admin_files)
                return
            time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not start (see {self.log_path})")

    def write_acl(self, certificates: list[dict[str, Any]], region: str, account: str) -> None:
        """``certificates``: ``{"username", "status", "things", "documents"}`` each. Each certificate is a client of
        the dynamic-security plugin with one role holding its rights; what changed is sent to the plugin (which
        disconnects the clients of a changed role: they reconnect with the new rights, as after a policy change)."""
        desired, notes = _desired_roles(certificates, region, account)
        with self._lock:
            commands = _role_commands(self.roles, desired)
            if commands and self.admin is not None:
                for response in self.admin.run(commands):
                    if response.get("error"):
                        log.error("broker rights: %s failed: %s", response.get("command"), response["error"])
            self.roles = desired
            for thing, items in notes.items():
                if self.notes.get(thing) != items:
                    for note in items:
                        log.warning("IoT policy for %s: %s", thing, note)
            self.notes = notes

    def stop(self) -> None:
        if self.admin is not None:
            self.admin.close()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()


