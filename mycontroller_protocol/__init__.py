"""The protocol both sides of MyController speak, shared by the server (``chalicelib``) and the edge agent (``edge``).

Its own wheel, ``mycontroller-protocol`` (``packaging/protocol``), which ``mycontroller`` and ``mycontroller-edge``
require at their own version; the Lambda package carries it too (``infra/bundle.py``). Nothing here imports
``chalicelib`` or a cloud dependency (pydantic, msgspec, boto3…): the standard library only
(``tests/unit/test_protocol_package.py``).

* ``envelope``: envelopes and downlinks, their wire form, publishes and topics (the cloud's fast publish reader is
  ``chalicelib/core/publish_reader.py``);
* ``shadow``: the device shadow's documents (gateway configs desired by the cloud, reported by the edge);
* ``ids``: the id pattern; ``values``: a raw device value converted to a field's metric type;
* ``mysensors``, ``tasmota``, ``hue``, ``esphome``: each provider's codec (its wire format, topics and commands),
  which the edge's gateways and the cloud's interpreters (``chalicelib/core/providers/<name>``) both use;
* ``version``: the project's one version; ``errors``: ``ProtocolError``, the base of every exception here.
"""
