"""Normalised token usage: the one shape every dialect's parser produces."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Usage:
    """Token counts for one call, in genai-prices' conventions.

    Totals contain their parts, whatever the provider's wire format did:

    - ``input_tokens``: all input, cache reads and cache writes included
      (Anthropic reports ``input_tokens`` *without* cache; add it back).
    - ``cached_input_tokens``: cache reads, part of ``input_tokens``.
    - ``cache_write_tokens``: cache writes (5-minute and 1-hour), part of input.
    - ``cache_write_1h_tokens``: the 1-hour writes, part of ``cache_write_tokens``.
    - ``output_tokens``: all output, reasoning/thinking included
      (Gemini reports ``thoughtsTokenCount`` apart; add it in).
    - ``reasoning_tokens``: part of ``output_tokens``.
    - ``raw``: the provider's usage object as received (for the ledger and for
      provider-reported cost such as xAI ``cost_in_usd_ticks``).

    >>> Usage(input_tokens=1200, cached_input_tokens=1024, output_tokens=40)
    Usage(input_tokens=1200, cached_input_tokens=1024, ...)
    """

    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    raw: dict[str, Any] = field(default_factory=dict)
    # Set by tollhouse.ledger.entry.normalise when the provider's counts weren't sane
    # (negative, or past tollhouse.sane.MAX_TOKENS): what was wrong. Such usage is kept
    # raw and not priced, and its odd counts read as 0.
    odd: str | None = None

    def counts(self) -> tuple[int, int, int, int, int, int]:
        """The six counts, in field order (the ledger's token columns)."""
        return (
            self.input_tokens,
            self.cached_input_tokens,
            self.cache_write_tokens,
            self.cache_write_1h_tokens,
            self.output_tokens,
            self.reasoning_tokens,
        )


@dataclass(slots=True)
class Metered:
    """What a parser learned from one upstream response (body or stream).

    ``usage`` is None when the response carried none (an interrupted stream
    before its usage event). ``complete`` is True when the response reached
    its dialect's normal end (``[DONE]``, ``message_stop``,
    ``response.completed``, a Gemini ``finishReason``...). ``error`` holds an
    in-band error (Anthropic ``event: error`` after a 200, Responses
    ``response.failed``) as a short string.
    """

    usage: Usage | None = None
    model: str | None = None
    upstream_id: str | None = None
    complete: bool = False
    error: str | None = None
