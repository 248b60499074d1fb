"""Tasks' ``webhook`` variables over urllib (``UrllibWebhookResolver``) against a loopback HTTP server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from chalicelib.adapters.webhook_urllib import UrllibWebhookResolver, WebhookError
from chalicelib.core.automation.models import WebhookCall
from chalicelib.core.outbound import OutboundPolicy
from tests.integration.services import start_http_server, stop_http_server


class Echo(BaseHTTPRequestHandler):
    seen: list[dict[str, Any]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        Echo.seen.append({"method": self.command, "path": self.path, "body": self.rfile.read(length),
                          "type": self.headers.get("Content-Type")})
        status = 503 if self.path.startswith("/down") else 200
        data = b"plain text" if self.path.startswith("/text") else json.dumps({"temp": 21.5}).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


def loopback() -> OutboundPolicy:
    """The policy of a stack whose system settings allow this machine (the server below)."""
    return OutboundPolicy.allowing("127.0.0.1")


@pytest.fixture
def url() -> Iterator[str]:
    Echo.seen = []
    server, base = start_http_server(Echo)
    yield base
    stop_http_server(server)


def test_get_with_query_gives_the_json_answer(url: str) -> None:
    resolver = UrllibWebhookResolver(policy=loopback)
    call = WebhookCall(url=f"{url}/weather?city=Paris", query_parameters={"units": "metric", "n": 2})
    assert resolver.fetch("w", call, {}) == {"temp": 21.5}
    assert Echo.seen[0]["method"] == "GET" and Echo.seen[0]["path"] == "/weather?city=Paris&units=metric&n=2"


def test_post_sends_the_variables_as_json_and_text_answers_come_back_as_text(url: str) -> None:
    resolver = UrllibWebhookResolver(policy=loopback)
    answer = resolver.fetch("w", WebhookCall(url=f"{url}/text", method="POST"), {"temp": 20})
    assert answer == "plain text"
    assert json.loads(Echo.seen[0]["body"]) == {"temp": 20} and Echo.seen[0]["type"] == "application/json"


def test_an_unexpected_status_or_no_server_fails_with_a_message(url: str) -> None:
    resolver = UrllibWebhookResolver(policy=loopback)
    with pytest.raises(WebhookError, match="answered 503, expected 200"):
        resolver.fetch("w", WebhookCall(url=f"{url}/down"), {})
    refused = url.rsplit(":", 1)[0] + ":1/refused"  # nothing listens on port 1
    with pytest.raises(WebhookError, match="GET failed"):
        resolver.fetch("w", WebhookCall(url=refused, timeout="2s"), {})
