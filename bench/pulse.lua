-- wrk script: one pulse per request to POST /v1/pulses, over 10,000 services.
-- wrk -t2 -c32 -d20s -s bench/pulse.lua http://127.0.0.1:8080
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, "/v1/pulses", nil,
    string.format('{"service":"svc-%d","next_in":60}', n % 10000))
end
