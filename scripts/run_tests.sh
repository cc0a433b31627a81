#!/usr/bin/env bash
# The test suite on SQLite and, when PostgreSQL answers, on PostgreSQL at the same time
# (each with its own Redis database). Extra arguments go to pytest.
set -uo pipefail
bin=${BIN:-.venv/bin}
: "${TEST_POSTGRES_URL:=postgresql+psycopg://postgres@127.0.0.1:5432/test}"
: "${TEST_REDIS_URL:=redis://127.0.0.1:6379/15}"
: "${TEST_REDIS_URL_PG:=redis://127.0.0.1:6379/14}"
mkdir -p test-artifacts

pg_pid=""
if "$bin/python" scripts/postgres_answers.py "$TEST_POSTGRES_URL"; then
  echo "== test suite on PostgreSQL: running alongside, log in test-artifacts/postgres.log"
  TEST_DATABASE_URL=$TEST_POSTGRES_URL TEST_REDIS_URL=$TEST_REDIS_URL_PG \
    "$bin/pytest" -q -p no:cacheprovider "$@" >test-artifacts/postgres.log 2>&1 &
  pg_pid=$!
else
  echo "PostgreSQL does not answer at $TEST_POSTGRES_URL: the suite runs on SQLite only"
fi

echo "== test suite on SQLite"
TEST_REDIS_URL=$TEST_REDIS_URL "$bin/pytest" -q "$@"
sqlite_status=$?

pg_status=0
if [ -n "$pg_pid" ]; then
  wait "$pg_pid"
  pg_status=$?
  echo "== test suite on PostgreSQL"
  cat test-artifacts/postgres.log
fi
exit $((sqlite_status || pg_status))
