"""The console's API types cannot drift from the API (issue #20 item 6): frontend/openapi.json must be the document
the routes build (its version aside), and the console's npm test checks that frontend/src/api/schema.d.ts and
filterKeys.ts are what openapi-typescript makes of it. Behind: ``make api-types`` writes all three."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from chalicelib.api import routes

ROOT = Path(__file__).resolve().parents[2]


def test_the_consoles_openapi_snapshot_is_the_routes_document() -> None:
    path = ROOT / "frontend" / "scripts" / "openapi_snapshot.py"
    spec = importlib.util.spec_from_file_location("openapi_snapshot", path)
    assert spec and spec.loader
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    stored = json.loads(script.SNAPSHOT.read_text(encoding="utf-8"))
    current = script.snapshot_of(routes.document())
    assert set(stored["paths"]) == set(current["paths"]), "frontend/openapi.json is behind the routes: make api-types"
    assert stored == current, "frontend/openapi.json is behind the routes' models: make api-types"
