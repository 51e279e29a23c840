"""Fixtures of the cloud-link tests: a private PKI and a private mosquitto (fixtures.cloud)."""

from fixtures.cloud import broker, pki

__all__ = ["broker", "pki"]
