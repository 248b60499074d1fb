"""API Gateway on one local port: the template's REST API (proxy integrations), its websocket API and the console.

* REST: ``/<stage>/<path>`` is matched against the ``Body`` (OpenAPI) of the template's ``AWS::ApiGateway::RestApi``;
  a match becomes API Gateway's proxy event for the function its ``aws_proxy`` integration names (which must allow
  apigateway.amazonaws.com through an ``AWS::Lambda::Permission``); no match is API Gateway's 403 "Missing
  Authentication Token", or the template's gateway response for it. A function error is a 502, a timeout a 504.
* Websocket: an upgrade on ``/<stage>`` of the ``AWS::ApiGatewayV2::Api`` runs ``$connect`` (a non-2xx answer
  refuses the handshake with that status, as API Gateway does), each message goes to the route its
  ``RouteSelectionExpression`` picks or ``$default``, a close runs ``$disconnect``. ``post_to_connection`` reaches
  the socket through the twin's AWS endpoint (``Connections``); a gone connection is a 410.
* Anything else is the console (``frontend/dist``), as the stack's console URL serves it.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import json
import logging
import mimetypes
import re
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from .iam import wildcard_match
from .template import ACCOUNT_ID

log = logging.getLogger("twin.gateway")
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
_FUNCTION_IN_URI = re.compile(r"functions/(arn:[^/]+)/invocations")


def function_of(uri: Any) -> str | None:
    match = _FUNCTION_IN_URI.search(str(uri or ""))
    return match.group(1) if match else None


class Route:
    def __init__(self, template: str) -> None:
        self.template = template
        pattern = ""
        self.names: list[str] = []
        for part in template.strip("/").split("/"):
            if not part:
                continue
            greedy = re.fullmatch(r"\{(\w+)\+\}", part)
            param = re.fullmatch(r"\{(\w+)\}", part)
            if greedy:
                self.names.append(greedy.group(1))
                pattern += "/(.+)"
            elif param:
                self.names.append(param.group(1))
                pattern += "/([^/]+)"
            else:
                pattern += "/" + re.escape(part)
        self.regex = re.compile((pattern or "/?") + "/?$" if pattern else "/?$")
        self.literal = sum(1 for p in template.split("/") if p and not p.startswith("{"))

    def match(self, path: str) -> dict[str, str] | None:
        found = self.regex.match(path)
        return dict(zip(self.names, found.groups(), strict=False)) if found else None


class RestApi:
    def __init__(self, api_id: str, stage: str, body: dict[str, Any], responses: dict[str, dict[str, Any]]) -> None:
        self.api_id = api_id
        self.stage = stage
        self.paths: list[tuple[Route, dict[str, Any]]] = []
        for path, item in (body.get("paths") or {}).items():
            self.paths.append((Route(path), item))
        self.paths.sort(key=lambda entry: -entry[0].literal)
        self.binary_types = list(body.get("x-amazon-apigateway-binary-media-types") or [])
        self.responses = {**(body.get("x-amazon-apigateway-gateway-responses") or {}), **responses}

    def find(self, method: str, path: str) -> tuple[Route, dict[str, Any], dict[str, str]] | None:
        for route, item in self.paths:
            params = route.match(path)
            if params is None:
                continue
            operation = item.get(method.lower()) or item.get("x-amazon-apigateway-any-method")
            if operation is not None:
                return route, operation, params
        return None


class WebsocketApi:
    def __init__(self, api_id: str, stage: str, selection: str, routes: dict[str, str]) -> None:
        self.api_id = api_id
        self.stage = stage
        self.selection = selection
        self.routes = routes
        """Route key → function ARN."""

    def route_for(self, body: str) -> str:
        match = re.fullmatch(r"\$request\.body\.(.+)", self.selection or "")
        if match:
            try:
                value: Any = json.loads(body)
                for key in match.group(1).split("."):
                    value = value.get(key) if isinstance(value, dict) else None
                if isinstance(value, str) and value in self.routes:
                    return value
            except ValueError:
                pass
        return "$default"


@dataclass
class Behavior:
    """One CloudFront cache behaviour: a path pattern and the kind of its origin (``s3``, ``rest``, ``websocket``)."""

    pattern: str
    origin: str
    origin_path: str = ""


class Socket:
    """One websocket connection (API Gateway's connection id)."""

    def __init__(self, sock: socket.socket, ws: WSConnection, connection_id: str, source_ip: str) -> None:
        self.sock = sock
        self.ws = ws
        self.id = connection_id
        self.source_ip = source_ip
        self.connected_at = time.time()
        self.last_active = self.connected_at
        self.lock = threading.Lock()
        self.open = True

    def send_text(self, data: bytes) -> None:
        with self.lock:
            if not self.open:
                raise ConnectionError("closed")
            frame = self.ws.send(Message(data=data.decode("utf-8", errors="replace")))
            self.sock.sendall(frame)

    def send_event(self, event: Any) -> None:
        with self.lock, contextlib.suppress(LocalProtocolError, OSError):
            self.sock.sendall(self.ws.send(event))


class Connections:
    """The websocket management API's view of the open sockets."""

    def __init__(self) -> None:
        self._sockets: dict[str, Socket] = {}
        self._lock = threading.Lock()
        self.posts = 0

    def add(self, item: Socket) -> None:
        with self._lock:
            self._sockets[item.id] = item

    def remove(self, connection_id: str) -> None:
        with self._lock:
            self._sockets.pop(connection_id, None)

    def exists(self, connection_id: str) -> bool:
        item = self._sockets.get(connection_id)
        return item is not None and item.open

    def send(self, connection_id: str, data: bytes) -> None:
        item = self._sockets.get(connection_id)
        if item is None:
            raise KeyError(connection_id)
        try:
            item.send_text(data)
            self.posts += 1
        except OSError:
            item.open = False

    def close(self, connection_id: str) -> None:
        item = self._sockets.get(connection_id)
        if item is not None:
            item.send_event(CloseConnection(code=1000, reason="closed by the API"))
            item.open = False
            with contextlib.suppress(OSError):
                item.sock.shutdown(socket.SHUT_RDWR)

    def describe(self, connection_id: str) -> dict[str, Any]:
        item = self._sockets[connection_id]
        stamp = datetime.datetime.fromtimestamp(item.connected_at, datetime.UTC).isoformat()
        return {"ConnectedAt": stamp, "Identity": {"SourceIp": item.source_ip},
                "LastActiveAt": datetime.datetime.fromtimestamp(item.last_active, datetime.UTC).isoformat()}


class Gateway:
    """The HTTP server of the REST API, the websocket API and the console."""

    def __init__(self, *, rest: RestApi | None, websocket: WebsocketApi | None, invoke: Callable[[str, Any], Any],
                 allowed: Callable[[str, str, str], bool], on_refusal: Callable[[str, str], None], region: str,
                 static_dir: Path, behaviors: list[Behavior] | None = None) -> None:
        self.rest = rest
        self.websocket = websocket
        self.invoke = invoke
        self.allowed = allowed
        self.on_refusal = on_refusal
        self.region = region
        self.static_dir = static_dir
        self.behaviors = behaviors or []
        """The console distribution's behaviours, in order, the default last (``*``)."""
        self.connections = Connections()
        self.server: ThreadingHTTPServer | None = None
        self.port = 0

    def serve(self, host: str, port: int) -> int:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("%s %s", self.address_string(), format % args)

            def handle_one(self) -> None:
                gateway.handle(self)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = handle_one

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True, name="gateway").start()
        return self.port

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()

    # ------------------------------------------------------------------------------------------- dispatch

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(request.path)
        path = unquote(parts.path)
        upgrade = "websocket" in request.headers.get("Upgrade", "").lower()
        if upgrade and self.websocket and path.rstrip("/") == f"/{self.websocket.stage}":
            self._websocket(request, parts.query)
            return
        if self.rest and (path == f"/{self.rest.stage}" or path.startswith(f"/{self.rest.stage}/")):
            self._rest(request, path[len(self.rest.stage) + 1:] or "/", parts.query)
            return
        for behavior in self.behaviors:  # the console distribution (CloudFront) on the same port
            if not wildcard_match(behavior.pattern, path):
                continue
            if behavior.origin == "websocket" and upgrade and self.websocket:
                self._websocket(request, parts.query)
                return
            if behavior.origin == "rest" and self.rest:
                stage = behavior.origin_path.strip("/")
                if stage == self.rest.stage:
                    self._rest(request, path, parts.query)
                    return
            if behavior.origin == "s3":
                self._static(request, path)
                return
            self._reply(request, 502, b"the twin cannot reach this behaviour's origin\n",
                        {"Content-Type": "text/plain"})
            return
        self._static(request, path)

    @staticmethod
    def _reply(request: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, Any]) -> None:
        request.send_response(status)
        multi = {k: v for k, v in headers.items() if isinstance(v, list)}
        for name, value in headers.items():
            if name.lower() in ("content-length", "connection", "transfer-encoding") or name in multi:
                continue
            request.send_header(name, str(value))
        for name, values in multi.items():
            for value in values:
                request.send_header(name, str(value))
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(body)

    # ------------------------------------------------------------------------------------------- REST

    def _gateway_response(self, request: BaseHTTPRequestHandler, kind: str, status: int, message: str) -> None:
        assert self.rest is not None
        response = self.rest.responses.get(kind) or self.rest.responses.get(
            "DEFAULT_4XX" if status < 500 else "DEFAULT_5XX")
        headers: dict[str, Any] = {"Content-Type": "application/json", "x-amzn-ErrorType": kind}
        body = json.dumps({"message": message}).encode()
        if response:
            status = int(response.get("statusCode") or response.get("StatusCode") or status)
            templates = response.get("responseTemplates") or response.get("ResponseTemplates") or {}
            template = templates.get("application/json")
            if template:
                body = template.replace("$context.error.messageString", json.dumps(message)).replace(
                    "$context.error.message", message).encode()
            for name, value in (response.get("responseParameters") or response.get("ResponseParameters")
                                or {}).items():
                headers[name.rsplit(".", 1)[-1]] = str(value).strip("'")
        self._reply(request, status, body, headers)

    def _rest(self, request: BaseHTTPRequestHandler, path: str, query: str) -> None:
        assert self.rest is not None
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length) if length else b""
        found = self.rest.find(request.command, path)
        if found is None:
            self._gateway_response(request, "MISSING_AUTHENTICATION_TOKEN", 403, "Missing Authentication Token")
            return
        route, operation, params = found
        integration = operation.get("x-amazon-apigateway-integration") or {}
        function = function_of(integration.get("uri"))
        source_arn = (f"arn:aws:execute-api:{self.region}:{ACCOUNT_ID}:{self.rest.api_id}/{self.rest.stage}/"
                      f"{request.command}{route.template}")
        if function is None or integration.get("type") != "aws_proxy":
            self._gateway_response(request, "INTEGRATION_FAILURE", 500, "Internal server error")
            return
        if not self.allowed(function, source_arn, "apigateway.amazonaws.com"):
            self.on_refusal(f"REST {request.command} {route.template}", f"lambda:InvokeFunction on {function}: no "
                            "AWS::Lambda::Permission lets apigateway.amazonaws.com invoke it")
            self._gateway_response(request, "INTEGRATION_FAILURE", 500, "Internal server error")
            return
        content_type = request.headers.get("Content-Type", "")
        binary = any(_media_match(t, content_type) for t in self.rest.binary_types)
        try:
            body_text: str | None = raw.decode("utf-8") if raw and not binary else None
        except UnicodeDecodeError:
            body_text, binary = None, True
        multi_headers: dict[str, list[str]] = {}
        for name, value in request.headers.items():
            multi_headers.setdefault(name, []).append(value)
        multi_query = parse_qs(query, keep_blank_values=True)
        now = time.time()
        request_id = str(uuid.uuid4())
        event = {
            "resource": route.template, "path": path, "httpMethod": request.command,
            "headers": {k: v[-1] for k, v in multi_headers.items()}, "multiValueHeaders": multi_headers,
            "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": params or None, "stageVariables": None,
            "requestContext": {
                "resourceId": route.template, "resourcePath": route.template, "httpMethod": request.command,
                "extendedRequestId": request_id, "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000",
                                                                              time.gmtime(now)),
                "path": f"/{self.rest.stage}{path}", "accountId": ACCOUNT_ID, "protocol": "HTTP/1.1",
                "stage": self.rest.stage, "domainPrefix": self.rest.api_id, "requestTimeEpoch": int(now * 1000),
                "requestId": request_id, "apiId": self.rest.api_id,
                "domainName": request.headers.get("Host", ""),
                "identity": {"sourceIp": request.client_address[0], "userAgent": request.headers.get("User-Agent")},
            },
            "body": base64.b64encode(raw).decode() if binary and raw else body_text,
            "isBase64Encoded": bool(binary and raw),
        }
        try:
            result = self.invoke(function, event)
        except Exception as error:
            timed_out = "timed out" in str(error).lower()
            log.error("REST %s %s: %s", request.command, path, error)
            self._gateway_response(request, "INTEGRATION_TIMEOUT" if timed_out else "BAD_GATEWAY",
                                   504 if timed_out else 502,
                                   "Endpoint request timed out" if timed_out else "Internal server error")
            return
        if not isinstance(result, dict) or "statusCode" not in result:
            self._gateway_response(request, "BAD_GATEWAY", 502, "Internal server error")
            return
        body = result.get("body") or ""
        payload = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
        headers: dict[str, Any] = dict(result.get("headers") or {})
        for name, values in (result.get("multiValueHeaders") or {}).items():
            headers[name] = values if len(values) > 1 else values[0]
        self._reply(request, int(result["statusCode"]), payload, headers)

    # ------------------------------------------------------------------------------------------- websocket

    def _ws_event(self, route: str, kind: str, item: Socket, extra: dict[str, Any]) -> dict[str, Any]:
        assert self.websocket is not None
        now = time.time()
        return {"requestContext": {
            "routeKey": route, "eventType": kind, "connectionId": item.id, "extendedRequestId": str(uuid.uuid4()),
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)), "messageDirection": "IN",
            "stage": self.websocket.stage, "connectedAt": int(item.connected_at * 1000),
            "requestTimeEpoch": int(now * 1000), "identity": {"sourceIp": item.source_ip},
            "requestId": str(uuid.uuid4()), "domainName": f"{self.websocket.api_id}.execute-api.{self.region}"
            ".amazonaws.com", "apiId": self.websocket.api_id}, **extra}

    def _ws_invoke(self, route: str, event: dict[str, Any]) -> Any:
        assert self.websocket is not None
        function = self.websocket.routes.get(route)
        if function is None:
            return {"statusCode": 200}
        source = (f"arn:aws:execute-api:{self.region}:{ACCOUNT_ID}:{self.websocket.api_id}/{self.websocket.stage}/"
                  f"{route}")
        if not self.allowed(function, source, "apigateway.amazonaws.com"):
            self.on_refusal(f"websocket {route}", f"lambda:InvokeFunction on {function}: no AWS::Lambda::Permission "
                            "lets apigateway.amazonaws.com invoke it")
            return {"statusCode": 500}
        return self.invoke(function, event)

    def _websocket(self, request: BaseHTTPRequestHandler, query: str) -> None:
        ws = WSConnection(ConnectionType.SERVER)
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in request.headers.items()]
        try:
            ws.initiate_upgrade_connection(headers, request.path)
            if not isinstance(next(ws.events()), Request):
                raise RemoteProtocolError("not a websocket request", event_hint=None)
        except (RemoteProtocolError, StopIteration) as error:
            self._reply(request, 400, f"bad websocket request: {error}".encode(), {})
            return
        request.close_connection = True
        item = Socket(request.connection, ws, secrets.token_urlsafe(12)[:14] + "=", request.client_address[0])
        multi_query = parse_qs(query, keep_blank_values=True)
        multi_headers: dict[str, list[str]] = {}
        for name, value in request.headers.items():
            multi_headers.setdefault(name, []).append(value)
        connect = self._ws_event("$connect", "CONNECT", item, {
            "headers": {k: v[-1] for k, v in multi_headers.items()}, "multiValueHeaders": multi_headers,
            "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
            "multiValueQueryStringParameters": multi_query or None, "isBase64Encoded": False})
        try:
            answer = self._ws_invoke("$connect", connect)
            status = int(answer.get("statusCode", 200)) if isinstance(answer, dict) else 200
        except Exception as error:
            log.error("websocket $connect failed: %s", error)
            status = 500
        if not 200 <= status < 300:
            request.wfile.write(ws.send(RejectConnection(status_code=status, has_body=False)))
            request.wfile.flush()
            return
        request.wfile.write(ws.send(AcceptConnection()))
        request.wfile.flush()
        self.connections.add(item)
        try:
            self._ws_read(item)
        finally:
            item.open = False
            self.connections.remove(item.id)
            try:
                self._ws_invoke("$disconnect", self._ws_event("$disconnect", "DISCONNECT", item, {
                    "headers": {}, "isBase64Encoded": False}))
            except Exception as error:
                log.error("websocket $disconnect failed: %s", error)
            with contextlib.suppress(OSError):
                item.sock.shutdown(socket.SHUT_RDWR)

    def _ws_read(self, item: Socket) -> None:
        text: list[str] = []
        while item.open:
            try:
                data = item.sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            item.last_active = time.time()
            with item.lock:
                item.ws.receive_data(data)
                events = list(item.ws.events())
            for event in events:
                if isinstance(event, CloseConnection):
                    item.send_event(event.response())
                    return
                if isinstance(event, Ping):
                    item.send_event(event.response())
                elif isinstance(event, TextMessage | BytesMessage):
                    text.append(event.data if isinstance(event.data, str) else base64.b64encode(event.data).decode())
                    if event.message_finished:
                        body = "".join(text)
                        text = []
                        route = self.websocket.route_for(body) if self.websocket else "$default"
                        try:
                            self._ws_invoke(route, self._ws_event(route, "MESSAGE", item, {
                                "body": body, "isBase64Encoded": isinstance(event, BytesMessage)}))
                        except Exception as error:
                            log.error("websocket %s failed: %s", route, error)
                            with contextlib.suppress(ConnectionError, OSError):
                                item.send_text(json.dumps({"message": "Internal server error",
                                                           "connectionId": item.id}).encode())

    # ------------------------------------------------------------------------------------------- console

    def _static(self, request: BaseHTTPRequestHandler, path: str) -> None:
        root = self.static_dir.resolve()
        target = (root / path.lstrip("/")).resolve()
        if root not in target.parents and target != root:
            self._reply(request, 404, b"not found\n", {"Content-Type": "text/plain"})
            return
        if target.is_file():
            self._reply(request, 200, target.read_bytes(),
                        {"Content-Type": mimetypes.guess_type(target.name)[0] or "application/octet-stream"})
            return
        index = root / "index.html"
        if index.is_file() and not path.startswith("/assets/"):
            self._reply(request, 200, index.read_bytes(), {"Content-Type": "text/html; charset=utf-8"})
            return
        self._reply(request, 404, b"the console is not built (make frontend)\n", {"Content-Type": "text/plain"})


def _media_match(pattern: str, content_type: str) -> bool:
    kind = content_type.split(";", 1)[0].strip().lower()
    pattern = pattern.replace("~1", "/").lower()
    return pattern == "*/*" or pattern == kind or (pattern.endswith("/*") and kind.startswith(pattern[:-1]))
