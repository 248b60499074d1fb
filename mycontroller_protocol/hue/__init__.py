"""Philips Hue (CLIP v2): the messages' shape, colour conversions and command values (``codec``). The cloud's
interpreter is ``chalicelib/core/providers/hue``."""
