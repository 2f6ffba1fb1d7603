import type { Writable } from 'node:stream';
import type { WorkspaceShell } from '../../lib/workspace-access.js';

/** Starting a program in a container answers in milliseconds; past this the engine is stuck. */
export const EXEC_START_TIMEOUT_MS = 30_000;

export class ExecTimeoutError extends Error {
  override name = 'ExecTimeoutError';
}

/** `p`, or an ExecTimeoutError after `ms`: no step waits for the container engine for ever. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ExecTimeoutError(`${what} took longer than ${Math.round(ms / 1000)} s`)), ms);
  });
  return Promise.race([p, expired]).finally(() => clearTimeout(timer));
}

export interface CommandResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

/**
 * Runs a program in a container as an argument vector (never through a shell on the host;
 * where a shell runs, it is the container's, with the arguments as "$1"…), feeding `stdin`
 * and collecting the output, at most `maxOutput` bytes of it, within `timeoutMs`.
 */
export async function runCommand(
  container: WorkspaceShell,
  argv: string[],
  opts: { stdin?: Buffer; timeoutMs?: number; maxOutput?: number; env?: string[] } = {},
): Promise<CommandResult> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const maxOutput = opts.maxOutput ?? 16 * 1024 * 1024;
  const exec = await withTimeout(
    container.exec({ argv, stdin: Boolean(opts.stdin), workingDir: '/workspace', ...(opts.env ? { env: opts.env } : {}) }),
    EXEC_START_TIMEOUT_MS,
    'starting a command in the workspace',
  );
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let size = 0;
  let tooLarge = false;
  const collect = (into: Buffer[]) => (c: Buffer) => {
    if (tooLarge) return;
    size += c.length;
    if (size > maxOutput) {
      tooLarge = true;
      exec.destroy();
      return;
    }
    into.push(c);
  };
  exec.stdout.on('data', collect(out));
  exec.stderr.on('data', collect(err));
  if (opts.stdin) exec.stdin.end(opts.stdin);
  await withTimeout(exec.ended, timeoutMs, 'a command in the workspace').catch((e) => {
    exec.destroy();
    throw e;
  });
  if (tooLarge) throw new Error(`the output was larger than ${Math.round(maxOutput / 1024 / 1024)} MB`);
  const code = await withTimeout(exec.exitCode(), EXEC_START_TIMEOUT_MS, 'reading an exit status');
  return { code: code ?? -1, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8') };
}

/**
 * Ends every process of one SSH session in a container: each session's processes carry
 * BERTH_SSH_SESSION=<id> in their environment (inherited by whatever they start), so a client
 * that went away takes its shell, editor and background jobs with it, and nobody else's.
 * SIGHUP first, as a real hang-up (editors save their swap files), then SIGKILL.
 */
export async function hangUpSession(container: WorkspaceShell, sessionId: string): Promise<void> {
  if (!/^[a-f0-9]{16,64}$/.test(sessionId)) return;
  const script =
    'mark="BERTH_SSH_SESSION=$1"; pids=""; ' +
    'for f in /proc/[0-9]*/environ; do p=${f#/proc/}; p=${p%/environ}; [ "$p" = "$$" ] && continue; ' +
    'if tr "\\000" "\\n" < "$f" 2>/dev/null | grep -qxF "$mark"; then pids="$pids $p"; fi; done; ' +
    '[ -n "$pids" ] || exit 0; kill -HUP $pids 2>/dev/null; sleep 2; kill -KILL $pids 2>/dev/null; exit 0';
  await runCommand(container, ['sh', '-c', script, 'sh', sessionId], { timeoutMs: 15_000 }).catch(() => {
    // the container is gone, and the processes with it
  });
}

/** Writes that cannot fail the caller: a client that went away takes no bytes. */
export function safeWrite(to: Writable, chunk: Buffer): void {
  if (!to.destroyed && to.writable) to.write(chunk);
}
