"""Gateway configs from the cloud: what an edge device's shadow wants (desired) and what it runs (reported).

A gateway resource with ``edgeId`` set belongs to that edge device (its IoT thing). The thing's shadow (the
named shadow ``mycontroller`` by default, the classic one when the name is empty) carries:

* desired, written by the cloud on every upsert or delete of such a gateway::

      {"configVersion": "<hash>", "gateways": {"<gateway id>": {<config in the reference's shape>}, ...}}

  Configs hold their secrets (an MQTT password, say): the edge needs them, and only the thing itself (its IoT
  policy) and the cloud's functions may read its shadow. The REST API never shows them (``redact_secrets``).
  Ids no longer wanted are set to ``null``, which the shadow service deletes.
* reported, written by the edge after it applied a config::

      {"configVersion": "<hash it runs>", "applied": {"<gateway id>": {"status": "running" | "disabled" |
       "rejected" | "file", "message": "...", "hash": "<config hash>"}}, "reportedAt": "..."}

  Reported deliberately has no ``gateways`` key: the shadow's delta (desired leaves that differ from reported)
  then always carries the whole desired ``gateways`` map, so an agent can act on a delta alone, removals
  included, and ``configVersion`` in a delta says that something changed.

The cloud turns reported entries into the gateway resources' ``others.edge`` (``reported_update``). Pure
functions: the adapters (iot-data, in-process) and the edge agent call them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any, Final

from .errors import ProtocolError
from .ids import ID_PATTERN

Record = dict[str, Any]
"""A resource as the cloud stores it (``chalicelib/core/model.py``'s ``Record``)."""

DEFAULT_SHADOW_NAME: Final = "mycontroller"
"""Our own named shadow, so that other users of the classic shadow (fleet tools) and we do not collide."""
REDACTED: Final = "********"
"""What the API shows instead of a secret; sent back unchanged in an upsert, it keeps the stored secret."""
SECRET_KEYS: Final = frozenset({"password", "secret", "token", "passphrase", "apikey", "api_key", "apiKey",
                                "encryptionkey", "applicationkey"})
"""Keys (anywhere in a gateway's ``provider``) whose values are secrets; the edge agent uses the same set."""
MAX_DESIRED_BYTES: Final = 8 * 1024
"""AWS IoT Core refuses a shadow whose desired (or reported) section is larger than 8 KB."""
CONFIG_KEYS: Final = ("description", "enabled", "reconnectDelay", "provider", "labels")
"""The keys of a gateway resource that the edge runs a gateway with (the reference's shape)."""
APPLIED_STATUSES: Final = frozenset({"running", "disabled", "rejected", "file"})
STATE_ERROR: Final = "error"
"""The state a gateway whose config the edge rejected is in (the cloud model's ``StateStatus.ERROR``)."""


class ShadowError(ProtocolError, ValueError):
    """A shadow document or topic that cannot be used; the message says why."""


# --------------------------------------------------------------------------------------------- topics


def shadow_prefix(thing: str, shadow_name: str = DEFAULT_SHADOW_NAME) -> str:
    """``$aws/things/<thing>/shadow`` (classic) or ``$aws/things/<thing>/shadow/name/<name>`` (named)."""
    if not ID_PATTERN.match(thing):
        raise ShadowError(f"thing name {thing!r} is not a valid edge id")
    base = f"$aws/things/{thing}/shadow"
    return f"{base}/name/{shadow_name}" if shadow_name else base


def shadow_topic(thing: str, operation: str, shadow_name: str = DEFAULT_SHADOW_NAME) -> str:
    """The topic of one shadow operation: ``update``, ``update/delta``, ``get/accepted``, ``update/documents``…"""
    return f"{shadow_prefix(thing, shadow_name)}/{operation}"


def parse_shadow_topic(topic: str) -> tuple[str, str, str]:
    """``(thing, shadow name or "", operation)`` of a shadow topic; ``ShadowError`` for any other topic."""
    parts = topic.split("/")
    if len(parts) < 5 or parts[0] != "$aws" or parts[1] != "things" or parts[3] != "shadow":
        raise ShadowError(f"{topic!r} is not a shadow topic")
    thing, rest = parts[2], parts[4:]
    name = ""
    if rest[0] == "name":
        if len(rest) < 3:
            raise ShadowError(f"{topic!r} is not a shadow topic")
        name, rest = rest[1], rest[2:]
    return thing, name, "/".join(rest)


# --------------------------------------------------------------------------------------------- secrets


def is_secret_key(key: Any) -> bool:
    return isinstance(key, str) and (key in SECRET_KEYS or key.lower() in SECRET_KEYS)


def redact_secrets(value: Any) -> Any:
    """A copy with every set secret replaced by ``REDACTED`` (nested dicts and lists included)."""
    if isinstance(value, Mapping):
        return {k: REDACTED if is_secret_key(k) and v not in (None, "") else redact_secrets(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [redact_secrets(v) for v in value]
    return value


def restore_secrets(new: Any, old: Any, path: str = "provider") -> Any:
    """``new`` with each ``REDACTED`` placeholder replaced by the stored secret at the same place in ``old``.

    A placeholder with nothing stored behind it raises ``ShadowError`` naming the key path: saving it would
    send asterisks to the device as its password.
    """
    if isinstance(new, Mapping):
        old_map = old if isinstance(old, Mapping) else {}
        result: dict[str, Any] = {}
        for key, value in new.items():
            where = f"{path}.{key}"
            if value == REDACTED and is_secret_key(key):
                stored = old_map.get(key)
                if stored in (None, "", REDACTED):
                    raise ShadowError(f"{where}: {REDACTED!r} keeps a stored secret only; none is stored here, "
                                      "send the secret itself")
                result[key] = stored
            else:
                result[key] = restore_secrets(value, old_map.get(key), where)
        return result
    if isinstance(new, list):
        old_list = old if isinstance(old, list) else []
        return [restore_secrets(v, old_list[i] if i < len(old_list) else None, f"{path}[{i}]")
                for i, v in enumerate(new)]
    return new


def secret_key_path(key_path: str) -> bool:
    """Whether a list filter or sort on this key path would read a secret (an oracle, so it is refused)."""
    return any(is_secret_key(part) for part in key_path.strip().split("."))


# --------------------------------------------------------------------------------------------- desired


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def config_hash(config: Mapping[str, Any]) -> str:
    """A short, stable fingerprint of one gateway config (secrets included: a new password is a new config)."""
    return hashlib.sha256(_canonical(config).encode()).hexdigest()[:16]


def gateway_config(record: Mapping[str, Any]) -> dict[str, Any]:
    """The config the edge runs a gateway resource with: the reference's shape, secrets included; and
    ``reloadedOn`` once the gateway was reloaded from the API (a new value restarts it on its edge)."""
    config = {key: record[key] for key in CONFIG_KEYS if key in record and record[key] is not None}
    others = record.get("others")
    if isinstance(others, Mapping) and others.get("reloadedOn"):
        config["reloadedOn"] = others["reloadedOn"]
    return config


def gateways_of(records: Iterable[Mapping[str, Any]], thing: str) -> list[Mapping[str, Any]]:
    return [r for r in records if r.get("edgeId") == thing]


def desired_document(gateways: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The desired state for one thing from its gateway resources; ``ShadowError`` if it would be too large."""
    configs = {str(record["id"]): gateway_config(record) for record in gateways}
    document = {"configVersion": config_hash(configs), "gateways": dict(sorted(configs.items()))}
    size = len(_canonical(document).encode())
    if size > MAX_DESIRED_BYTES:
        raise ShadowError(f"the gateways of this edge device need {size} bytes of shadow, more than the "
                          f"{MAX_DESIRED_BYTES} AWS IoT Core allows; move some to another edge device")
    return document


def desired_patch(current: Mapping[str, Any] | None, document: Mapping[str, Any]) -> dict[str, Any]:
    """The desired section to send so the shadow ends up equal to ``document``.

    A shadow update merges objects key by key and deletes keys set to ``null``, so every key of ``current``
    that ``document`` no longer has, at any depth (a gateway gone, a label or protocol option removed),
    is sent as ``null``; otherwise it would linger in the shadow and reach the edge as part of the config.
    """
    return _replacing(current or {}, document)


def _replacing(old: Any, new: Any) -> Any:
    if not isinstance(new, Mapping):
        return new
    if not isinstance(old, Mapping):
        return dict(new)
    patch = {key: _replacing(old.get(key), value) for key, value in new.items()}
    for key in old:
        if key not in new:
            patch[key] = None
    return patch


def desired_gateways(desired: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The gateway configs of a desired section (or a delta): ``null`` entries and non-objects skipped."""
    gateways = (desired or {}).get("gateways")
    if not isinstance(gateways, Mapping):
        return {}
    return {str(k): dict(v) for k, v in gateways.items() if isinstance(v, Mapping)}


# --------------------------------------------------------------------------------------------- reported


def reported_document(config_version: str | None, applied: Mapping[str, Mapping[str, Any]],
                      reported_at: str) -> dict[str, Any]:
    """What the edge reports after applying a desired state (see the module doc)."""
    return {"configVersion": config_version, "applied": {k: dict(v) for k, v in sorted(applied.items())},
            "reportedAt": reported_at}


def reported_of_documents(message: Mapping[str, Any]) -> dict[str, Any] | None:
    """The reported section of an ``update/documents`` message when it changed, else ``None`` (the cloud's own
    desired updates produce documents messages too, and need no work)."""
    current = ((message.get("current") or {}).get("state") or {}).get("reported")
    previous = ((message.get("previous") or {}).get("state") or {}).get("reported")
    if not isinstance(current, Mapping) or current == previous:
        return None
    return dict(current)


def reported_update(record: Record, reported: Mapping[str, Any], thing: str,
                    desired_hash: str | None = None) -> Record | None:
    """The gateway record showing what its edge reported (``others.edge``; ``state`` error if the edge rejected
    the config), or ``None`` when nothing changes (so repeated reports write nothing).

    ``desired_hash``: the hash of the config the cloud wants now; ``inSync`` says whether the edge runs it.
    """
    applied = reported.get("applied")
    entry = applied.get(str(record["id"])) if isinstance(applied, Mapping) else None
    if not isinstance(entry, Mapping):
        entry = {"status": "absent", "message": "the edge does not run this gateway (yet)"}
    status = str(entry.get("status", "absent"))
    edge: dict[str, Any] = {
        "thing": thing,
        "status": status,
        "message": str(entry.get("message", ""))[:500],
        "configVersion": reported.get("configVersion"),
        "configHash": entry.get("hash"),
        "reportedAt": reported.get("reportedAt"),
    }
    if desired_hash is not None:
        edge["inSync"] = entry.get("hash") == desired_hash and status in ("running", "disabled")
    others = dict(record.get("others") or {})
    if others.get("edge") == edge:
        return None
    others["edge"] = edge
    updated = {**record, "others": others}
    if status == "rejected":
        updated["state"] = {"status": STATE_ERROR, "message": f"config rejected by the edge: "
                            f"{edge['message']}", "since": reported.get("reportedAt")}
    return updated
