#!/usr/bin/env bash
# Installs code-server (VS Code in the browser) once per Berth host, for the `vscode` IDE.
#
#   scripts/install-code-server.sh [DIR]      DIR defaults to $BERTH_CODE_SERVER_DIR,
#                                             else <repo>/.data/code-server
#
# The install is self-contained: DIR/node is a copy of the node that built the native
# modules (their ABI must match), DIR/node_modules/code-server the package. The worker
# mounts DIR read-only into each workspace's IDE container, so nothing is downloaded per
# workspace. Idempotent: when DIR already holds this version built for this node, it exits
# at once. Nothing here may download from anywhere but the npm registry (see
# shared/notes/ide.md for why each step exists).
set -euo pipefail

VERSION="${CODE_SERVER_VERSION:-4.100.3}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${1:-${BERTH_CODE_SERVER_DIR:-$ROOT/.data/code-server}}"
case "$DIR" in /*) ;; *) DIR="$ROOT/$DIR" ;; esac

log() { printf '[code-server] %s\n' "$*"; }
die() { printf '[code-server] ERROR: %s\n' "$*" >&2; exit 1; }

NODE="$(readlink -f "$(command -v node)")" || die "node is not installed"
NODE_VERSION="$("$NODE" --version)"
STAMP="code-server $VERSION node $NODE_VERSION $(uname -m)"

installed() { [ -f "$DIR/.berth-installed" ] && [ "$(cat "$DIR/.berth-installed")" = "$STAMP" ] && [ -x "$DIR/node" ]; }

if installed; then
  log "already installed in $DIR ($STAMP)"
  exit 0
fi

mkdir -p "$(dirname "$DIR")"
# Two callers at once (CI and a test run) must not build into the same place.
exec 9>"$DIR.lock"
flock 9
if installed; then
  log "installed meanwhile in $DIR"
  exit 0
fi

case "$NODE_VERSION" in v20.*) ;; *) die "code-server $VERSION needs node 20 (found $NODE_VERSION)";; esac

# --- prerequisites: rg stands in for @vscode/ripgrep's download; gssapi.h for kerberos; a
# compiler toolchain for the native modules.
need=()
command -v rg >/dev/null || need+=(ripgrep)
[ -f /usr/include/gssapi/gssapi.h ] || need+=(libkrb5-dev)
command -v g++ >/dev/null || need+=(g++)
command -v make >/dev/null || need+=(make)
command -v python3 >/dev/null || need+=(python3)
if [ "${#need[@]}" -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || die "missing Debian packages: ${need[*]} (install them as root)"
  log "installing Debian packages: ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# node-gyp must use the installed node's headers: it cannot download them here.
NODE_PREFIX="$(dirname "$(dirname "$NODE")")"
[ -f "$NODE_PREFIX/include/node/node.h" ] || die "node headers not found under $NODE_PREFIX/include/node (Debian/NodeSource nodejs ships them)"
NPM_ROOT="$(npm root -g 2>/dev/null)"
NODE_GYP="$NPM_ROOT/npm/node_modules/node-gyp/bin/node-gyp.js"
[ -f "$NODE_GYP" ] || die "npm's bundled node-gyp not found at $NODE_GYP"
export npm_config_nodedir="$NODE_PREFIX" npm_config_node_gyp="$NODE_GYP"
export npm_config_yes=true npm_config_unsafe_perm=true npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false

STAGE="$(mktemp -d "$DIR.partial.XXXXXX")"
trap 'rm -rf "$STAGE"' EXIT
started=$SECONDS

log "npm install code-server@$VERSION (scripts off: they download from GitHub)"
npm install --no-save --no-package-lock --ignore-scripts --loglevel=error --prefix "$STAGE" "code-server@$VERSION" >/dev/null
CS="$STAGE/node_modules/code-server"
VS="$CS/lib/vscode"

log "installing the bundled VS Code's dependencies"
(cd "$VS" && npm install --omit=dev --ignore-scripts --loglevel=error >/dev/null)
(cd "$VS/extensions" && npm install --omit=dev --ignore-scripts --loglevel=error >/dev/null && node postinstall.mjs >/dev/null)

log "building native modules"
gyp_rebuild() { (cd "$1" && node "$NODE_GYP" rebuild --nodedir="$NODE_PREFIX" -j 2 >"$STAGE/gyp-$(basename "$1").log" 2>&1) || {
  tail -n 30 "$STAGE/gyp-$(basename "$1").log" >&2
  die "building $1 failed"
}; }
for mod in kerberos @vscode/spdlog native-watchdog node-pty @vscode/deviceid; do
  [ -d "$VS/node_modules/$mod" ] && gyp_rebuild "$VS/node_modules/$mod"
done
# argon2 (password auth, loaded even with --auth none) builds through node-pre-gyp.
(cd "$STAGE/node_modules/argon2" && node ../@mapbox/node-pre-gyp/bin/node-pre-gyp rebuild --build-from-source >"$STAGE/gyp-argon2.log" 2>&1) || {
  tail -n 30 "$STAGE/gyp-argon2.log" >&2
  die "building argon2 failed"
}

log "ripgrep from Debian, and the links code-server's postinstall would make"
# The binary must work inside workspace containers too, so it travels with the one
# library it needs beyond glibc; a wrapper points the loader at it.
RG_DIR="$VS/node_modules/@vscode/ripgrep/bin"
mkdir -p "$RG_DIR/lib"
cp "$(readlink -f "$(command -v rg)")" "$RG_DIR/rg.bin"
for lib in $(ldd "$RG_DIR/rg.bin" | awk '/=> \// {print $3}'); do
  case "$(basename "$lib")" in libc.so*|libm.so*|libgcc_s.so*|libdl.so*|libpthread.so*|ld-linux*) ;; *) cp "$lib" "$RG_DIR/lib/";; esac
done
cat >"$RG_DIR/rg" <<'EOF'
#!/bin/sh
here="$(dirname "$0")"
LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "$here/rg.bin" "$@"
EOF
chmod +x "$RG_DIR/rg"
ln -sfn node_modules "$VS/node_modules.asar"
ln -sfn code-linux.sh "$VS/bin/remote-cli/code-server"
ln -sfn browser-linux.sh "$VS/bin/helpers/browser.sh"

cp "$NODE" "$STAGE/node"
chmod 755 "$STAGE/node"
rm -f "$STAGE"/gyp-*.log
# World-readable: containers may run as any user.
chmod -R a+rX "$STAGE"

log "checking that it starts"
PORT=$((20000 + RANDOM % 20000))
CHECK_HOME="$(mktemp -d)"
HOME="$CHECK_HOME" "$STAGE/node" "$CS/out/node/entry.js" --bind-addr "127.0.0.1:$PORT" --auth none \
  --disable-telemetry --disable-update-check --user-data-dir "$CHECK_HOME/data" --config "$CHECK_HOME/config.yaml" "$CHECK_HOME" \
  >"$CHECK_HOME/log" 2>&1 &
pid=$!
ok=0
for _ in $(seq 1 60); do
  if node -e "fetch('http://127.0.0.1:$PORT/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"; then ok=1; break; fi
  sleep 0.5
done
kill "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
if [ "$ok" -ne 1 ]; then cat "$CHECK_HOME/log" >&2; rm -rf "$CHECK_HOME"; die "code-server did not answer /healthz"; fi
rm -rf "$CHECK_HOME"

printf '%s' "$STAMP" >"$STAGE/.berth-installed"
rm -rf "$DIR"
mv "$STAGE" "$DIR"
trap - EXIT
log "installed in $DIR in $((SECONDS - started)) s ($STAMP)"
