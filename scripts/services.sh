#!/usr/bin/env bash
# Brings up everything Berth's tests need on a Debian 12 machine, as root:
# Debian packages, dockerd, the PostgreSQL cluster (role + test database) and Redis.
# Idempotent: on a machine where everything already runs it only checks and exits.
# There is no systemd on these machines, so daemons are started by hand in the background.
set -euo pipefail

PACKAGES=(docker.io postgresql redis-server git chromium ripgrep libkrb5-dev busybox-static ca-certificates e2fsprogs mount iproute2 openssh-client nginx-light)
PG_VERSION="${PG_VERSION:-15}"
PG_CLUSTER="${PG_CLUSTER:-main}"
PG_PORT="${PG_PORT:-5432}"
DB_ROLE="berth"
DB_PASSWORD="berth"
DB_NAME="berth_test"

LOG_PREFIX=services
# shellcheck source=lib/host.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/host.sh"

if ! is_root; then
  die "must run as root (installs packages and starts daemons)"
fi

# --- Debian packages ---------------------------------------------------------
missing=()
for p in "${PACKAGES[@]}"; do
  if ! pkg_installed "$p"; then missing+=("$p"); fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  install_packages "${missing[@]}"
else
  log "packages: all present"
fi

# --- Docker -------------------------------------------------------------------
ensure_dockerd

# --- PostgreSQL -----------------------------------------------------------------
as_postgres() { (cd / && runuser -u postgres -- "$@"); }
psql_admin() { as_postgres psql -p "$PG_PORT" -X -q -v ON_ERROR_STOP=1 -At "$@"; }

clusters="$(pg_lsclusters -h 2>/dev/null | awk '{print $1"/"$2}' || true)"
if ! printf '%s\n' "$clusters" | grep -Fqx "$PG_VERSION/$PG_CLUSTER"; then
  log "postgres: creating cluster $PG_VERSION $PG_CLUSTER"
  pg_createcluster "$PG_VERSION" "$PG_CLUSTER" -p "$PG_PORT" >/dev/null
fi

pg_status=0
pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" status >/dev/null 2>&1 || pg_status=$?
if [ "$pg_status" -eq 0 ]; then
  log "postgres: running"
else
  log "postgres: starting cluster $PG_VERSION $PG_CLUSTER"
  pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" start
fi
for _ in $(seq 1 60); do
  if pg_isready -q -h 127.0.0.1 -p "$PG_PORT"; then break; fi
  sleep 1
done
pg_isready -q -h 127.0.0.1 -p "$PG_PORT" || die "postgres did not accept connections on 127.0.0.1:$PG_PORT within 60 s"

if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '$DB_ROLE'")" = "1" ]; then
  log "postgres: role $DB_ROLE exists"
else
  log "postgres: creating role $DB_ROLE"
  psql_admin -c "CREATE ROLE $DB_ROLE LOGIN CREATEDB PASSWORD '$DB_PASSWORD'"
fi
# Tests drop their databases WITH (FORCE); an autovacuum worker busy in one runs as no role,
# and only pg_signal_backend may end it ("must be a member of the role whose process is being
# terminated or member of pg_signal_backend").
psql_admin -c "GRANT pg_signal_backend TO $DB_ROLE" >/dev/null
if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" = "1" ]; then
  log "postgres: database $DB_NAME exists"
else
  log "postgres: creating database $DB_NAME"
  psql_admin -c "CREATE DATABASE $DB_NAME OWNER $DB_ROLE"
fi

# --- Redis ------------------------------------------------------------------------
redis_ok() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null || true)" = "PONG" ]; }

if redis_ok; then
  log "redis: running"
else
  log "redis: starting redis-server"
  # No persistence, and a working directory outside the repo (no dump.rdb in the checkout).
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no --dir /tmp \
    --logfile /var/log/redis-server-berth.log >/dev/null
  for _ in $(seq 1 30); do
    if redis_ok; then break; fi
    sleep 1
  done
  redis_ok || die "redis did not answer PING within 30 s"
  log "redis: ready"
fi

log "all services ready"
