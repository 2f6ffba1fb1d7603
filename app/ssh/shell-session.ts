import type { WorkspaceShell } from '../../lib/workspace-access.js';
import type { PseudoTtyInfo, ServerChannel } from 'ssh2';
import { PROGRAMS } from '../ide/terminal.js';
import { EXEC_START_TIMEOUT_MS, hangUpSession, withTimeout } from './container-exec.js';

const MAX_COLS = 1000;
const MAX_ROWS = 500;

export interface ShellOptions {
  container: WorkspaceShell;
  /** the client's command (`ssh host cmd`), or null for an interactive shell */
  command: string | null;
  pty: PseudoTtyInfo | null;
  /** the person's environment: git identity, BERTH_SSH_SESSION */
  env: string[];
  sessionId: string;
  onActivity: () => void;
}

export interface RunningShell {
  resize(cols: number, rows: number): void;
}

/**
 * One SSH `shell` or `exec` channel bridged to a program started in the workspace's main
 * container, in /workspace, as the container's user (the same as the browser terminal): with
 * a TTY when the client asked for one (sized, resized on window-change), otherwise stdout and
 * stderr apart, so `ssh host cmd > file` gets only stdout. The command is the client's own and
 * runs in the workspace, never on the host. The exit status goes back to the client; a client
 * that goes away ends the session's processes.
 */
export async function runShell(channel: ServerChannel, opts: ShellOptions): Promise<RunningShell> {
  const tty = Boolean(opts.pty);
  const env = [...opts.env];
  if (opts.pty) env.push(`TERM=${/^[A-Za-z0-9._+-]{1,64}$/.test(opts.pty.term) ? opts.pty.term : 'xterm-256color'}`);
  const exec = await withTimeout(
    opts.container.exec({ argv: ['sh', '-c', opts.command ?? PROGRAMS.terminal], tty, stdin: true, workingDir: '/workspace', env }),
    EXEC_START_TIMEOUT_MS,
    'starting the shell',
  );
  let ended = false;
  const resize = (cols: number, rows: number) => {
    if (!tty || ended || !Number.isInteger(cols) || !Number.isInteger(rows) || cols < 1 || rows < 1) return;
    void exec.resize(Math.min(cols, MAX_COLS), Math.min(rows, MAX_ROWS));
  };
  if (opts.pty) resize(opts.pty.cols, opts.pty.rows);

  // with a TTY everything comes on stdout
  exec.stdout.on('data', (c: Buffer) => channel.writable && channel.write(c));
  exec.stderr.on('data', (c: Buffer) => channel.stderr.writable && channel.stderr.write(c));
  channel.on('data', (c: Buffer) => {
    opts.onActivity();
    if (!exec.destroyed) exec.stdin.write(c);
  });
  // the client's end of input (`echo x | ssh host cat`): the program's stdin closes
  channel.on('end', () => {
    if (!tty && !exec.destroyed) exec.stdin.end();
  });

  const finish = async () => {
    if (ended) return;
    ended = true;
    const code = await withTimeout(exec.exitCode(), EXEC_START_TIMEOUT_MS, 'reading the exit status').catch(() => null);
    if (!channel.destroyed) {
      if (typeof code === 'number') channel.exit(code);
      else channel.exit('HUP', false, 'the workspace ended the session');
      channel.end();
    }
  };
  void exec.ended.then(() => finish());

  // The client went away while the program runs: the engine would keep it running, so end it.
  channel.on('close', () => {
    if (ended) return;
    ended = true;
    exec.destroy();
    void hangUpSession(opts.container, opts.sessionId);
  });
  return { resize };
}
