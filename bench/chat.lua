-- wrk script for `make bench`: POST one OpenAI chat completion per request.
-- BENCH_MODEL picks the mock's answer (m1k, m100k, s-fast ...), BENCH_STREAM=1
-- asks for SSE, BENCH_TOKEN (optional) is sent as the bearer token,
-- BENCH_BODY_BYTES (optional) pads the user message so that the request body
-- is that many bytes (a long prompt: the request-size axis).
-- done() prints one parseable WRK_RESULT line; latencies are in microseconds.
local model = os.getenv("BENCH_MODEL") or "m1k"
local token = os.getenv("BENCH_TOKEN") or ""
local stream = os.getenv("BENCH_STREAM") == "1"
local size = tonumber(os.getenv("BENCH_BODY_BYTES") or "0") or 0

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
if token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
local head = '{"model":"' .. model .. '","messages":[{"role":"user","content":"Say hello.'
local tail = '"}]'
if stream then
  tail = tail .. ',"stream":true,"stream_options":{"include_usage":true}'
end
tail = tail .. "}"
-- Filler words, never the mock's search keys ("model", "stream", "include_usage").
local pad = size - #head - #tail
local filler = ""
if pad > 0 then
  filler = string.rep(" lorem ipsum dolor", math.floor(pad / 18)) .. string.rep(" ", pad % 18)
end
wrk.body = head .. filler .. tail

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK_RESULT requests=%d duration_us=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d " ..
    "max_us=%d mean_us=%.1f bytes=%d err_connect=%d err_read=%d err_write=%d " ..
    "err_status=%d err_timeout=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout))
end
