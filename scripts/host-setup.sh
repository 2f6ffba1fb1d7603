#!/usr/bin/env bash
# What `npm start` needs on the host, checked before anything else runs:
#   - a Docker engine that answers (the local one; with DOCKER_HOST set, that one is the
#     operator's business and only checked when the docker CLI is there)
#   - redis-server, unless REDIS_URL is set or a Redis answers on 127.0.0.1:6379/6389
#     (Berth starts redis-server itself, with persistence, under BERTH_DATA_DIR)
#   - nginx-light, optional (BERTH_NATIVE_PROXY=on, the native proxy in front of previews):
#     installed then as root on Debian
# As root on Debian/Ubuntu it installs what is missing (docker.io, redis-server) and starts
# dockerd when it does not run. Anywhere else it says exactly what to install or start and
# exits 1, so `npm start` stops before it does anything.
# BERTH_SKIP_HOST_SETUP=1 skips all of this (a host prepared another way).
set -euo pipefail

LOG_PREFIX=berth
# shellcheck source=lib/host.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/host.sh"

if [ "${BERTH_SKIP_HOST_SETUP:-}" = "1" ]; then exit 0; fi

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

need_docker=0
need_redis=0
if [ -n "${DOCKER_HOST:-}" ]; then
  if command -v docker >/dev/null 2>&1 && ! docker_ok; then
    die "DOCKER_HOST=$DOCKER_HOST does not answer (docker info failed): start that engine, or unset DOCKER_HOST to use the local one"
  fi
elif ! docker_ok; then
  need_docker=1
fi
if [ -z "${REDIS_URL:-}" ] && ! port_open 6379 && ! port_open 6389 && ! command -v redis-server >/dev/null 2>&1; then
  need_redis=1
fi
# nginx (Debian's nginx-light) serves running previews in front of Berth (BERTH_NATIVE_PROXY=on).
# Optional: without it Berth serves them itself and says so, so only root on Debian installs it,
# and a failed install stops nothing. Its own service is not started (install_packages).
if [ "${BERTH_NATIVE_PROXY:-off}" = "on" ] && ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ] && is_root && is_debian_like; then
  (install_packages nginx-light) || log "could not install nginx-light: previews are served by Berth itself (slower)"
fi
[ "$need_docker" -eq 0 ] && [ "$need_redis" -eq 0 ] && exit 0

# What a person has to do by hand, when this script may not (not root, not Debian).
explain() {
  local steps=()
  if [ "$need_docker" -eq 1 ]; then
    if command -v dockerd >/dev/null 2>&1 || command -v docker >/dev/null 2>&1; then
      if [ -S /var/run/docker.sock ] && ! is_root; then
        steps+=("let this user use Docker: sudo usermod -aG docker $(id -un), then log in again (or set DOCKER_HOST)")
      else
        steps+=("start the Docker engine: sudo systemctl start docker (or sudo dockerd &)")
      fi
    else
      steps+=("install a Docker engine: sudo apt-get install docker.io on Debian/Ubuntu, or see https://docs.docker.com/engine/install/ (or set DOCKER_HOST to a remote engine)")
    fi
  fi
  if [ "$need_redis" -eq 1 ]; then
    steps+=("install Redis: sudo apt-get install redis-server on Debian/Ubuntu (Berth starts it itself), or set REDIS_URL to a running Redis")
  fi
  printf '[berth] Berth cannot start yet; %s:\n' "$1" >&2
  local s
  for s in "${steps[@]}"; do printf '[berth]   - %s\n' "$s" >&2; done
  printf '[berth] then run npm start again.\n' >&2
  exit 1
}

if ! is_root; then explain "as $(id -un) (not root) it cannot set up the host itself"; fi
if ! is_debian_like; then explain "this is not Debian or Ubuntu (no apt-get), so it cannot install packages itself"; fi

missing=()
if [ "$need_docker" -eq 1 ] && ! command -v dockerd >/dev/null 2>&1; then missing+=(docker.io); fi
if [ "$need_redis" -eq 1 ]; then missing+=(redis-server); fi
install_packages "${missing[@]}"
if [ "$need_docker" -eq 1 ]; then ensure_dockerd; fi
if [ "$need_redis" -eq 1 ] && ! command -v redis-server >/dev/null 2>&1; then
  die "redis-server is still not on PATH after installing it"
fi
log "host ready: Docker engine answers, redis-server installed"
