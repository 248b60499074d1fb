"""``ShadowStore`` in-process: the device shadow service of the local stack, with AWS IoT's semantics.

The cloud side calls ``update_desired``/``get`` like the iot-data adapter. The edge agent of the local stack
talks to it as it would to AWS IoT Core over MQTT: its publishes on ``.../update`` and ``.../get`` arrive in
``device_publish``, and the answers (``update/accepted``, ``update/delta``, ``get/accepted``…) go back through
the callable given to ``attach_device``. ``on_documents`` listeners get every ``update/documents`` message,
which is what the IoT rule feeds to the ``shadow_reported`` function in AWS.

Semantics kept from AWS: an update merges (``null`` deletes a key), every accepted update bumps ``version``,
the delta holds the desired leaves that differ from reported and is sent to the device when an update touched
desired and a difference remains.

``update_desired`` is versioned as the iot-data adapter's is: the patch is computed from the desired section of
one version and merged only if the shadow is still at that version; otherwise it is computed again. A writer that
lands in between therefore cannot leave keys the last writer's document no longer has.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from mycontroller_protocol.shadow import (
    DEFAULT_SHADOW_NAME,
    ShadowError,
    desired_patch,
    parse_shadow_topic,
    shadow_topic,
)

log = logging.getLogger(__name__)

DeviceCallback = Callable[[str, bytes], None]
DocumentsCallback = Callable[[str, dict[str, Any]], object]


def merge(target: dict[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """A shadow update's merge: nested objects merge, ``null`` removes, anything else replaces."""
    result = dict(target)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value)
        elif isinstance(value, Mapping):
            result[key] = merge({}, value)
        else:
            result[key] = value
    return result


def delta(desired: Mapping[str, Any], reported: Mapping[str, Any]) -> dict[str, Any]:
    """The desired leaves that differ from reported (AWS's delta)."""
    result: dict[str, Any] = {}
    for key, value in desired.items():
        other = reported.get(key)
        if value == other:
            continue
        if isinstance(value, Mapping) and isinstance(other, Mapping):
            inner = delta(value, other)
            if inner:
                result[key] = inner
        else:
            result[key] = value
    return result


class LocalShadowStore:
    def __init__(self, shadow_name: str = DEFAULT_SHADOW_NAME) -> None:
        self.shadow_name = shadow_name
        self._lock = threading.Lock()
        self._shadows: dict[str, dict[str, Any]] = {}
        self._devices: dict[str, DeviceCallback] = {}
        self._listeners: list[DocumentsCallback] = []

    # ------------------------------------------------------------------------------------------- wiring

    def attach_device(self, thing: str, deliver: DeviceCallback) -> None:
        """Messages for ``thing`` (delta, accepted, rejected) go to ``deliver(topic, payload)``."""
        self._devices[thing] = deliver

    def detach_device(self, thing: str) -> None:
        self._devices.pop(thing, None)

    def on_documents(self, callback: DocumentsCallback) -> None:
        """``callback(thing, documents message)`` after every accepted update."""
        self._listeners.append(callback)

    # ------------------------------------------------------------------------------------------- port

    def get(self, thing: str) -> dict[str, Any] | None:
        with self._lock:
            shadow = self._shadows.get(thing)
            if shadow is None:
                return None
            state = {key: json.loads(json.dumps(shadow[key])) for key in ("desired", "reported") if shadow[key]}
        return state

    def update_desired(self, thing: str, desired: dict[str, Any]) -> None:
        while True:
            with self._lock:
                shadow = self._shadows.get(thing)
                current, version = (shadow["desired"], shadow["version"]) if shadow is not None else (None, 0)
            # computed outside the lock; merged only if no other writer landed meanwhile, else computed again
            if self._update(thing, {"desired": desired_patch(current, desired)}, expected_version=version):
                return
            log.debug("shadow of %s changed meanwhile; computing the update again", thing)

    # ------------------------------------------------------------------------------------------- device side

    def device_publish(self, topic: str, payload: bytes) -> None:
        """A publish of the edge agent on one of its shadow topics."""
        try:
            thing, name, operation = parse_shadow_topic(topic)
        except ShadowError as error:
            log.warning("not a shadow topic: %s", error)
            return
        if name != self.shadow_name:
            self._reply(thing, operation + "/rejected", {"code": 404, "message": f"no shadow named {name!r}"}, name)
            return
        if operation == "get":
            with self._lock:
                shadow = self._shadows.get(thing)
                document = self._document(shadow) if shadow is not None else None
            if document is None:
                self._reply(thing, "get/rejected", {"code": 404, "message": "No shadow exists with name"})
            else:
                self._reply(thing, "get/accepted", document)
            return
        if operation != "update":
            return
        try:
            body = json.loads(payload)
            state = body["state"]
            if not isinstance(state, dict) or set(state) - {"desired", "reported"}:
                raise ValueError("state must be an object with desired and/or reported")
        except (ValueError, KeyError, TypeError) as error:
            self._reply(thing, "update/rejected", {"code": 400, "message": f"bad update: {error}"})
            return
        self._update(thing, state, reply=True)

    # ------------------------------------------------------------------------------------------- internals

    @staticmethod
    def _document(shadow: dict[str, Any]) -> dict[str, Any]:
        state = {key: shadow[key] for key in ("desired", "reported") if shadow[key]}
        difference = delta(shadow["desired"], shadow["reported"])
        if difference:
            state["delta"] = difference
        return json.loads(json.dumps({"state": state, "version": shadow["version"],
                                      "timestamp": int(time.time())}))

    def _update(self, thing: str, state: Mapping[str, Any], reply: bool = False,
                expected_version: int | None = None) -> bool:
        """Merge ``state`` into the shadow; with ``expected_version``, only if the shadow is still at that version
        (0: no shadow yet). False when it was not (nothing written, nothing sent)."""
        with self._lock:
            previous = self._shadows.get(thing) or {"desired": {}, "reported": {}, "version": 0}
            if expected_version is not None and previous["version"] != expected_version:
                return False
            shadow = {
                "desired": merge(previous["desired"], state.get("desired") or {}),
                "reported": merge(previous["reported"], state.get("reported") or {}),
                "version": previous["version"] + 1,
            }
            self._shadows[thing] = shadow
            documents = {"previous": self._document(previous) if previous["version"] else None,
                         "current": self._document(shadow), "timestamp": int(time.time())}
            difference = delta(shadow["desired"], shadow["reported"])
        if reply:
            self._reply(thing, "update/accepted", {"state": dict(state), "version": shadow["version"]})
        if "desired" in state and difference:
            self._reply(thing, "update/delta", {"state": difference, "version": shadow["version"],
                                                "timestamp": int(time.time())})
        for listener in list(self._listeners):
            try:
                listener(thing, documents)
            except Exception:  # a failing listener must not fail the device's update
                log.exception("shadow documents listener failed for %s", thing)
        return True

    def _reply(self, thing: str, operation: str, body: dict[str, Any], name: str | None = None) -> None:
        deliver = self._devices.get(thing)
        if deliver is None:
            return
        try:
            deliver(shadow_topic(thing, operation, self.shadow_name if name is None else name),
                    json.dumps(body).encode())
        except Exception:
            log.exception("delivering %s to %s failed", operation, thing)
