"""OpenTelemetry export: every call a span and GenAI metrics, over OTLP/HTTP (opt-in).

``[telemetry] otlp_endpoint = "http://127.0.0.1:4318"`` turns it on (the
``otel`` extra). Each ledger row, as the recorder hands it to the writer,
becomes a CLIENT span named ``chat {model}`` with the OpenTelemetry GenAI
semantic conventions' attributes (``gen_ai.operation.name``,
``gen_ai.provider.name``, ``gen_ai.request.model``, ``gen_ai.response.model``,
``gen_ai.response.id``, ``gen_ai.usage.input_tokens`` / ``output_tokens``,
``error.type``) and tollhouse's own (``tollhouse.project``, ``tollhouse.cost_usd``
as exact decimal text, ``tollhouse.trust``, ...), timed from the request's start
to its end; and the metrics ``gen_ai.client.token.usage`` and
``gen_ai.client.operation.duration`` (histograms), plus ``tollhouse.cost``
(USD, a counter). Spans and metrics leave in the SDK's own background
threads: the event loop only builds a span (tens of microseconds, only when
on). Keys, prompts and answers are never exported.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from tollhouse.errors import ConfigError
from tollhouse.ledger.entry import LedgerEntry
from tollhouse.pricing import Cost
from tollhouse.settings import TelemetrySettings

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

OPERATION = "chat"
AttributeValue = str | int | float | bool


class Telemetry:
    """The tracer and meters of one gateway, exporting to one collector."""

    def __init__(self, settings: TelemetrySettings) -> None:
        try:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.metrics import MeterProvider
            from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
        except ImportError:
            raise ConfigError(
                "[telemetry] otlp_endpoint is set but OpenTelemetry isn't installed: "
                "pip install 'tollhouse[otel]'"
            ) from None
        base = settings.otlp_endpoint.rstrip("/")
        resource = Resource.create({"service.name": settings.service_name})
        self.traces: TracerProvider = TracerProvider(resource=resource)
        self.traces.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(f"{base}/v1/traces")))
        reader = PeriodicExportingMetricReader(
            OTLPMetricExporter(f"{base}/v1/metrics"),
            export_interval_millis=settings.metrics_interval_s * 1000,
        )
        self.metrics: MeterProvider = MeterProvider(resource=resource, metric_readers=[reader])
        self.tracer = self.traces.get_tracer("tollhouse")
        meter = self.metrics.get_meter("tollhouse")
        self.tokens = meter.create_histogram(
            "gen_ai.client.token.usage", unit="{token}", description="Tokens used per call."
        )
        self.duration = meter.create_histogram(
            "gen_ai.client.operation.duration", unit="s", description="Duration of a call."
        )
        self.cost = meter.create_counter(
            "tollhouse.cost", unit="USD", description="Exact cost of the calls (a float here)."
        )

    def observe(self, entry: LedgerEntry, cost: Cost) -> None:
        """One finished call: its span and its metrics."""
        from opentelemetry.trace import SpanKind, Status, StatusCode

        start = int(entry.ts.timestamp() * 1e9)
        end = start + int(entry.latency_ms * 1e6)
        model = entry.model_requested or entry.model_served or "unknown"
        span = self.tracer.start_span(
            f"{OPERATION} {model}",
            kind=SpanKind.CLIENT,
            start_time=start,
            attributes=span_attributes(entry, cost),
        )
        if entry.status >= 400 or entry.error:
            span.set_status(Status(StatusCode.ERROR, entry.error or str(entry.status)))
        span.end(end_time=end)
        common = metric_attributes(entry)
        usage = entry.usage
        if usage is not None:
            self.tokens.record(usage.input_tokens, {**common, "gen_ai.token.type": "input"})
            self.tokens.record(usage.output_tokens, {**common, "gen_ai.token.type": "output"})
        self.duration.record(entry.latency_ms / 1000, common)
        if cost.usd is not None:
            self.cost.add(float(cost.usd), {**common, "tollhouse.project": entry.project})

    def close(self) -> None:
        """Flush what is pending and stop the exporters (gateway shutdown)."""
        self.traces.shutdown()
        self.metrics.shutdown()


def span_attributes(entry: LedgerEntry, cost: Cost) -> Mapping[str, AttributeValue]:
    """The GenAI semantic conventions' attributes of a call, and tollhouse's own."""
    found: dict[str, AttributeValue | None] = {
        "gen_ai.operation.name": OPERATION,
        "gen_ai.provider.name": entry.pricing_provider or entry.provider,
        "gen_ai.request.model": entry.model_requested,
        "gen_ai.response.model": entry.model_served,
        "gen_ai.response.id": entry.upstream_id,
        "gen_ai.usage.input_tokens": entry.usage.input_tokens if entry.usage else None,
        "gen_ai.usage.output_tokens": entry.usage.output_tokens if entry.usage else None,
        "error.type": (entry.error or str(entry.status)) if entry.status >= 400 else None,
        "http.response.status_code": entry.status,
        "tollhouse.request_id": entry.request_id,
        "tollhouse.project": entry.project,
        "tollhouse.attribution": entry.attribution,
        "tollhouse.provider": entry.provider,
        "tollhouse.dialect": entry.dialect,
        "tollhouse.stream": entry.stream,
        "tollhouse.trust": entry.trust,
        "tollhouse.attempts": entry.attempt_count,
        "tollhouse.cost_usd": None if cost.usd is None else str(cost.usd),
        "tollhouse.price_source": cost.source,
    }
    return {k: v for k, v in found.items() if v is not None}


def metric_attributes(entry: LedgerEntry) -> dict[str, AttributeValue]:
    """Low-cardinality attributes for the metrics (no ids)."""
    found = {
        "gen_ai.operation.name": OPERATION,
        "gen_ai.provider.name": entry.pricing_provider or entry.provider,
        "gen_ai.request.model": entry.model_requested,
        "gen_ai.response.model": entry.model_served,
    }
    return {k: v for k, v in found.items() if v is not None}


def build_telemetry(settings: TelemetrySettings) -> Telemetry | None:
    """The exporter when an endpoint is configured, else None (the default)."""
    return Telemetry(settings) if settings.otlp_endpoint else None
