"""Alarms: someone hears of it when messages pile up in a dead-letter queue or a function fails or is throttled.

Every alarm goes to ``AlarmTopic`` (SNS), which e-mails ``AlarmEmail`` when one is given (the address must confirm
the subscription once). Alarms treat missing data as fine: a quiet function is not a broken one.

* ``<Queue>DepthAlarm``: a dead-letter queue holds at least one message (``ApproximateNumberOfMessagesVisible``):
  something failed every retry and waits for a look and a redrive (``docs/deploy.md``);
* ``<Function>ErrorsAlarm``: at least one failed invocation in five minutes (an ingest batch's failed records are
  partial batch responses, not errors: they end in the DLQ, whose alarm speaks for them);
* ``<Function>ThrottlesAlarm``: at least one throttled invocation in five minutes (the account's concurrency ran out).

The dead-letter queues' alarms are always there: a message in one is data waiting for someone. The functions'
(two each, $0.10 a month apiece: $2.80 for fourteen functions, most of an idle stack's bill) only with
``FunctionAlarms=true``: a function's failure that matters ends in a dead-letter queue anyway (ingest records,
bus events, handler runs), and Lambda's own metrics still show errors and throttles without an alarm.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

ALARM_TOPIC: Final = "AlarmTopic"
PERIOD_S: Final = 300
FUNCTION_ALARMS: Final = "HasFunctionAlarms"
"""The condition on the functions' alarms (the ``FunctionAlarms`` parameter)."""


def _alarm(description: str, namespace: str, metric: str, dimensions: list[dict[str, Any]],
           statistic: str) -> dict[str, Any]:
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmDescription": {"Fn::Sub": f"${{AWS::StackName}}: {description}"},
            "Namespace": namespace, "MetricName": metric, "Dimensions": dimensions, "Statistic": statistic,
            "Period": PERIOD_S, "EvaluationPeriods": 1, "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold", "TreatMissingData": "notBreaching",
            "AlarmActions": [{"Ref": ALARM_TOPIC}],
        },
    }


def monitoring_resources(functions: Iterable[str], dead_letter_queues: Iterable[str]) -> dict[str, Any]:
    """The topic, its e-mail subscription (``HasAlarmEmail``), and the alarms of these functions and queues
    (logical ids)."""
    resources: dict[str, Any] = {
        ALARM_TOPIC: {"Type": "AWS::SNS::Topic",
                      "Properties": {"DisplayName": {"Fn::Sub": "${AWS::StackName} alarms"}}},
        "AlarmEmailSubscription": {
            "Type": "AWS::SNS::Subscription", "Condition": "HasAlarmEmail",
            "Properties": {"TopicArn": {"Ref": ALARM_TOPIC}, "Protocol": "email", "Endpoint": {"Ref": "AlarmEmail"}},
        },
    }
    for queue in dead_letter_queues:
        resources[f"{queue}DepthAlarm"] = _alarm(
            f"{queue} holds messages that failed every retry", "AWS/SQS", "ApproximateNumberOfMessagesVisible",
            [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}], "Maximum")
    for function in functions:
        dimensions = [{"Name": "FunctionName", "Value": {"Ref": function}}]
        resources[f"{function}ErrorsAlarm"] = {
            **_alarm(f"{function} failed", "AWS/Lambda", "Errors", dimensions, "Sum"),
            "Condition": FUNCTION_ALARMS}
        resources[f"{function}ThrottlesAlarm"] = {
            **_alarm(f"{function} was throttled", "AWS/Lambda", "Throttles", dimensions, "Sum"),
            "Condition": FUNCTION_ALARMS}
    return resources


def monitoring_outputs() -> dict[str, Any]:
    return {"AlarmTopicArn": {"Description": "Subscribe more people or tools to the stack's alarms here",
                              "Value": {"Ref": ALARM_TOPIC}}}
