"""``ShadowStore`` over AWS IoT device shadows (iot-data ``get_thing_shadow`` / ``update_thing_shadow``).

A shadow update merges into the stored document, so making desired equal to a new document means sending
``null`` for the gateways that are gone (``core.shadow.desired_patch``). That needs the current document: the
update carries the version it was computed from, and a concurrent writer (another API call for the same edge)
makes it fail with a version conflict, after which it is computed again. Both writers compute desired from
the repository, so whichever lands last is complete.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Final

import boto3

from mycontroller_protocol.shadow import DEFAULT_SHADOW_NAME, desired_patch

from .errors import AdapterError

log = logging.getLogger(__name__)

CONFLICT_RETRIES: Final = 5


class ShadowConflict(AdapterError, RuntimeError):
    """The shadow kept changing under us; nothing was written."""


class IotDataShadowStore:
    def __init__(self, client: Any = None, shadow_name: str = DEFAULT_SHADOW_NAME, *, region: str | None = None,
                 endpoint_url: str | None = None) -> None:
        self._client = client if client is not None else boto3.client("iot-data", region_name=region,
                                                                      endpoint_url=endpoint_url)
        self.shadow_name = shadow_name
        self.calls = {"get": 0, "update": 0}

    def _name(self) -> dict[str, str]:
        return {"shadowName": self.shadow_name} if self.shadow_name else {}

    def _document(self, thing: str) -> dict[str, Any] | None:
        self.calls["get"] += 1
        try:
            response = self._client.get_thing_shadow(thingName=thing, **self._name())
        except self._client.exceptions.ResourceNotFoundException:
            return None
        document = json.loads(response["payload"].read())
        return document if isinstance(document, dict) else None

    def get(self, thing: str) -> dict[str, Any] | None:
        """The port's ``{desired, reported}``; AWS's ``delta`` is left out (it is derived from the two, the local
        store has none in its answer and no caller reads it: the edge gets its deltas over MQTT)."""
        document = self._document(thing)
        if document is None:
            return None
        state = document.get("state") or {}
        return {key: state[key] for key in ("desired", "reported") if isinstance(state.get(key), dict)}

    def update_desired(self, thing: str, desired: dict[str, Any]) -> None:
        for _attempt in range(CONFLICT_RETRIES):
            document = self._document(thing)
            current = ((document or {}).get("state") or {}).get("desired")
            body: dict[str, Any] = {"state": {"desired": desired_patch(current, desired)}}
            if document is not None and isinstance(document.get("version"), int):
                body["version"] = document["version"]
            self.calls["update"] += 1
            try:
                self._client.update_thing_shadow(thingName=thing, payload=json.dumps(body).encode(),
                                                 **self._name())
                return
            except self._client.exceptions.ConflictException:
                log.info("shadow of %s changed meanwhile; computing the update again", thing)
        raise ShadowConflict(f"the shadow of {thing!r} changed {CONFLICT_RETRIES} times while we updated it")
