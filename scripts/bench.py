#!/usr/bin/env python3
"""Portcullis over real HTTP, against baselines measured in the same run (`make bench`).

Starts every server itself on random free ports of 127.0.0.1 and drives it with wrk
(Lua scripts in scripts/bench/), then prints one table and writes it as JSON to
target/bench/bench-<UTC timestamp>.json and target/bench/latest.json:

- baselines (portcullis-bench): raw argon2id verifications per second on every core,
  a bare actix-web endpoint that only verifies an HS256 JWT, and a bare endpoint that
  runs one single-statement write transaction on SQLite and on PostgreSQL;
- Portcullis (target/release/portcullis serve) on a fresh SQLite file and on a fresh
  PostgreSQL database (made through TEST_DATABASE_URL, dropped at the end): logins,
  authenticated requests, rotating refreshes and registrations, each with its ratio to
  its baseline;
- a mixed run on SQLite: logins offered at twice the hashing rate beside a few
  connections of authenticated requests, with probes timing single logins;
- resident memory idle and at the mixed run's peak, and the time from process start
  to /readyz answering 200;
- `portcullis import users` of 100,000 accounts (bcrypt, PBKDF2 and password-less) into
  a fresh SQLite file and a fresh PostgreSQL database, run again (everything skipped),
  and its peak memory against an import of 10,000 (a stream stays flat).

Exits non-zero, saying why, when any request got a status it should not have, or a
socket error or timeout; a target missed is reported (MISS) but does not fail the run.
See docs/performance.md ("The HTTP benchmark") for what each row measures.

Python 3.11, standard library only.
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import datetime
import http.client
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
LUA = REPO / "scripts" / "bench"
# The rows of the sqlite and postgres sections, as --kinds names them.
KINDS = ("login", "authenticated", "refresh", "register")
SECTIONS = ("sqlite", "postgres", "mixed", "startup", "import")
# The table's sections that measure Portcullis on one database.
PORTCULLIS_SECTIONS = ("login", "authenticated", "refresh", "register")
# The tests' admin URL (scripts/test-db.sh makes the role); loopback needs neither TLS
# nor GSSAPI encryption.
DEFAULT_ADMIN_URL = (
    "postgres://portcullis_test:portcullis_test@127.0.0.1:5432/postgres"
    "?sslmode=disable&gssencmode=disable"
)
# Inherited settings passed on to the bench servers (capacity and cost knobs); every
# other PORTCULLIS_* variable of the caller's environment is dropped, so a shell with
# e.g. PORTCULLIS_DIALECTS or a prefix set cannot change the paths measured.
PASSTHROUGH_PREFIXES = ("PORTCULLIS_ARGON2_", "PORTCULLIS_HASH_")
PASSTHROUGH = {
    "PORTCULLIS_WORKERS",
    "PORTCULLIS_DB_POOL_SIZE",
    "PORTCULLIS_DB_TIMEOUT_MS",
    "PORTCULLIS_DB_BLOCKING_THREADS",
    "PORTCULLIS_MAX_CONNECTIONS_PER_WORKER",
}
SECRET_VARIABLES = {"PORTCULLIS_SECRETS_KEY", "PORTCULLIS_BENCH_JWT_SECRET", "DATABASE_URL"}
MIB = 1024
# Warnings every bench server logs by design: no mailer is configured (reset links go
# to the log, as on any loopback development server).
EXPECTED_WARNINGS = ("PORTCULLIS_MAILER",)


class BenchError(Exception):
    """A run that cannot go on (a server that does not start, a setup request refused)."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def random_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM (KiB) and Threads of a live process, from /proc/PID/status."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM", "Threads"):
                    out[key] = int(value.split()[0])
    except (OSError, ValueError):
        pass
    return out


def http_call(
    port: int,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> tuple[int, list[tuple[str, str]], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = None if body is None else json.dumps(body).encode()
        all_headers = {"Content-Type": "application/json"} if data is not None else {}
        all_headers.update(headers or {})
        conn.request(method, path, body=data, headers=all_headers)
        response = conn.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        conn.close()


def expect(
    port: int, method: str, path: str, body: Any, status: int, attempts: int = 40
) -> tuple[list[tuple[str, str]], bytes]:
    """A setup request that must get `status`; a busy server (503) is asked again."""
    for attempt in range(attempts):
        got, headers, data = http_call(port, method, path, body)
        if got == status:
            return headers, data
        if got != 503:
            raise BenchError(
                f"setup: {method} {path} answered {got} (expected {status}): {data[:300]!r}"
            )
        time.sleep(0.05 * (attempt + 1))
    raise BenchError(f"setup: {method} {path} kept answering 503")


def parallel(fn: Callable[[Any], Any], items: list[Any], workers: int = 8) -> list[Any]:
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items))


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-pct * len(ordered) // 100))))
    return ordered[rank - 1]


# --------------------------------------------------------------------------- servers


class Server:
    """A server process of this run: its log in the run's directory, stopped at exit."""

    def __init__(
        self,
        harness: "Harness",
        name: str,
        argv: list[str],
        env: dict[str, str],
        port: int,
        ready_path: str,
    ) -> None:
        self.name = name
        self.port = port
        self.ready_path = ready_path
        self.log_path = harness.tmp / f"{name}.log"
        self._log = open(self.log_path, "wb")
        harness.servers.append(self)
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            argv, env=env, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join("    " + line for line in text[-lines:])

    def wait_ready(self, timeout: float = 60.0) -> float:
        """Seconds from the process's start to `ready_path` answering 200."""
        deadline = self.started + timeout
        while True:
            code = self.proc.poll()
            if code is not None:
                raise BenchError(
                    f"{self.name} exited with status {code} before answering "
                    f"{self.ready_path}; its log:\n{self.log_tail()}"
                )
            try:
                status, _, _ = http_call(self.port, "GET", self.ready_path, timeout=2.0)
                if status == 200:
                    return time.monotonic() - self.started
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise BenchError(
                    f"{self.name} did not answer {self.ready_path} within {timeout:.0f} s; "
                    f"its log:\n{self.log_tail()}"
                )
            time.sleep(0.002)

    def log_problems(self) -> list[str]:
        """The WARN and ERROR lines of its log, but for the expected ones."""
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return []
        return [
            line
            for line in text
            if (" WARN " in line or " ERROR " in line) and not any(e in line for e in EXPECTED_WARNINGS)
        ]

    def check_alive(self) -> None:
        code = self.proc.poll()
        if code is not None:
            raise BenchError(f"{self.name} died (status {code}); its log:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


# ------------------------------------------------------------------------------- wrk


@dataclass
class WrkResult:
    requests: int
    rps: float
    p50: float
    p99: float
    latency: dict[str, float]
    errors: dict[str, int]
    statuses: dict[int, int]
    counters: dict[str, int]
    raw: dict[str, Any]


@dataclass
class Row:
    section: str
    name: str
    db: str
    connections: int | None
    rps: float | None = None
    p50: float | None = None
    p99: float | None = None
    baseline: str | None = None
    ratio: float | None = None
    figure: str = ""
    target: str = ""
    verdict: str = ""
    note: str = ""
    runs: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "name": self.name,
            "db": self.db,
            "connections": self.connections,
            "requests_per_s": self.rps,
            "p50_ms": self.p50,
            "p99_ms": self.p99,
            "baseline": self.baseline,
            "ratio": self.ratio,
            "figure": self.figure,
            "target": self.target,
            "verdict": self.verdict,
            "note": self.note,
            "runs": self.runs,
        }


def verdict(ok: bool | None) -> str:
    if ok is None:
        return "n/a"
    return "PASS" if ok else "MISS"


# --------------------------------------------------------------------------- harness


class Harness:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="portcullis-bench-"))
        self.servers: list[Server] = []
        self.databases: list[str] = []
        self.failures: list[str] = []
        self.rows: list[Row] = []
        self.report: dict[str, Any] = {}
        self.nonce = secrets.token_hex(4)
        self.password = "bench password " + secrets.token_hex(6)
        self.baseline: dict[str, float] = {}
        self.server_env_shown: dict[str, dict[str, str]] = {}
        self.server_log_problems: dict[str, Any] = {}
        self.secrets_keys: dict[str, str] = {}

    # ---- lifecycle

    def cleanup(self) -> None:
        for server in reversed(self.servers):
            try:
                server.stop()
            except Exception as error:  # noqa: BLE001 - cleanup must go on
                log(f"bench: could not stop {server.name}: {error}")
        for name in self.databases:
            done = subprocess.run(
                [self.args.bench_bin, "drop-db", "--name", name],
                env=self.base_env(),
                capture_output=True,
                text=True,
                timeout=60,
            )
            if done.returncode != 0:
                log(f"bench: could not drop database {name}: {done.stderr.strip()}")
        if self.args.keep_temp:
            log(f"bench: kept {self.tmp} (server logs, Lua inputs)")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def fail(self, message: str) -> None:
        log(f"  FAILED: {message}")
        self.failures.append(message)

    # ---- environments

    def base_env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("PORTCULLIS_")
            or k in PASSTHROUGH
            or k.startswith(PASSTHROUGH_PREFIXES)
        }
        env.pop("DATABASE_URL", None)
        env.setdefault("TEST_DATABASE_URL", DEFAULT_ADMIN_URL)
        return env

    def portcullis_env(self, database_url: str, port: int, flood: bool = False) -> dict[str, str]:
        settings = {
            "DATABASE_URL": database_url,
            "PORTCULLIS_BIND": f"127.0.0.1:{port}",
            "RUST_LOG": "warn",
            # Like for like with the bare JWT baseline: HS256 keys, generated into the
            # database and sealed under a secrets key made for this run.
            "PORTCULLIS_JWT_ALG": "HS256",
            # One per database, made for this run: servers sharing a database share it.
            "PORTCULLIS_SECRETS_KEY": self.secrets_keys.setdefault(database_url, random_key()),
            # Every refresh token is spent exactly once: a harness bug that presented
            # one twice is refused (401) instead of passing as a parallel renewal.
            "PORTCULLIS_REFRESH_GRACE_SECS": "0",
            # One client address (127.0.0.1) logs in and registers thousands of times.
            "PORTCULLIS_THROTTLE_FREE_FAILURES": "1000",
            "PORTCULLIS_THROTTLE_IP_FAILURES": "1000000",
            "PORTCULLIS_THROTTLE_IP_REGISTRATIONS": "100000",
            "PORTCULLIS_SHUTDOWN_TIMEOUT_SECS": "2",
            "PORTCULLIS_COOKIE_SECURE": "false",
            "PORTCULLIS_PURGE_INTERVAL_SECS": "0",
        }
        if not flood:
            # Throughput runs hash every login and registration they send: room for
            # every connection (default 4 × cores, which 16 connections overflow into
            # 503s). The mixed run keeps the default, as a flood meets it.
            settings["PORTCULLIS_HASH_QUEUE"] = os.environ.get(
                "PORTCULLIS_HASH_QUEUE", str(self.args.hash_queue)
            )
        env = self.base_env()
        env.update(settings)
        shown = {k: ("<random per run>" if k in SECRET_VARIABLES else v) for k, v in settings.items()}
        shown["DATABASE_URL"] = "<fresh database>"
        shown["PORTCULLIS_BIND"] = "127.0.0.1:<free port>"
        key = "flood" if flood else "throughput"
        self.server_env_shown[key] = shown
        return env

    # ---- processes

    def stop_portcullis(self, server: Server) -> None:
        """Stops a Portcullis server and reports what its log warned about."""
        server.stop()
        problems = server.log_problems()
        if problems:
            self.server_log_problems[server.name] = {"count": len(problems), "first": problems[:5]}
            log(f"  {server.name} logged {len(problems)} warnings or errors, e.g.:")
            for line in problems[:3]:
                log(f"    {line[:300]}")

    def start_portcullis(
        self, name: str, database_url: str, flood: bool = False, metrics: bool = False
    ) -> Server:
        port = free_port()
        env = self.portcullis_env(database_url, port, flood)
        if metrics:
            env["PORTCULLIS_METRICS_BIND"] = f"127.0.0.1:{free_port()}"
        return Server(self, name, [self.args.portcullis, "serve"], env, port, "/readyz")

    def create_database(self) -> str:
        done = subprocess.run(
            [self.args.bench_bin, "create-db", "--prefix", "pc_bench"],
            env=self.base_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode != 0:
            raise BenchError(
                "cannot create a PostgreSQL database through TEST_DATABASE_URL "
                f"(run scripts/test-db.sh): {done.stderr.strip()}"
            )
        created = json.loads(done.stdout)
        self.databases.append(created["name"])
        return created["url"]

    def wrk(
        self,
        label: str,
        port: int,
        path: str,
        script: str,
        connections: int,
        env: dict[str, str],
        allowed: set[int],
        duration: int | None = None,
        threads: int | None = None,
        check_status_errors: bool = True,
    ) -> WrkResult | None:
        """One wrk run; None (and a failure recorded) when wrk gave no result."""
        duration = duration or self.args.duration
        threads = min(threads or self.args.wrk_threads, connections)
        cmd = [
            self.args.wrk,
            "-t", str(threads),
            "-c", str(connections),
            "-d", f"{duration}s",
            "--timeout", f"{self.args.timeout}s",
            "-s", str(LUA / script),
            f"http://127.0.0.1:{port}{path}",
        ]
        run_env = dict(os.environ)
        run_env.update(env)
        run_env["BENCH_NTHREADS"] = str(threads)
        done = subprocess.run(
            cmd, env=run_env, capture_output=True, text=True, timeout=duration + 120
        )
        line = next(
            (l for l in done.stdout.splitlines() if l.startswith("BENCH_RESULT ")), None
        )
        if done.returncode != 0 or line is None:
            self.fail(
                f"{label}: wrk exited with {done.returncode} and no result: "
                f"{(done.stderr or done.stdout).strip()[-500:]}"
            )
            return None
        raw = json.loads(line.removeprefix("BENCH_RESULT "))
        statuses = {int(k): int(v) for k, v in raw.get("statuses", {}).items()}
        counters = {k: int(v) for k, v in raw.get("counters", {}).items()}
        errors = {k: int(v) for k, v in raw["errors"].items()}
        result = WrkResult(
            requests=int(raw["requests"]),
            rps=float(raw["requests_per_s"]),
            p50=float(raw["latency_ms"]["p50"]),
            p99=float(raw["latency_ms"]["p99"]),
            latency={k: float(v) for k, v in raw["latency_ms"].items()},
            errors=errors,
            statuses=statuses,
            counters=counters,
            raw=raw,
        )
        problems = []
        socket_errors = {k: v for k, v in errors.items() if k != "status" and v}
        if socket_errors:
            problems.append(f"socket errors/timeouts {socket_errors}")
        wrong = {s: n for s, n in statuses.items() if s not in allowed}
        if wrong:
            problems.append(
                f"unexpected statuses {wrong} (allowed: {sorted(allowed)}; all: {statuses})"
            )
        if check_status_errors and errors.get("status"):
            problems.append(f"{errors['status']} answers with a status over 399")
        for name in ("starved", "unparsed"):
            if counters.get(name):
                problems.append(f"{counters[name]} requests {name} (harness bookkeeping)")
        if result.requests == 0:
            problems.append("no request completed")
        if problems:
            self.fail(f"{label}: " + "; ".join(problems))
        log(
            f"  {label}: {result.rps:,.1f} req/s, p50 {result.p50:.2f} ms, "
            f"p99 {result.p99:.2f} ms, statuses {dict(sorted(statuses.items()))}"
        )
        return result

    def measured(
        self,
        row: Row,
        once: Callable[[], WrkResult | None],
    ) -> Row:
        """Runs `once` --repeat times; the row gets the medians. A row whose section
        --kinds leaves out is not run (nor shown)."""
        if row.section in KINDS and row.section not in self.args.kinds.split(","):
            return row
        results = []
        for _ in range(self.args.repeat):
            result = once()
            if result is not None:
                results.append(result)
                row.runs.append(result.raw)
        if results:
            row.rps = median([r.rps for r in results])
            row.p50 = median([r.p50 for r in results])
            row.p99 = median([r.p99 for r in results])
        self.rows.append(row)
        return row

    def write_lines(self, name: str, lines: list[str]) -> str:
        path = self.tmp / name
        path.write_text("".join(line + "\n" for line in lines))
        return str(path)

    # ------------------------------------------------------------------ baselines

    def argon2_baseline(self) -> None:
        log(f"== baseline: raw argon2id verifications ({self.args.duration} s per run)")
        runs = []
        for _ in range(self.args.repeat):
            done = subprocess.run(
                [self.args.bench_bin, "argon2", "--seconds", str(self.args.duration)],
                env=self.base_env(),
                capture_output=True,
                text=True,
                timeout=self.args.duration + 120,
            )
            if done.returncode != 0:
                raise BenchError(f"portcullis-bench argon2 failed: {done.stderr.strip()}")
            runs.append(json.loads(done.stdout))
        rate = median([r["per_second"] for r in runs])
        self.baseline["argon2"] = rate
        params = runs[0]["params"]
        log(f"  {rate:.1f} verifications/s on {runs[0]['threads']} threads ({params})")
        self.rows.append(
            Row(
                "baseline",
                f"argon2id verify, {runs[0]['threads']} threads "
                f"(m={params['memory_kib']} KiB, t={params['iterations']}, p={params['parallelism']})",
                "-",
                None,
                rps=rate,
                runs=runs,
            )
        )

    def bare_jwt_baseline(self) -> None:
        log("== baseline: bare JWT endpoint (POST /auth)")
        secret = random_key()
        env = self.base_env()
        env["PORTCULLIS_BENCH_JWT_SECRET"] = secret
        port = free_port()
        argv = [self.args.bench_bin, "bare-jwt", "--bind", f"127.0.0.1:{port}"]
        if os.environ.get("PORTCULLIS_WORKERS"):
            argv += ["--workers", os.environ["PORTCULLIS_WORKERS"]]
        server = Server(self, "bare-jwt", argv, env, port, "/healthz")
        server.wait_ready()
        minted = subprocess.run(
            [self.args.bench_bin, "mint-jwt", "--count", str(self.args.auth_connections)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if minted.returncode != 0:
            raise BenchError(f"portcullis-bench mint-jwt failed: {minted.stderr.strip()}")
        values = self.write_lines(
            "bare-jwt-bearers.txt", [f"Bearer {t}" for t in minted.stdout.split()]
        )
        row = self.measured(
            Row("baseline", "bare JWT verify, POST /auth", "-", self.args.auth_connections),
            lambda: self.wrk(
                "bare JWT",
                port,
                "/auth",
                "cycle.lua",
                self.args.auth_connections,
                {"BENCH_METHOD": "POST", "BENCH_HEADER": "Authorization", "BENCH_VALUES": values},
                {200},
            ),
        )
        server.stop()
        if row.rps:
            self.baseline["jwt"] = row.rps

    def bare_write_baseline(self, db: str, url: str) -> None:
        log(f"== baseline: bare single-statement write on {db} (POST /write)")
        env = self.base_env()
        env["DATABASE_URL"] = url
        port = free_port()
        argv = [self.args.bench_bin, "bare-write", "--bind", f"127.0.0.1:{port}"]
        for variable, flag in (
            ("PORTCULLIS_WORKERS", "--workers"),
            ("PORTCULLIS_DB_POOL_SIZE", "--pool-size"),
            ("PORTCULLIS_DB_TIMEOUT_MS", "--timeout-ms"),
        ):
            if os.environ.get(variable):
                argv += [flag, os.environ[variable]]
        server = Server(self, f"bare-write-{db}", argv, env, port, "/healthz")
        server.wait_ready()
        row = self.measured(
            Row("baseline", "bare write (1-row INSERT), POST /write", db, self.args.refresh_connections),
            lambda: self.wrk(
                f"bare write {db}",
                port,
                "/write",
                "cycle.lua",
                self.args.refresh_connections,
                {"BENCH_METHOD": "POST"},
                {200},
            ),
        )
        server.stop()
        if row.rps:
            self.baseline[f"write-{db}"] = row.rps

    # ---------------------------------------------------------------- Portcullis

    def register_accounts(self, port: int, prefix: str, count: int) -> list[tuple[str, str, str]]:
        """`count` new accounts: (email, access token, refresh token)."""
        emails = [f"{prefix}-{self.nonce}-{i}@bench.example" for i in range(count)]

        def register(email: str) -> tuple[str, str, str]:
            _, data = expect(
                port,
                "POST",
                "/auth/register",
                {"name": "Bench", "email": email, "password": self.password, "confirm": self.password},
                201,
            )
            tokens = json.loads(data)["tokens"]
            return email, tokens["access"]["token"], tokens["refresh"]["token"]

        return parallel(register, emails)

    def authapi_sessions(self, port: int, emails: list[str]) -> list[str]:
        def login(email: str) -> str:
            _, data = expect(
                port, "POST", "/auth/login", {"email": email, "password": self.password}, 200
            )
            return json.loads(data)["tokens"]["refresh"]["token"]

        return parallel(login, emails)

    def cbs_sessions(self, port: int, emails: list[str]) -> list[str]:
        def login(email: str) -> str:
            _, data = expect(
                port, "POST", "/api/v1/auth/login", {"user": email, "password": self.password}, 200
            )
            result = json.loads(data)["result"]
            return f"{result['refresh_token']}\t{result['access_token']}"

        return parallel(login, emails)

    def ioweyou_cookies(self, port: int, emails: list[str]) -> list[str]:
        def login(email: str) -> str:
            headers, _ = expect(
                port, "POST", "/api/login", {"username": email, "password": self.password}, 200
            )
            for name, value in headers:
                if name.lower() == "set-cookie" and value.startswith("access_tokens="):
                    return value.split(";", 1)[0]
            raise BenchError("setup: the ioweyou login set no access_tokens cookie")

        return parallel(login, emails)

    def portcullis_db(self, db: str, url: str) -> None:
        a = self.args
        threads = a.wrk_threads
        log(f"== Portcullis on {db}")
        server = self.start_portcullis(f"portcullis-{db}", url)
        server.wait_ready()
        # Enough accounts that each wrk thread has more free ones than connections.
        count = max(4 * a.login_connections, a.auth_connections, a.refresh_connections + threads)
        log(f"  setup: registering {count} accounts")
        accounts = self.register_accounts(server.port, db, count)
        emails = [email for email, _, _ in accounts]
        accounts_file = self.write_lines(f"{db}-accounts.txt", emails)
        bearers = self.write_lines(
            f"{db}-bearers.txt", [f"Bearer {access}" for _, access, _ in accounts[: a.auth_connections]]
        )
        log(f"  setup: {a.auth_connections} ioweyou logins for their cookies")
        cookies = self.write_lines(
            f"{db}-cookies.txt", self.ioweyou_cookies(server.port, emails[: a.auth_connections])
        )
        argon2 = self.baseline.get("argon2")
        jwt = self.baseline.get("jwt")
        write = self.baseline.get(f"write-{db}")

        def ratio_row(row: Row, base: float | None, base_name: str, target: float) -> None:
            row.baseline = base_name
            if row.rps is not None and base:
                row.ratio = row.rps / base
                row.figure = f"{row.ratio:.2f}× {base_name}"
                row.verdict = verdict(row.ratio >= target)
            else:
                row.figure = "no baseline"
                row.verdict = "n/a"
            row.target = f"≥ {target:g}×"

        # Logins.
        for dialect, name in (
            ("authapi", "authapi POST /auth/login {email}"),
            ("pocketbase", "pocketbase POST /auth/login {username}"),
        ):
            log(f"-- {name}")
            row = self.measured(
                Row("login", name, db, a.login_connections),
                lambda dialect=dialect: self.wrk(
                    f"{db} login {dialect}",
                    server.port,
                    "/auth/login",
                    "login.lua",
                    a.login_connections,
                    {
                        "BENCH_DIALECT": dialect,
                        "BENCH_ACCOUNTS": accounts_file,
                        "BENCH_PASSWORD": self.password,
                        "BENCH_MODE": "exclusive",
                    },
                    {200},
                ),
            )
            ratio_row(row, argon2, "argon2", 0.95)
            server.check_alive()

        # Authenticated requests.
        def authenticated(name: str, port: int, method: str, path: str, header: str, values: str) -> Row:
            return self.measured(
                Row("authenticated", name, db, a.auth_connections),
                lambda: self.wrk(
                    f"{db} {name}",
                    port,
                    path,
                    "cycle.lua",
                    a.auth_connections,
                    {"BENCH_METHOD": method, "BENCH_HEADER": header, "BENCH_VALUES": values},
                    {200},
                ),
            )

        log("-- authenticated authapi, POST /auth (bearer)")
        row = authenticated(
            "authapi POST /auth (bearer)", server.port, "POST", "/auth", "Authorization", bearers
        )
        ratio_row(row, jwt, "bare JWT", 0.5)
        if db == "sqlite" and "authenticated" in a.kinds.split(","):
            # The same requests to a second server on the same file that keeps metrics:
            # what counting every request costs.
            log("-- authenticated authapi, POST /auth, metrics kept (PORTCULLIS_METRICS_BIND)")
            counting = self.start_portcullis(f"portcullis-{db}-metrics", url, metrics=True)
            counting.wait_ready()
            counted = authenticated(
                "authapi POST /auth, metrics kept",
                counting.port,
                "POST",
                "/auth",
                "Authorization",
                bearers,
            )
            ratio_row(counted, row.rps, "metrics off", 0.95)
            self.stop_portcullis(counting)
        log("-- authenticated ioweyou, GET /api/user (cookie)")
        row = authenticated(
            "ioweyou GET /api/user (cookie)", server.port, "GET", "/api/user", "Cookie", cookies
        )
        ratio_row(row, jwt, "bare JWT", 0.5)
        server.check_alive()

        # Rotating refreshes; cbs's also sends the session's access token, which it
        # checks, but a rotation is a write, so its floor is the bare write too.
        for dialect, path, sessions_of, name in (
            (
                "authapi",
                "/auth/refresh-tokens",
                self.authapi_sessions,
                "authapi POST /auth/refresh-tokens (rotating)",
            ),
            (
                "cbs",
                "/api/v1/auth/refresh",
                self.cbs_sessions,
                "cbs POST /api/v1/auth/refresh (access token + rotation)",
            ),
        ):
            def refresh_once(dialect=dialect, path=path, sessions_of=sessions_of) -> WrkResult | None:
                sessions = self.write_lines(
                    f"{db}-{dialect}-sessions.txt",
                    sessions_of(server.port, emails[: a.refresh_connections + threads]),
                )
                return self.wrk(
                    f"{db} {dialect} refresh",
                    server.port,
                    path,
                    "refresh.lua",
                    a.refresh_connections,
                    {"BENCH_DIALECT": dialect, "BENCH_SESSIONS": sessions},
                    {200},
                )

            log(f"-- rotating refresh {name}")
            row = self.measured(Row("refresh", name, db, a.refresh_connections), refresh_once)
            ratio_row(row, write, f"bare write {db}", 0.5)
            server.check_alive()

        # Registrations.
        log("-- registrations authapi, POST /auth/register")
        counter = iter(range(1_000_000))
        row = self.measured(
            Row("register", "authapi POST /auth/register", db, a.register_connections),
            lambda: self.wrk(
                f"{db} register",
                server.port,
                "/auth/register",
                "register.lua",
                a.register_connections,
                {
                    "BENCH_NONCE": f"{self.nonce}{db[0]}{next(counter)}",
                    "BENCH_PASSWORD": self.password,
                },
                {201},
            ),
        )
        ratio_row(row, argon2, "argon2", 0.9)
        server.check_alive()
        self.stop_portcullis(server)

    # ------------------------------------------------------------------- mixed

    def mixed(self) -> None:
        a = self.args
        log("== mixed run on sqlite: logins at twice the hashing rate beside authenticated requests")
        argon2 = self.baseline.get("argon2")
        if not argon2:
            raise BenchError("the mixed run needs the argon2 baseline")
        url = str(self.tmp / "mixed" / "portcullis.db")
        (self.tmp / "mixed").mkdir()
        server = self.start_portcullis("portcullis-mixed", url, flood=True)
        server.wait_ready()
        time.sleep(1.0)
        idle = proc_status(server.pid)
        count = 2 * a.mixed_login_connections + 1
        log(f"  setup: registering {count} accounts")
        accounts = self.register_accounts(server.port, "mixed", count)
        probe_email = accounts[-1][0]
        accounts_file = self.write_lines("mixed-accounts.txt", [e for e, _, _ in accounts[:-1]])
        bearers = self.write_lines(
            "mixed-bearers.txt",
            [f"Bearer {access}" for _, access, _ in accounts[: a.mixed_auth_connections]],
        )
        offered = 2 * argon2
        delay_ms = a.mixed_login_connections * 1000.0 / offered
        log(
            f"  offering ~{offered:.0f} logins/s: {a.mixed_login_connections} connections, "
            f"a mean pause of {delay_ms:.0f} ms before each request"
        )

        peak = {"VmRSS": 0, "Threads": 0}
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                status = proc_status(server.pid)
                for key in peak:
                    peak[key] = max(peak[key], status.get(key, 0))
                stop.wait(0.1)

        probes: list[tuple[int, float]] = []
        probe_errors: list[str] = []

        def probe() -> None:
            stop.wait(0.5)
            end = time.monotonic() + a.duration - 1.0
            body = {"email": probe_email, "password": self.password}
            while not stop.is_set() and time.monotonic() < end:
                started = time.perf_counter()
                try:
                    status, _, _ = http_call(server.port, "POST", "/auth/login", body, timeout=15)
                    probes.append((status, (time.perf_counter() - started) * 1000))
                except OSError as error:
                    probe_errors.append(str(error))
                stop.wait(0.1)

        results: dict[str, WrkResult | None] = {}

        def run(key: str, call: Callable[[], WrkResult | None]) -> None:
            results[key] = call()

        workers = [
            threading.Thread(target=sample, daemon=True),
            threading.Thread(target=probe, daemon=True),
            threading.Thread(
                target=run,
                args=(
                    "logins",
                    lambda: self.wrk(
                        "mixed logins",
                        server.port,
                        "/auth/login",
                        "login.lua",
                        a.mixed_login_connections,
                        {
                            "BENCH_DIALECT": "authapi",
                            "BENCH_ACCOUNTS": accounts_file,
                            "BENCH_PASSWORD": self.password,
                            "BENCH_MODE": "rotate",
                            "BENCH_DELAY_MS": f"{delay_ms:.3f}",
                        },
                        {200, 429, 503},
                        check_status_errors=False,
                    ),
                ),
                daemon=True,
            ),
            threading.Thread(
                target=run,
                args=(
                    "auth",
                    lambda: self.wrk(
                        "mixed authenticated",
                        server.port,
                        "/auth",
                        "cycle.lua",
                        a.mixed_auth_connections,
                        {
                            "BENCH_METHOD": "POST",
                            "BENCH_HEADER": "Authorization",
                            "BENCH_VALUES": bearers,
                        },
                        {200},
                        threads=1,
                    ),
                ),
                daemon=True,
            ),
        ]
        for worker in workers:
            worker.start()
        for worker in workers[2:]:
            worker.join()
        stop.set()
        for worker in workers[:2]:
            worker.join()
        server.check_alive()
        final = proc_status(server.pid)
        self.stop_portcullis(server)

        if probe_errors:
            self.fail(f"mixed probes: {len(probe_errors)} failed: {probe_errors[:3]}")
        wrong_probes = sorted({s for s, _ in probes if s not in (200, 429, 503)})
        if wrong_probes:
            self.fail(f"mixed probes: unexpected statuses {wrong_probes}")

        auth = results.get("auth")
        logins = results.get("logins")
        row = Row("mixed", "authapi POST /auth beside the logins", "sqlite", a.mixed_auth_connections)
        if auth is not None:
            row.rps, row.p50, row.p99 = auth.rps, auth.p50, auth.p99
            row.runs.append(auth.raw)
            row.figure = f"p99 {auth.p99:.1f} ms"
            row.verdict = verdict(auth.p99 < 25.0)
        row.target = "p99 < 25 ms"
        self.rows.append(row)

        row = Row(
            "mixed",
            f"logins paced for 2× argon2 ({offered:.0f}/s)",
            "sqlite",
            a.mixed_login_connections,
        )
        if logins is not None:
            row.rps, row.p50, row.p99 = logins.rps, logins.p50, logins.p99
            row.runs.append(logins.raw)
            row.figure = ", ".join(
                f"{s}×{n}" for s, n in sorted(logins.statuses.items())
            )
            served_rate = logins.statuses.get(200, 0) / float(logins.raw["duration_s"])
            row.note = (
                f"sent {logins.rps:.0f}/s = {logins.rps / argon2:.2f}× the argon2 rate; "
                f"served (200) {served_rate:.0f}/s; p50/p99 over every answer"
            )
        self.rows.append(row)

        refused = [ms for s, ms in probes if s in (429, 503)]
        served = [ms for s, ms in probes if s == 200]
        row = Row("mixed", "surplus: refused login probes", "sqlite", 1)
        counts: dict[int, int] = {}
        for status, _ in probes:
            counts[status] = counts.get(status, 0) + 1
        if refused:
            row.p50 = median(refused)
            row.p99 = percentile(refused, 99)
            row.figure = f"median {row.p50:.1f} ms of {len(refused)}"
            row.verdict = verdict(row.p50 < 50.0)
        else:
            row.figure = "no probe was refused"
            row.verdict = "n/a"
        row.target = "median < 50 ms"
        row.note = (
            f"{len(probes)} probes, statuses {dict(sorted(counts.items()))}; "
            f"served ones: median {median(served):.0f} ms"
            if served
            else f"{len(probes)} probes, statuses {dict(sorted(counts.items()))}"
        )
        self.rows.append(row)

        hwm = final.get("VmHWM", 0)
        self.report["mixed"] = {
            "offered_logins_per_s": offered,
            "login_connections": a.mixed_login_connections,
            "login_delay_ms_mean": delay_ms,
            "auth_connections": a.mixed_auth_connections,
            "logins": logins.raw if logins else None,
            "authenticated": auth.raw if auth else None,
            "probes": {
                "count": len(probes),
                "statuses": {str(k): v for k, v in sorted(counts.items())},
                "refused_p50_ms": median(refused) if refused else None,
                "refused_p99_ms": percentile(refused, 99) if refused else None,
                "served_p50_ms": median(served) if served else None,
            },
            "server": {
                "idle_vmrss_kib": idle.get("VmRSS"),
                "vmhwm_kib": hwm,
                "max_sampled_vmrss_kib": peak["VmRSS"],
                "max_threads": peak["Threads"],
            },
        }
        self.report.setdefault("memory", {})["peak_vmhwm_kib"] = hwm
        self.report["memory"].setdefault("mixed_server_idle_vmrss_kib", idle.get("VmRSS"))

    # ----------------------------------------------------------------- start-up

    def startup(self) -> None:
        log("== start-up: process start to /readyz 200 on a fresh SQLite file (3 starts)")
        times, idle = [], []
        for i in range(3):
            directory = self.tmp / f"startup-{i}"
            directory.mkdir()
            server = self.start_portcullis(f"portcullis-startup-{i}", str(directory / "portcullis.db"))
            times.append(server.wait_ready() * 1000)
            time.sleep(1.0)
            idle.append(proc_status(server.pid).get("VmRSS", 0))
            self.stop_portcullis(server)
        log(f"  {', '.join(f'{t:.0f} ms' for t in times)}; idle VmRSS {idle} KiB")
        self.report["startup"] = {"ready_ms": times, "median_ms": median(times)}
        self.report.setdefault("memory", {})["idle_vmrss_kib"] = idle
        self.report["memory"]["idle_vmrss_median_kib"] = median(idle)

    def memory_rows(self) -> None:
        memory = self.report.get("memory", {})
        idle = memory.get("idle_vmrss_median_kib") or memory.get("mixed_server_idle_vmrss_kib")
        if idle:
            source = "median of 3 starts" if "idle_vmrss_median_kib" in memory else "mixed server"
            self.rows.append(
                Row(
                    "memory",
                    f"idle VmRSS after start-up ({source})",
                    "sqlite",
                    None,
                    figure=f"{idle / MIB:.1f} MiB",
                    target="< 30 MiB",
                    verdict=verdict(idle < 30 * MIB),
                )
            )
        hwm = memory.get("peak_vmhwm_kib")
        if hwm:
            self.rows.append(
                Row(
                    "memory",
                    "peak VmHWM, mixed run",
                    "sqlite",
                    None,
                    figure=f"{hwm / MIB:.1f} MiB",
                    target="< 256 MiB",
                    verdict=verdict(hwm < 256 * MIB),
                )
            )
        startup = self.report.get("startup")
        if startup:
            self.rows.append(
                Row(
                    "start-up",
                    "process start to /readyz 200 (median of 3)",
                    "sqlite",
                    None,
                    figure=f"{startup['median_ms']:.0f} ms",
                    target="< 300 ms",
                    verdict=verdict(startup["median_ms"] < 300),
                )
            )

    # ------------------------------------------------------------------- import

    def write_import_file(self, path: Path, count: int) -> None:
        """`count` accounts as an export gives them. Importing does not hash, so a few
        real hashes (Python's bcrypt, Django's PBKDF2 formula) are shared round-robin;
        every tenth account has none."""
        hashes = [
            "$2a$04$3z29Ix5bETSlqvIzG57Hj.bWQ0F/q2H/HN/RpXdogsvNTBMV.BWS.",
            "$2b$10$AtCWD0IYm/fHQh3nqBO69ekB6zc1ra1XkfgDcijuDRgiZiY43Jdxq",
            "$2y$05$eqlRkGYyjLqUhcq/7nJS9eYiAUQSnjHuB3wZcCFecjpzlSOjUPSR6",
            "pbkdf2_sha256$1000$seasalt1234$JlBQ/OWmu3PcCFg2koQd315wDykzd702rqDsH8M7iWI=",
        ]
        with open(path, "w") as out:
            for i in range(count):
                record = {
                    "email": f"user{i}.{self.nonce}@example.com",
                    "username": f"user{i}_{self.nonce}",
                    "name": f"Imported User {i}",
                    "password_hash": None if i % 10 == 9 else hashes[i % len(hashes)],
                    "created_at": "2021-06-01T12:00:00Z",
                }
                out.write(json.dumps(record) + "\n")

    def import_env(self, url: str) -> dict[str, str]:
        env = self.base_env()
        env.update({"DATABASE_URL": url, "RUST_LOG": "warn", "PORTCULLIS_SECRETS_KEY": random_key()})
        return env

    def migrated(self, url: str) -> str:
        """`url`, its schema made, so that a timed import measures the import alone."""
        done = subprocess.run(
            [self.args.portcullis, "migrate"],
            env=self.import_env(url),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            raise BenchError(f"portcullis migrate failed: {done.stderr[-2000:]}")
        return url

    def timed_import(self, label: str, url: str, path: Path) -> tuple[float, int, dict[str, str]]:
        """Runs `portcullis import users PATH` on `url`: wall seconds, peak RSS (KiB) and
        the summary's `name: value` lines."""
        env = self.import_env(url)
        stdout_path = self.tmp / f"{label}.out"
        stderr_path = self.tmp / f"{label}.err"
        with open(stdout_path, "w") as stdout, open(stderr_path, "w") as stderr:
            started = time.monotonic()
            child = subprocess.Popen(
                [self.args.portcullis, "import", "users", str(path)],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
            )
            _, status, usage = os.wait4(child.pid, 0)
            seconds = time.monotonic() - started
        summary = dict(
            line.split(": ", 1) for line in stdout_path.read_text().splitlines() if ": " in line
        )
        if os.waitstatus_to_exitcode(status) != 0:
            raise BenchError(f"{label}: import failed: {stderr_path.read_text()[-2000:]}")
        return seconds, usage.ru_maxrss, summary

    def import_section(self) -> None:
        count, small = self.args.import_accounts, self.args.import_accounts // 10
        log(f"== import: {count} accounts (and {small} for memory), each database")
        big_file, small_file = self.tmp / "import-big.jsonl", self.tmp / "import-small.jsonl"
        self.write_import_file(big_file, count)
        self.write_import_file(small_file, small)
        report = self.report.setdefault("import", {})
        for db in ("sqlite", "postgres"):
            def fresh(name: str, db: str = db) -> str:
                if db == "postgres":
                    return self.create_database()
                directory = self.tmp / f"import-{name}"
                directory.mkdir()
                return str(directory / "portcullis.db")

            url = self.migrated(fresh("big"))
            seconds, rss, summary = self.timed_import(f"import-{db}-first", url, big_file)
            if summary.get("imported") != str(count):
                self.fail(f"import {db}: imported {summary.get('imported')} of {count}: {summary}")
            again, _, rerun = self.timed_import(f"import-{db}-again", url, big_file)
            if rerun.get("skipped") != str(count) or rerun.get("imported") != "0":
                self.fail(f"import {db}: a re-run was not all skipped: {rerun}")
            small_url = self.migrated(fresh("small"))
            _, small_rss, _ = self.timed_import(f"import-{db}-small", small_url, small_file)
            log(
                f"  {db}: {count} in {seconds:.1f} s ({count / seconds:.0f}/s), re-run {again:.1f} s; "
                f"peak RSS {rss / MIB:.1f} MiB vs {small_rss / MIB:.1f} MiB for {small}"
            )
            report[db] = {
                "accounts": count,
                "seconds": seconds,
                "rerun_seconds": again,
                "peak_rss_kib": rss,
                "small_accounts": small,
                "small_peak_rss_kib": small_rss,
                "summary": summary,
            }
            self.rows.append(
                Row("import", f"import users, {count} accounts", db, None,
                    figure=f"{seconds:.1f} s ({count / seconds:,.0f}/s)",
                    target="< 60 s", verdict=verdict(seconds < 60))
            )
            self.rows.append(
                Row("import", "the same again (all skipped)", db, None,
                    figure=f"{again:.1f} s", target="< 60 s", verdict=verdict(again < 60))
            )
            ratio = rss / small_rss
            self.rows.append(
                Row("import", f"peak RSS, {count} vs {small} accounts", db, None,
                    figure=f"{rss / MIB:.1f} / {small_rss / MIB:.1f} MiB = {ratio:.2f}×",
                    target="< 1.5× (flat)", verdict=verdict(ratio < 1.5))
            )

    # -------------------------------------------------------------------- run

    def run(self) -> None:
        a = self.args
        sections = set(a.sections)
        started = utc_now()
        self.report.update(
            {
                "started_utc": started.isoformat(timespec="seconds"),
                "machine": {
                    "cores": os.cpu_count(),
                    "kernel": platform.release(),
                    "python": platform.python_version(),
                },
                "settings": {
                    "duration_s": a.duration,
                    "repeat": a.repeat,
                    "wrk_threads": a.wrk_threads,
                    "wrk_timeout_s": a.timeout,
                    "connections": {
                        "login": a.login_connections,
                        "authenticated": a.auth_connections,
                        "refresh": a.refresh_connections,
                        "register": a.register_connections,
                        "mixed_login": a.mixed_login_connections,
                        "mixed_authenticated": a.mixed_auth_connections,
                    },
                    "sections": sorted(sections),
                    "portcullis": a.portcullis,
                    "bench_bin": a.bench_bin,
                },
            }
        )
        pg_url = pg_bare_url = None
        if "postgres" in sections:
            pg_url = self.create_database()
            pg_bare_url = self.create_database()
        if sections & {"sqlite", "postgres", "mixed"}:
            self.argon2_baseline()
        if sections & {"sqlite", "postgres"}:
            self.bare_jwt_baseline()
        if "sqlite" in sections:
            (self.tmp / "bare-write").mkdir()
            self.bare_write_baseline("sqlite", str(self.tmp / "bare-write" / "bench.db"))
        if pg_bare_url:
            self.bare_write_baseline("postgres", pg_bare_url)
        if "sqlite" in sections:
            (self.tmp / "sqlite").mkdir()
            self.portcullis_db("sqlite", str(self.tmp / "sqlite" / "portcullis.db"))
        if pg_url:
            self.portcullis_db("postgres", pg_url)
        if "mixed" in sections:
            self.mixed()
        if "startup" in sections:
            self.startup()
        self.memory_rows()
        if "import" in sections:
            self.import_section()
        finished = utc_now()
        self.report["finished_utc"] = finished.isoformat(timespec="seconds")
        self.report["server_env"] = self.server_env_shown
        self.report["server_log_problems"] = self.server_log_problems
        self.report["baselines"] = self.baseline
        self.report["rows"] = [row.as_json() for row in self.rows]
        self.report["failures"] = self.failures
        self.report["passed"] = not self.failures
        table = self.table(started)
        print(table, flush=True)
        self.report["table"] = table
        self.save(started)

    # ------------------------------------------------------------------ output

    def table(self, started: datetime.datetime) -> str:
        a = self.args
        header = ["row", "db", "conns", "req/s", "p50 ms", "p99 ms", "figure", "target", "verdict"]
        lines: list[list[str]] = []

        def num(value: float | None, digits: int) -> str:
            if value is None or value != value:
                return "-"
            return f"{value:,.{digits}f}"

        def heading(row: Row) -> str:
            if row.section in PORTCULLIS_SECTIONS:
                return f"Portcullis on {row.db}"
            return {
                "baseline": "baselines",
                "mixed": "mixed run on sqlite",
            }.get(row.section, "memory and start-up on sqlite")

        group = None
        for row in self.rows:
            if heading(row) != group:
                group = heading(row)
                lines.append([f"[{group}]", "", "", "", "", "", "", "", ""])
            name = f"{row.section}: {row.name}" if row.section in PORTCULLIS_SECTIONS else row.name
            lines.append(
                [
                    "  " + name,
                    row.db,
                    "-" if row.connections is None else str(row.connections),
                    num(row.rps, 1),
                    num(row.p50, 2),
                    num(row.p99, 2),
                    row.figure,
                    row.target,
                    row.verdict,
                ]
            )
        widths = [max(len(header[i]), *(len(l[i]) for l in lines)) for i in range(len(header))]
        right = {2, 3, 4, 5}

        def fmt(cells: list[str]) -> str:
            return "  ".join(
                c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(cells)
            ).rstrip()

        out = [
            "",
            f"Portcullis HTTP benchmark, {started.strftime('%Y-%m-%d %H:%M:%S')} UTC, "
            f"{os.cpu_count()} cores; wrk {a.wrk_threads} threads, {a.duration} s per run"
            + (f", median of {a.repeat}" if a.repeat > 1 else ""),
            "Ratios are against baselines measured in this run; PASS/MISS against the targets.",
            "",
            fmt(header),
            fmt(["-" * w for w in widths]),
        ]
        out += [fmt(l) for l in lines]
        notes = [f"  {row.name} ({row.db}): {row.note}" for row in self.rows if row.note]
        if notes:
            out += ["", "Notes:"] + notes
        env = self.server_env_shown.get("throughput") or self.server_env_shown.get("flood")
        if env:
            out += [
                "",
                "Portcullis ran with: "
                + " ".join(
                    f"{k}={v}" for k, v in sorted(env.items()) if k not in ("DATABASE_URL", "PORTCULLIS_BIND")
                )
                + " (the mixed run keeps the default PORTCULLIS_HASH_QUEUE)",
            ]
        for name, problems in self.server_log_problems.items():
            out += [f"{name} logged {problems['count']} warnings or errors, e.g. {problems['first'][0][:200]}"]
        if self.failures:
            out += ["", "FAILED (wrong statuses or socket errors; the figures above are not valid):"]
            out += [f"  - {f}" for f in self.failures]
        return "\n".join(out)

    def save(self, started: datetime.datetime) -> None:
        out_dir = Path(self.args.out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"bench-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
        text = json.dumps(self.report, indent=2, allow_nan=False, default=str)
        path.write_text(text + "\n")
        (out_dir / "latest.json").write_text(text + "\n")
        log(f"\nwrote {path} and {out_dir / 'latest.json'}")


def default_binary(name: str) -> str:
    target = os.environ.get("CARGO_TARGET_DIR") or str(REPO / "target")
    return str(Path(target) / "release" / name)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Portcullis over HTTP against baselines measured in the same run (make bench).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--quick", action="store_true", help="3 s per run (overrides --duration)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement; the table shows medians")
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated, of {', '.join(SECTIONS)} (baselines come with what needs them)",
    )
    parser.add_argument(
        "--kinds",
        default=",".join(KINDS),
        help="comma-separated rows to run in the sqlite and postgres sections",
    )
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument(
        "--import-accounts", type=int, default=100_000, help="accounts the import section moves in"
    )
    parser.add_argument("--timeout", type=int, default=10, help="wrk's request timeout, seconds")
    parser.add_argument("--login-connections", type=int, default=16)
    parser.add_argument("--auth-connections", type=int, default=64)
    parser.add_argument("--refresh-connections", type=int, default=64)
    parser.add_argument("--register-connections", type=int, default=16)
    parser.add_argument("--mixed-login-connections", type=int, default=64)
    parser.add_argument("--mixed-auth-connections", type=int, default=4)
    parser.add_argument(
        "--hash-queue",
        type=int,
        default=64,
        help="PORTCULLIS_HASH_QUEUE of the throughput servers (room for every login connection)",
    )
    parser.add_argument("--portcullis", default=default_binary("portcullis"))
    parser.add_argument("--bench-bin", default=default_binary("portcullis-bench"))
    parser.add_argument("--wrk", default=shutil.which("wrk") or "wrk")
    parser.add_argument("--out-dir", default=str(REPO / "target" / "bench"))
    parser.add_argument(
        "--keep-temp", action="store_true", help="keep the run's directory (server logs) for inspection"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.duration = 3
    args.sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    if args.duration < 2:
        parser.error("--duration must be at least 2 s")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    for name in (
        "login_connections",
        "auth_connections",
        "refresh_connections",
        "register_connections",
        "mixed_login_connections",
    ):
        value = getattr(args, name)
        if value < args.wrk_threads or value % args.wrk_threads:
            parser.error(f"--{name.replace('_', '-')} must be a multiple of --wrk-threads")
    if args.mixed_auth_connections < 1:
        parser.error("--mixed-auth-connections must be at least 1")
    for binary in (args.portcullis, args.bench_bin):
        if not os.access(binary, os.X_OK):
            parser.error(
                f"{binary} is not an executable: build it first "
                "(cargo build --release -p portcullis -p portcullis-bench, or make bench)"
            )
    if shutil.which(args.wrk) is None:
        parser.error("wrk is needed (Debian: apt-get install wrk)")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    # A SIGTERM unwinds like Ctrl-C, so the servers and databases are cleaned up.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    harness = Harness(args)
    try:
        harness.run()
    except BenchError as error:
        log(f"\nbench: {error}")
        return 1
    except KeyboardInterrupt:
        log("\nbench: interrupted")
        return 130
    finally:
        harness.cleanup()
    if harness.failures:
        log(
            f"\nbench: FAILED: {len(harness.failures)} measurement(s) got answers they should "
            "not have (see above); the figures are not valid"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
