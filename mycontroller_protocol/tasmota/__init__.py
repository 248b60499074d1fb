"""Tasmota: its topics read and built, command payloads (``codec``). The cloud's interpreter and discovery are
``chalicelib/core/providers/tasmota``."""
