#!/usr/bin/env bash
# A login flood against a release build, as issue 8 measures it: CONNECTIONS concurrent
# logins (wrk) for DURATION against a fresh SQLite server with the production argon2
# cost, while a second wrk sends authenticated requests (POST /auth with a bearer token)
# beside it and curl probes single logins. Prints the status mix, the latency of the
# probes by status, the authenticated requests' latency distribution, and the server's
# peak resident memory (VmHWM), largest sampled RSS and thread count. Before the flood,
# the same authenticated requests alone give the baseline their latency beside the flood
# is compared with. Ends with issue 8's targets, each PASS or MISS.
#
#   scripts/login-flood.sh [BINARY] [CONNECTIONS] [DURATION]
#   (defaults: target/release/portcullis 200 8s; extra server settings from the
#   environment, e.g. PORTCULLIS_HASH_CONCURRENCY=1)
#
# Needs wrk and curl (Debian: apt-get install wrk curl).
set -euo pipefail

BIN=${1:-target/release/portcullis}
CONNECTIONS=${2:-200}
DURATION=${3:-8s}
PORT=${PORT:-18089}
BASE=http://127.0.0.1:$PORT
WORK=$(mktemp -d)
trap 'kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; rm -rf "$WORK"' EXIT

DATABASE_URL="$WORK/flood.db" PORTCULLIS_BIND=127.0.0.1:$PORT RUST_LOG=error \
    PORTCULLIS_COOKIE_SECURE=false "$BIN" serve >"$WORK/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 100); do curl -sf "$BASE/healthz" >/dev/null && break; sleep 0.1; done

PASSWORD='flood test password 1'
BODY="{\"name\":\"Flood\",\"email\":\"flood@example.com\",\"password\":\"$PASSWORD\",\"confirm\":\"$PASSWORD\"}"
ACCESS=$(curl -sf "$BASE/auth/register" -H 'content-type: application/json' -d "$BODY" |
    sed -E 's/.*"access":\{"token":"([^"]+)".*/\1/')

cat >"$WORK/login.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email":"flood@example.com","password":"$PASSWORD"}'
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {} end
function response(status, headers, body) statuses[status] = (statuses[status] or 0) + 1 end
function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses")) do total[k] = (total[k] or 0) + v end
  end
  for k, v in pairs(total) do io.write(string.format("  status %d: %d\n", k, v)) end
  io.write(string.format("  socket errors: connect %d, read %d, write %d, timeout %d\n",
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout))
end
EOF
cat >"$WORK/auth.lua" <<EOF
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer $ACCESS"
EOF

# wrk's latency ("812.00us", "42.30ms", "1.50s") in milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000
        printf "%.2f", n
    }'
}
percentile() { awk -v p="$1%" '$1 == p {print $2}' "$2"; }

echo "== baseline: authenticated POST /auth alone (wrk, 4 connections, 3 s)"
wrk -t1 -c4 -d3s --latency -s "$WORK/auth.lua" "$BASE/auth" >"$WORK/alone.txt"
grep -E 'Requests/sec|50%|99%' "$WORK/alone.txt" | sed 's/^/  /'

sample() {
    local rss=0 threads=0
    while kill -0 "$SERVER" 2>/dev/null; do
        local r t
        r=$(awk '/^VmRSS/ {print $2}' "/proc/$SERVER/status" 2>/dev/null || echo 0)
        t=$(awk '/^Threads/ {print $2}' "/proc/$SERVER/status" 2>/dev/null || echo 0)
        ((r > rss)) && rss=$r
        ((t > threads)) && threads=$t
        echo "$rss $threads" >"$WORK/peak"
        sleep 0.2
    done
}
sample &
SAMPLER=$!

echo "== $BIN: $CONNECTIONS concurrent logins for $DURATION"
wrk -t4 -c"$CONNECTIONS" -d"$DURATION" --timeout 10s --latency -s "$WORK/login.lua" "$BASE/auth/login" \
    >"$WORK/flood.txt" &
FLOOD=$!
sleep 1
wrk -t1 -c4 -d"$(( ${DURATION%s} - 2 ))s" --latency -s "$WORK/auth.lua" "$BASE/auth" >"$WORK/auth.txt" &
AUTH=$!
: >"$WORK/probes"
for _ in $(seq 20); do
    curl -s --max-time 15 -o /dev/null -w '%{http_code} %{time_total}\n' "$BASE/auth/login" \
        -H 'content-type: application/json' \
        -d "{\"email\":\"flood@example.com\",\"password\":\"$PASSWORD\"}" >>"$WORK/probes" || true
    sleep 0.2
done
wait "$AUTH" "$FLOOD"
HWM=$(awk '/^VmHWM/ {print $2}' "/proc/$SERVER/status")
THREADS_END=$(awk '/^Threads/ {print $2}' "/proc/$SERVER/status")
kill "$SAMPLER" 2>/dev/null || true

echo "-- flood (wrk)"
grep -E 'Requests/sec|Latency  |50%|99%' "$WORK/flood.txt" | sed 's/^/  /'
sed -n '/status/,$p' "$WORK/flood.txt"
echo "-- single logins probed during the flood (status: count, median s, max s)"
sort -k1,1 -k2,2n "$WORK/probes" | awk '
  { n[$1]++; v[$1, n[$1]] = $2 }
  END { for (s in n) printf "  %s: %d, %s, %s\n", s, n[s], v[s, int((n[s] + 1) / 2)], v[s, n[s]] }'
echo "-- authenticated POST /auth beside the flood (wrk, 4 connections)"
grep -E 'Requests/sec|50%|75%|90%|99%|Non-2xx|timeout' "$WORK/auth.txt" | sed 's/^/  /'
read -r PEAK_RSS PEAK_THREADS <"$WORK/peak"
echo "-- server: VmHWM $((HWM / 1024)) MiB, largest sampled RSS $((PEAK_RSS / 1024)) MiB, threads up to $PEAK_THREADS (at the end: $THREADS_END)"

verdict() { if awk "BEGIN { exit !($1) }"; then echo PASS; else echo MISS; fi; }
ALONE_P99=$(to_ms "$(percentile 99 "$WORK/alone.txt")")
BESIDE_P99=$(to_ms "$(percentile 99 "$WORK/auth.txt")")
BUSY_MEDIAN=$(awk '$1 == 503 {print $2}' "$WORK/probes" | sort -n |
    awk '{v[NR] = $1} END {if (NR) printf "%.1f", v[int((NR + 1) / 2)] * 1000; else print "none"}')
OTHER=$(sed -n '/status/,$p' "$WORK/flood.txt" | awk '
    /status/ { if ($2 !~ /^(200|401|429|503):$/) bad += $3 }
    /timeout/ { bad += $NF }
    END { print bad + 0 }')
echo "-- issue 8's targets"
echo "  resident memory < 256 MiB: $((HWM / 1024)) MiB $(verdict "$HWM < 262144")"
echo "  only 200/401/429/503, no timeout: $OTHER other answers $(verdict "$OTHER == 0")"
echo "  503 for the surplus within 50 ms (median of the probes): $BUSY_MEDIAN ms $(verdict "\"$BUSY_MEDIAN\" != \"none\" && $BUSY_MEDIAN < 50")"
echo "  authenticated p99 beside the flood < 25 ms: $BESIDE_P99 ms, $(awk -v a="$BESIDE_P99" -v b="$ALONE_P99" 'BEGIN {printf "%.1f", a / b}')x its p99 alone ($ALONE_P99 ms) $(verdict "$BESIDE_P99 < 25")"
