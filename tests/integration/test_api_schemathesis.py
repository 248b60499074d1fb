"""schemathesis against the OpenAPI document, over real HTTP: the Chalice app served by Chalice's local dev
server on a free loopback port, with the memory repository and a few resources to hit. Positive and negative
examples for every operation must never produce a 5xx, must answer only documented status codes, and always in
JSON. Bounded: a few examples per operation, well under a minute in all. Calls carry a service token (logout does
not revoke those, so a generated logout cannot lock the run out)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, status_code_conformance

from chalicelib.api.routes import document
from chalicelib.bootstrap import Container
from tests.integration.api_helpers import make_container

pytestmark = pytest.mark.integration

FRONT_END_METHODS = frozenset({"HEAD", "OPTIONS", "TRACE", "QUERY", "CONNECT"})



def _zip_bytes(members: dict[str, bytes]) -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


# Restore bodies: an empty zip, one with a bad manifest, one escaping its folder, and arbitrary bytes.
schemathesis.openapi.media_type("application/zip", st.one_of(
    st.sampled_from([_zip_bytes({}), _zip_bytes({"manifest.json": b"{}"}), _zip_bytes({"../evil": b"x"})]),
    st.binary(max_size=256)))
schema = schemathesis.openapi.from_dict(document())
schema.config.generation.update(max_examples=12)


@pytest.fixture(scope="module")
def container(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Container]:
    tmp: Path = tmp_path_factory.mktemp("schemathesis")
    built = make_container("memory", tmp, request)
    try:
        yield built
    finally:
        built.close()


@pytest.fixture(scope="module")
def base_url(container: Container) -> Iterator[str]:
    from chalice.config import Config
    from chalice.local import create_local_server

    from chalicelib.api import build_api

    repo = container.repository
    from chalicelib.core.model import FieldModel, Gateway, Kind, Node, Source

    repo.put(Kind.GATEWAY, Gateway(id="gw", provider={"type": "mysensors_v2"}).record())
    repo.put(Kind.NODE, Node(gateway_id="gw", node_id="1").record())
    repo.put(Kind.SOURCE, Source(gateway_id="gw", node_id="1", source_id="1").record())
    repo.put(Kind.FIELD, FieldModel.model_validate({"gatewayId": "gw", "nodeId": "1", "sourceId": "1",
                                                    "fieldId": "V_STATUS", "metricType": "binary"}).record())
    server = create_local_server(build_api(container), Config.create(chalice_stage="dev", app_name="mycontroller"),
                                 "127.0.0.1", 0)
    thread = threading.Thread(target=server.server.serve_forever, name="schemathesis-api", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server.server_address[1]}"
    finally:
        server.shutdown()
        server.server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def auth_headers(container: Container, base_url: str) -> dict[str, str]:
    """A user and a service token of theirs, stored directly (no login needed)."""
    from chalicelib.core import auth
    from chalicelib.core.model import Kind

    repo = container.repository
    repo.put(Kind.USER, {**auth.User(username="schemathesis").record(), "password": "$2b$04$" + "x" * 53})
    token_id, secret = auth.new_service_token()
    repo.put(Kind.SERVICE_TOKEN, auth.ServiceToken(id=token_id, user_id="schemathesis", name="schemathesis",
                                                   token=auth.hash_secret(secret), never_expire=True).record())
    return {"Authorization": f"Bearer {auth.client_form(token_id, secret)}"}


@pytest.mark.timeout(120)
@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_never_answers_5xx(case: Any, base_url: str, auth_headers: dict[str, str]) -> None:
    if case.method.upper() in FRONT_END_METHODS:
        return  # answered by the HTTP front (API Gateway, or here Chalice's dev server), never by the app
    case.call_and_validate(base_url=base_url, timeout=10, headers=auth_headers,
                           checks=[not_a_server_error, status_code_conformance, content_type_conformance])
