"""The simulator's settings, declared once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class SimulatorSettings:
    """How the fake provider behaves.

    >>> SimulatorSettings(bill_path=Path("bills.jsonl"), default_output_tokens=8)
    SimulatorSettings(bill_path=PosixPath('bills.jsonl'), default_output_tokens=8, ...)
    """

    bill_path: Path | None = None
    """JSONL file every served generation request appends its bill to (None: no bills)."""
    default_output_tokens: int = 16
    """Answer length when neither max-tokens nor ``x-sim-output-tokens`` asks for less."""
    latency_ms: float = 0
    """Delay before every generation response starts."""
    stream_chunk_delay_ms: float = 0
    """Delay between streamed frames."""
    gone_models: frozenset[str] = frozenset()
    """Models that always answer 404 (retired models)."""
    chunk_tokens: int = 4
    """Answer tokens per streamed text delta."""
    reasoning_multiplier: int = 2
    """Reasoning tokens per answer token when a request reasons."""
    min_cache_tokens: int = 1024
    """Shortest prompt (implicit) or cached prefix (Anthropic) that caching applies to."""
    default_retry_after_s: float = 1.0
    """``retry-after`` of a ``rate_limit`` fault without ``retry_after=``."""
    client_max_size: int = 64 * 1024 * 1024
    """Largest request body accepted (a 1 MB prompt must fit)."""
    rpm: int | None = None
    """Requests per minute per (flavor, model) before a 429 (None: unlimited); see :mod:`.quota`."""
    tpm: int | None = None
    """Tokens (prompt + max-tokens) per minute per (flavor, model) (None: unlimited)."""
    quota_burst_s: float = 60.0
    """Seconds' worth of quota a bucket holds: 60 admits a minute's quota at once, 1 models
    OpenAI's per-second quantization."""
    quota_models: frozenset[str] = frozenset()
    """Models ``rpm``/``tpm`` apply to (empty: every model)."""
