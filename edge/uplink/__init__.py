"""Uplinks: how the agent's envelopes reach the cloud (AWS IoT Core, an MQTT broker, or the local stack)."""

from __future__ import annotations

import logging

from mycontroller_protocol.envelope import basic_ingest_topic, down_topic, up_topic

from ..config import EdgeConfig
from .base import DownlinkCallback, Uplink, UplinkError
from .inprocess import InProcessUplink, PublishHandler

__all__ = ["DownlinkCallback", "InProcessUplink", "Uplink", "UplinkError", "build_uplink"]


def build_uplink(config: EdgeConfig, handler: PublishHandler | None = None,
                 logger: logging.Logger | None = None) -> Uplink:
    """The uplink the config asks for; ``inprocess`` needs the local stack's ``handler``."""
    prefix = config.uplink.topic_prefix
    topic_up = up_topic(config.edge.id, prefix)
    if config.uplink.ingest_rule:  # AWS IoT Basic Ingest: straight to the ingest rule, no messaging charge
        topic_up = basic_ingest_topic(config.uplink.ingest_rule, topic_up)
    topics_down = [down_topic(config.edge.id, prefix)]  # one topic for all its gateways; downlinks name theirs
    if config.uplink.type == "inprocess":
        if handler is None:
            raise ValueError("uplink type 'inprocess' runs only inside the local stack (make run), which provides "
                             "the ingest handler; use 'mqtt' or 'aws_iot' for a stand-alone agent")
        return InProcessUplink(handler, topic_up, topics_down, logger)
    from .mqtt import MqttUplink  # awscrt loads native code: only when needed

    return MqttUplink(config.uplink, config.client_id, topic_up, topics_down, logger)
