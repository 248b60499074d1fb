"""Telegram handler calls: the bot API's ``sendMessage`` to each chat id.

``base_url`` is ``https://api.telegram.org`` unless set (``TELEGRAM_API_URL``; tests point it at a local fake).
The bot token is part of the URL path, so neither the URL nor the token ever goes into a message or a log. A 5xx,
429 or transport error is retryable; other 4xx (bad token, unknown chat) are not. On a retry the chats that were
already sent to are sent again (the bot API has no idempotency key); the handler function's per-call idempotency
keeps that to failed calls only.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any, Final

from chalicelib.core.ports import HandlerCallError

DEFAULT_API_URL: Final = "https://api.telegram.org"


class TelegramExecutor:
    def __init__(self, base_url: str = DEFAULT_API_URL, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s

    def execute(self, spec: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        token = str(spec.get("token") or "")
        if not token:
            raise HandlerCallError("telegram: the handler has no bot token", retryable=False)
        url = f"{self.base_url}/bot{token}/sendMessage"
        sent = 0
        for chat_id in params.get("chatIds") or []:
            body: dict[str, Any] = {"chat_id": chat_id, "text": params.get("text", "")}
            if params.get("parseMode"):
                body["parse_mode"] = params["parseMode"]
            request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                             headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    answer = json.loads(response.read(65536) or b"{}")
            except urllib.error.HTTPError as error:
                description = _description(error)
                error.close()
                retryable = error.code >= 500 or error.code == 429
                raise HandlerCallError(f"telegram sendMessage to chat {chat_id}: status {error.code} "
                                       f"{description}".rstrip(), retryable=retryable) from None
            except (urllib.error.URLError, OSError, ValueError) as error:
                raise HandlerCallError(f"telegram sendMessage to chat {chat_id}: {type(error).__name__}") from None
            if not answer.get("ok", False):
                raise HandlerCallError(f"telegram sendMessage to chat {chat_id}: not ok "
                                       f"{str(answer.get('description', ''))[:200]}", retryable=False)
            sent += 1
        return {"sent": sent}


def _description(error: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(error.read(65536)).get("description", ""))[:200]
    except (ValueError, AttributeError, OSError):
        return ""
