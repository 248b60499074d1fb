"""MyController edge agent: gateways on the field device, a durable spool, and an uplink to AWS IoT Core or any
MQTT 5 broker. Run it with ``python -m edge --config edge.yaml``; see ``edge/README.md``."""
