"""Email handler calls through Amazon SES (``SendEmail``), for handlers without an SMTP ``host`` in AWS.

The sender is the handler's ``from`` or ``EMAIL_FROM``; it must be a verified SES identity. A rejected message
(unverified sender, bad address) is not retried; throttling and service errors are.
"""

from __future__ import annotations

from typing import Any, Final

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.core.ports import HandlerCallError

PERMANENT_CODES: Final = frozenset({"MessageRejected", "MailFromDomainNotVerified", "InvalidParameterValue",
                                    "ConfigurationSetDoesNotExist", "AccountSendingPausedException"})


class SesEmailExecutor:
    def __init__(self, *, region: str | None = None, default_sender: str = "", client: Any = None) -> None:
        self.client = client or boto3.client("ses", region_name=region)
        self.default_sender = default_sender

    def execute(self, spec: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        sender = str(params.get("from") or spec.get("from") or self.default_sender)
        if not sender:
            raise HandlerCallError("email: no sender (the handler's 'from' or EMAIL_FROM)", retryable=False)
        try:
            response = self.client.send_email(
                Source=sender,
                Destination={"ToAddresses": list(params.get("to") or [])},
                Message={"Subject": {"Data": str(params.get("subject") or ""), "Charset": "UTF-8"},
                         "Body": {"Text": {"Data": str(params.get("body") or ""), "Charset": "UTF-8"}}})
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            raise HandlerCallError(f"email via SES: {code}: {error.response.get('Error', {}).get('Message', '')}",
                                   retryable=code not in PERMANENT_CODES) from None
        except BotoCoreError as error:
            raise HandlerCallError(f"email via SES: {type(error).__name__}") from None
        return {"messageId": response.get("MessageId", "")}
