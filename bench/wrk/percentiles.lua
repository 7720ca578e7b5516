-- wrk script of bench/pipeline.py: POSTs WRK_BODY_BYTES bytes when that is
-- set (hasher), else GETs; at the end prints the latency percentiles wrk's
-- --latency leaves out (p99.9) as "percentile <p> <microseconds>" lines, and
-- the error counts, for the bench to parse.
local bytes = tonumber(os.getenv("WRK_BODY_BYTES") or "")
if bytes then
  local body = {}
  for i = 1, bytes do body[i] = string.char(65 + (i * 7) % 26) end
  wrk.method = "POST"
  wrk.body = table.concat(body)
  wrk.headers["Content-Type"] = "application/octet-stream"
end

function done(summary, latency, requests)
  for _, p in ipairs({50, 90, 99, 99.9}) do
    io.write(string.format("percentile %g %d\n", p, latency:percentile(p)))
  end
  io.write(string.format("percentile 100 %d\n", latency.max))
  local e = summary.errors
  io.write(string.format(
    "counts requests %d status %d connect %d read %d write %d timeout %d\n",
    summary.requests, e.status, e.connect, e.read, e.write, e.timeout))
end
