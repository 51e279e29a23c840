"""The cloud link: MQTT to the fleet back end, fed from the spool, mirrored on the bus."""
