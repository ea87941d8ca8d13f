-- wrk script: requests come from a file of paths (one per line). Thread k of
-- T takes lines k, k+T, k+2T, ..., so threads never ask for the same path at
-- the same moment; a "cold" run is given a file of paths never asked before.
-- At the end, one JSON line with the numbers the harness needs.
local next_id = 1

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end

local paths = {}
local index = 0
local step = 1

function init(args)
  for line in io.lines(args[1]) do
    paths[#paths + 1] = line
  end
  step = tonumber(args[2])
  index = id - step
end

function request()
  index = index + step
  if index > #paths then index = ((index - 1) % #paths) + 1 end
  return wrk.format("GET", paths[index])
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "non_2xx": %d, "socket_errors": %d, '
    .. '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, errors.status,
    errors.connect + errors.read + errors.write + errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
