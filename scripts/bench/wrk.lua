-- One wrk script for every scenario, chosen by environment variables:
--   BENCH_PATH (may contain {id}), BENCH_METHOD, BENCH_BODY, BENCH_N (largest id), BENCH_AUTH (Authorization value).
local path = os.getenv("BENCH_PATH")
local method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY")
local n = tonumber(os.getenv("BENCH_N") or "1")
local headers = { ["Authorization"] = os.getenv("BENCH_AUTH") }
if body then headers["Content-Type"] = "application/json" end

init = function(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
end

request = function()
  local p = path:gsub("{id}", tostring(math.random(1, n)))
  return wrk.format(method, p, headers, body)
end

done = function(summary, latency, requests)
  io.write(string.format("BENCH p50_us=%d p99_us=%d requests=%d errors=%d\n",
    latency:percentile(50), latency:percentile(99), summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
