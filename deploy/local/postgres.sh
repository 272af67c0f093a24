#!/usr/bin/env bash
# Install (Debian's package, when missing) and start PostgreSQL on 127.0.0.1:5432, then make one
# role and database per service, plus a role for tests that may create databases. Idempotent.
#   deploy/local/postgres.sh start|stop|status
# Password for every local role: "exchange" (local development only).
set -euo pipefail
services="partners events talent reporting"
say() { echo "postgres: $*"; }
as_postgres() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "cd / && $*"; else sudo -u postgres sh -c "cd / && $*"; fi; }

install() {
  if ! command -v pg_lsclusters >/dev/null || [ -z "$(pg_lsclusters -h 2>/dev/null)" ]; then
    say "installing Debian's postgresql package"
    if [ "$(id -u)" = 0 ]; then sudo_=""; else sudo_="sudo"; fi
    $sudo_ apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq postgresql >/dev/null
  fi
}

cluster() { pg_lsclusters -h | awk 'NR==1 {print $1" "$2}'; }

start() {
  install
  read -r ver name <<<"$(cluster)"
  if pg_lsclusters -h | awk 'NR==1 {print $4}' | grep -q online; then
    say "cluster $ver/$name already running"
  else
    say "starting cluster $ver/$name"
    # Tuned for a small dev/test machine: fsync stays on (durability is what we test). Checkpoints
    # every 4 GB of WAL or 15 min instead of 1 GB / 5 min: a projection rebuild writes a million rows
    # in a minute, and WAL-triggered checkpoints every ~30 s (with the full-page writes after each)
    # slowed it by a tenth and made runs uneven (bench/reporting/README.md).
    pg_ctlcluster "$ver" "$name" start -o "-c max_connections=300 -c shared_buffers=256MB -c max_wal_size=4GB -c checkpoint_timeout=15min"
  fi
  for _ in $(seq 1 60); do as_postgres "pg_isready -q -h 127.0.0.1" && break; sleep 0.5; done
  as_postgres "psql -q -v ON_ERROR_STOP=1 -d postgres" <<SQL
DO \$\$
DECLARE s text;
BEGIN
  FOREACH s IN ARRAY string_to_array('$services exchange_test', ' ') LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = s) THEN
      EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L', s, 'exchange');
    END IF;
  END LOOP;
END \$\$;
ALTER ROLE exchange_test CREATEDB;
-- DROP DATABASE ... WITH (FORCE) of a test or benchmark database must end an autovacuum worker
-- still on it; it was refused with "must be a member of the role whose process is being terminated
-- or member of pg_signal_backend", and benchmark databases were left behind.
GRANT pg_signal_backend TO exchange_test;
SQL
  for s in $services; do
    if ! as_postgres "psql -tAc \"SELECT 1 FROM pg_database WHERE datname='$s'\"" | grep -q 1; then
      as_postgres "createdb -O $s $s"; say "created database $s"
    fi
  done
  say "ready on 127.0.0.1:5432 (databases: $services; role exchange_test may create and drop test databases)"
}

stop() { read -r ver name <<<"$(cluster)"; pg_ctlcluster "$ver" "$name" stop || true; say "stopped"; }

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) pg_lsclusters ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
