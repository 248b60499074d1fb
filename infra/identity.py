"""Devices bound to their identity, in the template: the edge devices' IoT policy and the ingest rule's SQL.

An edge device (IoT thing) may connect only as its thing name, publish only its uplink ``mc/<thing>/up`` (directly,
or through IoT Basic Ingest to the stack's ingest rule alone: ``$aws/rules/<ingest rule>/mc/<thing>/up``) and its
own shadow, and subscribe to and receive only its down topic ``mc/<thing>/down`` and its own shadow: every
resource is pinned to the policy variable ``${iot:Connection.Thing.ThingName}``. No wildcard names another
device's topic, so one device can neither speak on another's uplink nor read another's commands.

The ingest rule hands the ingest queue the thing that published (``topic(2)``, taken from the topic the policy
bound to the certificate) beside the publish, base64-encoded byte for byte (``encode(*, 'base64')``): a device
cannot put a thing of its choosing into the record, whatever its body holds. The ingest function refuses
envelopes for a gateway another thing owns (``chalicelib/core/identity.py``).

``infra/template.py`` puts both into the stack.
"""

from __future__ import annotations

from typing import Any, Final

from chalicelib.core.identity import PUBLISH_KEY, THING_KEY
from mycontroller_protocol.envelope import basic_ingest_topic

TOPIC_PREFIX: Final = "mc"
UP_TOPIC_FILTER: Final = f"{TOPIC_PREFIX}/+/up"
THING_VARIABLE: Final = "${iot:Connection.Thing.ThingName}"
"""The IoT policy variable naming the thing whose certificate the connection presented."""
SUB_THING: Final = "${!iot:Connection.Thing.ThingName}"
"""``THING_VARIABLE`` inside an ``Fn::Sub`` string (``${!`` keeps it from being substituted by CloudFormation)."""


INGEST_RULE: Final = "IngestTopicRule"
"""The ingest rule's logical id: ``${IngestTopicRule}`` in the policy is its name."""


def ingest_rule_name() -> dict[str, Any]:
    """The ingest rule's fixed name: the stack's with ``_`` for ``-`` (rule names take letters, digits and ``_``;
    stack names letters, digits and ``-``), then ``_ingest``: ``my-home`` → ``my_home_ingest``. Devices publish to
    ``$aws/rules/<it>/mc/<thing>/up`` (``basic_ingest_topic``); the stack's ``IngestRuleName`` output names it for
    ``infra.provision``."""
    return {"Fn::Join": ["_", [{"Fn::Join": ["_", {"Fn::Split": ["-", {"Ref": "AWS::StackName"}]}]}, "ingest"]]}


def ingest_rule_sql() -> str:
    """Every edge uplink, as ``{"thing": <the topic's thing>, "publish": <the body, base64>}``
    (``core.identity.read_ingest_body`` reads it; ``ingest_body`` makes the same for the local stack)."""
    return f"SELECT topic(2) AS {THING_KEY}, encode(*, 'base64') AS {PUBLISH_KEY} FROM '{UP_TOPIC_FILTER}'"


def edge_policy_document() -> dict[str, Any]:
    """What an edge device may do: connect as its thing, publish its uplink and shadow, read its downlinks and
    shadow, each resource pinned to its own thing name.

    The document is an ``Fn::Sub`` template: ``${AWS::Partition}``, ``${AWS::Region}`` and ``${AWS::AccountId}``
    are the stack's, ``${!iot:Connection.Thing.ThingName}`` becomes the IoT policy variable.
    """
    arn = "arn:${AWS::Partition}:iot:${AWS::Region}:${AWS::AccountId}"
    thing = SUB_THING
    own_topics = [f"{TOPIC_PREFIX}/{thing}/down", f"$aws/things/{thing}/shadow/*"]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{arn}:client/{thing}",
             "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "true"}}},
            {"Effect": "Allow", "Action": "iot:Publish", "Resource": [
                f"{arn}:topic/{TOPIC_PREFIX}/{thing}/up",
                f"{arn}:topic/{basic_ingest_topic('${' + INGEST_RULE + '}', f'{TOPIC_PREFIX}/{thing}/up')}",
                f"{arn}:topic/$aws/things/{thing}/shadow/*",
            ]},
            {"Effect": "Allow", "Action": "iot:Subscribe",
             "Resource": [f"{arn}:topicfilter/{topic}" for topic in own_topics]},
            {"Effect": "Allow", "Action": "iot:Receive",
             "Resource": [f"{arn}:topic/{topic}" for topic in own_topics]},
        ],
    }
