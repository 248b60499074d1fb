"""SMS handler calls through Amazon SNS (``Publish`` with ``PhoneNumber``), one message per number.

``senderId`` becomes the ``AWS.SNS.SMS.SenderID`` attribute where the country allows it. An invalid number is not
retried; throttling and service errors are.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.core.ports import HandlerCallError


class SnsSmsExecutor:
    def __init__(self, *, region: str | None = None, client: Any = None) -> None:
        self.client = client or boto3.client("sns", region_name=region)

    def execute(self, spec: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        attributes: dict[str, Any] = {"AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}}
        if params.get("senderId"):
            attributes["AWS.SNS.SMS.SenderID"] = {"DataType": "String", "StringValue": str(params["senderId"])}
        ids = []
        for number in params.get("phoneNumbers") or []:
            try:
                response = self.client.publish(PhoneNumber=str(number), Message=str(params.get("text") or ""),
                                               MessageAttributes=attributes)
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code", "")
                raise HandlerCallError(f"sms via SNS to {number}: {code}",
                                       retryable=code not in ("InvalidParameter", "InvalidParameterValue")) from None
            except BotoCoreError as error:
                raise HandlerCallError(f"sms via SNS: {type(error).__name__}") from None
            ids.append(response.get("MessageId", ""))
        return {"sent": len(ids)}
