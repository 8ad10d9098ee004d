"""`lighthouse agent-core`: the daemon an agent host runs to speak the fleet contract over MQTT."""
