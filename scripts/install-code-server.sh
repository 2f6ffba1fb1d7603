#!/usr/bin/env bash
# Installs code-server (VS Code in the browser) once per Berth host, for the `vscode` IDE.
#
#   scripts/install-code-server.sh [DIR]      DIR defaults to $BERTH_CODE_SERVER_DIR,
#                                             else <repo>/.data/code-server
#   scripts/install-code-server.sh --check    says which release, headers and node-gyp it
#                                             would use with this node, installs nothing
#
# The install is self-contained: DIR/node is a copy of the node that built the native
# modules (their ABI must match), DIR/node_modules/code-server the package. The worker
# mounts DIR read-only into each workspace's IDE container, so nothing is downloaded per
# workspace. Idempotent: when DIR already holds this version built for this node, it exits
# at once. Nothing here may download from anywhere but the npm registry (see
# shared/notes/ide.md for why each step exists).
#
# Each code-server release is built for one Node major (its package.json "engines"); the
# version is chosen to match the node found on PATH: 20, 22 or 24. The native modules are
# compiled against that node's headers, found as node-gyp finds them (see find_headers).
# Any other node, or no headers, is reported with what to do, and Berth's IDEs fall back to
# the terminal (npm start goes on; this script exits 1).
set -euo pipefail

CHECK=0
if [ "${1:-}" = "--check" ]; then CHECK=1; shift; fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${1:-${BERTH_CODE_SERVER_DIR:-$ROOT/.data/code-server}}"
case "$DIR" in /*) ;; *) DIR="$ROOT/$DIR" ;; esac

log() { printf '[code-server] %s\n' "$*"; }
die() { printf '[code-server] ERROR: %s\n' "$*" >&2; exit 1; }

NODE="$(readlink -f "$(command -v node)")" || die "node is not installed"
NODE_VERSION="$("$NODE" --version)"
NODE_MAJOR="${NODE_VERSION#v}"
NODE_MAJOR="${NODE_MAJOR%%.*}"
# the newest code-server release whose "engines" names this Node major
case "$NODE_MAJOR" in
  20) DEFAULT_VERSION=4.100.3 ;;
  22) DEFAULT_VERSION=4.117.0 ;;
  24) DEFAULT_VERSION=4.139.1 ;;
  *) DEFAULT_VERSION= ;;
esac
VERSION="${CODE_SERVER_VERSION:-$DEFAULT_VERSION}"
[ -n "$VERSION" ] || die "code-server is built for Node 20, 22 or 24; the node on PATH ($NODE) is $NODE_VERSION. Put Node 20, 22 or 24 first on PATH (or set CODE_SERVER_VERSION to a release built for $NODE_VERSION) and run this again; until then VS Code IDEs fall back to the terminal."
STAMP="code-server $VERSION node $NODE_VERSION $(uname -m)"

installed() { [ -f "$DIR/.berth-installed" ] && [ "$(cat "$DIR/.berth-installed")" = "$STAMP" ] && [ -x "$DIR/node" ]; }

if [ "$CHECK" = 0 ]; then
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
fi


# --- prerequisites: rg stands in for @vscode/ripgrep's download; gssapi.h for kerberos; a
# compiler toolchain for the native modules.
need=()
command -v rg >/dev/null || need+=(ripgrep)
[ -f /usr/include/gssapi/gssapi.h ] || need+=(libkrb5-dev)
command -v g++ >/dev/null || need+=(g++)
command -v make >/dev/null || need+=(make)
command -v python3 >/dev/null || need+=(python3)
if [ "${#need[@]}" -gt 0 ] && [ "$CHECK" = 0 ]; then
  [ "$(id -u)" -eq 0 ] || die "missing Debian packages: ${need[*]} (install them as root)"
  log "installing Debian packages: ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# node-gyp must use this node's headers: it cannot download them here. Looked for where
# node-gyp looks: npm's nodedir setting, the prefix node was built for (process.config), the
# installation the binary sits in (nvm, the official tarball, /usr of a distribution's
# package), and node-gyp's cache of downloaded headers. They must be this node's version.
headers_version() { # DIR -> "major.minor.patch" of DIR/include/node/node_version.h
  awk '/define NODE_(MAJOR|MINOR|PATCH)_VERSION /{v[$2]=$3} END{if (v["NODE_MAJOR_VERSION"]!="") print v["NODE_MAJOR_VERSION"]"."v["NODE_MINOR_VERSION"]"."v["NODE_PATCH_VERSION"]}' "$1/include/node/node_version.h" 2>/dev/null
}
find_headers() {
  local want="${NODE_VERSION#v}" cache="${XDG_CACHE_HOME:-$HOME/.cache}" candidates=() dir found
  [ -n "${npm_config_nodedir:-}" ] && candidates+=("$npm_config_nodedir")
  found="$(npm config get nodedir 2>/dev/null || true)"
  [ -n "$found" ] && [ "$found" != "undefined" ] && [ "$found" != "null" ] && candidates+=("$found")
  found="$("$NODE" -p 'process.config.variables.node_prefix || ""' 2>/dev/null || true)"
  [ -n "$found" ] && candidates+=("$found")
  candidates+=("$(dirname "$(dirname "$NODE")")" "$cache/node-gyp/$want" "$HOME/.node-gyp/$want" /usr /usr/local)
  for dir in "${candidates[@]}"; do
    [ -f "$dir/include/node/node.h" ] || continue
    found="$(headers_version "$dir")"
    if [ "${found%%.*}" = "$NODE_MAJOR" ]; then
      [ "$found" = "$want" ] || log "using the headers of node $found in $dir for node $want (same major: same ABI)"
      NODE_HEADERS="$dir"
      return 0
    fi
    SEEN+=("$dir (node ${found:-?})")
  done
  SEEN_ALL="${candidates[*]}"
  return 1
}
SEEN=()
NODE_HEADERS=
find_headers || die "the headers of node $NODE_VERSION (include/node/node.h), needed to build code-server $VERSION's native modules, were not found; looked in: $SEEN_ALL${SEEN[*]:+; found only other versions: ${SEEN[*]}}. Install them (Debian/Ubuntu: the nodejs or libnode-dev package of that version; nvm and the official tarball ship them in include/node), or set npm_config_nodedir to the directory holding include/node. Until then VS Code IDEs fall back to the terminal."
NODE_PREFIX="$NODE_HEADERS"
# npm's own node-gyp, wherever npm is installed
NODE_GYP="${npm_config_node_gyp:-}"
if [ -z "$NODE_GYP" ] || [ ! -f "$NODE_GYP" ]; then
  NODE_GYP="$(npm root -g 2>/dev/null)/npm/node_modules/node-gyp/bin/node-gyp.js"
fi
if [ ! -f "$NODE_GYP" ]; then
  npm_cli="$(readlink -f "$(command -v npm)" 2>/dev/null || true)"
  NODE_GYP="$(dirname "$(dirname "$npm_cli")")/node_modules/node-gyp/bin/node-gyp.js"
fi
[ -f "$NODE_GYP" ] || die "npm's bundled node-gyp was not found (looked next to $(command -v npm)); set npm_config_node_gyp to node-gyp/bin/node-gyp.js"
if [ "$CHECK" = 1 ]; then
  log "node $NODE_VERSION ($NODE): code-server $VERSION, headers in $NODE_HEADERS/include/node, node-gyp $NODE_GYP${need[*]:+; missing Debian packages: ${need[*]}}"
  exit 0
fi
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
(cd "$VS/extensions" && npm install --omit=dev --ignore-scripts --loglevel=error >/dev/null && if [ -f postinstall.mjs ]; then "$NODE" postinstall.mjs >/dev/null; fi)

log "building native modules"
gyp_rebuild() { (cd "$1" && "$NODE" "$NODE_GYP" rebuild --nodedir="$NODE_PREFIX" -j 2 >"$STAGE/gyp-$(basename "$1").log" 2>&1) || {
  tail -n 30 "$STAGE/gyp-$(basename "$1").log" >&2
  die "building $1 failed"
}; }
for mod in kerberos @vscode/spdlog native-watchdog node-pty @vscode/deviceid; do
  [ -d "$VS/node_modules/$mod" ] && gyp_rebuild "$VS/node_modules/$mod"
done
# argon2 (password auth, loaded even with --auth none) builds through node-pre-gyp.
if [ -d "$STAGE/node_modules/argon2" ]; then
  (cd "$STAGE/node_modules/argon2" && "$NODE" ../@mapbox/node-pre-gyp/bin/node-pre-gyp rebuild --build-from-source >"$STAGE/gyp-argon2.log" 2>&1) || {
    tail -n 30 "$STAGE/gyp-argon2.log" >&2
    die "building argon2 failed"
  }
fi

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
  if "$NODE" -e "fetch('http://127.0.0.1:$PORT/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"; then ok=1; break; fi
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
