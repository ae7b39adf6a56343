"""Ingress: the wire dialects clients speak. One module per dialect."""

from tollhouse.ingress import anthropic, gemini, openai_chat, openai_responses  # noqa: F401
from tollhouse.ingress.base import DIALECTS, Call, Dialect, parse_json_body, render_error

__all__ = ["DIALECTS", "Call", "Dialect", "parse_json_body", "render_error"]
