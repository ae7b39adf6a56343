"""Upstream provider adapters: one module per kind, one interface (:mod:`.base`)."""

from tollhouse.providers.base import KINDS, Provider, build_providers, register

__all__ = ["KINDS", "Provider", "build_providers", "register"]
