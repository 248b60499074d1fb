"""MySensors 2.x gateways (serial, ethernet, MQTT) and the smart-sleep queue."""
