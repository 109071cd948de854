-- wrk script: 100 pulses per request (a JSON array) to POST /v1/pulses.
-- wrk -t2 -c32 -d20s -s bench/batch.lua http://127.0.0.1:8080   (pulses/s = requests/s × 100)
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local n = 0
request = function()
  local items = {}
  for i = 1, 100 do
    n = n + 1
    items[i] = string.format('{"service":"svc-%d","next_in":60}', n % 10000)
  end
  return wrk.format(nil, "/v1/pulses", nil, "[" .. table.concat(items, ",") .. "]")
end
