"""MySensors 2.x: the protocol's tables (``protocol``), the serial and MQTT wire codec (``codec``), the control
downlinks (``control``) and the OTA firmware's blocks (``firmware``). The cloud's interpreter is
``chalicelib/core/providers/mysensors``."""
