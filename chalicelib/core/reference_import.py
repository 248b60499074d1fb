"""Reading a MyController v2 export and turning it into this project's records, with a report of what did not come
over and why. Pure: bytes in, records and notes out; ``services/importer.py`` writes them.

**What is read.** The reference's backup zip (``<prefix>_mc_backup_<yaml|json>_<time>.zip``: ``backup.yaml``,
``storage/<entity>__<offset>.<yaml|json>`` lists, ``firmware/<id><ext>`` files; top-level names may start with ``/``
and paths may hold ``//``), its memory database's dump (the same ``<entity>__<n>.<ext>`` files, zipped), or one JSON
or YAML document ``{"<entity>": [...]}``. YAML timestamps stay text (the reference writes RFC 3339 with nanoseconds);
its zero time (``0001-01-01T00:00:00Z``) means unset.

**How each entity comes over** (``convert``): gateways, sources, tasks, schedules, handlers, forward payloads,
dashboards, firmware (with its file), data repositories, virtual devices and assistants through this project's own
models, so an import can hold nothing an API call could not; nodes and fields by their ``gatewayId``/``nodeId``/
``sourceId``/``fieldId`` (the reference's UUID ids give way to ours, ``gw.node.source.field``); settings documents
with Go-style keys (``GeoLocation``) read as camelCase; users with their bcrypt password hashes (which this project
checks as they are) and a role (``admin`` for the user named admin, ``user`` for the others). What cannot come over
is reported, never guessed: service tokens (their secrets are hashed another way: make new ones), values encrypted
with the reference's own ``secret`` (``ENCRYPTED;MC;…``: set them again), records a model refuses (the report names
the field), the reference's internal settings (version, telemetry, its JWT secret).
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Final

import yaml
from pydantic import BaseModel, ValidationError

from .errors import DomainError
from .model import DEVICE_MODELS, Kind, Record, composite_id

ENCRYPTED_PREFIX: Final = "ENCRYPTED;MC;"
ZERO_TIME: Final = "0001-01-01T00:00:00"
MAX_ENTRIES: Final = 20_000
"""Files a zip may hold (the reference writes 50 records a file)."""
ENTITY_KINDS: Final[dict[str, Kind]] = {
    "gateway": Kind.GATEWAY, "node": Kind.NODE, "source": Kind.SOURCE, "field": Kind.FIELD, "task": Kind.TASK,
    "schedule": Kind.SCHEDULE, "handler": Kind.HANDLER, "forward_payload": Kind.FORWARD_PAYLOAD,
    "dashboard": Kind.DASHBOARD, "firmware": Kind.FIRMWARE, "data_repository": Kind.DATA_REPOSITORY,
    "virtual_device": Kind.VIRTUAL_DEVICE, "virtual_assistant": Kind.VIRTUAL_ASSISTANT, "settings": Kind.SETTINGS,
    "user": Kind.USER,
}
"""The reference's entity names (its storage files) and the kinds they become."""
ORDER: Final = ("settings", "gateway", "node", "source", "field", "firmware", "handler", "task", "schedule",
                "forward_payload", "data_repository", "virtual_device", "virtual_assistant", "dashboard", "user")
"""Parents before children, handlers before what names them."""
_STORAGE_FILE: Final = re.compile(r"(?:^|/)(?:storage/)?(?:memory_db/(?:yaml|json)/)?([a-z_]+)__\d+\.(yaml|yml|json)$")
_ALIASES: Final = {"forwardpayload": "forward_payload", "datarepository": "data_repository",
                   "virtualdevice": "virtual_device", "virtualassistant": "virtual_assistant", "sensor": "source",
                   "sensorfield": "field", "servicetoken": "service_token", "sensor_field": "field"}
SKIPPED_SETTINGS: Final = {"version": "the reference's own version record", "telemetry": "the reference's telemetry id",
                           "system_dynamic_secrets": "the reference's JWT secret (ours is its own)"}


class ImportError_(DomainError, ValueError):
    """An export that cannot be read at all (not a zip, JSON or YAML of entities); the message says why."""


@dataclass(slots=True)
class Export:
    """What an export holds: entity name → raw rows, firmware files by name, and where it came from."""

    entities: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    """``firmware/<name>`` → bytes."""
    format: str = ""
    manifest: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Report:
    """What an import did: records per kind, what was left out or changed, and why."""

    imported: dict[str, int] = field(default_factory=dict)
    skipped: list[dict[str, str]] = field(default_factory=list)
    changed: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def skip(self, entity: str, entity_id: Any, reason: str) -> None:
        self.skipped.append({"entity": entity, "id": str(entity_id or ""), "reason": reason})

    def change(self, entity: str, entity_id: Any, what: str) -> None:
        self.changed.append({"entity": entity, "id": str(entity_id or ""), "what": what})

    def to_dict(self) -> dict[str, Any]:
        return {"imported": dict(self.imported), "skipped": list(self.skipped), "changed": list(self.changed),
                "notes": list(self.notes)}


@dataclass(slots=True)
class Plan:
    """The records to write, by kind (in ``ORDER``), and firmware files to store (``firmware id`` → bytes)."""

    records: dict[Kind, list[Record]] = field(default_factory=dict)
    firmware_files: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    """Firmware id → (file name, bytes)."""
    report: Report = field(default_factory=Report)


# --------------------------------------------------------------------------------------------- reading


class _TextTimesLoader(yaml.SafeLoader):
    """YAML without the timestamp resolver: the reference's times stay text (with their nanoseconds)."""


_TextTimesLoader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _parse(text: bytes, suffix: str, name: str) -> Any:
    try:
        if suffix == "json":
            return json.loads(text)
        return yaml.load(text, Loader=_TextTimesLoader)  # a SafeLoader
    except (ValueError, yaml.YAMLError) as error:
        raise ImportError_(f"{name}: not valid {suffix.upper()}: {str(error).splitlines()[0]}") from None


def _entity_name(name: str) -> str:
    key = name.strip().lower()
    return _ALIASES.get(key, key)


def _add_rows(export: Export, entity: str, rows: Any, where: str) -> None:
    if rows is None:
        return
    if isinstance(rows, dict):
        rows = [rows]
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise ImportError_(f"{where}: expected a list of {entity} objects")
    export.entities.setdefault(_entity_name(entity), []).extend(rows)


def read_export(data: bytes, *, max_bytes: int) -> Export:
    """An export from a zip (the reference's backup, or its memory database zipped) or a JSON/YAML document of
    entities. ``ImportError_`` when it is none of those, or larger than ``max_bytes`` unpacked."""
    if data[:2] == b"PK":
        return _read_zip(data, max_bytes)
    text = data.strip()
    document = _parse(text, "json" if text[:1] in (b"{", b"[") else "yaml", "document")
    if not isinstance(document, dict):
        raise ImportError_("a document must map entity names to lists: {\"gateway\": [...], \"node\": [...]}")
    export = Export(format="json" if text[:1] == b"{" else "yaml")
    for entity, rows in document.items():
        _add_rows(export, str(entity), rows, str(entity))
    return export


def _read_zip(data: bytes, max_bytes: int) -> Export:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as error:
        raise ImportError_(f"not a zip archive: {error}") from None
    infos = archive.infolist()
    if len(infos) > MAX_ENTRIES:
        raise ImportError_(f"the archive holds {len(infos)} files, more than {MAX_ENTRIES}")
    if sum(info.file_size for info in infos) > max_bytes:
        raise ImportError_(f"the archive unpacks to more than {max_bytes} bytes")
    export = Export()
    for info in infos:
        if info.is_dir():
            continue
        name = re.sub(r"/+", "/", info.filename).lstrip("/")
        if ".." in PurePosixPath(name).parts:
            raise ImportError_(f"{info.filename!r} points outside the archive")
        content = archive.read(info)
        if name in ("backup.yaml", "backup.yml", "backup.json"):
            manifest = _parse(content, "json" if name.endswith("json") else "yaml", name)
            export.manifest = manifest if isinstance(manifest, dict) else {}
            continue
        if name.startswith("firmware/"):
            export.files[name] = content
            continue
        match = _STORAGE_FILE.search(name)
        if match is None:
            continue  # secure_share/, insecure_share/ and anything else: not ours to keep
        entity, suffix = match.group(1), match.group(2).replace("yml", "yaml")
        export.format = export.format or suffix
        _add_rows(export, entity, _parse(content, suffix, name), name)
    if not export.entities and not export.manifest:
        raise ImportError_("no MyController export in this archive (no storage/<entity>__<n>.yaml|json files)")
    return export


# --------------------------------------------------------------------------------------------- converting


def _clean(value: Any) -> Any:
    """The reference's zero time is unset; everything else as it is (dicts and lists walked)."""
    if isinstance(value, str) and value.startswith(ZERO_TIME):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _camel(value: Any) -> Any:
    """Go-style keys (``GeoLocation``, ``NodeStateJob``) as camelCase, recursively (settings the reference wrote)."""
    if isinstance(value, dict):
        return {(k[:1].lower() + k[1:]) if isinstance(k, str) else k: _camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel(v) for v in value]
    return value


def _encrypted_paths(value: Any, path: str = "") -> list[str]:
    if isinstance(value, str):
        return [path] if value.startswith(ENCRYPTED_PREFIX) else []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    return [found for key, item in items for found in _encrypted_paths(item, f"{path}.{key}" if path else str(key))]


def _blank(value: Any) -> Any:
    if isinstance(value, str):
        return "" if value.startswith(ENCRYPTED_PREFIX) else value
    if isinstance(value, dict):
        return {k: _blank(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_blank(v) for v in value]
    return value


def _validation_reason(error: ValidationError) -> str:
    first = error.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first.get("loc", ()))
    return f"{where}: {str(first.get('msg', 'invalid')).removeprefix('Value error, ')}" if where else \
        str(first.get("msg", "invalid")).removeprefix("Value error, ")


Models = Mapping[str, type[BaseModel]]


def convert(export: Export, models: Models, *, edge_id: str | None = None,
            existing_usernames: Iterable[str] = (), firmware_name: Callable[[str], str] | None = None) -> Plan:
    """The records an export becomes (checked by ``models``, entity name → model: this project's, handed in by
    the service), the firmware files to store, and the report. ``edge_id``: the edge device imported gateways run
    on (none: they wait for one). Users whose name is taken here are left out."""
    plan = Plan()
    report = plan.report
    taken = {name.casefold() for name in existing_usernames}
    if export.manifest.get("version"):
        version = export.manifest["version"]
        report.notes.append(f"MyController {version.get('version') if isinstance(version, dict) else version} export"
                            f" ({export.format or 'unknown format'})")
    unknown = sorted(set(export.entities) - set(ENTITY_KINDS) - {"service_token"})
    for entity in unknown:
        report.skip(entity, "", f"{len(export.entities[entity])} record(s): not a kind this project keeps")
    for token in export.entities.get("service_token", []):
        report.skip("service_token", token.get("id"), "service tokens cannot be carried over (their secrets are "
                                                       "hashed another way): make new ones")
    for entity in ORDER:
        for raw in export.entities.get(entity, []):
            row = _clean(raw)
            entity_id = row.get("id")
            try:
                record = _convert_one(entity, row, models, report, edge_id, taken)
            except ValidationError as error:
                report.skip(entity, entity_id, _validation_reason(error))
                continue
            except (ValueError, TypeError, KeyError) as error:
                report.skip(entity, entity_id, str(error) or type(error).__name__)
                continue
            if record is None:
                continue
            kind = ENTITY_KINDS[entity]
            plan.records.setdefault(kind, []).append(record)
            report.imported[entity] = report.imported.get(entity, 0) + 1
            if entity == "firmware":
                _firmware_file(export, row, record, plan)
    if edge_id is None and plan.records.get(Kind.GATEWAY):
        report.notes.append("gateways came over without an edge device: give them edgeId (or import with edgeId) "
                            "for an edge agent to run them")
    return plan


def _convert_one(entity: str, row: dict[str, Any], models: Models, report: Report, edge_id: str | None,
                 taken: set[str]) -> Record | None:
    entity_id = row.get("id")
    encrypted = _encrypted_paths(row)
    if encrypted and entity != "user":
        for path in encrypted:
            report.change(entity, entity_id, f"{path}: encrypted with the reference's own secret; set it again")
        row = _blank(row)
    if entity == "settings":
        return _settings(row, models, report)
    if entity == "user":
        return _user(row, models, report, taken)
    if entity in ("node", "source", "field"):
        return _device(entity, row)
    if entity == "gateway":
        row = {k: v for k, v in row.items() if k != "edgeId"} | ({"edgeId": edge_id} if edge_id else {})
    model = models.get(entity)
    if model is None:
        raise ValueError(f"no model for {entity}")
    return _record(model.model_validate(row))


def _record(model: BaseModel) -> Record:
    return model.model_dump(mode="json", by_alias=True)


def _device(entity: str, row: dict[str, Any]) -> Record:
    """A node, source or field under our composite id (the reference's UUID ``id`` is dropped)."""
    kind = ENTITY_KINDS[entity]
    keys = {"node": ("gatewayId", "nodeId"), "source": ("gatewayId", "nodeId", "sourceId"),
            "field": ("gatewayId", "nodeId", "sourceId", "fieldId")}[entity]
    missing = [key for key in keys if not row.get(key)]
    if missing:
        raise ValueError(f"{', '.join(missing)} missing")
    body = {k: v for k, v in row.items() if k != "id"}
    body["id"] = composite_id(*(str(row[key]) for key in keys))
    record = DEVICE_MODELS[kind].model_validate(body).record()
    return record


def _settings(row: dict[str, Any], models: Models, report: Report) -> Record | None:
    settings_id = str(row.get("id") or "")
    if settings_id in SKIPPED_SETTINGS:
        report.skip("settings", settings_id, SKIPPED_SETTINGS[settings_id])
        return None
    model = models.get(f"settings:{settings_id}")
    if model is None:
        report.skip("settings", settings_id, "unknown settings document")
        return None
    spec = _camel(row.get("spec") or {})
    if settings_id == "system_settings" and isinstance(spec.get("geoLocation"), dict):
        geo = spec["geoLocation"]
        if not geo.get("latitude") and not geo.get("longitude"):
            spec = {**spec, "geoLocation": {**geo, "latitude": None, "longitude": None}}
    checked = model.model_validate(spec).model_dump(mode="json", by_alias=True)
    return {**checked, "id": settings_id}


def _user(row: dict[str, Any], models: Models, report: Report, taken: set[str]) -> Record | None:
    username = str(row.get("username") or "")
    if username.casefold() in taken:
        report.skip("user", row.get("id"), f"a user named {username!r} exists here already (kept as it is)")
        return None
    password = row.get("password")
    if not isinstance(password, str) or not password.startswith("$2"):
        report.skip("user", row.get("id"), "no bcrypt password hash to carry over")
        return None
    role = "admin" if username == "admin" else "user"
    model = models["user"].model_validate({**row, "password": None, "role": role})
    report.change("user", row.get("id"), f"role {role} (the reference had no roles)")
    taken.add(username.casefold())
    return {**_record(model), "password": password}


def _firmware_file(export: Export, row: dict[str, Any], record: Record, plan: Plan) -> None:
    firmware_id = str(record["id"])
    given = row.get("file")
    file_info: dict[str, Any] = given if isinstance(given, dict) else {}
    candidates = [name for name in export.files
                  if PurePosixPath(name).stem == firmware_id
                  or PurePosixPath(name).name == file_info.get("internalName")]
    if not candidates:
        if export.files or file_info.get("size"):
            plan.report.change("firmware", firmware_id, "its file is not in the export: upload it again")
        return
    name = str(file_info.get("name") or PurePosixPath(candidates[0]).name)
    plan.firmware_files[firmware_id] = (name, export.files[candidates[0]])
