-- Rotating refreshes: each request spends a refresh token and the answer's successor
-- is the next one, many sessions at once, every token used exactly once.
--
--   BENCH_DIALECT   authapi: POST /auth/refresh-tokens {"refreshToken"};
--                   cbs: POST /api/v1/auth/refresh {"refresh_token"} with the
--                   session's access token in Authorization: Bearer
--   BENCH_SESSIONS  file with one session per line: its refresh token, and for cbs a
--                   tab and its access token
--   BENCH_NTHREADS  wrk's thread count (the sessions are shared out among threads)
--
-- wrk calls response() for a connection's answer before it asks request() for that
-- connection's next request, on the same thread; so each thread keeps a queue of
-- unspent sessions: response() adds the successor the answer carries, request() takes
-- the oldest. A session is thus never in two requests at once, whatever the order of
-- the connections. Seed each thread with at least one session per connection (bench.py
-- gives one more: wrk's check of the script takes one request from thread 1).
local common = dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "common.lua")

local dialect = os.getenv("BENCH_DIALECT") or "authapi"
local nthreads = common.env_number("BENCH_NTHREADS", 1)
local sessions = common.lines("BENCH_SESSIONS")

local unspent

local function format(refresh, access)
  local headers = { ["Content-Type"] = "application/json" }
  if dialect == "cbs" then
    headers["Authorization"] = "Bearer " .. access
    return wrk.format("POST", nil, headers, '{"refresh_token":"' .. refresh .. '"}')
  end
  return wrk.format("POST", nil, headers, '{"refreshToken":"' .. refresh .. '"}')
end

setup = common.setup

function init(args)
  common.init_counters()
  unspent = common.queue()
  for _, line in ipairs(common.share(sessions, id or 1, nthreads)) do
    local f = common.fields(line)
    common.push(unspent, { f[1], f[2] or "" })
  end
end

function request()
  if unspent == nil then
    return format("none", "none")
  end
  local session = common.pop(unspent)
  if session == nil then
    -- Answers that carried no successor (errors) have starved this thread.
    common.bump("starved")
    return format("starved", "starved")
  end
  return format(session[1], session[2])
end

function response(status, headers, body)
  common.count(status)
  if status ~= 200 then
    return
  end
  local refresh, access
  if dialect == "cbs" then
    refresh = body:match('"refresh_token":"([^"]+)"')
    access = body:match('"access_token":"([^"]+)"')
  else
    refresh = body:match('"refresh":{"token":"([^"]+)"')
    access = ""
  end
  if refresh == nil or access == nil then
    common.bump("unparsed")
    return
  end
  common.push(unspent, { refresh, access })
end

done = common.done
