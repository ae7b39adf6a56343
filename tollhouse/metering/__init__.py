"""Usage metering: sans-io parsers for each wire dialect, bytes in, :class:`Metered` out.

Example (inside the gateway's async shell)::

    meter = stream_meter("openai-chat", hide_usage_chunk=True)
    async for chunk in upstream.content.iter_any():
        await client.write(meter.feed(chunk))   # usually `chunk` itself
    await client.write(meter.finish())
    ledger.record(meter.result())               # also fine after a disconnect
"""

from tollhouse.metering.base import DialectMeter, StreamMeter
from tollhouse.metering.registry import METERS, UnknownDialect, meter_body, stream_meter
from tollhouse.metering.sse import SSEEvent, SSEParser
from tollhouse.metering.usage import Metered, Usage

__all__ = [
    "METERS",
    "DialectMeter",
    "Metered",
    "SSEEvent",
    "SSEParser",
    "StreamMeter",
    "UnknownDialect",
    "Usage",
    "meter_body",
    "stream_meter",
]
