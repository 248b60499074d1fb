"""REST CRUD of the automation resources (task, schedule, handler, forward payload) through the Chalice app, once
with the memory and once with the DynamoDB repository (moto): list/get/upsert/delete, enable/disable, validation
errors naming the field, state kept from the store, handler secrets never answered, forward loops refused."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.core.automation.handlers import REDACTED
from chalicelib.core.model import Kind
from tests.integration.api_helpers import Api

pytestmark = pytest.mark.integration

TASK: dict[str, Any] = {"id": "t1", "description": "hot", "variables": {"temp": {"type": "string", "value": "1"}},
                        "evaluationConfig": {"rule": {"conditions": [{"variable": "temp", "operator": "gt",
                                                                       "value": 20}]}}}
SCHEDULE: dict[str, Any] = {"id": "s1", "type": "cron", "spec": {"cronExpression": "0 30 7 * * *"},
                            "timezone": "Europe/Paris"}
HANDLER: dict[str, Any] = {"id": "h1", "type": "telegram", "spec": {"token": "tg-secret-token", "chatIds": ["42"]}}
WEBHOOK: dict[str, Any] = {"id": "h2", "type": "webhook",
                           "spec": {"url": "https://example.com/hook", "password": "hook-secret-pw",
                                    "headers": {"Authorization": "Bearer hook-secret-bearer", "X-Plain": "p"}}}
FORWARD: dict[str, Any] = {"id": "f1", "srcFieldId": "field:gw.1.1.A", "dstFieldId": "field:gw.1.1.B"}
SECRETS = ("tg-secret-token", "hook-secret-pw", "hook-secret-bearer")

CASES = [("task", Kind.TASK, TASK, {"description": "cold"}),
         ("schedule", Kind.SCHEDULE, SCHEDULE, {"spec": {"cronExpression": "0 0 8 * * *"}}),
         ("handler", Kind.HANDLER, HANDLER, {"description": "tell me"}),
         ("forwardpayload", Kind.FORWARD_PAYLOAD, FORWARD, {"dstFieldId": "field:gw.1.1.C"})]


def error_of(api: Api, method: str, path: str, body: Any = None, **query: Any) -> tuple[int, dict[str, Any]]:
    status, data, _ = api.call(method, path, body, **query)
    assert status >= 400 and set(data) == {"status", "message", "field"}, (status, data)
    return status, data


def no_secrets(data: Any) -> None:
    text = json.dumps(data)
    for secret in SECRETS:
        assert secret not in text, text


@pytest.mark.parametrize(("name", "kind", "body", "change"), CASES, ids=[c[0] for c in CASES])
def test_crud_with_events(api: Api, name: str, kind: Kind, body: dict[str, Any], change: dict[str, Any]) -> None:
    created = api.ok("POST", f"/api/{name}", body)
    assert created["id"] == body["id"] and created["modifiedOn"]
    assert api.ok("GET", f"/api/{name}/{body['id']}")["id"] == body["id"]
    assert api.ok("GET", f"/api/{name}/{kind.value}:{body['id']}")["id"] == body["id"]  # quick id
    page = api.ok("GET", f"/api/{name}")
    assert (page["count"], page["limit"], page["offset"]) == (1, 50, 0) and page["data"][0]["id"] == body["id"]

    updated = api.ok("POST", f"/api/{name}", {**body, **change})
    for key, value in change.items():
        assert updated[key] == value and api.ok("GET", f"/api/{name}/{body['id']}")[key] == value
    assert updated["modifiedOn"] >= created["modifiedOn"]
    assert [e.detail_type for e in api.events] == [f"{kind.value}.created", f"{kind.value}.updated"]

    assert api.ok("DELETE", f"/api/{name}", [body["id"]]) == {"deleted": 1, "cascaded": 0}
    assert api.events[-1].detail_type == f"{kind.value}.deleted"
    assert error_of(api, "GET", f"/api/{name}/{body['id']}")[0] == 404
    assert api.ok("GET", f"/api/{name}")["count"] == 0


def test_list_query_filters_sorts_and_pages(api: Api) -> None:
    for index in range(4):
        api.ok("POST", "/api/task", {**TASK, "id": f"t{index}", "labels": {"room": f"r{index % 2}"}})
    page = api.ok("GET", "/api/task", limit=2, offset=1, sortBy=json.dumps([{"f": "id", "o": "desc"}]))
    assert (page["count"], page["limit"], page["offset"]) == (4, 2, 1)
    assert [t["id"] for t in page["data"]] == ["t2", "t1"]
    filtered = api.ok("GET", "/api/task", filter=json.dumps([{"k": "labels.room", "o": "eq", "v": "r1"}]))
    assert sorted(t["id"] for t in filtered["data"]) == ["t1", "t3"]
    assert error_of(api, "GET", "/api/task", filter="[{")[1]["field"] == "filter"


@pytest.mark.parametrize(("name", "body", "field"), [
    ("task", {**TASK, "dampening": {"type": "sometimes"}}, "dampening.type"),
    ("task", {**TASK, "evaluationType": "javascript", "evaluationConfig": {"javascript": "if ("}},
     "evaluationConfig.javascript"),
    ("task", {"description": "no id"}, "id"),
    ("schedule", {**SCHEDULE, "timezone": "Mars/Olympus"}, "timezone"),
    ("schedule", {**SCHEDULE, "type": "weekly"}, "type"),
    ("handler", {"id": "h9", "type": "pigeon"}, "type"),
    ("forwardpayload", {**FORWARD, "srcFieldId": "node:gw.1"}, "srcFieldId"),
    ("forwardpayload", {**FORWARD, "id": "bad.id"}, "id"),
])
def test_validation_error_names_the_field(api: Api, name: str, body: dict[str, Any], field: str) -> None:
    status, data = error_of(api, "POST", f"/api/{name}", body)
    assert (status, data["field"]) == (400, field), data
    assert api.ok("GET", f"/api/{name}")["count"] == 0 and api.events == []


def test_body_must_be_an_object(api: Api) -> None:
    assert error_of(api, "POST", "/api/task", ["t1"])[1]["field"] == "body"


@pytest.mark.parametrize(("name", "body"), [(c[0], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_enable_and_disable(api: Api, name: str, body: dict[str, Any]) -> None:
    api.ok("POST", f"/api/{name}", body)
    api.ok("POST", f"/api/{name}", {**body, "id": "other"})
    assert api.ok("POST", f"/api/{name}/disable", [body["id"]]) == {"updated": 1, "unchanged": 0}
    assert api.ok("GET", f"/api/{name}/{body['id']}")["enabled"] is False
    assert api.ok("GET", f"/api/{name}/other")["enabled"] is True
    assert api.events[-1].detail_type.endswith(".updated") and api.events[-1].detail["entity"]["enabled"] is False
    assert api.ok("POST", f"/api/{name}/disable", [body["id"]]) == {"updated": 0, "unchanged": 1}
    assert api.ok("POST", f"/api/{name}/enable", [body["id"], "other"]) == {"updated": 1, "unchanged": 1}
    assert api.ok("GET", f"/api/{name}/{body['id']}")["enabled"] is True
    status, data = error_of(api, "POST", f"/api/{name}/disable", [body["id"], "ghost"])
    assert status == 404 and "ghost" in data["message"]
    assert api.ok("GET", f"/api/{name}/{body['id']}")["enabled"] is True  # nothing changed
    assert error_of(api, "POST", f"/api/{name}/enable", [])[1]["field"] == "body"


@pytest.mark.parametrize(("name", "body"), [(c[0], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_unknown_ids_are_404s(api: Api, name: str, body: dict[str, Any]) -> None:
    api.ok("POST", f"/api/{name}", body)
    assert error_of(api, "GET", f"/api/{name}/ghost")[0] == 404
    status, data = error_of(api, "DELETE", f"/api/{name}", [body["id"], "ghost"])
    assert status == 404 and "ghost" in data["message"]
    assert api.ok("GET", f"/api/{name}/{body['id']}")["id"] == body["id"]  # nothing deleted


@pytest.mark.parametrize(("name", "kind", "body"), [(c[0], c[1], c[2]) for c in CASES[:3]],
                         ids=[c[0] for c in CASES[:3]])
def test_state_sent_by_a_client_is_ignored(api: Api, name: str, kind: Kind, body: dict[str, Any]) -> None:
    created = api.ok("POST", f"/api/{name}", {**body, "state": {"message": "forged"}})
    assert created["state"]["message"] == ""
    stored = api.container.repository.get(kind, body["id"])
    assert stored is not None
    api.container.repository.put(kind, {**stored, "state": {**stored["state"], "message": "from the worker"}})
    updated = api.ok("POST", f"/api/{name}", {**body, "state": {"message": "forged again"}})
    assert updated["state"]["message"] == "from the worker"
    assert api.ok("GET", f"/api/{name}/{body['id']}")["state"]["message"] == "from the worker"


def _stored_spec(api: Api, handler_id: str) -> dict[str, Any]:
    """The stored spec, secrets decrypted (they are at rest as ``enc:v1:...``)."""
    from chalicelib.core.automation.handler_secrets import decrypt_spec, is_encrypted

    stored = api.container.repository.get(Kind.HANDLER, handler_id)
    assert stored is not None
    spec, clear = decrypt_spec(handler_id, stored["type"], stored["spec"], api.container.secrets)
    assert clear and not any(value in json.dumps(stored) for value in clear)
    assert all(is_encrypted(stored["spec"].get(key)) for key in ("password", "token") if stored["spec"].get(key))
    return spec


def test_handler_secrets_never_answered_and_kept_with_the_placeholder(api: Api) -> None:
    answers = [api.ok("POST", "/api/handler", HANDLER), api.ok("POST", "/api/handler", WEBHOOK)]
    answers += [api.ok("GET", "/api/handler"), api.ok("GET", "/api/handler/h1"), api.ok("GET", "/api/handler/h2"),
                api.ok("GET", "/api/handler/handler:h2")]
    quick = api.ok("GET", "/api/quickid", id=["handler:h2", "handler:h2.spec.password", "handler:h1.spec"])
    assert quick["handler:h2.spec.password"] == REDACTED and quick["handler:h1.spec"]["token"] == REDACTED
    assert "enc:v1:" not in json.dumps(quick), "not even the ciphertext leaves"
    answers.append(quick)
    for answer in answers:
        no_secrets(answer)
    webhook = api.ok("GET", "/api/handler/h2")
    assert webhook["spec"]["password"] == REDACTED and webhook["spec"]["headers"]["Authorization"] == REDACTED
    assert webhook["spec"]["headers"]["X-Plain"] == "p"

    # The client edits the description and sends back what it was given: the secrets stay.
    edited = api.ok("POST", "/api/handler", {**webhook, "description": "edited"})
    no_secrets(edited)
    assert edited["description"] == "edited" and edited["spec"]["password"] == REDACTED
    stored = _stored_spec(api, "h2")  # secrets are stored encrypted; decrypted here as the handler function does
    assert stored["password"] == "hook-secret-pw"
    assert stored["headers"]["Authorization"] == "Bearer hook-secret-bearer"
    telegram = api.ok("GET", "/api/handler/h1")
    api.ok("POST", "/api/handler", telegram)
    assert _stored_spec(api, "h1")["token"] == "tg-secret-token"

    # A new secret replaces the old one (and is not answered either).
    replaced = api.ok("POST", "/api/handler", {**telegram, "spec": {**telegram["spec"], "token": "new-token"}})
    assert "new-token" not in json.dumps(replaced)
    assert _stored_spec(api, "h1")["token"] == "new-token"

    # Enable/disable and delete answers and every bus event are redacted too.
    api.ok("POST", "/api/handler/disable", ["h2"])
    api.ok("POST", "/api/handler/enable", ["h2"])
    no_secrets(api.ok("DELETE", "/api/handler", ["h2"]))
    no_secrets([e.detail for e in api.events])
    assert [e.detail_type for e in api.events][-1] == "handler.deleted"


def test_handler_placeholder_without_a_stored_secret_is_refused(api: Api) -> None:
    status, data = error_of(api, "POST", "/api/handler", {**HANDLER, "spec": {"token": REDACTED}})
    assert (status, data["field"]) == (400, "spec.token")
    assert error_of(api, "GET", "/api/handler/h1")[0] == 404


@pytest.mark.parametrize("query", [
    {"filter": json.dumps([{"k": "spec.token", "o": "eq", "v": "tg-secret-token"}])},
    {"filter": json.dumps([{"k": "spec.headers.Authorization", "o": "regex", "v": "^Bearer"}])},
    {"filter": json.dumps([{"k": "spec", "o": "regex", "v": "secret"}])},
    {"sortBy": json.dumps([{"f": "spec.password", "o": "asc"}])},
])
def test_handler_list_cannot_probe_secrets(api: Api, query: dict[str, str]) -> None:
    api.ok("POST", "/api/handler", HANDLER)
    status, data = error_of(api, "GET", "/api/handler", **query)
    assert status == 400 and data["field"] in ("filter", "sortBy")
    assert api.ok("GET", "/api/handler", filter=json.dumps([{"k": "spec.chatIds", "o": "exists", "v": True}]))


def test_forward_payload_loop_is_refused(api: Api) -> None:
    api.ok("POST", "/api/forwardpayload", FORWARD)  # A -> B
    api.ok("POST", "/api/forwardpayload", {"id": "f2", "srcFieldId": "field:gw.1.1.B",
                                           "dstFieldId": "field:gw.1.1.C"})  # B -> C
    status, data = error_of(api, "POST", "/api/forwardpayload", {"id": "f3", "srcFieldId": "field:gw.1.1.C",
                                                                 "dstFieldId": "field:gw.1.1.A"})
    assert (status, data["field"]) == (400, "dstFieldId") and "loop" in data["message"]
    assert error_of(api, "GET", "/api/forwardpayload/f3")[0] == 404
    # Replacing a mapping does not count it against itself; turning f2 around (C -> B) closes no loop.
    assert api.ok("POST", "/api/forwardpayload", {"id": "f2", "srcFieldId": "field:gw.1.1.C",
                                                  "dstFieldId": "field:gw.1.1.B"})["srcFieldId"] == "field:gw.1.1.C"
    status, data = error_of(api, "POST", "/api/forwardpayload", {**FORWARD, "dstFieldId": "field:gw.1.1.A"})
    assert (status, data["field"]) == (400, "dstFieldId")


def test_routes_are_in_the_openapi_document(api: Api) -> None:
    paths = api.ok("GET", "/api/openapi.json")["paths"]
    for name in ("task", "schedule", "handler", "forwardpayload"):
        assert set(paths[f"/api/{name}"]) == {"get", "post", "delete"}
        assert set(paths[f"/api/{name}/{{id}}"]) == {"get"}
        assert set(paths[f"/api/{name}/enable"]) == set(paths[f"/api/{name}/disable"]) == {"post"}


def test_a_sun_schedule_without_a_location_says_why_it_will_not_run(api: Api) -> None:
    sun = {"id": "dawn", "type": "sunrise", "spec": {"offset": "-10m"}}
    saved = api.ok("POST", "/api/schedule", sun)
    assert saved["state"]["message"].startswith("will not run: ") and saved["state"]["lastStatus"] is False
    api.ok("POST", "/api/settings/system", {"geoLocation": {"latitude": 48.85, "longitude": 2.35,
                                                            "locationName": "Paris"}})
    again = api.ok("POST", "/api/schedule", sun)
    assert again["state"]["message"] == "", "with a location it runs, and the old reason is gone"
