"""Writes the API's OpenAPI document, as the server builds it, to frontend/openapi.json: the source the console's
API types are generated from (``npm run api-types``; ``make api-types`` runs both). The version is left out, so the
file changes only when the API does; tests/unit/test_console_api_types.py fails when it is behind the routes.

    .venv/bin/python frontend/scripts/openapi_snapshot.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOT = ROOT / "frontend" / "openapi.json"


def snapshot_of(document: dict[str, Any]) -> dict[str, Any]:
    """The document without what changes on every commit (``info.version``)."""
    info = {key: value for key, value in document.get("info", {}).items() if key != "version"}
    return {**document, "info": {**info, "version": "see GET /api/status"}}


def text_of(document: dict[str, Any]) -> str:
    return json.dumps(snapshot_of(document), indent=1, ensure_ascii=False) + "\n"


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from chalicelib.api import routes

    SNAPSHOT.write_text(text_of(routes.document()), encoding="utf-8")
    print(f"{SNAPSHOT.relative_to(ROOT)}: {len(routes.document()['paths'])} paths")


if __name__ == "__main__":
    main()
