"""The fleet back end on a distributed engine: NATS JetStream, stateless workers, PostgreSQL.

``edge-agent-cloud serve`` (SQLite, one process) stays the embedded default; this package is
the reference back end for a fleet (docs/fleet.md): vehicles connect unchanged to NATS's
MQTT listener (mutual TLS, one NATS user per vehicle), their QoS 1 messages are stored in a
replicated JetStream stream before the vehicle gets its PUBACK, and K stateless workers
share a durable pull consumer, decode batches and write PostgreSQL.
"""
