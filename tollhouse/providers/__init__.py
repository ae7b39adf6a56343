"""Upstream provider adapters: one module per kind, one interface (:mod:`.base`),
one table (:mod:`.registry`)."""

from tollhouse.providers.base import Provider
from tollhouse.providers.registry import KINDS, build_providers

__all__ = ["KINDS", "Provider", "build_providers"]
