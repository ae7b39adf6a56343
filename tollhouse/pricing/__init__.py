"""Pricing: exact decimal cost per call (genai-prices underneath)."""

from tollhouse.pricing.pricer import Cost, PriceQuery, Pricer

__all__ = ["Cost", "PriceQuery", "Pricer"]
