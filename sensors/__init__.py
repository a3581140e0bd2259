"""The device side: what a sensor or meter runs to publish its readings over MQTT."""
