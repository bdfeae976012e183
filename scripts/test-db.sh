#!/usr/bin/env bash
# Makes PostgreSQL ready for the test suite, idempotently:
#  - with TEST_DATABASE_URL set, only checks that it answers;
#  - otherwise starts the machine's PostgreSQL 15 cluster if it is down and creates the
#    test role (a local, test-only login that may create databases; each test creates
#    and drops its own database through it).
# A PostgreSQL that cannot be reached fails the run: tests never skip silently.
set -euo pipefail

DEFAULT_URL="postgres://portcullis_test:portcullis_test@127.0.0.1:5432/postgres?sslmode=disable&gssencmode=disable"
url="${TEST_DATABASE_URL:-$DEFAULT_URL}"

wait_ready() {
    for _ in $(seq 1 60); do
        pg_isready -q -h 127.0.0.1 -p 5432 && return 0
        sleep 0.5
    done
    echo "test-db: PostgreSQL did not become ready on 127.0.0.1:5432" >&2
    return 1
}

if [ -n "${TEST_DATABASE_URL:-}" ]; then
    psql "$url" -Atc 'select 1' >/dev/null || {
        echo "test-db: TEST_DATABASE_URL does not answer" >&2
        exit 1
    }
    exit 0
fi

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    command -v pg_ctlcluster >/dev/null || {
        echo "test-db: PostgreSQL is not installed (apt-get install postgresql)" >&2
        exit 1
    }
    pg_ctlcluster --skip-systemctl-redirect 15 main start
    wait_ready
fi

runuser -u postgres -- psql -v ON_ERROR_STOP=1 -q <<'SQL'
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'portcullis_test') THEN
        CREATE ROLE portcullis_test LOGIN CREATEDB PASSWORD 'portcullis_test';
    ELSE
        ALTER ROLE portcullis_test LOGIN CREATEDB PASSWORD 'portcullis_test';
    END IF;
END
$$;
SQL

psql "$url" -Atc 'select 1' >/dev/null
echo "test-db: PostgreSQL ready at $url"
