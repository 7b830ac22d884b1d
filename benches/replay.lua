-- wrk script for the HTTP benchmarks (benches/support): each line of the data file is one prepared
-- request, "path<TAB>token<TAB>idempotency key or -<TAB>body", sent once; the lines are dealt
-- out to wrk's threads in turn.
local next_id = 1
local threads = {}

function setup(thread)
  thread:set("tid", next_id)
  table.insert(threads, thread)
  next_id = next_id + 1
end

function init(args)
  local file, nthreads = args[1], tonumber(args[2])
  reqs, idx, non200, exhausted = {}, 0, 0, 0
  local i = 0
  for line in io.lines(file) do
    if i % nthreads == tid - 1 then
      local path, token, key, body = line:match("([^\t]+)\t([^\t]+)\t([^\t]+)\t(.*)")
      local headers = { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }
      if key ~= "-" then headers["Idempotency-Key"] = key end
      reqs[#reqs + 1] = wrk.format("POST", path, headers, body)
    end
    i = i + 1
  end
end

function request()
  idx = idx + 1
  if idx > #reqs then
    exhausted = exhausted + 1
    idx = #reqs
  end
  return reqs[idx]
end

function response(status, headers, body)
  if status ~= 200 then non200 = non200 + 1 end
end

function done(summary, latency, requests)
  local bad, over = 0, 0
  for _, t in ipairs(threads) do
    bad = bad + t:get("non200")
    over = over + t:get("exhausted")
  end
  io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d non200=%d exhausted=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), bad, over))
end
