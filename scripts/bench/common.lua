-- Shared by the wrk scripts of scripts/bench.py (make bench). Each script loads it with
--   local common = dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "common.lua")
--
-- Every script counts the statuses it sees (wrk's own summary only counts statuses
-- over 399) and problems of its own (a token stack that ran dry, a 2xx body it could
-- not read), and its done() prints one line `BENCH_RESULT {json}` that bench.py reads:
-- requests, duration, latency percentiles (ms), wrk's socket and status errors, the
-- status counts and the counters, summed over wrk's threads.
--
-- Settings come from the environment (BENCH_*), the same in every Lua state wrk makes.

local M = {}

M.threads = {}

-- The lines of the file named by the environment variable `name` (none if unset).
function M.lines(name)
  local path = os.getenv(name)
  local lines = {}
  if path == nil or path == "" then
    return lines
  end
  local file = assert(io.open(path, "r"))
  for line in file:lines() do
    if line ~= "" then
      lines[#lines + 1] = line
    end
  end
  file:close()
  return lines
end

-- `line` split at tabs.
function M.fields(line)
  local out = {}
  for field in (line .. "\t"):gmatch("([^\t]*)\t") do
    out[#out + 1] = field
  end
  return out
end

-- The items of `all` that belong to wrk thread `id` (1-based) of `count`.
function M.share(all, id, count)
  local mine = {}
  for i, item in ipairs(all) do
    if (i - 1) % count == id - 1 then
      mine[#mine + 1] = item
    end
  end
  return mine
end

function M.env_number(name, default)
  local value = tonumber(os.getenv(name) or "")
  if value == nil then
    return default
  end
  return value
end

-- A first-in first-out queue.
function M.queue()
  return { first = 1, last = 0 }
end

function M.push(q, value)
  q.last = q.last + 1
  q[q.last] = value
end

function M.pop(q)
  if q.first > q.last then
    return nil
  end
  local value = q[q.first]
  q[q.first] = nil
  q.first = q.first + 1
  return value
end

-- setup(thread), in wrk's main state: numbers the threads (1, 2, ...).
function M.setup(thread)
  M.threads[#M.threads + 1] = thread
  thread:set("id", #M.threads)
end

-- In a thread's state, from init(): the globals done() collects.
function M.init_counters()
  statuses = {}
  counters = { starved = 0, unparsed = 0 }
end

function M.count(status)
  statuses[status] = (statuses[status] or 0) + 1
end

function M.bump(name)
  counters[name] = (counters[name] or 0) + 1
end

local function encode(value)
  local kind = type(value)
  if kind == "number" then
    if value ~= value or value == math.huge or value == -math.huge then
      return "null"
    end
    return string.format("%.17g", value)
  elseif kind == "string" then
    return '"' .. value:gsub('[%c"\\]', function(c)
      return string.format("\\u%04x", c:byte())
    end) .. '"'
  elseif kind == "boolean" then
    return tostring(value)
  elseif kind == "table" then
    local parts = {}
    for k, v in pairs(value) do
      parts[#parts + 1] = encode(tostring(k)) .. ":" .. encode(v)
    end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  return "null"
end

-- done(summary, latency, requests), in wrk's main state.
function M.done(summary, latency, requests)
  local total_statuses, total_counters = {}, {}
  for _, thread in ipairs(M.threads) do
    for status, n in pairs(thread:get("statuses") or {}) do
      total_statuses[status] = (total_statuses[status] or 0) + n
    end
    for name, n in pairs(thread:get("counters") or {}) do
      total_counters[name] = (total_counters[name] or 0) + n
    end
  end
  local seconds = summary.duration / 1e6
  local result = {
    requests = summary.requests,
    duration_s = seconds,
    requests_per_s = summary.requests / seconds,
    latency_ms = {
      mean = latency.mean / 1000,
      max = latency.max / 1000,
      p50 = latency:percentile(50) / 1000,
      p90 = latency:percentile(90) / 1000,
      p99 = latency:percentile(99) / 1000,
    },
    errors = {
      connect = summary.errors.connect,
      read = summary.errors.read,
      write = summary.errors.write,
      timeout = summary.errors.timeout,
      status = summary.errors.status,
    },
    statuses = total_statuses,
    counters = total_counters,
  }
  io.write("BENCH_RESULT " .. encode(result) .. "\n")
end

return M
