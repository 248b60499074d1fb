"""The local notifier tells a closed client why (API Gateway's ``delete_connection`` carries no code or reason, so
this is not part of the notifier contract)."""

from __future__ import annotations

from dataclasses import dataclass, field

from chalicelib.adapters.notifier_local import LocalNotifier


@dataclass
class Sink:
    sent: list[bytes] = field(default_factory=list)
    closed: tuple[int, str] | None = None

    def offer(self, data: bytes) -> bool:
        self.sent.append(data)
        return True

    def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)


def test_the_local_client_is_told_why() -> None:
    notifier = LocalNotifier()
    sink = Sink()
    notifier.register("c9", sink)
    notifier.post("c9", b"{}")
    notifier.close("c9", 4401, "session ended: password changed")
    assert sink.sent == [b"{}"] and sink.closed == (4401, "session ended: password changed") and len(notifier) == 0
