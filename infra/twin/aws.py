"""The twin's AWS endpoint: moto's server, in this process, behind a thin WSGI layer for what moto cannot be.

Everything goes to moto except the few calls that must reach the twin's live parts:

* IoT ``DescribeEndpoint`` answers the twin's broker address; ``CreateKeysAndCertificate`` issues a key and a
  certificate signed by the twin's CA and registers it in moto (so the broker accepts it); after any other IoT
  control-plane change (attachments, policies, certificate status) the broker's ACLs are rewritten;
* iot-data (``Publish``, the shadow calls) goes to the twin's broker and shadow service;
* the websocket management API (``PostToConnection``/``GetConnection``/``DeleteConnection``, requests the
  functions' ``before-send`` hook sent here from ``*.execute-api.*``) goes to the twin's websocket connections;
* EventBridge ``PutEvents`` is handled by moto (which delivers to SQS targets) and then shown to the twin, which
  delivers to Lambda targets; Scheduler changes tell the twin's scheduler to look again.

The service of a request is read from its SigV4 credential scope, as moto itself does.
"""

from __future__ import annotations

import io
import json
import logging
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs, unquote

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

log = logging.getLogger("twin.aws")
_SCOPE = re.compile(r"Credential=[^/]+/[^/]+/([^/]+)/([^/]+)/")


class Hooks:
    """What the endpoint calls into (set by the twin once its parts exist)."""

    endpoint_address: Callable[[], str] = staticmethod(lambda: "")
    issue_certificate: Callable[[bool], dict[str, Any]] | None = None
    iot_changed: Callable[[], None] = staticmethod(lambda: None)
    iot_publish: Callable[[str, bytes, int, bool], None] | None = None
    shadows: Any = None
    connections: Any = None
    put_events: Callable[[list[dict[str, Any]]], None] = staticmethod(lambda entries: None)
    schedules_changed: Callable[[], None] = staticmethod(lambda: None)
    control: Callable[[str, str, bytes], tuple[int, Any]] | None = None


def _json(status: int, body: Any, error_type: str | None = None) -> tuple[int, dict[str, str], bytes]:
    headers = {"Content-Type": "application/json"}
    if error_type:
        headers["x-amzn-ErrorType"] = error_type
    return status, headers, json.dumps(body).encode()


class Endpoint:
    """moto's WSGI app with the twin's few operations in front."""

    def __init__(self, hooks: Hooks) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        self.moto = DomainDispatcherApplication(create_backend_app)
        self.hooks = hooks
        self.server: BaseWSGIServer | None = None

    # ------------------------------------------------------------------------------------------- WSGI

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        match = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        service = match.group(2) if match else ""
        method = environ["REQUEST_METHOD"]
        path = unquote(environ.get("PATH_INFO", ""))
        query = parse_qs(environ.get("QUERY_STRING", ""))
        answer: tuple[int, dict[str, str], bytes] | None = None
        try:
            if path.startswith("/_twin/") and self.hooks.control is not None:
                status, reply = self.hooks.control(method, path, body)
                answer = _json(status, reply)
            elif service == "iotdata":
                answer = self._iot_data(method, path, query, body)
            elif service == "execute-api" and "/@connections/" in path:
                answer = self._connections(method, path, body)
            elif service == "iot" and method == "GET" and path == "/endpoint":
                answer = _json(200, {"endpointAddress": self.hooks.endpoint_address()})
            elif service == "iot" and method == "POST" and path == "/keys-and-certificate":
                assert self.hooks.issue_certificate is not None
                active = (query.get("setAsActive") or ["false"])[0].lower() == "true"
                answer = _json(200, self.hooks.issue_certificate(active))
        except Exception as error:  # the twin's own failure: an AWS-shaped 500, logged
            log.exception("twin endpoint failed on %s %s", method, path)
            answer = _json(500, {"message": f"twin: {error}"}, "InternalFailure")
        if answer is not None:
            status, headers, payload = answer
            start_response(f"{status} X", [*headers.items(), ("Content-Length", str(len(payload)))])
            return [payload]
        return self._moto(environ, start_response, service, method, body)

    def _moto(self, environ: dict[str, Any], start_response: Callable[..., Any], service: str, method: str,
              body: bytes) -> Iterable[bytes]:
        status_holder: list[str] = []

        def capture(status: str, headers: Any, exc_info: Any = None) -> Any:
            status_holder.append(status)
            return start_response(status, headers, exc_info)

        result = b"".join(self.moto(environ, capture))
        ok = bool(status_holder) and status_holder[0].startswith("2")
        if ok and service == "iot" and method in ("POST", "PUT", "PATCH", "DELETE"):
            self.hooks.iot_changed()
        elif ok and service == "events" and environ.get("HTTP_X_AMZ_TARGET", "").endswith(".PutEvents"):
            try:
                entries = json.loads(body).get("Entries") or []
            except ValueError:
                entries = []
            threading.Thread(target=self.hooks.put_events, args=(entries,), daemon=True).start()
        elif ok and service == "scheduler" and method != "GET":
            self.hooks.schedules_changed()
        return [result]

    # ------------------------------------------------------------------------------------------- iot-data

    def _iot_data(self, method: str, path: str, query: dict[str, list[str]],
                  body: bytes) -> tuple[int, dict[str, str], bytes]:
        from .iot import ShadowRejected

        if path.startswith("/topics/") and method == "POST":
            assert self.hooks.iot_publish is not None
            qos = int((query.get("qos") or ["0"])[0])
            retain = (query.get("retain") or ["false"])[0].lower() == "true"
            self.hooks.iot_publish(path[len("/topics/"):], body, qos, retain)
            return _json(200, {})
        shadow = re.fullmatch(r"/things/([^/]+)/shadow", path)
        if shadow:
            thing, name = shadow.group(1), (query.get("name") or [""])[0]
            try:
                if method == "GET":
                    return _json(200, self.hooks.shadows.get(thing, name))
                if method == "POST":
                    try:
                        document = json.loads(body)
                    except ValueError:
                        return _json(400, {"message": "Payload contains invalid json"}, "InvalidRequestException")
                    return _json(200, self.hooks.shadows.update(thing, name, document))
                if method == "DELETE":
                    return _json(200, self.hooks.shadows.delete(thing, name))
            except ShadowRejected as error:
                kind = {404: "ResourceNotFoundException", 409: "ConflictException"}.get(error.code,
                                                                                       "InvalidRequestException")
                return _json(error.code, {"message": str(error)}, kind)
        listing = re.fullmatch(r"/api/things/shadow/ListNamedShadowsForThing/([^/]+)", path)
        if listing:
            return _json(200, {"results": self.hooks.shadows.names(listing.group(1)), "timestamp": 0})
        return _json(404, {"message": f"the twin's iot-data has no {method} {path}"}, "ResourceNotFoundException")

    # ------------------------------------------------------------------------------------------- websocket

    def _connections(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        connection_id = path.rsplit("/@connections/", 1)[1]
        connections = self.hooks.connections
        if connections is None or not connections.exists(connection_id):
            return _json(410, {"message": f"connection {connection_id} is gone"}, "GoneException")
        if method == "POST":
            connections.send(connection_id, body)
            return _json(200, {})
        if method == "DELETE":
            connections.close(connection_id)
            return _json(204, {})
        return _json(200, connections.describe(connection_id))

    # ------------------------------------------------------------------------------------------- server

    def serve(self, host: str, port: int) -> int:
        class Quiet(WSGIRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                pass

        self.server = make_server(host, port, self, threaded=True, request_handler=Quiet)
        threading.Thread(target=self.server.serve_forever, daemon=True, name="aws-endpoint").start()
        return int(self.server.server_address[1])

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
