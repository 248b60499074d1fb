"""A MyController v2 export (``tests/fixtures/reference/v2_export``: its backup zip's layout, YAML as it writes it:
nanosecond and zero times, Go-style settings keys, secrets encrypted with its own key, service tokens) imported by
one API call over each repository, and by one command: what comes over works here, what does not is in the report
with why."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from chalicelib.core.model import Kind
from tests.integration.api_helpers import Api

EXPORT = Path(__file__).resolve().parents[1] / "fixtures" / "reference" / "v2_export"


def export_zip() -> bytes:
    """The fixture as the reference zips it: top-level names with a leading slash, nested ones with ``//``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(EXPORT.rglob("*")):
            if path.is_file():
                name = path.relative_to(EXPORT).as_posix()
                archive.writestr("/" + name if "/" not in name else name.replace("/", "//", 1), path.read_bytes())
    return buffer.getvalue()


def post_import(api: Api, data: bytes, **query: str) -> dict[str, Any]:
    path = "/api/import" + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")
    response = api.http.request("POST", path, body=data, headers={"Content-Type": "application/zip",
                                                                   "Authorization": f"Bearer {api.token}"})
    assert response.status_code == 200, response.body
    return json.loads(response.body)


def test_a_reference_export_imports_in_one_call_with_a_report(api: Api) -> None:
    dry = post_import(api, export_zip(), dryRun="true")
    assert dry["dryRun"] is True and api.ok("GET", "/api/gateway")["count"] == 0  # nothing written
    report = post_import(api, export_zip(), edgeId="local")
    assert report["imported"] == dry["imported"]
    assert report["imported"] == {"settings": 3, "gateway": 2, "node": 1, "source": 2, "field": 2, "firmware": 2,
                                  "handler": 3, "task": 1, "schedule": 2, "forward_payload": 1, "data_repository": 1,
                                  "virtual_device": 1, "virtual_assistant": 1, "dashboard": 1, "user": 1}
    skipped = {(item["entity"], item["id"]): item["reason"] for item in report["skipped"]}
    assert "gateway id" in skipped[("gateway", "bad gateway id")]
    assert "type" in skipped[("handler", "pigeon")]
    assert "make new ones" in skipped[("service_token", "1706780400000abcdefghi")]
    assert "exists here already" in skipped[("user", "8d7c6b5a-4f3e-4d2c-9b1a-0f9e8d7c6b5a")]
    assert "JWT secret" in skipped[("settings", "system_dynamic_secrets")]
    changed = {(item["entity"], item["id"]): item["what"] for item in report["changed"]}
    assert "set it again" in changed[("gateway", "tasmota")] and "set it again" in changed[("handler", "mail")]
    assert "upload it again" in changed[("firmware", "gone")]

    gateway = api.ok("GET", "/api/gateway/mysensors")
    assert gateway["edgeId"] == "local" and gateway["provider"]["protocol"]["portname"] == "/dev/ttyUSB0"
    assert gateway["state"]["since"] == "2024-02-01T10:20:30.123Z" and gateway["lastTransaction"] is None
    field = api.ok("GET", "/api/field/mysensors.1.2.V_TEMP")
    assert field["current"]["value"] == 21.5 and field["unit"] == "°C" and field["labels"]["ignore_unit"] == "true"
    assert api.ok("GET", "/api/node/mysensors.1")["others"]["battery_level"] == 87
    task = api.ok("GET", "/api/task/too-hot")
    assert task["evaluationType"] == "javascript" and task["variables"]["forecast"]["url"].startswith("https://")
    assert api.ok("GET", "/api/schedule/poll")["type"] == "repeat"
    mail = api.container.repository.get(Kind.HANDLER, "mail") or {}
    assert mail["spec"]["password"] == "" and mail["spec"]["toEmails"] == "me@example.com,you@example.com"
    firmware = api.ok("GET", "/api/firmware/door")
    assert firmware["file"]["size"] == 56 and firmware["file"]["checksum"].startswith("sha256:")
    trait = "virtual_device:kitchen-lamp.on_off"
    assert api.ok("GET", "/api/quickid", id=trait)[trait] is True  # the lamp's field reads through the trait
    settings = api.ok("GET", "/api/settings/system")
    assert settings["geoLocation"]["locationName"] == "Berlin" and settings["login"]["message"] == "Welcome home"
    assert api.ok("GET", "/api/settings/backuplocations")["spec"]["locations"][0]["config"]["targetDirectory"]
    assert api.ok("GET", "/api/dashboard")["data"][0]["widgets"][0]["config"]["chart"]["chartType"] == "line_chart"
    mia = api.login("mia", "Orchard-Violet-31")  # her bcrypt hash came over as it was
    assert api.ok("GET", "/api/user/profile", auth=mia)["role"] == "user"
    assert api.events[-1].detail["entityType"] == "import"


def test_json_exports_and_bad_archives(api: Api) -> None:
    document = {"gateway": [{"id": "gw", "provider": {"type": "mysensors_v2"}}],
                "node": [{"id": "x", "gatewayId": "gw", "nodeId": "5", "name": "N"}]}
    response = api.http.request("POST", "/api/import", body=json.dumps(document).encode(),
                                headers={"Content-Type": "application/json", "Authorization": f"Bearer {api.token}"})
    assert response.status_code == 200 and json.loads(response.body)["imported"] == {"gateway": 1, "node": 1}
    assert api.ok("GET", "/api/node/gw.5")["name"] == "N"
    for body in (b"PK\x03\x04 not really", b"[1, 2", b"- just\n- a list\n"):
        response = api.http.request("POST", "/api/import", body=body,
                                    headers={"Content-Type": "application/octet-stream",
                                             "Authorization": f"Bearer {api.token}"})
        assert response.status_code == 400 and json.loads(response.body)["field"] == "body", response.body


@pytest.mark.parametrize("api", ["memory"], indirect=True)
def test_one_command_imports_into_the_stack_the_environment_names(api: Api, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.local.import_v2 import main

    export = tmp_path / "home_mc_backup_yaml.zip"
    export.write_bytes(export_zip())
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "stack"))
    monkeypatch.setenv("STORAGE", "sqlite")
    out = io.StringIO()
    assert main([str(export), "--dry-run"], out) == 0  # a fresh stack has no user yet: the admin comes over too
    assert out.getvalue().startswith("would import 25 record(s)")
    out = io.StringIO()
    assert main([str(export), "--edge", "local"], out) == 0
    text = out.getvalue()
    assert text.startswith("imported 25 record(s)") and "service_token 1706780400000abcdefghi" in text
    from chalicelib.bootstrap import Container

    container = Container.from_env()
    try:
        assert container.repository.get(Kind.GATEWAY, "mysensors") is not None
    finally:
        container.close()
