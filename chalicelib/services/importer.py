"""Importing a MyController v2 export (its backup zip, its memory database zipped, or a JSON/YAML document of
entities): one use case behind ``POST /api/import`` and ``python -m chalicelib.local import-v2``.

The export is read and converted whole first (``core/reference_import.py``); a ``dryRun`` stops there and answers
the report. Otherwise the records are written kind by kind, parents first (an id that exists here is replaced, as
the reference's restore replaces; users whose name exists here are left alone), handler secrets encrypted as the API
encrypts them, firmware files stored with their checksums, and then, once, what a restore does afterwards: the
task index forgotten, schedules re-armed, the edges of imported gateways sent their configs. One ``import.done``
event is announced, not one per record. The answer is the report: how many of each kind came over, and each record
left out or changed, with why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final

from pydantic import BaseModel

from ..core import reference_import as core
from ..core.auth import User
from ..core.automation.handler_secrets import encrypt_spec
from ..core.automation.models import ForwardPayload, Handler, Schedule, Task
from ..core.dashboards import Dashboard
from ..core.data_repository import DataRepository
from ..core.model import DomainEvent, Firmware, Gateway, Kind, Record, now_iso
from ..core.ports import ListQuery, Repository, SecretBox, SecretError
from ..core.settings import DOCUMENT_MODELS
from ..core.virtual import VirtualAssistant, VirtualDevice
from .errors import DependencyFailed, InvalidInput
from .firmware import FirmwareFiles
from .records import Records

log = logging.getLogger(__name__)

MODELS: Final[dict[str, type[BaseModel]]] = {
    "gateway": Gateway, "dashboard": Dashboard,
    "task": Task, "schedule": Schedule, "handler": Handler, "forward_payload": ForwardPayload,
    "firmware": Firmware, "data_repository": DataRepository, "virtual_device": VirtualDevice,
    "virtual_assistant": VirtualAssistant, "user": User,
    **{f"settings:{name}": model for name, model in DOCUMENT_MODELS.items()},
}
"""This project's models, by the reference's entity names (settings documents by id)."""


class ReferenceImport:
    def __init__(self, repository: Repository, records: Records, firmware: FirmwareFiles, secrets: SecretBox, *,
                 max_bytes: int, after: Callable[[set[str]], Any] | None = None) -> None:
        self.repository = repository
        self.records = records
        self.firmware = firmware
        self.secrets = secrets
        self.max_bytes = max_bytes
        self.after = after
        """Called once after a write with the imported gateways' edge ids: re-arm schedules, forget the task
        index, send the edges their configs (the container's wiring)."""

    def run(self, data: bytes, *, dry_run: bool = False, edge_id: str | None = None) -> dict[str, Any]:
        """Import ``data``; the report (``dryRun``: what an import would do, nothing written)."""
        try:
            export = core.read_export(data, max_bytes=self.max_bytes)
        except core.ImportError_ as error:
            raise InvalidInput(f"not a MyController v2 export: {error}", "body") from None
        users = self.repository.query(Kind.USER, ListQuery(limit=0)).data
        plan = core.convert(export, MODELS, edge_id=edge_id,
                            existing_usernames=[str(user.get("username") or "") for user in users])
        report = plan.report.to_dict()
        report.update(dryRun=dry_run, format=export.format or None)
        if dry_run:
            return report
        self._write(plan)
        edges = {str(r["edgeId"]) for r in plan.records.get(Kind.GATEWAY, []) if r.get("edgeId")}
        if self.after is not None:
            try:
                self.after(edges)
            except Exception as error:  # the records are in; what follows can be redone (schedule reload)
                log.exception("after-import step failed")
                report["notes"].append(f"imported, but re-arming schedules or syncing edges failed "
                                       f"({type(error).__name__}): POST /api/schedule/reload, then save a gateway")
        self.records.announce([DomainEvent("done", "import", "v2", "import:v2", {"imported": report["imported"]})])
        return report

    def _write(self, plan: core.Plan) -> None:
        stamp = now_iso()
        for entity in core.ORDER:
            kind = core.ENTITY_KINDS[entity]
            records = [{**record, "modifiedOn": record.get("modifiedOn") or stamp}
                       for record in plan.records.get(kind, [])]
            if not records:
                continue
            if kind == Kind.HANDLER:
                records = [self._encrypted(record) for record in records]
            if kind == Kind.FIRMWARE:
                records = [{k: v for k, v in record.items() if k != "file"} for record in records]
            self.repository.put_many(kind, records)
        for firmware_id, (name, content) in plan.firmware_files.items():
            try:
                self.firmware.store(firmware_id, content, name=name)
            except InvalidInput as error:
                plan.report.change("firmware", firmware_id, f"its file was not stored: {error.message}")

    def _encrypted(self, record: Record) -> Record:
        try:
            spec = encrypt_spec(str(record["id"]), str(record.get("type")), dict(record.get("spec") or {}),
                                self.secrets)
        except SecretError as error:
            raise DependencyFailed(f"secrets: handler secrets could not be encrypted ({error}); nothing more was "
                                   "imported", "secrets") from None
        return {**record, "spec": spec}
