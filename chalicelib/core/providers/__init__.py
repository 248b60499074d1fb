"""Gateway providers: each turns its devices' raw messages into provider-neutral operations (``core.ops``).

Home Assistant style: one folder a provider, holding its interpreter (and Tasmota's discovery); each provider's
codec, which the edge agent uses too, is in the protocol package (``mycontroller_protocol.<provider>``), and its
``__init__`` exports both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the interpreters load on first use (``default_interpreters``)
    from ..ops import Interpreter


def default_interpreters() -> dict[str, Interpreter]:
    """Every provider the processor understands, by the ``provider`` name envelopes carry."""
    from .edge_state import EdgeStateInterpreter
    from .esphome.interpreter import EspHomeInterpreter
    from .hue.interpreter import HueInterpreter
    from .mc_json.interpreter import McJsonInterpreter
    from .mysensors.interpreter import MySensorsInterpreter

    interpreters: list[Interpreter] = [MySensorsInterpreter(), McJsonInterpreter(), EdgeStateInterpreter(),
                                       EspHomeInterpreter(), HueInterpreter()]
    try:
        from .tasmota.interpreter import TasmotaInterpreter
    except ImportError:
        pass
    else:
        interpreters.append(TasmotaInterpreter())
    return {interpreter.provider: interpreter for interpreter in interpreters}
