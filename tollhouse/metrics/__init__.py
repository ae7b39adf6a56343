"""Prometheus metrics: counted when a request's ledger row is made, exposed at ``/metrics``."""

from tollhouse.metrics.gateway import GatewayMetrics

__all__ = ["GatewayMetrics"]
