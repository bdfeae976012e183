-- One request over and over, cycling through header values (bearer tokens, cookies):
-- the bare JWT and bare write baselines and Portcullis's authenticated requests.
--
--   BENCH_METHOD   request method (default GET)
--   BENCH_HEADER   header name to vary, e.g. Authorization or Cookie (optional)
--   BENCH_VALUES   file with one value of that header per line
--   BENCH_BODY     request body (optional; sent as application/json)
local common = dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "common.lua")

local method = os.getenv("BENCH_METHOD") or "GET"
local header = os.getenv("BENCH_HEADER")
local body = os.getenv("BENCH_BODY")
local values = common.lines("BENCH_VALUES")

local requests, next_request

local function format(value)
  local headers = {}
  if header ~= nil and header ~= "" then
    headers[header] = value
  end
  if body ~= nil then
    headers["Content-Type"] = "application/json"
  end
  return wrk.format(method, nil, headers, body)
end

setup = common.setup

function init(args)
  common.init_counters()
  requests = {}
  if #values == 0 then
    requests[1] = format(nil)
  else
    for i, value in ipairs(values) do
      requests[i] = format(value)
    end
  end
  next_request = ((id or 1) - 1) % #requests + 1
end

function request()
  if requests == nil then
    -- wrk's check of the script, in a state init() did not run in.
    return format(values[1])
  end
  local r = requests[next_request]
  next_request = next_request % #requests + 1
  return r
end

function response(status, headers, body)
  common.count(status)
end

done = common.done
