-- wrk script for benchmarks/compare.py: no per-response callback (that would make wrk copy
-- every body into Lua and slow the client down), only the run's summary, written as JSON to
-- the file named by WRK_REPORT so the caller can check counts instead of scraping text.

done = function(summary, latency, requests)
  local errors = summary.errors
  local out = assert(io.open(os.getenv("WRK_REPORT"), "w"))
  out:write(string.format(
    '{"duration_us": %d, "requests": %d, "bytes": %d, "connect": %d, "read": %d, '
      .. '"write": %d, "status": %d, "timeout": %d, "p50_us": %d, "p99_us": %d, '
      .. '"max_us": %d}\n',
    summary.duration, summary.requests, summary.bytes, errors.connect, errors.read,
    errors.write, errors.status, errors.timeout, latency:percentile(50),
    latency:percentile(99), latency.max
  ))
  out:close()
end
