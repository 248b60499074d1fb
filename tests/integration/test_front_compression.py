"""The local front compresses the console's text files (gzip) for clients that accept it, and only for them."""

from __future__ import annotations

import gzip
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from chalicelib.adapters.bus_local import LocalEventBus
from chalicelib.adapters.downlink_local import LocalDownlink
from chalicelib.adapters.metrics_none import NoMetricStore
from chalicelib.adapters.repository_memory import MemoryRepository
from chalicelib.local.front import LocalFront
from chalicelib.settings import Settings

SCRIPT = ("export const greeting = 'hello';\n" * 400).encode()


@pytest.fixture
def base(tmp_path: Path) -> Iterator[str]:
    from chalicelib.bootstrap import Container

    container = Container(Settings(data_dir=tmp_path), repository=MemoryRepository(tmp_path / "repository", 0),
                          metrics=NoMetricStore(), bus=LocalEventBus("thread"), downlink=LocalDownlink())
    static = tmp_path / "dist"
    (static / "assets").mkdir(parents=True)
    (static / "index.html").write_text("<html>console</html>")
    (static / "assets" / "app.js").write_bytes(SCRIPT)
    (static / "assets" / "logo.png").write_bytes(b"\x89PNG" + bytes(4000))
    front = LocalFront(container, "127.0.0.1", 0, static_dir=static)
    thread = threading.Thread(target=front.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{front.port}"
    finally:
        front.shutdown()
        container.close()


def get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def test_scripts_go_gzipped_to_a_browser_and_plain_to_a_client_without_gzip(base: str) -> None:
    status, headers, body = get(base + "/assets/app.js", **{"Accept-Encoding": "gzip, deflate, br"})
    assert status == 200 and headers["content-encoding"] == "gzip" and headers["vary"] == "Accept-Encoding"
    assert gzip.decompress(body) == SCRIPT and len(body) < len(SCRIPT) / 10
    assert int(headers["content-length"]) == len(body)

    status, plain_headers, plain = get(base + "/assets/app.js")
    assert status == 200 and plain == SCRIPT and "content-encoding" not in plain_headers
    assert plain_headers["etag"] != headers["etag"]  # two representations, two validators

    refused = get(base + "/assets/app.js", **{"Accept-Encoding": "gzip;q=0, identity"})
    assert refused[2] == SCRIPT and "content-encoding" not in refused[1]


def test_a_current_gzipped_copy_is_a_304_and_images_and_small_pages_stay_as_they_are(base: str) -> None:
    _, headers, _ = get(base + "/assets/app.js", **{"Accept-Encoding": "gzip"})
    status, again, body = get(base + "/assets/app.js", **{"Accept-Encoding": "gzip", "If-None-Match": headers["etag"]})
    assert status == 304 and body == b"" and again["content-encoding"] == "gzip"
    status, headers, body = get(base + "/assets/logo.png", **{"Accept-Encoding": "gzip"})
    assert status == 200 and "content-encoding" not in headers and body.startswith(b"\x89PNG")
    status, headers, body = get(base + "/nodes", **{"Accept-Encoding": "gzip"})  # index.html: under 1 kB
    assert status == 200 and body == b"<html>console</html>" and "content-encoding" not in headers
