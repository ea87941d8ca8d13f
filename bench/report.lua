-- wrk script: requests come from a file of paths, in order (one per line);
-- at the end, one JSON line with the numbers the harness needs.
local paths = {}
local index = 0

function init(args)
  for line in io.lines(args[1]) do
    paths[#paths + 1] = line
  end
  -- threads start at different places so they don't ask for the same path at once
  index = math.random(#paths)
end

function request()
  index = index + 1
  if index > #paths then index = 1 end
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
