"""Wire dialects the simulator speaks, registered by the name bills use.

Each module implements :class:`~.base.Dialect`: parse a request into a
:class:`~tollhouse.simulator.planner.SimRequest`, render a
:class:`~tollhouse.simulator.planner.Reply` as a JSON body or as stream frames.
"""

from __future__ import annotations

from .anthropic import AnthropicMessages
from .base import BadRequest, Dialect, Frame, StreamBreak
from .gemini import GeminiGenerate
from .openai_chat import OpenAIChat
from .openai_responses import OpenAIResponses

DIALECTS: dict[str, Dialect] = {
    d.name: d for d in (OpenAIChat(), OpenAIResponses(), AnthropicMessages(), GeminiGenerate())
}

__all__ = ["DIALECTS", "BadRequest", "Dialect", "Frame", "StreamBreak"]
