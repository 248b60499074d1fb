"""The route table: every REST operation, defined once as data.

``app.py`` registers these with Chalice in a loop and ``/api/openapi.json`` is generated from the same list,
so the document and the routes cannot drift apart. Paths and verbs are MyController v2's.

Every route that is not public declares the least role that may call it (``role=``; ``Route`` refuses to exist
without one): ``viewer`` reads, ``user`` changes devices, actions, dashboards and automation, ``admin`` manages
users, other users' tokens, backups, settings and firmware.
"""

from __future__ import annotations

import re
from functools import cache, partial
from typing import Any, Final

from chalicelib.core.auth import Role
from chalicelib.core.model import DEVICE_KINDS, DEVICE_MODELS, Kind
from chalicelib.core.settings import SystemSettings
from chalicelib.services.actions import MAX_ACTIONS

from . import actions, auth, automation, dashboards, gateways, metrics, openapi, resources, settings, status, virtual
from . import backup as backup_api
from . import firmware as firmware_api
from . import importer as importer_api
from .web import ApiRequest, Body, Ok, Param, Route

LIST_PARAMS: Final = (
    Param("limit", "Page size (default 50; 0 or less: all, up to 10000)", {"type": "integer"}),
    Param("offset", "Records to skip", {"type": "integer", "minimum": 0}),
    Param("sortBy", 'JSON list [{"f": keyPath, "o": "asc"|"desc"}] (or key,-key)'),
    Param("filter", 'JSON list [{"k": keyPath, "o": operator, "v": value}]; operators eq, ne, in, nin, '
                    "range_in, range_not_in, gt, lt, gte, lte, exists, regex"),
)

ID_LIST_SCHEMA: Final = {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}}
DELETED_SCHEMA: Final = {
    "type": "object",
    "required": ["deleted", "cascaded"],
    "properties": {"deleted": {"type": "integer", "description": "Records of this kind deleted"},
                   "cascaded": {"type": "integer", "description": "Records beneath them deleted too"}},
}
SENT_SCHEMA: Final = {
    "type": "object",
    "required": ["sent", "skipped"],
    "properties": {"sent": {"type": "integer", "description": "Messages handed to the downlink"},
                   "skipped": {"type": "integer", "description": "Targets skipped (disabled gateways)"}},
}
METRIC_RESULT_SCHEMA: Final = {
    "type": "object",
    "description": "Rows per name (the quick id unless named): {time, value} raw or {time, <function>} per window",
    "additionalProperties": {"type": "array", "items": {"type": "object", "additionalProperties": True}},
}
OBJECT_SCHEMA: Final = {"type": "object", "additionalProperties": True}
QUICK_ID_RESULT_SCHEMA: Final = {
    "type": "object",
    "description": "The resource (or the value at the quick id's key path) per requested quick id",
    "additionalProperties": True,
}
SETTINGS_DOCUMENT_SCHEMA: Final = {
    "type": "object", "required": ["id"],
    "description": "MyController v2's settings document",
    "properties": {"id": {"type": "string", "enum": ["system_settings", "system_backup_locations", "system_jobs"]},
                   "spec": {"type": "object", "additionalProperties": True},
                   "modifiedOn": {"type": "string", "nullable": True}},
}
NAMES: Final = {Kind.GATEWAY: "gateway", Kind.NODE: "node", Kind.SOURCE: "source", Kind.FIELD: "field"}
PLURALS: Final = {Kind.GATEWAY: "gateways", Kind.NODE: "nodes", Kind.SOURCE: "sources", Kind.FIELD: "fields"}


def _crud_routes(kind: Kind, name: str, plural: str, model: Any, *, upsert: Any, upsert_summary: str,
                 delete: Any, delete_summary: str, delete_body: str, write_role: Role = Role.USER) -> list[Route]:
    """List, get, upsert and delete of one kind under ``/api/<kind>``; list and get are the shared ones (any
    viewer), upsert and delete need ``write_role``."""
    path = f"/api/{kind.value}"
    return [
        Route("GET", path, f"list_{plural}", partial(resources.list_resources, kind),
              f"List {plural} (filter, sort, page)", name, Ok(f"A page of {plural}", model=model, page=True),
              params=LIST_PARAMS, errors=(400,), role=Role.VIEWER),
        Route("GET", f"{path}/{{id}}", f"get_{name}", partial(resources.get_resource, kind),
              f"Get one {name} by id or quick id", name, Ok(f"The {name}", model=model), errors=(404,),
              role=Role.VIEWER),
        Route("POST", path, f"upsert_{name}", upsert, upsert_summary, name, Ok(f"The {name} as stored", model=model),
              body=Body(f"The {name}", model=model), role=write_role),
        Route("DELETE", path, f"delete_{plural}", delete, delete_summary, name,
              Ok("How many were deleted", schema=DELETED_SCHEMA), errors=(400, 404),
              body=Body(delete_body, schema=ID_LIST_SCHEMA), role=write_role),
    ]


def _resource_routes(kind: Kind) -> list[Route]:
    name, plural = NAMES[kind], PLURALS[kind]
    routes = _crud_routes(kind, name, plural, DEVICE_MODELS[kind],
                          upsert=partial(resources.upsert_resource, kind), upsert_summary=f"Create or update a {name}",
                          delete=partial(resources.delete_resources, kind),
                          delete_summary=f"Delete {plural} by id, with everything beneath them",
                          delete_body=f"{name.capitalize()} ids or quick ids")
    if kind == Kind.GATEWAY:
        ids = Body("Gateway ids or quick ids", schema=ID_LIST_SCHEMA)
        for action, enabled in (("enable", True), ("disable", False)):
            routes.append(Route("POST", f"/api/gateway/{action}", f"{action}_gateways",
                                partial(gateways.set_enabled, enabled),
                                f"{action.capitalize()} gateways by id: their edge agents start or stop them",
                                "gateway",
                                Ok("How many changed", schema=ENABLED_SCHEMA), errors=(400, 404, 502), body=ids,
                                role=Role.USER))
        queue_params = (Param("gatewayId", "The gateway", required=True),
                        Param("nodeId", "One node (all of the gateway's when left out)"))
        routes.append(Route("GET", "/api/gateway-sleeping-queue", "get_sleeping_queue", gateways.sleeping_queue,
                            "Commands the edge agent holds for sleeping nodes: [message] for a node, {nodeId: "
                            "[message]} for the gateway (MyController v2's message shape)", "gateway",
                            Ok("The queued messages", schema={"oneOf": [
                                {"type": "array", "items": OBJECT_SCHEMA},
                                {"type": "object",
                                 "additionalProperties": {"type": "array", "items": OBJECT_SCHEMA}}]}),
                            errors=(400, 404), params=queue_params, role=Role.VIEWER))
        routes.append(Route("GET", "/api/gateway-sleeping-queue/clear", "clear_sleeping_queue",
                            gateways.clear_sleeping_queue,
                            "Drop the commands held for a sleeping node (all nodes of the gateway when nodeId is "
                            "left out); reachable: false when the gateway's edge agent is not in this process",
                            "gateway", Ok("How many were dropped", schema={"type": "object", "properties": {
                                "cleared": {"type": "integer"}, "reachable": {"type": "boolean"}}}),
                            errors=(400, 404), params=queue_params, role=Role.USER))
        routes.append(Route("POST", "/api/gateway/reload", "reload_gateways", gateways.reload,
                            "Restart gateways on their edge agents", "gateway",
                            Ok("How many were reloaded", schema={"type": "object", "properties": {
                                "reloaded": {"type": "integer"}}}), errors=(400, 404, 502), body=ids,
                            role=Role.USER))
    return routes


def _reference_resource_routes(kind: Kind, path_name: str, tag: str, words: str, model: Any, *,
                               role: Role, extras: tuple[str, ...] = ()) -> list[Route]:
    """CRUD (and enable/disable/reload) of MyController v2's data repository, virtual devices and assistants."""
    path = f"/api/{path_name}"
    label = words[:-1]
    plural = words.replace(" ", "_")
    singular = label.replace(" ", "_")
    ids = Body(f"{label.capitalize()} ids or quick ids", schema=ID_LIST_SCHEMA)
    get = (virtual.get_virtual_device if kind == Kind.VIRTUAL_DEVICE else partial(resources.get_resource, kind))
    routes = [
        Route("GET", path, f"list_{plural}", partial(resources.list_resources, kind),
              f"List {words} (filter, sort, page)", tag, Ok(f"A page of {words}", model=model, page=True),
              params=LIST_PARAMS, errors=(400,), role=Role.VIEWER),
        Route("GET", f"{path}/{{id}}", f"get_{singular}", get,
              f"Get one {label} by id or quick id" + (" (with traitValues)" if kind == Kind.VIRTUAL_DEVICE else ""),
              tag, Ok(f"The {label}", model=model), errors=(404,), role=Role.VIEWER),
        Route("POST", path, f"upsert_{singular}", partial(virtual.upsert, kind),
              f"Create or replace a {label} (modifiedOn set; keys besides the model's kept)", tag,
              Ok(f"The {label} as stored", model=model), body=Body(f"The {label}", model=model), role=role),
        Route("DELETE", path, f"delete_{plural}", partial(resources.delete_resources, kind),
              f"Delete {words} by id", tag, Ok("How many were deleted", schema=DELETED_SCHEMA), errors=(400, 404),
              body=ids, role=role),
    ]
    for action, enabled in (("enable", True), ("disable", False)):
        if action in extras:
            routes.append(Route("POST", f"{path}/{action}", f"{action}_{plural}",
                                partial(virtual.set_enabled, kind, enabled), f"{action.capitalize()} {words} by id",
                                tag, Ok("How many changed", schema=ENABLED_SCHEMA), errors=(400, 404), body=ids,
                                role=role))
    if "reload" in extras:
        routes.append(Route("POST", f"{path}/reload", f"reload_{plural}", virtual.reload_assistants,
                            f"Reload {words} by id (nothing runs them yet: the ids are checked)", tag,
                            Ok("How many", schema={"type": "object", "properties": {"reloaded": {"type": "integer"}}}),
                            errors=(400, 404), body=ids, role=role))
    return routes


AUTOMATION_PLURALS: Final = {Kind.TASK: "tasks", Kind.SCHEDULE: "schedules", Kind.HANDLER: "handlers",
                              Kind.FORWARD_PAYLOAD: "forward payloads"}
ENABLED_SCHEMA: Final = {
    "type": "object",
    "required": ["updated", "unchanged"],
    "properties": {"updated": {"type": "integer", "description": "Records changed"},
                   "unchanged": {"type": "integer", "description": "Records already so"}},
}


RUN_SCHEMA: Final = {
    "type": "object",
    "required": ["queued", "data"],
    "properties": {"queued": {"type": "integer", "description": "Handler requests queued in all"},
                   "data": {"type": "array", "items": {"type": "object", "additionalProperties": True}}},
}
RELOAD_SCHEMA: Final = {
    "type": "object",
    "required": ["schedules", "tasks", "removed"],
    "properties": {"schedules": {"type": "integer"}, "tasks": {"type": "integer"},
                   "removed": {"type": "integer", "description": "Entries nothing owned any more"}},
}
RELOAD_IDS_SCHEMA: Final = {"type": "array", "items": {"type": "string", "minLength": 1}}


def _automation_routes(kind: Kind) -> list[Route]:
    name = automation.PATH_NAMES[kind]
    words = AUTOMATION_PLURALS[kind]
    plural = words.replace(" ", "_")
    singular = name if kind != Kind.FORWARD_PAYLOAD else "forward_payload"
    label = words[:-1]
    model = automation.AUTOMATION_MODELS[kind]
    path = f"/api/{name}"
    secret = " (secrets redacted)" if kind == Kind.HANDLER else ""
    routes = [
        Route("GET", path, f"list_{plural}", partial(resources.list_resources, kind),
              f"List {words} (filter, sort, page){secret}", name, Ok(f"A page of {words}", model=model, page=True),
              params=LIST_PARAMS, errors=(400,), role=Role.VIEWER),
        Route("GET", f"{path}/{{id}}", f"get_{singular}", partial(resources.get_resource, kind),
              f"Get one {label} by id or quick id{secret}", name, Ok(f"The {label}", model=model), errors=(404,),
              role=Role.VIEWER),
        Route("POST", path, f"upsert_{singular}", partial(automation.upsert_automation, kind),
              f"Create or replace a {label} (state is kept; modifiedOn set)", name,
              Ok(f"The {label} as stored{secret}", model=model), body=Body(f"The {label}", model=model),
              role=Role.USER),
        Route("DELETE", path, f"delete_{plural}", partial(automation.delete_automation, kind),
              f"Delete {words} by id", name, Ok("How many were deleted", schema=DELETED_SCHEMA), errors=(400, 404),
              body=Body(f"{label.capitalize()} ids or quick ids", schema=ID_LIST_SCHEMA), role=Role.USER),
    ]
    for action, enabled in (("enable", True), ("disable", False)):
        routes.append(Route("POST", f"{path}/{action}", f"{action}_{plural}",
                            partial(automation.set_enabled, kind, enabled), f"{action.capitalize()} {words} by id",
                            name, Ok("How many changed", schema=ENABLED_SCHEMA), errors=(400, 404),
                            body=Body(f"{label.capitalize()} ids or quick ids", schema=ID_LIST_SCHEMA), role=Role.USER))
    if kind == Kind.HANDLER:
        routes.append(Route("POST", f"{path}/reload", "reload_handlers", automation.reload_handlers,
                            "Reload handlers by id (MyController v2's; ours are built per call: the ids are checked)",
                            name, Ok("How many", schema={"type": "object", "properties": {
                                "reloaded": {"type": "integer"}}}), errors=(400, 404),
                            body=Body("Handler ids or quick ids", schema=ID_LIST_SCHEMA), role=Role.USER))
    if kind in (Kind.TASK, Kind.SCHEDULE):
        what = "Evaluate" if kind == Kind.TASK else "Run"
        routes.append(Route("POST", f"{path}/run", f"run_{plural}", partial(automation.run_now, kind),
                            f"{what} {words} now (disabled ones too); answers what each queued", name,
                            Ok("What each run queued", schema=RUN_SCHEMA), errors=(400, 404),
                            body=Body(f"{label.capitalize()} ids or quick ids", schema=ID_LIST_SCHEMA), role=Role.USER))
        routes.append(Route("POST", f"{path}/reload", f"reload_{plural}", partial(automation.reload, kind),
                            "Put the scheduler entries of enabled schedules and interval tasks again (all when the "
                            "list is empty)", name, Ok("What was registered", schema=RELOAD_SCHEMA),
                            errors=(400, 404, 502),
                            body=Body(f"{label.capitalize()} ids or quick ids (empty: all)", schema=RELOAD_IDS_SCHEMA),
                            role=Role.USER))
    return routes


def _auth_routes() -> list[Route]:
    """Login and logout, the caller's profile, users and service tokens (the reference's paths)."""
    user, token = auth.UserView, auth.ServiceTokenView
    return [
        Route("POST", "/api/user/login", "login", auth.login,
              "Log in with a username and password (a JWT) or, MyController v2's form, a service token ({token}: the "
              "session is that token); the token is also set as the mc_access_token cookie; the answer has the "
              "reference's {id, username, fullName, email, token} and the role; after repeated failures 429 with "
              "Retry-After", "auth",
              Ok("The token", model=auth.LoginReply), errors=(400, 401, 429), public=True,
              body=Body("Credentials", model=auth.LoginRequest,
                        example={"username": "admin", "password": "…", "expiresIn": "24h"})),
        Route("POST", "/api/user/logout", "logout", auth.logout,
              "Log out: the calling token is revoked and the cookie cleared", "auth",
              Ok("Logged out", schema=auth.LOGOUT_SCHEMA), errors=(), role=Role.VIEWER),
        *(Route(method, "/api/mc_auth/sign_out", f"sign_out_{method.lower()}", auth.sign_out,
                "Log out, MyController v2's way: the caller's login token (if any) is revoked, the cookies cleared; "
                "plain text 'Signout success'", "auth",
                Ok("Signed out", schema={"type": "string"}, content_type="text/plain"), errors=(), public=True,
                optional_auth=True) for method in ("GET", "POST")),
        Route("GET", "/api/user/profile", "get_profile", auth.get_profile, "The calling user (with its role)",
              "auth", Ok("The user", model=user), errors=(), role=Role.VIEWER),
        Route("POST", "/api/user/profile", "update_profile", auth.update_profile,
              "Update the calling user (a new password needs currentPassword and ends the user's sessions)", "auth",
              Ok("The user", model=user), body=Body("Changes", model=auth.ProfileUpdate), role=Role.VIEWER),
        Route("GET", "/api/user", "list_users", auth.list_users, "List users (filter, sort, page)", "user",
              Ok("A page of users", model=user, page=True), params=LIST_PARAMS, errors=(400,), role=Role.ADMIN),
        Route("GET", "/api/user/{id}", "get_user", auth.get_user, "Get one user", "user",
              Ok("The user", model=user), errors=(404,), role=Role.ADMIN),
        Route("POST", "/api/user", "upsert_user", auth.upsert_user,
              "Create or update a user (password write-only, stored as a bcrypt hash; one's own needs "
              "currentPassword; the last admin cannot be demoted; a new password or role ends the user's sessions)",
              "user", Ok("The user as stored", model=user), body=Body("The user", model=auth.core.User),
              role=Role.ADMIN),
        Route("DELETE", "/api/user", "delete_users", auth.delete_users,
              "Delete users by id (with their service tokens; not oneself, not the last admin)", "user",
              Ok("How many were deleted", schema=DELETED_SCHEMA), errors=(400, 404),
              body=Body("User ids", schema=ID_LIST_SCHEMA), role=Role.ADMIN),
        Route("GET", "/api/servicetoken", "list_service_tokens", auth.list_service_tokens,
              "List service tokens (never their secrets): an admin's lists all, anyone else's their own",
              "servicetoken", Ok("A page of service tokens", model=token, page=True), params=LIST_PARAMS,
              errors=(400,), role=Role.USER),
        Route("POST", "/api/servicetoken", "create_service_token", auth.create_service_token,
              "Create a service token: its token (<tokenId>_<secret>) is in this answer only; its role at most the "
              "maker's; for another user: admins only", "servicetoken",
              Ok("The service token with its secret", model=token),
              body=Body("Name and expiry", model=auth.core.ServiceTokenRequest), errors=(400, 404), role=Role.USER),
        Route("GET", "/api/servicetoken/{id}", "get_service_token", auth.get_service_token,
              "Get one service token (never its secret); another user's: admins only", "servicetoken",
              Ok("The service token", model=token), errors=(403, 404), role=Role.USER),
        Route("POST", "/api/servicetoken/create", "create_service_token_reference", auth.create_service_token,
              "Create a service token (MyController v2's path; the same as POST /api/servicetoken)", "servicetoken",
              Ok("The service token with its secret", model=token),
              body=Body("Name and expiry", model=auth.core.ServiceTokenRequest), errors=(400, 404), role=Role.USER),
        Route("POST", "/api/servicetoken/update", "update_service_token", auth.update_service_token,
              "Change a service token's name, description, labels or expiry (its owner, role and secret stay)",
              "servicetoken", Ok("The service token", model=token), errors=(400, 403, 404),
              body=Body("The token's id and changes", schema={"type": "object", "required": ["id"],
                                                              "additionalProperties": True,
                                                              "properties": {"id": {"type": "string"}}}),
              role=Role.USER),
        Route("DELETE", "/api/servicetoken", "delete_service_tokens", auth.delete_service_tokens,
              "Delete service tokens by id (another user's: admins only)", "servicetoken",
              Ok("How many were deleted", schema=DELETED_SCHEMA),
              errors=(400, 404), body=Body("Service token ids", schema=ID_LIST_SCHEMA), role=Role.USER),
    ]


def _dashboard_routes() -> list[Route]:
    return _crud_routes(Kind.DASHBOARD, "dashboard", "dashboards", dashboards.Dashboard,
                        upsert=dashboards.upsert_dashboard,
                        upsert_summary="Create or replace a dashboard (a new id when none is given)",
                        delete=partial(resources.delete_resources, Kind.DASHBOARD),
                        delete_summary="Delete dashboards by id", delete_body="Dashboard ids", write_role=Role.USER)


JOB_SCHEMA: Final = {
    "type": "object",
    "required": ["id", "state", "done", "total", "message"],
    "properties": {"id": {"type": "string"}, "type": {"type": "string", "enum": ["backup", "restore"]},
                   "state": {"type": "string", "enum": ["running", "done", "failed"]},
                   "done": {"type": "integer"}, "total": {"type": "integer"}, "message": {"type": "string"},
                   "result": {"type": "object", "additionalProperties": True}},
}
JOB_STARTED_SCHEMA: Final = {
    "type": "object", "required": ["jobId", "job"],
    "properties": {"jobId": {"type": "string"}, "name": {"type": "string"}, "job": JOB_SCHEMA},
}
BACKUP_LIST_SCHEMA: Final = {
    "type": "object", "required": ["count", "data"],
    "properties": {"count": {"type": "integer"}, "data": {"type": "array", "items": {
        "type": "object", "required": ["name", "size", "createdOn"],
        "properties": {"name": {"type": "string"}, "size": {"type": "integer"}, "createdOn": {"type": "string"}}}}},
}
BINARY_SCHEMA: Final = {"type": "string", "format": "binary"}
IMPORT_REPORT_SCHEMA: Final = {
    "type": "object", "required": ["imported", "skipped", "changed", "notes", "dryRun"],
    "properties": {
        "imported": {"type": "object", "additionalProperties": {"type": "integer"},
                     "description": "Records that came over, by the reference's entity name"},
        "skipped": {"type": "array", "items": {"type": "object", "properties": {
            "entity": {"type": "string"}, "id": {"type": "string"}, "reason": {"type": "string"}}}},
        "changed": {"type": "array", "items": {"type": "object", "properties": {
            "entity": {"type": "string"}, "id": {"type": "string"}, "what": {"type": "string"}}}},
        "notes": {"type": "array", "items": {"type": "string"}},
        "dryRun": {"type": "boolean"}, "format": {"type": "string", "nullable": True}},
}


def _firmware_routes() -> list[Route]:
    model = firmware_api.Firmware
    return [
        *_crud_routes(Kind.FIRMWARE, "firmware", "firmware", model, upsert=firmware_api.upsert_firmware,
                      upsert_summary="Create or update a firmware's description and labels (its file is uploaded "
                                     "separately)",
                      delete=firmware_api.delete_firmware, delete_summary="Delete firmware by id, with their files",
                      delete_body="Firmware ids or quick ids", write_role=Role.ADMIN),
        Route("POST", "/api/firmware/upload/{id}", "upload_firmware", firmware_api.upload_firmware,
              "Upload a firmware file: raw application/octet-stream (?name=) or multipart/form-data with a 'file' "
              "part; or JSON {name, size} for an upload offer (a presigned URL where the blob store has them), then "
              "{uploaded: true, uploadId} once sent; the checksum is computed here; the firmware is created when "
              "missing", "firmware",
              Ok("The firmware with its file, or an upload offer", schema={"oneOf": [
                  {"$ref": "#/components/schemas/Firmware"},
                  firmware_api.offer_schema({"uploaded": {"type": "boolean"}, "name": {"type": "string"}})]}),
              errors=(400, 404),
              params=(Param("name", "File name (raw uploads)"),),
              body=Body("The file, or an offer request or completion (JSON)", schema=firmware_api.UPLOAD_BODY_SCHEMA),
              content_types=firmware_api.UPLOAD_TYPES, body_limit=firmware_api.max_upload_bytes, role=Role.ADMIN),
    ]


def _backup_routes() -> list[Route]:
    return [
        Route("GET", "/api/backup", "list_backups", backup_api.list_backups,
          "List stored backups, newest first (rows carry MyController v2's keys too: id, fileName, fileSize…)",
              "backup", Ok("The backups", schema=BACKUP_LIST_SCHEMA), errors=(), role=Role.ADMIN),
        Route("POST", "/api/backup/run", "run_backup", backup_api.run_backup,
              "Make a backup (a job; poll /api/backup/job/{id}); keeps the newest retentionCount", "backup",
              Ok("The job", schema=JOB_STARTED_SCHEMA), errors=(400, 409),
              body=Body("Options (optional)", model=backup_api.RunRequest, example={"retentionCount": 5}),
              role=Role.ADMIN),
        Route("DELETE", "/api/backup", "delete_backups", backup_api.delete_backups, "Delete backups by name",
              "backup", Ok("How many were deleted", schema=DELETED_SCHEMA), errors=(400, 404),
              body=Body("Backup names", schema=ID_LIST_SCHEMA), role=Role.ADMIN),
        Route("GET", "/api/backup/download/{name}", "download_backup", backup_api.download_backup,
              "Download a backup (application/zip); where the blob store has presigned URLs, its URL instead: "
              "JSON {url, expiresIn, filename} when the client accepts JSON, else a 302 to it", "backup",
              Ok("The zip archive", schema=BINARY_SCHEMA, content_type="application/zip"), errors=(400, 404),
              role=Role.ADMIN),
        Route("POST", "/api/backup/upload", "offer_backup_upload", backup_api.offer_upload,
              "Where to send an archive to restore: a presigned form to the blob store, then POST "
              '/api/backup/restore {"uploadId"}; or (no presigned URLs) the archive to /api/backup/restore itself',
              "backup", Ok("An upload offer", schema=firmware_api.offer_schema({})), errors=(400, 413),
              body=Body("The archive's name and size", model=firmware_api.UploadOffer,
                        example={"name": "mycontroller-20260101.zip", "size": 123456}), role=Role.ADMIN),
        Route("POST", "/api/backup/restore", "restore_backup", backup_api.restore_backup,
              'Restore from a stored backup ({"name"}), an archive sent through an upload offer ({"uploadId"}) or '
              'an uploaded zip (raw or multipart "file"): replaces the stored resources kind by kind (a job)',
              "backup", Ok("The job", schema=JOB_STARTED_SCHEMA), errors=(400, 404, 409),
              body=Body("A backup name, an upload id, or the archive", schema={"oneOf": [
                  {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}},
                  {"type": "object", "required": ["uploadId"], "properties": {"uploadId": {"type": "string"}}}]}),
              content_types=backup_api.RESTORE_TYPES, body_limit=backup_api.max_archive_bytes, role=Role.ADMIN),
        Route("GET", "/api/restore/run", "restore_backup_reference", backup_api.restore_by_id,
              "Restore a stored backup by id (MyController v2's form; a job, as POST /api/backup/restore)", "backup",
              Ok("The job", schema=JOB_STARTED_SCHEMA), errors=(400, 404, 409),
              params=(Param("id", "The backup's id (its name)", required=True),), role=Role.ADMIN),
        Route("POST", "/api/import", "import_reference_export", importer_api.import_export,
              "Import a MyController v2 export (its backup zip, raw or multipart 'file', or a JSON or YAML document "
              "of entities): what came over and what did not, with why; dryRun=true writes nothing; edgeId gives the "
              "gateways to an edge device", "backup", Ok("The report", schema=IMPORT_REPORT_SCHEMA),
              errors=(400, 413, 502),
              params=(Param("dryRun", "true: report only, write nothing"),
                      Param("edgeId", "The edge device (thing) the imported gateways run on")),
              body=Body("The export", schema={"type": "string", "format": "binary"}),
              content_types=importer_api.IMPORT_TYPES, body_limit=importer_api.max_import_bytes, role=Role.ADMIN),
        Route("GET", "/api/backup/job/{id}", "get_backup_job", backup_api.get_job,
              "Progress of a backup or restore job", "backup", Ok("The job", schema=JOB_SCHEMA), errors=(404,),
              role=Role.ADMIN),
    ]


def _openapi(_request: ApiRequest) -> dict[str, Any]:
    return document()


ACTION_PARAMS: Final = (
    Param("action", "The action", required=True),
    Param("id", "Target id or quick id (repeatable)", required=True),
)

ROUTES: Final[tuple[Route, ...]] = (
    *(route for kind in DEVICE_KINDS for route in _resource_routes(kind)),
    *(route for kind in automation.AUTOMATION_KINDS for route in _automation_routes(kind)),
    Route("GET", "/api/settings/system", "get_system_settings", settings.get_system_settings,
          "System settings: location, login message, language, system jobs; the same again as MyController v2's "
          "document (id, spec)", "settings",
          Ok("The settings", model=SystemSettings), errors=(), role=Role.VIEWER),
    Route("POST", "/api/settings/system", "update_system_settings", settings.post_system_settings,
          "Update system settings (top-level keys merge over the stored ones; a {id, spec} document saves its spec)",
          "settings",
          Ok("The settings as stored", model=SystemSettings), errors=(400, 502),
          body=Body("Settings", model=SystemSettings), role=Role.ADMIN),
    Route("POST", "/api/settings", "post_settings_document", settings.post_settings,
          "Save one of MyController v2's settings documents {id, spec}: system_settings (as POST "
          "/api/settings/system), system_backup_locations, system_jobs", "settings",
          Ok("The document as stored", schema=SETTINGS_DOCUMENT_SCHEMA), errors=(400, 502),
          body=Body("A settings document", schema=SETTINGS_DOCUMENT_SCHEMA,
                    example={"id": "system_settings", "spec": {"language": "en_us"}}), role=Role.ADMIN),
    Route("GET", "/api/settings/backuplocations", "get_backup_locations", settings.get_backup_locations,
          "MyController v2's backup locations document {id, spec: {locations}, modifiedOn}", "settings",
          Ok("The document", schema=SETTINGS_DOCUMENT_SCHEMA), errors=(), role=Role.ADMIN),
    Route("GET", "/api/settings/system/jwtsecret/reset", "reset_jwt_secret", settings.reset_jwt_secret,
          "End every login session of every user, the caller's too (MyController v2's JWT secret reset; service "
          "tokens stay valid)", "settings",
          Ok("How many users' sessions ended", schema={"type": "object", "properties": {
              "sessionsEnded": {"type": "integer"}}}), errors=(), role=Role.ADMIN),
    Route("GET", "/api/quickid", "get_quick_ids", resources.quick_id_lookup,
          "Resources (or values at a key path) by quick id", "quickid",
          Ok("Each quick id's resource or value", schema=QUICK_ID_RESULT_SCHEMA),
          params=(Param("id", "Quick id, e.g. field:gw.1.1.V_TEMP or node:gw.1.labels.room (repeatable)",
                        required=True),), role=Role.VIEWER),
    Route("POST", "/api/action", "post_actions", actions.post_action,
          "Set fields (payload or toggle), run node or gateway actions, by quick id", "action",
          Ok("Messages sent", schema=SENT_SCHEMA),
          body=Body("Actions", model=actions.ActionItem, many=MAX_ACTIONS,
                    example=[{"resource": "field:gw.1.1.V_STATUS", "payload": "toggle"}]), role=Role.USER),
    Route("GET", "/api/action", "get_action", actions.get_action, "One action by query parameters", "action",
          Ok("Messages sent", schema=SENT_SCHEMA),
          params=(Param("resource", "Quick id", required=True), Param("payload", "Value or toggle", required=True),
                  Param("keyPath", "Accepted for compatibility")), role=Role.USER),
    Route("POST", "/api/action/node", "post_node_action", actions.post_node_action,
          "Node action: heartbeat_request, reboot, refresh_node_info, reset, firmware_update", "action",
          Ok("Messages sent", schema=SENT_SCHEMA), body=Body("Action and node ids", model=actions.NodeActionBody),
          role=Role.USER),
    Route("GET", "/api/action/node", "get_node_action", actions.get_node_action,
          "Node action by query parameters (the reference's form)", "action",
          Ok("Messages sent", schema=SENT_SCHEMA), params=ACTION_PARAMS, role=Role.USER),
    Route("POST", "/api/action/gateway", "post_gateway_action", actions.post_gateway_action,
          "Gateway action: discover_nodes", "action", Ok("Messages sent", schema=SENT_SCHEMA),
          body=Body("Action and gateway ids", model=actions.GatewayActionBody), role=Role.USER),
    Route("GET", "/api/action/gateway", "get_gateway_action", actions.get_gateway_action,
          "Gateway action by query parameters (the reference's form)", "action",
          Ok("Messages sent", schema=SENT_SCHEMA), params=ACTION_PARAMS, role=Role.USER),
    Route("GET", "/api/metric", "get_metrics", metrics.get_metric, "Metrics of fields", "metric",
          Ok("Rows per quick id", schema=METRIC_RESULT_SCHEMA),
          params=(Param("quickId", "Field quick id (repeatable; quick_id accepted)"),
                  Param("quick_id", "Same as quickId (the reference's name)"),
                  Param("start", "-1h (default), now, RFC 3339 or epoch ms"),
                  Param("stop", "Same forms as start (default now)"),
                  Param("window", "Aggregation window (5m); none for raw points"),
                  Param("functions", "mean (default), min, max, median, sum, count, first, last, percentile_NN; "
                                     "comma-separated or repeated")), role=Role.VIEWER),
    Route("POST", "/api/metric", "post_metrics", metrics.post_metric, "Metrics of several fields (a read)", "metric",
          Ok("Rows per name", schema=METRIC_RESULT_SCHEMA), body=Body("Queries", model=metrics.MetricRequest),
          role=Role.VIEWER),
    Route("GET", "/api/status", "get_status", status.status, "Service status (no credentials needed)", "status",
          Ok("Status", schema=OBJECT_SCHEMA), errors=(), public=True),
    Route("GET", "/api/version", "get_version", status.version, "Version", "status",
          Ok("Version", schema=OBJECT_SCHEMA), errors=(), role=Role.VIEWER),
    Route("GET", "/api/server/status", "get_server_status", status.server_status,
          "Service status with the host's name (MyController v2's; signed in)", "status",
          Ok("Status", schema=OBJECT_SCHEMA), errors=(), role=Role.VIEWER),
    *_reference_resource_routes(Kind.DATA_REPOSITORY, "datarepository", "datarepository", "data repositories",
                                virtual.DataRepository, role=Role.USER),
    *_reference_resource_routes(Kind.VIRTUAL_DEVICE, "virtualdevice", "virtualdevice", "virtual devices",
                                virtual.VirtualDevice, role=Role.USER, extras=("enable", "disable")),
    *_reference_resource_routes(Kind.VIRTUAL_ASSISTANT, "virtualassistant", "virtualassistant",
                                "virtual assistants", virtual.VirtualAssistant, role=Role.ADMIN,
                                extras=("enable", "disable", "reload")),
    *_auth_routes(),
    *_dashboard_routes(),
    *_firmware_routes(),
    *_backup_routes(),
    Route("GET", "/api/openapi.json", "get_openapi", _openapi, "This document", "status",
          Ok("OpenAPI 3.0 document", schema=OBJECT_SCHEMA), errors=(), public=True),
)


@cache
def document() -> dict[str, Any]:
    """The OpenAPI document of ``ROUTES`` (built once; treat it as read-only)."""
    return openapi.build_document(ROUTES, version=status.VERSION)


HTTP_METHODS: Final = ("GET", "POST", "PUT", "PATCH", "DELETE")
NOT_ALLOWED_PREFIX: Final = "not_allowed_"


def not_allowed_routes() -> list[tuple[str, list[str], str, list[str]]]:
    """``(path, other methods, route name, allowed methods)`` per path: ``app.py`` answers the other methods with
    a JSON 405 (``web.method_not_allowed``) where API Gateway would answer 403 "Missing Authentication Token"."""
    by_path: dict[str, list[str]] = {}
    for route in ROUTES:
        by_path.setdefault(route.path, []).append(route.method)
    result = []
    for path, allowed in by_path.items():
        others = [method for method in HTTP_METHODS if method not in allowed]
        if others:
            name = NOT_ALLOWED_PREFIX + re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_")
            result.append((path, others, name, allowed))
    return result
