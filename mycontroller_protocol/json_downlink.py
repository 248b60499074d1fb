"""The downlink form of the providers whose commands travel as JSON (ESPHome, Hue): ``{"n", "s", "f", "v"}`` sets a
field, ``{"n", "a"}`` is a node action. One copy of the writing and the checks; each codec names itself, its node
actions, its error class and which fields can be set."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from .ids import ID_PATTERN

_COMPACT = {"separators": (",", ":"), "ensure_ascii": False}


@dataclass(frozen=True)
class JsonDownlinks:
    provider: str
    """As messages name it (``ESPHome``, ``Hue``)."""
    node_actions: Collection[str]
    error: Callable[[str], Exception]
    settable: Callable[[Any], bool] = lambda field: isinstance(field, str)
    settable_words: str = "'f'"
    """How a refusal names what ``settable`` wants."""

    def _segment(self, value: str, what: str) -> str:
        if not ID_PATTERN.match(value):
            raise self.error(f"{self.provider} {what} id {value!r} is not an id")
        return value

    def command_raw(self, node: str, source: str, field: str, value: Any) -> str:
        """The downlink that sets one field of one entity."""
        return json.dumps({"n": self._segment(node, "node"), "s": self._segment(source, "source"),
                           "f": self._segment(field, "field"), "v": value}, **_COMPACT)  # type: ignore[arg-type]

    def node_action_raw(self, node: str, action: str, nodes_word: str) -> str:
        """The downlink of a node action; ``nodes_word`` says what takes them (``ESPHome devices``)."""
        if action not in self.node_actions:
            raise self.error(f"{nodes_word} take node actions {', '.join(self.node_actions)}; not {action!r}")
        return json.dumps({"n": self._segment(node, "node"), "a": action}, **_COMPACT)  # type: ignore[arg-type]

    def read(self, raw: str) -> dict[str, Any]:
        """A downlink as the edge reads it: ``{"n", "s", "f", "v"}`` or ``{"n", "a"}``; the codec's error else."""
        try:
            data = json.loads(raw)
        except ValueError as error:
            raise self.error(f"{self.provider} downlink is not JSON: {error}") from None
        if not isinstance(data, dict) or not isinstance(data.get("n"), str):
            raise self.error(f"{self.provider} downlink must be an object naming its node 'n': {raw[:80]!r}")
        if "a" in data:
            if data["a"] not in self.node_actions:
                raise self.error(f"unknown {self.provider} node action {data['a']!r}")
            return data
        if not isinstance(data.get("s"), str) or not self.settable(data.get("f")) or "v" not in data:
            raise self.error(f"{self.provider} downlink needs 's', {self.settable_words} and 'v': {raw[:80]!r}")
        return data
