# Shared by scripts/services.sh (what the tests need) and scripts/host-setup.sh (what
# `npm start` needs): Debian packages and the Docker engine. Source it; it defines functions
# only. The caller sets LOG_PREFIX (e.g. "services") before sourcing.

LOG_PREFIX="${LOG_PREFIX:-berth}"
DOCKERD_LOG="${DOCKERD_LOG:-/var/log/dockerd.log}"

log() { printf '[%s] %s\n' "$LOG_PREFIX" "$*"; }
die() { printf '[%s] ERROR: %s\n' "$LOG_PREFIX" "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" -eq 0 ]; }
# Debian, Ubuntu and their derivatives: apt-get and dpkg-query are what this file uses.
is_debian_like() { command -v apt-get >/dev/null 2>&1 && command -v dpkg-query >/dev/null 2>&1; }

pkg_installed() {
  # dpkg-query exits non-zero for unknown packages; treat that as "not installed".
  local status
  status="$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)"
  [ "$status" = "installed" ]
}

# install_packages PKG...: apt-get install of the given packages, none of their daemons started
# by the maintainer scripts (callers start what they need themselves).
install_packages() {
  [ "$#" -gt 0 ] || return 0
  log "installing: $*"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  local policy_created=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    policy_created=1
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@"
  if [ "$policy_created" -eq 1 ]; then
    rm -f /usr/sbin/policy-rc.d
    trap - EXIT
  fi
}

# True if a process whose command name is exactly $1 is alive (no procps needed).
proc_running() {
  local f
  for f in /proc/[0-9]*/comm; do
    if [ "$(cat "$f" 2>/dev/null || true)" = "$1" ]; then return 0; fi
  done
  return 1
}

docker_ok() { docker info >/dev/null 2>&1; }

# ensure_dockerd: the local Docker engine answers, started here when it does not (through
# systemd where it runs, else dockerd in the background). Needs root to start it.
ensure_dockerd() {
  if docker_ok; then
    log "docker: running"
    return 0
  fi
  if proc_running dockerd; then
    log "docker: dockerd is running but not answering yet, waiting"
  elif [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    log "docker: starting docker.service"
    systemctl start docker
  else
    log "docker: starting dockerd (log: $DOCKERD_LOG)"
    # A socket left behind by a dead daemon is removed by dockerd itself; a stale
    # pid file is only a problem when its pid is alive, which it is not here.
    rm -f /var/run/docker.pid
    # One bridge network per workspace: Docker's default pools hold only ~31 of them, so
    # hand out /24s from 172.16.0.0/12 instead (4096 networks).
    setsid dockerd --default-address-pool base=172.16.0.0/12,size=24 >>"$DOCKERD_LOG" 2>&1 </dev/null &
  fi
  local _
  for _ in $(seq 1 60); do
    if docker_ok; then break; fi
    sleep 1
  done
  if ! docker_ok; then
    tail -n 30 "$DOCKERD_LOG" >&2 2>/dev/null || true
    die "docker did not answer within 60 s"
  fi
  log "docker: ready"
}
