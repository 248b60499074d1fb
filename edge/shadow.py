"""Gateway configs from the cloud, through the device shadow (``edge.cloud_config: true``).

The cloud writes the desired state of this device's shadow (``mycontroller_protocol/shadow.py`` describes the
documents): ``{"configVersion", "gateways": {id: config}}``. The agent

* subscribes to ``update/delta``, ``get/accepted``, ``get/rejected`` and ``update/rejected`` of its shadow,
  and asks for the whole document (``get``) each time its subscriptions are (re)confirmed, so a config
  changed while it was offline arrives on reconnect;
* applies a new desired state (``EdgeAgent.apply_cloud_config``): validates each gateway config as the YAML
  file's are, starts, restarts or stops only the gateways whose config changed, and keeps a gateway's current
  plugin running when its new config is bad (reported ``rejected`` with the reason);
* saves what it applied to ``<data_dir>/cloud_config.json`` (mode 0600: it holds the gateways' secrets), so
  it starts with the same gateways without a connection;
* reports ``{"configVersion", "applied": {id: {status, message, hash}}, "reportedAt"}`` on ``update``; a
  report that could not be published is sent again when the uplink is back.

This module holds the protocol (topics, messages, persistence); the agent owns the gateways.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mycontroller_protocol.shadow import (
    ShadowError,
    desired_gateways,
    parse_shadow_topic,
    reported_document,
    shadow_topic,
)

log = logging.getLogger("edge.shadow")

SUBSCRIBED_OPERATIONS = ("update/delta", "get/accepted", "get/rejected", "update/rejected")
STATE_FILE = "cloud_config.json"


@dataclass(slots=True)
class Decision:
    """What a shadow message asks of the agent: apply these gateways, fetch the whole document, or nothing."""

    action: Literal["apply", "get", "none"]
    gateways: dict[str, dict[str, Any]] = field(default_factory=dict)
    config_version: str | None = None
    reported: dict[str, Any] | None = None
    """The reported section the shadow holds (``get/accepted`` only): a report equal to it is not sent again."""


NOTHING = Decision("none")


def _iso_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class ShadowClient:
    """The device side of one thing's shadow: topics, message interpretation, the saved config, reports."""

    def __init__(self, thing: str, shadow_name: str, data_dir: Path) -> None:
        self.thing = thing
        self.shadow_name = shadow_name
        self.state_path = data_dir / STATE_FILE
        self.version_seen = 0
        """The highest shadow document version seen: older messages (redelivered, reordered) are ignored."""
        self.reported_ids: set[str] = set()
        """Gateway ids in the shadow's reported ``applied``: the ones gone are sent as ``null`` (deleted)."""
        self.last_report: dict[str, Any] | None = None
        self.pending_report: dict[str, Any] | None = None
        self.config_version: str | None = None
        self.applied_at: str | None = None
        self.messages = 0
        self.rejected_updates = 0
        self.last_error = ""

    # ------------------------------------------------------------------------------------------- topics

    def topic(self, operation: str) -> str:
        return shadow_topic(self.thing, operation, self.shadow_name)

    @property
    def subscriptions(self) -> list[str]:
        return [self.topic(operation) for operation in SUBSCRIBED_OPERATIONS]

    def owns(self, topic: str) -> bool:
        return topic.startswith("$aws/things/")

    # ------------------------------------------------------------------------------------------- messages

    def interpret(self, topic: str, payload: bytes) -> Decision:
        """What one message on a shadow topic asks for; bad or stale messages are logged and ignored."""
        self.messages += 1
        try:
            thing, name, operation = parse_shadow_topic(topic)
            if thing != self.thing or name != self.shadow_name:
                raise ShadowError(f"{topic} is not this device's shadow")
            body = json.loads(payload)
            if not isinstance(body, dict):
                raise ShadowError("a shadow message must be a JSON object")
        except (ShadowError, ValueError) as error:
            self.last_error = str(error)
            log.warning("shadow message ignored", extra={"topic": topic, "error": str(error)})
            return NOTHING
        version = body.get("version")
        if isinstance(version, int) and operation in ("update/delta", "get/accepted"):
            if version < self.version_seen:
                log.info("stale shadow message ignored", extra={"topic": topic, "version": version,
                                                                "seen": self.version_seen})
                return NOTHING
            self.version_seen = version
        state = body.get("state")
        if operation == "update/delta":
            if not isinstance(state, dict) or "configVersion" not in state:
                return NOTHING  # reported already runs the desired configVersion: nothing new
            if not isinstance(state.get("gateways"), dict):
                return Decision("get")  # no gateways left in desired, or a delta we cannot read whole
            return Decision("apply", desired_gateways(state), _text(state.get("configVersion")))
        if operation == "get/accepted":
            sections: dict[str, Any] = state if isinstance(state, dict) else {}
            desired: dict[str, Any] = sections["desired"] if isinstance(sections.get("desired"), dict) else {}
            reported: dict[str, Any] = sections["reported"] if isinstance(sections.get("reported"), dict) else {}
            applied = reported.get("applied")
            self.reported_ids = set(applied) if isinstance(applied, dict) else set()
            return Decision("apply", desired_gateways(desired), _text(desired.get("configVersion")), reported)
        if operation == "get/rejected":
            if body.get("code") == 404:  # no shadow: the cloud assigns no gateway to this device
                self.reported_ids = set()
                return Decision("apply", {}, None, {})
            self.last_error = f"get rejected: {body.get('code')} {body.get('message')}"
        elif operation == "update/rejected":
            self.rejected_updates += 1
            self.last_error = f"report rejected: {body.get('code')} {body.get('message')}"
        else:
            return NOTHING  # update/accepted and the like: nothing to do
        log.warning("shadow request rejected", extra={"topic": topic, "error": self.last_error})
        return NOTHING

    def get_request(self) -> bytes:
        return b"{}"

    # ------------------------------------------------------------------------------------------- reports

    def prepare_report(self, config_version: str | None, applied: dict[str, dict[str, Any]],
                       shadow_reported: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """The ``update`` body reporting ``applied``, or ``None`` when the shadow already says exactly that."""
        report = reported_document(config_version, applied, _iso_now())
        known = shadow_reported if shadow_reported is not None else self.last_report
        if known is not None and _same(known, report):
            self.pending_report = None
            return None
        body_applied: dict[str, Any] = dict(report["applied"])
        for gone in self.reported_ids - set(applied):
            body_applied[gone] = None  # a shadow update merges: null deletes
        self.pending_report = {"state": {"reported": {**report, "applied": body_applied}}}
        self.last_report = report
        return self.pending_report

    def report_sent(self, body: dict[str, Any]) -> None:
        if self.pending_report is body:
            self.pending_report = None
        applied = body["state"]["reported"]["applied"]
        self.reported_ids = {k for k, v in applied.items() if v is not None}

    # ------------------------------------------------------------------------------------------- saved config

    def load(self) -> tuple[dict[str, dict[str, Any]], str | None] | None:
        """The gateways applied last time (and their config version), or ``None`` if none were saved."""
        try:
            data = json.loads(self.state_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:
            log.error("saved cloud config unreadable; starting without it", extra={"path": str(self.state_path),
                                                                                  "error": str(error)})
            return None
        if not isinstance(data, dict) or data.get("thing") != self.thing:
            return None
        return desired_gateways(data), _text(data.get("configVersion"))

    def save(self, gateways: dict[str, dict[str, Any]], config_version: str | None) -> None:
        """Write atomically, readable only by the agent's user (the configs hold secrets)."""
        data = {"thing": self.thing, "configVersion": config_version, "gateways": gateways, "savedAt": _iso_now()}
        tmp = self.state_path.with_name(f".{self.state_path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=1, sort_keys=True)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.state_path)

    def status(self) -> dict[str, Any]:
        return {"thing": self.thing, "shadow": self.shadow_name or "(classic)", "config_version": self.config_version,
                "applied_at": self.applied_at, "version_seen": self.version_seen, "messages": self.messages,
                "report_pending": self.pending_report is not None, "rejected_updates": self.rejected_updates,
                "last_error": self.last_error}


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _same(reported: dict[str, Any], report: dict[str, Any]) -> bool:
    """Equal but for ``reportedAt``."""
    def strip(doc: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in doc.items() if k != "reportedAt"}

    return strip(reported) == strip(report)
