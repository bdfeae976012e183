-- Password logins with the right password, over many pre-registered accounts.
--
--   BENCH_DIALECT    authapi ({"email", "password"}) or pocketbase ({"username",
--                    "password"}); the URL's path is the endpoint (POST /auth/login
--                    for both: the body's key picks the dialect)
--   BENCH_ACCOUNTS   file with one account email per line
--   BENCH_PASSWORD   every account's password
--   BENCH_NTHREADS   wrk's thread count (the accounts are shared out among threads)
--   BENCH_MODE       exclusive (default): an account is never in two requests at
--                    once: each thread hands a free account to each request and takes
--                    it back from the answer (whose body names it); rotate: the
--                    accounts are taken in turn, whatever the answers (the mixed run,
--                    where refusals name no account)
--   BENCH_DELAY_MS   mean pause before each request of a connection (rotate mode,
--                    to offer a set rate); 0 or unset: none
local common = dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "common.lua")

local dialect = os.getenv("BENCH_DIALECT") or "authapi"
local password = os.getenv("BENCH_PASSWORD") or ""
local mode = os.getenv("BENCH_MODE") or "exclusive"
local nthreads = common.env_number("BENCH_NTHREADS", 1)
local delay_ms = common.env_number("BENCH_DELAY_MS", 0)
local accounts = common.lines("BENCH_ACCOUNTS")
local key = (dialect == "pocketbase") and "username" or "email"
local headers = { ["Content-Type"] = "application/json" }

local free, turn, mine

local function format(account)
  return wrk.format("POST", nil, headers,
    '{"' .. key .. '":"' .. account .. '","password":"' .. password .. '"}')
end

setup = common.setup

function init(args)
  common.init_counters()
  math.randomseed(os.time() + 7919 * (id or 1))
  mine = common.share(accounts, id or 1, nthreads)
  free = common.queue()
  for _, account in ipairs(mine) do
    common.push(free, account)
  end
  turn = 0
end

function request()
  if mine == nil then
    return format(accounts[1] or "nobody@bench.invalid")
  end
  if mode == "rotate" then
    turn = turn % #mine + 1
    return format(mine[turn])
  end
  local account = common.pop(free)
  if account == nil then
    -- No free account: every one is in flight (more connections than accounts).
    common.bump("starved")
    return format("starved@bench.invalid")
  end
  return format(account)
end

if delay_ms > 0 then
  function delay()
    return delay_ms * (0.5 + math.random())
  end
end

function response(status, headers, body)
  common.count(status)
  if mode == "rotate" then
    return
  end
  if status == 200 then
    local account = body:match('"email":"([^"]+)"')
    if account == nil then
      common.bump("unparsed")
    else
      common.push(free, account)
    end
  end
end

done = common.done
