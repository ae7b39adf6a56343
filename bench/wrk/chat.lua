-- POST one small chat completion per request, on keep-alive connections.
-- Used by bench/overhead.py; the URL (and so the path) comes from the command line:
--   wrk -t1 -c16 -d5s --latency -s bench/wrk/chat.lua http://127.0.0.1:4141/v1/chat/completions

wrk.method = "POST"
wrk.body = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello"}],"max_tokens":16}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench"

-- No response() hook on purpose: defining one makes wrk parse every response in Lua,
-- which slows the load generator. Non-2xx answers still land in summary.errors.status.

-- One machine-readable line for overhead.py; latencies are in microseconds.
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d bytes=%d p50_us=%.0f p90_us=%.0f p99_us=%.0f " ..
    "max_us=%.0f mean_us=%.1f connect=%d read=%d write=%d status=%d timeout=%d\n",
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean, e.connect, e.read, e.write, e.status, e.timeout))
end
