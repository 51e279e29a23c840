"""Fixtures of the fleet back-end tests (fixtures.fleet): a NATS cluster and a test database."""

from fixtures.fleet import fleet_database, fleet_dsn, nats_cluster, nats_garbage_collected

__all__ = ["fleet_database", "fleet_dsn", "nats_cluster", "nats_garbage_collected"]
