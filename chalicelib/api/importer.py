"""``POST /api/import``: a MyController v2 export (its backup zip as the body, raw or multipart ``file``; or a JSON or
YAML document of entities) imported in one call, answered with the report of what came over, what did not and why
(``services/importer.py``). ``?dryRun=true`` answers the report and writes nothing; ``?edgeId=<thing>`` gives the
imported gateways to an edge device (``local`` for the local stack's agent)."""

from __future__ import annotations

from typing import Any, Final

from chalicelib.bootstrap import Container

from .errors import bad_request
from .firmware import _media_type, multipart_parts
from .web import ApiRequest

IMPORT_TYPES: Final = ("application/zip", "application/octet-stream", "multipart/form-data", "application/json",
                       "application/yaml", "application/x-yaml", "text/yaml", "text/plain")
_TRUE: Final = frozenset({"true", "1", "yes", "on"})


def max_import_bytes(container: Container) -> int:
    return container.settings.backup_max_bytes


def import_export(request: ApiRequest) -> dict[str, Any]:
    media_type, _ = _media_type(request.content_type)
    data = request.raw_body
    if media_type == "multipart/form-data":
        parts = multipart_parts(request.raw_body, request.content_type)
        if "file" not in parts:
            raise bad_request("multipart body needs a 'file' part", "file")
        data = parts["file"][1]
    if not data.strip():
        raise bad_request("send the export as the body (a zip, or a JSON or YAML document)", "body")
    edge_id = request.param("edgeId") or None
    dry_run = (request.param("dryRun") or "").strip().lower() in _TRUE
    return request.container.importer.run(data, dry_run=dry_run, edge_id=edge_id)
