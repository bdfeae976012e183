-- Registrations (authapi POST /auth/register), each with a new email: the run's
-- nonce, the wrk thread and a counter.
--
--   BENCH_NONCE      unique per run (so runs on one database never collide)
--   BENCH_PASSWORD   the password of every new account
local common = dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "common.lua")

local nonce = os.getenv("BENCH_NONCE") or "x"
local password = os.getenv("BENCH_PASSWORD") or ""
local headers = { ["Content-Type"] = "application/json" }
local sent = 0

setup = common.setup

function init(args)
  common.init_counters()
end

function request()
  sent = sent + 1
  local email = "r" .. nonce .. "-" .. (id or 0) .. "-" .. sent .. "@bench.example"
  return wrk.format("POST", nil, headers,
    '{"name":"Bench","email":"' .. email .. '","password":"' .. password
      .. '","confirm":"' .. password .. '"}')
end

function response(status, headers, body)
  common.count(status)
end

done = common.done
