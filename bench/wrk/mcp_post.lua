-- POSTs one captured MCP request again and again.
-- MCP_BODY: the JSON-RPC body; MCP_HEADERS: extra headers "name:value|name:value";
-- MCP_SESSIONS: session ids, comma-separated; each request takes the next one (none for 2026-07-28).
-- Each request gets its own JSON-RPC id, as a real client's do (an id still in flight in a session is refused).
wrk.method = "POST"
local template = os.getenv("MCP_BODY")
wrk.body = template
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
for name, value in string.gmatch(os.getenv("MCP_HEADERS") or "", "([^|:]+):([^|]+)") do
  wrk.headers[name] = value
end

local sessions = {}
for sid in string.gmatch(os.getenv("MCP_SESSIONS") or "", "[^,]+") do
  table.insert(sessions, sid)
end
local n = #sessions
local i = 0
local base = 0

local threads = 0
setup = function(thread)  -- runs in the main state, once per thread: number the threads
  threads = threads + 1
  thread:set("tid", threads)
end

init = function(args)
  base = tid * 1000000000  -- this thread's ids: no two threads share one
end

request = function()
  i = i + 1
  local body = string.gsub(template, '"id":%s*%d+', '"id":' .. (base + i), 1)
  if n > 0 then
    wrk.headers["Mcp-Session-Id"] = sessions[(i % n) + 1]
  end
  return wrk.format(nil, nil, nil, body)
end

done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
    '"non2xx": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    errors.status, errors.connect + errors.read + errors.write + errors.timeout))
end
