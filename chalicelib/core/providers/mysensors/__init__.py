"""MySensors 2.x provider: the processor's interpreter, with the protocol tables and wire codec it uses
(``mycontroller_protocol.mysensors``) exported beside it."""

from mycontroller_protocol.mysensors.codec import (
    MAX_PAYLOAD,
    CodecError,
    MySensorsMessage,
    decode_line,
    decode_mqtt,
    encode_line,
    encode_mqtt,
    encode_value,
    line_to_mqtt,
    mqtt_to_line,
)
from mycontroller_protocol.mysensors.protocol import (
    BROADCAST,
    GATEWAY_NODE,
    INTERNAL_CHILD,
    VALUE_METRIC,
    Command,
    Internal,
    Sensor,
    Stream,
    Value,
    internal_id,
    internal_name,
    sensor_id,
    sensor_name,
    stream_id,
    stream_name,
    type_name,
    value_id,
    value_name,
)

__all__ = [
    "BROADCAST", "GATEWAY_NODE", "INTERNAL_CHILD", "MAX_PAYLOAD", "VALUE_METRIC", "CodecError", "Command", "Internal",
    "MySensorsMessage", "Sensor", "Stream", "Value", "decode_line", "decode_mqtt", "encode_line", "encode_mqtt",
    "encode_value", "internal_id", "internal_name", "line_to_mqtt", "mqtt_to_line", "sensor_id", "sensor_name",
    "stream_id", "stream_name", "type_name", "value_id", "value_name",
]
