-- For wrk: counts the answers and the 429s among them in each thread; prints "429 share <fraction>" at the end.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  total = 0
  throttled = 0
end

function response(status, headers, body)
  total = total + 1
  if status == 429 then
    throttled = throttled + 1
  end
end

function done(summary, latency, requests)
  local all, refused = 0, 0
  for _, thread in ipairs(threads) do
    all = all + thread:get("total")
    refused = refused + thread:get("throttled")
  end
  io.write(string.format("429 share %.3f\n", all > 0 and refused / all or 0))
end
