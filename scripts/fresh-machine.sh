#!/usr/bin/env bash
# The newcomer's run on a bare Debian 12 machine, repeatable: a container made from a
# debootstrap'ed Debian 12 root file system with only what a newcomer brings (Node 20 with its
# headers and npm, git, python3, make, g++), a clone of this repository in /root/berth
# (/root mode 0700), then the README's commands, as root:
#
#   start: npm install && npm start      (Berth answers on :3000, the embedded PostgreSQL
#                                          applied the migrations)
#   test:  bash scripts/services.sh && npm install && npm test     (only with RUN_TESTS=1: ~20 min)
#
# Usage, as root on a Debian/Ubuntu host with a Docker engine:
#   bash scripts/fresh-machine.sh            build the image (once), run the start command
#   RUN_TESTS=1 bash scripts/fresh-machine.sh    ... and the test command after it
#   KEEP=1 ...                                 leave the container running to look around
#
# The container runs its own dockerd (nested): it gets every capability but SYS_RESOURCE,
# the host's cgroup namespace, no seccomp/AppArmor confinement, the loop devices, and a
# volume for /var/lib/docker (overlayfs cannot sit on the container's own overlay).
#
# Where containers cannot reach the internet (the machines Berth is developed on), set
# OFFLINE=1: the root file system is then prepared with the host's network (chroot), with
# docker.io and redis-server installed but not started (host-setup.sh then only starts
# dockerd) and the host's npm cache copied in (npm install --offline). Everything else is
# the same run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="${WORK:-/var/tmp/berth-fresh-machine}"
IMAGE="${IMAGE:-berth-fresh-debian12}"
NAME="${NAME:-berth-fresh-$$}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
OFFLINE="${OFFLINE:-0}"

log() { printf '[fresh-machine] %s\n' "$*"; }
die() { printf '[fresh-machine] ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (debootstrap, chroot, privileged container)"
command -v docker >/dev/null || die "needs the docker CLI and a Docker engine"
command -v debootstrap >/dev/null || { log "installing debootstrap"; apt-get install -y -qq debootstrap >/dev/null; }

# --- 1. the image: bare Debian 12 + Node 20 (headers, npm), git, python3, make, g++ ---------
if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
  rootfs="$WORK/rootfs"
  rm -rf "$rootfs" && mkdir -p "$rootfs"
  log "debootstrap bookworm into $rootfs (a few minutes)"
  debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
    || { tail -n 20 "$WORK/debootstrap.log" >&2; die "debootstrap failed"; }
  cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
  in_root() { chroot "$rootfs" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive HOME=/root "$@"; }
  mount -t proc proc "$rootfs/proc"
  trap 'umount "$rootfs/proc" 2>/dev/null || true' EXIT
  # no daemon may start inside the chroot (it shares the host's network and kernel)
  printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d" && chmod +x "$rootfs/usr/sbin/policy-rc.d"
  log "installing git python3 make g++ ca-certificates curl"
  in_root apt-get update -qq
  in_root apt-get install -y -qq --no-install-recommends git python3 make g++ ca-certificates curl >/dev/null
  # Node 20 with npm and its headers: the host's own installation when it runs Node 20 (its
  # package's files, and npm as it is now: `npm install -g npm` replaces the packaged one),
  # else NodeSource's repository
  log "installing Node 20"
  if [ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || true)" = "20" ] && dpkg -L nodejs >/dev/null 2>&1; then
    dpkg -L nodejs | while read -r f; do if [ -f "$f" ] || [ -L "$f" ]; then printf '%s\n' "${f#/}"; fi; done \
      | grep -v '^usr/lib/node_modules/npm/' >"$WORK/node-files"
    tar -C / -cf - -T "$WORK/node-files" usr/lib/node_modules/npm | tar -C "$rootfs" -xf -
    for b in npm npx; do ln -sf "../lib/node_modules/npm/bin/$b-cli.js" "$rootfs/usr/bin/$b"; done
  else
    in_root apt-get install -y -qq --no-install-recommends gnupg >/dev/null
    in_root bash -c 'curl -fsSL https://deb.nodesource.com/setup_20.x | bash - && apt-get install -y -qq nodejs' >"$WORK/nodesource.log" 2>&1 \
      || { tail -n 20 "$WORK/nodesource.log" >&2; die "could not install Node 20 from NodeSource"; }
  fi
  [ "$(in_root node -p 'process.versions.node.split(".")[0]')" = "20" ] || die "the new root file system does not run Node 20"
  in_root npm --version >/dev/null || die "npm does not run in the new root file system"
  if [ "$OFFLINE" = "1" ]; then
    log "OFFLINE=1: installing docker.io and redis-server (not started) and copying the host's npm cache"
    in_root apt-get install -y -qq --no-install-recommends docker.io redis-server >/dev/null
    mkdir -p "$rootfs/root/.npm" && cp -a "${NPM_CACHE:-$HOME/.npm}/_cacache" "$rootfs/root/.npm/"
  fi
  rm -f "$rootfs/usr/sbin/policy-rc.d"
  in_root apt-get clean
  umount "$rootfs/proc"; trap - EXIT
  chmod 700 "$rootfs/root"
  log "importing the root file system as $IMAGE"
  tar -C "$rootfs" -c . | docker import -c 'CMD ["sleep", "infinity"]' - "$IMAGE" >/dev/null
  rm -rf "$rootfs"
fi

# --- 2. the machine: a container with its own dockerd ------------------------------------------
loops=()
for d in /dev/loop-control /dev/loop[0-9]*; do [ -e "$d" ] && loops+=(--device "$d"); done
log "starting $NAME from $IMAGE"
docker run -d --name "$NAME" --hostname fresh-debian12 \
  --cap-add ALL --cap-drop SYS_RESOURCE --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
  --cgroupns host -v /sys/fs/cgroup:/sys/fs/cgroup:rw -v "$NAME-docker:/var/lib/docker" "${loops[@]}" \
  "$IMAGE" >/dev/null
cleanup() {
  if [ "${KEEP:-0}" = "1" ]; then log "kept: docker exec -it $NAME bash"; return; fi
  docker rm -f "$NAME" >/dev/null 2>&1 || true
  docker volume rm "$NAME-docker" >/dev/null 2>&1 || true
}
trap cleanup EXIT
inside() { docker exec -i -w /root "$NAME" env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb "$@"; }
# SIGTERM to Berth (there is no procps in a minimal Debian: walk /proc), as Ctrl-C or systemd would
stop_berth() {
  # only node processes: this very shell's command line names app/main too
  inside bash -c 'for p in /proc/[0-9]*; do c=$(tr "\0" " " 2>/dev/null <"$p/cmdline"); case "$c" in *node\ *app/main*) kill -TERM "${p#/proc/}" 2>/dev/null;; esac; done; sleep 5' || true
}

# --- 3. the newcomer: git clone into /root/berth --------------------------------------------
log "cloning this repository's HEAD into /root/berth"
bundle="$WORK/berth.bundle"
mkdir -p "$WORK" && git -C "$ROOT" bundle create "$bundle" HEAD main >/dev/null 2>&1
docker cp "$bundle" "$NAME:/tmp/berth.bundle"
inside git clone -q --branch main /tmp/berth.bundle /root/berth
inside stat -c '%a %U %n' /root /root/berth

# --- 4. the README's start command ----------------------------------------------------------
npm_install="npm install --no-audit --no-fund"
# OFFLINE: every npm run (npm start installs code-server with npm too) takes packages from the cache
npm_env=""
if [ "$OFFLINE" = "1" ]; then npm_install="$npm_install --offline"; npm_env="npm_config_offline=true"; fi
log "start command: $npm_install && npm start"
inside bash -c "cd /root/berth && $npm_install >/tmp/npm-install.log 2>&1 || { tail -n 30 /tmp/npm-install.log; exit 1; }"
inside bash -c "cd /root/berth && ($npm_env setsid npm start >/tmp/npm-start.log 2>&1 </dev/null &)"
# the first start builds dist/ and installs VS Code for the browser (code-server, from npm)
ok=0
for _ in $(seq 1 600); do
  if inside curl -fsS -o /dev/null http://127.0.0.1:3000/ 2>/dev/null; then ok=1; break; fi
  sleep 2
done
inside tail -n 40 /tmp/npm-start.log || true
[ "$ok" = "1" ] || die "Berth did not answer on http://127.0.0.1:3000 within 20 minutes (log above)"
log "start command: Berth answers on :3000"
inside grep -E '^\[berth\] (docker|host)' /tmp/npm-start.log || true  # what host-setup.sh did

# Without APP_ID Berth serves the GitHub App setup page and needs no database; to see the
# embedded PostgreSQL apply the migrations, start it once more with a made-up App identity.
stop_berth
inside bash -c 'cd /root/berth && openssl genrsa 2048 >/tmp/key.pem 2>/dev/null || node -e "const {generateKeyPairSync:g}=require(\"crypto\");process.stdout.write(g(\"rsa\",{modulusLength:2048}).privateKey.export({type:\"pkcs1\",format:\"pem\"}))" >/tmp/key.pem'
inside bash -c "cd /root/berth && ($npm_env APP_ID=1 PRIVATE_KEY_PATH=/tmp/key.pem WEBHOOK_SECRET=x setsid npm start >/tmp/npm-start-2.log 2>&1 </dev/null &)"
ok=0
for _ in $(seq 1 180); do
  if inside curl -fsS -o /dev/null http://127.0.0.1:3000/healthz 2>/dev/null; then ok=1; break; fi
  sleep 2
done
inside tail -n 40 /tmp/npm-start-2.log || true
[ "$ok" = "1" ] || die "Berth with an App identity did not answer /healthz (log above)"
inside bash -c 'cd /root/berth && cat .data/embedded-postgres.json'
inside bash -c 'grep -q "applied migrations" /tmp/npm-start-2.log' || die "no 'applied migrations' line in the log"
log "start command: the embedded PostgreSQL applied the migrations"
stop_berth

# --- 5. the README's test command (long) ----------------------------------------------------
if [ "${RUN_TESTS:-0}" = "1" ]; then
  log "test command: bash scripts/services.sh && $npm_install && npm test"
  inside bash -c "cd /root/berth && bash scripts/services.sh && $npm_install && npm test" || die "the test command failed"
  log "test command passed"
fi
log "done"
