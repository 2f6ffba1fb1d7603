#!/usr/bin/env bash
# Brings up everything Berth's tests need on a Debian 12 machine, as root:
# Debian packages, dockerd, the PostgreSQL cluster (role + test database) and Redis.
# Idempotent: on a machine where everything already runs it only checks and exits.
# There is no systemd on these machines, so daemons are started by hand in the background.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

PACKAGES=(docker.io postgresql redis-server git chromium ripgrep libkrb5-dev busybox-static ca-certificates e2fsprogs mount)
PG_VERSION="${PG_VERSION:-15}"
PG_CLUSTER="${PG_CLUSTER:-main}"
PG_PORT="${PG_PORT:-5432}"
DB_ROLE="berth"
DB_PASSWORD="berth"
DB_NAME="berth_test"
DOCKERD_LOG="/var/log/dockerd.log"

log() { printf '[services] %s\n' "$*"; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }

if [ "$(id -u)" -ne 0 ]; then
  die "must run as root (installs packages and starts daemons)"
fi

# --- Debian packages ---------------------------------------------------------
pkg_installed() {
  # dpkg-query exits non-zero for unknown packages; treat that as "not installed".
  local status
  status="$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)"
  [ "$status" = "installed" ]
}

missing=()
for p in "${PACKAGES[@]}"; do
  if ! pkg_installed "$p"; then missing+=("$p"); fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  log "installing: ${missing[*]}"
  apt-get update -qq
  # Daemons are started below by this script; keep maintainer scripts from trying
  # (there is no init system to start them with anyway).
  policy_created=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    policy_created=1
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "${missing[@]}"
  if [ "$policy_created" -eq 1 ]; then
    rm -f /usr/sbin/policy-rc.d
    trap - EXIT
  fi
else
  log "packages: all present"
fi

# True if a process whose command name is exactly $1 is alive (no procps needed).
proc_running() {
  local f
  for f in /proc/[0-9]*/comm; do
    if [ "$(cat "$f" 2>/dev/null || true)" = "$1" ]; then return 0; fi
  done
  return 1
}

# --- Docker -------------------------------------------------------------------
docker_ok() { docker info >/dev/null 2>&1; }

if docker_ok; then
  log "docker: running"
else
  if proc_running dockerd; then
    log "docker: dockerd is running but not answering yet, waiting"
  else
    log "docker: starting dockerd (log: $DOCKERD_LOG)"
    # A socket left behind by a dead daemon is removed by dockerd itself; a stale
    # pid file is only a problem when its pid is alive, which it is not here.
    rm -f /var/run/docker.pid
    # One bridge network per workspace: Docker's default pools hold only ~31 of them, so
    # hand out /24s from 172.16.0.0/12 instead (4096 networks).
    setsid dockerd --default-address-pool base=172.16.0.0/12,size=24 >>"$DOCKERD_LOG" 2>&1 </dev/null &
  fi
  for _ in $(seq 1 60); do
    if docker_ok; then break; fi
    sleep 1
  done
  if ! docker_ok; then
    tail -n 30 "$DOCKERD_LOG" >&2 2>/dev/null || true
    die "docker did not answer within 60 s"
  fi
  log "docker: ready"
fi

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
