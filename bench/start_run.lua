-- wrk script: every request starts one echo-upper run (POST /api/gateway/runs/start with the bearer token).
-- The token comes from the environment (AG_TOKEN), the bundle from AG_BUNDLE (default echo-upper).
local token = os.getenv("AG_TOKEN") or ""
local bundle = os.getenv("AG_BUNDLE") or "echo-upper"
wrk.method = "POST"
wrk.path = "/api/gateway/runs/start"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. token
wrk.body = '{"bundle_id": "' .. bundle .. '", "input_data": {"name": "load"}}'

local failed = 0
response = function(status, headers, body)
  if status ~= 200 then
    failed = failed + 1
  end
end

done = function(summary, latency, requests)
  io.write(string.format("AG_RESULT requests=%d errors_status=%d errors_timeout=%d errors_other=%d\n",
    summary.requests, summary.errors.status, summary.errors.timeout,
    summary.errors.connect + summary.errors.read + summary.errors.write))
end
