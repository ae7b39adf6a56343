"""Ingress: the wire dialects clients speak. One module per dialect, one table."""

from tollhouse.ingress.base import Call, Dialect, parse_json_body, render_error
from tollhouse.ingress.registry import DIALECTS

__all__ = ["DIALECTS", "Call", "Dialect", "parse_json_body", "render_error"]
