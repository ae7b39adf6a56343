"""OpenAI Responses API usage.

The stream has no ``[DONE]``: it ends with one terminal event carrying the
whole response, usage included. ``response.completed`` and
``response.incomplete`` (a normal end with a reason, such as
``max_output_tokens``) count as complete; ``response.failed`` and an ``error``
event record an error. Only those events, and the first ``response.created``
for ids, are parsed; deltas are skipped on their event name.

>>> meter = OpenAIResponsesMeter()
>>> _ = meter.feed(b'event: response.completed\\ndata: {"type":"response.completed",'
...                b'"response":{"status":"completed","usage":{"input_tokens":5}}}\\n\\n')
>>> meter.result().complete, meter.result().usage.input_tokens
(True, 5)
"""

from __future__ import annotations

from typing import Any

from tollhouse.metering import exactjson
from tollhouse.metering.base import SSEMeter, Tally
from tollhouse.metering.fields import as_dict, as_int, as_str, describe_error, sniff_type
from tollhouse.metering.sse import SSEEvent
from tollhouse.metering.usage import Usage

_TERMINAL = frozenset({b"response.completed", b"response.incomplete", b"response.failed"})
_STARTED = frozenset({b"response.created", b"response.queued", b"response.in_progress"})
_NORMAL_END = frozenset({"completed", "incomplete"})
_ERROR_KINDS = ("code", "type")


def responses_usage(raw: dict[str, Any]) -> Usage:
    """``input_tokens`` includes cached tokens; ``output_tokens`` includes reasoning."""
    given = as_dict(raw.get("input_tokens_details"))
    made = as_dict(raw.get("output_tokens_details"))
    return Usage(
        input_tokens=as_int(raw.get("input_tokens")),
        cached_input_tokens=as_int(given.get("cached_tokens")),
        cache_write_tokens=as_int(given.get("cache_write_tokens")),
        output_tokens=as_int(raw.get("output_tokens")),
        reasoning_tokens=as_int(made.get("reasoning_tokens")),
        raw=raw,
    )


def absorb_response(tally: Tally, response: dict[str, Any]) -> None:
    """Record what a Response object (a body, or a terminal event's) says."""
    tally.learn_ids(response.get("model"), response.get("id"))
    usage = response.get("usage")
    if isinstance(usage, dict):
        tally.raw_usage = usage
    status = as_str(response.get("status"))
    tally.complete = status in _NORMAL_END
    if response.get("error"):
        tally.error = describe_error(response["error"], _ERROR_KINDS)
    elif status == "failed":
        tally.error = "response.failed"


def describe_error_event(event: dict[str, Any]) -> str:
    """An ``error`` event: flat (``code``, ``message``) or wrapping an ``error`` object."""
    nested = event.get("error")
    if isinstance(nested, dict):
        return describe_error(nested, _ERROR_KINDS)
    return describe_error({"code": event.get("code"), "message": event.get("message")})


class OpenAIResponsesMeter(SSEMeter):
    """Meters ``/v1/responses``; usage arrives with the terminal event."""

    dialect = "openai-responses"
    wanted_events = (*_TERMINAL, *_STARTED, b"error")

    @staticmethod
    def usage_from_raw(raw: dict[str, Any]) -> Usage:
        return responses_usage(raw)

    @staticmethod
    def absorb_body(tally: Tally, body: Any) -> None:
        if isinstance(body, dict):
            absorb_response(tally, body)

    def _on_event(self, event: SSEEvent) -> bool:
        name = event.event or sniff_type(event.data)
        if name in _TERMINAL:
            self._on_terminal(name, event.data)
        elif name in _STARTED and self._tally.upstream_id is None:
            response = as_dict(as_dict(exactjson.loads(event.data)).get("response"))
            self._tally.learn_ids(response.get("model"), response.get("id"))
        elif name == b"error":
            self._tally.error = describe_error_event(as_dict(exactjson.loads(event.data)))
        return False

    def _on_terminal(self, name: bytes, data: bytes) -> None:
        absorb_response(self._tally, as_dict(as_dict(exactjson.loads(data)).get("response")))
        # The event name is authoritative even when its payload is unreadable.
        failed = name == b"response.failed"
        self._tally.complete = not failed
        if failed and self._tally.error is None:
            self._tally.error = "response.failed"
