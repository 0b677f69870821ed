-- One wrk script for every scenario, chosen by environment variables:
--   BENCH_PATH (may contain {id}), BENCH_METHOD, BENCH_BODY, BENCH_N (largest id), BENCH_AUTH (Authorization value),
--   BENCH_HEADER (one more header, `Name: value`; a value containing {key} gets a value no other request of the run
--   uses).
-- A body may contain {email}, replaced by an e-mail address no other request of the run uses (BENCH_RUN, lowercase
-- letters and digits, tells runs apart), and {uuid}, replaced by the UUIDs of BENCH_UUIDS (comma-separated) in
-- turn.
local path = os.getenv("BENCH_PATH")
local method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY")
local n = tonumber(os.getenv("BENCH_N") or "1")
local headers = { ["Authorization"] = os.getenv("BENCH_AUTH") }
if body then headers["Content-Type"] = "application/json" end
local extra_name, extra_value = (os.getenv("BENCH_HEADER") or ""):match("^([^:]+):%s*(.*)$")
local keyed = extra_value ~= nil and extra_value:find("{key}", 1, true) ~= nil
if extra_name and not keyed then headers[extra_name] = extra_value end
local dynamic = body ~= nil and (body:find("{email}", 1, true) ~= nil or body:find("{uuid}", 1, true) ~= nil)
local run = os.getenv("BENCH_RUN") or ""
local uuids = {}
for uuid in string.gmatch(os.getenv("BENCH_UUIDS") or "", "[^,]+") do table.insert(uuids, uuid) end
local counter = 0

-- Numbers the threads (each runs this script in its own Lua state, where `tid` becomes a global).
local threads = 0
setup = function(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

init = function(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
end

request = function()
  local p = path:gsub("{id}", tostring(math.random(1, n)))
  local b = body
  if dynamic then
    counter = counter + 1
    b = b:gsub("{email}", string.format("w%s.%d.%d@bench.test", run, tid or 0, counter))
    if #uuids > 0 then
      b = b:gsub("{uuid}", uuids[(counter + (tid or 0)) % #uuids + 1])
    end
  end
  if keyed then
    counter = counter + 1
    headers[extra_name] = extra_value:gsub("{key}", string.format("%s.%d.%d", run, tid or 0, counter))
  end
  return wrk.format(method, p, headers, b)
end

done = function(summary, latency, requests)
  io.write(string.format("BENCH p50_us=%d p99_us=%d requests=%d errors=%d\n",
    latency:percentile(50), latency:percentile(99), summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
