"""From a parsed request to the reply the simulator will give (sans-io).

Output rule: the answer has ``default_output_tokens`` tokens (or the
``x-sim-output-tokens`` header's), cut to the request's max-tokens field if
that is smaller (then the finish reason is the dialect's "length").
Reasoning: when the request asks for it, or the model is a reasoning model
by name (o1/o3/o4-*, gpt-5*, gemini-2.5*/3*, grok-3-mini*, grok-4*) and the
request did not turn it off, the model "thinks" ``reasoning_multiplier`` x
the answer's tokens, capped by a thinking budget (``x-sim-reasoning-tokens``
overrides). Reasoning counts as output and is generated before the first
streamed frame.

>>> _reasoning_model("openai/o3-mini"), _reasoning_model("gpt-4o")
(True, False)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from .billing import Tally
from .flavors import Flavor
from .judge import judge_pieces
from .prompt import CacheOutcome, Prompt, PromptCache
from .tokens import answer_pieces

_REASONING_MODEL = re.compile(
    r"^(o[134](-|$)|gpt-([5-9])(?!.*-chat)|gemini-(2\.5|[3-9])|grok-(3-mini|4)(?!.*non-reasoning))"
)


def _reasoning_model(model: str) -> bool:
    return bool(_REASONING_MODEL.match(model.rsplit("/", 1)[-1]))


@dataclass(frozen=True, slots=True)
class SimRequest:
    """What a dialect parser extracted from one generation request."""

    model: str
    stream: bool
    prompt: Prompt
    max_output: int | None = None
    reasoning: bool | None = None
    """Explicitly on or off; None lets the model name decide."""
    reasoning_budget: int | None = None
    include_usage: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)
    """Dialect-specific request fields the reply echoes (instructions, tools...)."""
    answers: int = 1
    """OpenAI's ``n``: that many answers, each as long, all billed."""
    judge: bool = False
    """Asked to judge a fused model's panel: the answer is the analysis JSON (.judge)."""

    @property
    def wants_reasoning(self) -> bool:
        return _reasoning_model(self.model) if self.reasoning is None else self.reasoning


@dataclass(frozen=True, slots=True)
class Overrides:
    """Per-request knobs from ``x-sim-*`` headers."""

    output_tokens: int | None = None
    reasoning_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """Everything needed to render one successful response in any dialect."""

    request: SimRequest
    flavor: Flavor
    id: str
    when: datetime
    pieces: tuple[str, ...]
    reasoning_tokens: int
    truncated: bool
    usage: Tally
    cost: Decimal | None

    @property
    def model(self) -> str:
        return self.request.model

    @property
    def created(self) -> int:
        return int(self.when.timestamp())

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    @property
    def text_tokens(self) -> int:
        """One answer's text tokens."""
        return self.usage.output_tokens // self.request.answers - self.reasoning_tokens

    @property
    def usage_fields(self) -> dict[str, Any]:
        """Flavor extras for the final usage object (xAI ticks, OpenRouter cost)."""
        return self.flavor.usage_fields(self.cost)

    def partial(self, text_tokens: int, started: bool) -> tuple[Tally, Decimal | None]:
        """Usage and cost when only ``text_tokens`` of the answer went out."""
        reasoning = self.reasoning_tokens if started else 0
        tally = self.usage.with_output(reasoning + text_tokens, reasoning)
        return tally, self.flavor.cost(tally, self.model, self.when)


@dataclass(frozen=True, slots=True)
class PlanContext:
    """The simulator state and settings a plan needs."""

    flavor: Flavor
    cache: PromptCache
    explicit_cache: bool
    default_output_tokens: int
    chunk_tokens: int
    reasoning_multiplier: int


def _output_tokens(req: SimRequest, ctx: PlanContext, over: Overrides) -> tuple[int, bool]:
    wanted = over.output_tokens if over.output_tokens is not None else ctx.default_output_tokens
    wanted = max(1, wanted)
    if req.max_output is not None and req.max_output < wanted:
        return max(1, req.max_output), True
    return wanted, False


def _reasoning_tokens(req: SimRequest, ctx: PlanContext, over: Overrides, text: int) -> int:
    if over.reasoning_tokens is not None:
        return over.reasoning_tokens
    if not req.wants_reasoning:
        return 0
    tokens = ctx.reasoning_multiplier * text
    return tokens if req.reasoning_budget is None else min(tokens, req.reasoning_budget)


def _cache(req: SimRequest, ctx: PlanContext) -> CacheOutcome:
    namespace = f"{ctx.flavor.name}/{req.model}/"
    if ctx.explicit_cache:
        return ctx.cache.explicit(namespace, req.prompt)
    return CacheOutcome(read=ctx.cache.implicit(namespace, req.prompt))


def plan(
    req: SimRequest, ctx: PlanContext, over: Overrides, *, reply_id: str, when: datetime
) -> Reply:
    """Decide the answer, usage and cost for ``req`` (updates the prompt cache)."""
    text, truncated = _output_tokens(req, ctx, over)
    pieces = answer_pieces(text, ctx.chunk_tokens)
    if req.judge:
        (pieces, text), truncated = judge_pieces(ctx.chunk_tokens), False
    reasoning = _reasoning_tokens(req, ctx, over, text)
    cached = _cache(req, ctx)
    usage = Tally(
        input_tokens=req.prompt.tokens,
        cached_input_tokens=cached.read,
        cache_write_tokens=cached.write,
        cache_write_1h_tokens=cached.write_1h,
        output_tokens=(text + reasoning) * req.answers,
        reasoning_tokens=reasoning * req.answers,
    )
    return Reply(
        request=req,
        flavor=ctx.flavor,
        id=reply_id,
        when=when,
        pieces=pieces,
        reasoning_tokens=reasoning,
        truncated=truncated,
        usage=usage,
        cost=ctx.flavor.cost(usage, req.model, when),
    )
