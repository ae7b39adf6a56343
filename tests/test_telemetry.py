"""OpenTelemetry export against an in-process OTLP/HTTP collector (issue 23).

The collector decodes what the real OTLP exporter sends (protobuf); the spans'
GenAI attributes must equal the ledger's row for the same request, and the
metrics must carry the tokens the simulator billed.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import openai
import pytest
from aiohttp import web
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.conftest import GatewayFactory, base_config
from tests.test_metering_e2e import oa
from tollhouse.errors import ConfigError
from tollhouse.settings import TelemetrySettings
from tollhouse.simulator import Simulator
from tollhouse.telemetry import build_telemetry
from tollhouse.testing import BackgroundServer


class Collector:
    """What an OTLP/HTTP collector received: spans and metric data points, decoded."""

    def __init__(self) -> None:
        self.spans: list[Any] = []
        self.metrics: dict[str, list[Any]] = {}

    def app(self) -> web.Application:
        async def traces(request: web.Request) -> web.Response:
            found = ExportTraceServiceRequest.FromString(await request.read())
            for resource in found.resource_spans:
                for scope in resource.scope_spans:
                    self.spans.extend(scope.spans)
            return web.Response(body=ExportTraceServiceResponse().SerializeToString())

        async def metrics(request: web.Request) -> web.Response:
            found = ExportMetricsServiceRequest.FromString(await request.read())
            for resource in found.resource_metrics:
                for scope in resource.scope_metrics:
                    for metric in scope.metrics:
                        points = metric.histogram.data_points or metric.sum.data_points
                        self.metrics.setdefault(metric.name, []).extend(points)
            return web.Response(body=ExportMetricsServiceResponse().SerializeToString())

        app = web.Application()
        app.router.add_post("/v1/traces", traces)
        app.router.add_post("/v1/metrics", metrics)
        return app


def attributes(item: Any) -> dict[str, Any]:
    out = {}
    for kv in item.attributes:
        value = kv.value
        out[kv.key] = getattr(value, value.WhichOneof("value"))
    return out


def test_every_call_is_a_genai_span_and_metrics_equal_to_its_row(
    make_gateway: GatewayFactory, simulator: Simulator
) -> None:
    collector = Collector()
    with BackgroundServer(collector.app) as otlp:
        config = base_config(simulator.url)
        config["telemetry"] = {"otlp_endpoint": otlp.url, "metrics_interval_s": 0.2}
        gateway = make_gateway(config)
        reply = oa(gateway).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
        with pytest.raises(openai.NotFoundError):
            oa(gateway).chat.completions.create(
                model="opneai/gpt-4o", messages=[{"role": "user", "content": "x"}]
            )
        gateway.settle()
        gateway.server.stop()  # the gateway's shutdown flushes its exporters
    conn = sqlite3.connect(gateway.ledger_path)
    rows = conn.execute(
        "SELECT request_id, project, input_tokens, output_tokens, cost_usd, model_served, "
        "upstream_id, status FROM requests ORDER BY id"
    ).fetchall()
    conn.close()
    assert len(rows) == 2 and len(collector.spans) == 2
    spans = {attributes(s)["tollhouse.request_id"]: s for s in collector.spans}
    ok, failed = rows
    span = spans[ok[0]]
    found = attributes(span)
    assert span.name == "chat gpt-4o-mini" and span.kind == 3  # SPAN_KIND_CLIENT
    assert found["gen_ai.operation.name"] == "chat"
    assert found["gen_ai.provider.name"] == "openai"
    assert found["gen_ai.request.model"] == "gpt-4o-mini"
    assert found["gen_ai.response.model"] == ok[5] == reply.model
    assert found["gen_ai.response.id"] == ok[6] == reply.id
    assert (found["gen_ai.usage.input_tokens"], found["gen_ai.usage.output_tokens"]) == ok[2:4]
    assert found["tollhouse.cost_usd"] == ok[4]  # the exact decimal text, as the ledger has it
    assert found["tollhouse.project"] == ok[1] == "acme"
    assert span.end_time_unix_nano > span.start_time_unix_nano
    bad = attributes(spans[failed[0]])
    assert failed[7] == 404 and bad["error.type"] == "gateway:not_found"
    assert spans[failed[0]].status.code == 2  # STATUS_CODE_ERROR
    tokens = collector.metrics["gen_ai.client.token.usage"]
    by_type = {attributes(p)["gen_ai.token.type"]: p.sum for p in tokens}
    assert by_type == {"input": ok[2], "output": ok[3]}
    assert collector.metrics["gen_ai.client.operation.duration"]
    assert "sk-" not in str(collector.spans)  # keys are never exported


def test_an_endpoint_without_the_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real = builtins.__import__

    def no_otel(name: str, *args: Any, **kw: Any) -> Any:
        if name.startswith("opentelemetry"):
            raise ImportError(name)
        return real(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_otel)
    with pytest.raises(ConfigError, match=r"tollhouse\[otel\]"):
        build_telemetry(TelemetrySettings(otlp_endpoint="http://127.0.0.1:4318"))
    assert build_telemetry(TelemetrySettings()) is None  # off by default
