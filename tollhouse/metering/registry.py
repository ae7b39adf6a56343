"""Dialect name to meter class: the one place a wire dialect is looked up.

>>> stream_meter("anthropic").result().complete
False
>>> sorted(METERS)
['anthropic', 'gemini', 'openai-chat', 'openai-responses']
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from tollhouse.metering.anthropic import AnthropicMeter
from tollhouse.metering.base import DialectMeter, StreamMeter
from tollhouse.metering.gemini import GeminiMeter
from tollhouse.metering.openai_chat import OpenAIChatMeter
from tollhouse.metering.openai_responses import OpenAIResponsesMeter
from tollhouse.metering.usage import Metered

METERS: Mapping[str, type[DialectMeter]] = MappingProxyType(
    {
        meter.dialect: meter
        for meter in (OpenAIChatMeter, OpenAIResponsesMeter, AnthropicMeter, GeminiMeter)
    }
)


class UnknownDialect(LookupError):
    """No meter is registered under that dialect name."""


def meter_class(dialect: str) -> type[DialectMeter]:
    """The meter class for ``dialect``; :class:`UnknownDialect` if there is none."""
    try:
        return METERS[dialect]
    except KeyError:
        known = ", ".join(sorted(METERS))
        raise UnknownDialect(f"no meter for dialect {dialect!r} (known: {known})") from None


def meter_body(dialect: str, body: bytes) -> Metered:
    """Meter a non-streaming JSON response body of ``dialect``."""
    return meter_class(dialect).meter_body(body)


def stream_meter(dialect: str, *, hide_usage_chunk: bool = False) -> StreamMeter:
    """A fresh meter for one streamed response of ``dialect``.

    ``hide_usage_chunk`` (openai-chat only) cuts the usage-only chunk the
    gateway asked for on the client's behalf; other dialects ignore it.
    """
    return meter_class(dialect)(hide_usage_chunk=hide_usage_chunk)
