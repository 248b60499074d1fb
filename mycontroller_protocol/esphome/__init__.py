"""ESPHome (native API): the messages' shape and the values of commands (``codec``). The cloud's interpreter is
``chalicelib/core/providers/esphome``."""
