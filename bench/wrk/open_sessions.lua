-- Opens handshake-era sessions as fast as the server allows: initialize, then notifications/initialized
-- with the session id the server returned. Counts sessions whose initialize answered 200 with an id.
local init = '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25",' ..
  '"capabilities":{},"clientInfo":{"name":"wrk","version":"0"}}}'
local initialized = '{"jsonrpc":"2.0","method":"notifications/initialized"}'
local base = {["Content-Type"] = "application/json", ["Accept"] = "application/json, text/event-stream"}
local pending = {}
opened = 0
acked = 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

request = function()
  local sid = table.remove(pending)
  if sid then
    local h = {["Content-Type"] = base["Content-Type"], ["Accept"] = base["Accept"],
      ["Mcp-Session-Id"] = sid, ["Mcp-Protocol-Version"] = "2025-11-25"}
    return wrk.format("POST", nil, h, initialized)
  end
  return wrk.format("POST", nil, base, init)
end

response = function(status, headers, body)
  local sid = headers["mcp-session-id"] or headers["Mcp-Session-Id"]
  if status == 200 and sid then
    opened = opened + 1
    table.insert(pending, sid)
  elseif status == 202 then
    acked = acked + 1
  end
end

done = function(summary, latency, requests)
  local total_opened, total_acked = 0, 0
  for _, t in ipairs(threads) do
    total_opened = total_opened + t:get("opened")
    total_acked = total_acked + t:get("acked")
  end
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "opened": %d, "acked": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"non2xx": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration, total_opened, total_acked, latency:percentile(50), latency:percentile(99),
    summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
