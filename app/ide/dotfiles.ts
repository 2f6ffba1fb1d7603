/**
 * A person's dotfiles repository, applied in their VS Code container when it starts (Coder's
 * personalize): cloned into ~/.dotfiles (on their own IDE volume, so a restart only pulls)
 * with their own GitHub token through the credential helper in the container's env, then the
 * first of its install scripts runs there. Nothing of it runs on the host; the URL is an
 * argument of a fixed script, never part of it.
 */

/** how long the clone and install may take together before they are killed */
export const DOTFILES_TIMEOUT_S = 120;

/** the scripts looked for, in this order (Coder's, without the script/ folder) */
export const DOTFILES_INSTALLERS = ['install.sh', 'install', 'setup.sh', 'bootstrap.sh'];

const INNER = [
  'url="$1"; dir="$HOME/.dotfiles"',
  'echo "==> dotfiles: $url"',
  'if [ -d "$dir/.git" ]; then git -C "$dir" pull -q --ff-only || echo "==> dotfiles: could not update $dir, using it as it is";',
  'else git clone -q --depth 1 -- "$url" "$dir" || { echo "==> dotfiles: could not clone $url"; exit 0; }; fi',
  `for f in ${DOTFILES_INSTALLERS.join(' ')}; do`,
  '  if [ -f "$dir/$f" ]; then',
  '    echo "==> dotfiles: running $f"; cd "$dir" || exit 0',
  '    if [ -x "$f" ]; then "./$f"; else sh "./$f"; fi',
  '    echo "==> dotfiles: $f exited with $?"; exit 0',
  '  fi',
  'done',
  `echo "==> dotfiles: no ${DOTFILES_INSTALLERS.join(', ')} in the repository; cloned only"`,
].join('\n');

/**
 * `sh -c DOTFILES_SCRIPT berth-dotfiles <url> <seconds>`: the output goes to ~/.dotfiles.log and
 * to the IDE container's own log (its process 1's output), the whole under `timeout` when the
 * image has it (GNU and busybox kill the script's process group).
 */
export const DOTFILES_SCRIPT = [
  'url="$1"; limit="$2"',
  `inner='${INNER.replace(/'/g, `'\\''`)}'`,
  'out=/proc/1/fd/1; [ -w "$out" ] || out=/dev/null',
  '{ if command -v timeout >/dev/null 2>&1; then timeout -s KILL "$limit" sh -c "$inner" sh "$url"; else sh -c "$inner" sh "$url"; fi',
  '  code=$?; [ "$code" = 0 ] || echo "==> dotfiles: ended with exit code $code (killed after ${limit} s when 137)"; } 2>&1 | tee "$HOME/.dotfiles.log" > "$out"',
].join('\n');
