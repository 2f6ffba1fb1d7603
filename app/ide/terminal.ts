import type { WorkspaceShell } from '../../lib/workspace-access.js';
import type { RawData, WebSocket } from 'ws';

export type TerminalProgram = 'terminal' | 'vim' | 'emacs';

/**
 * What each terminal IDE runs, as fixed shell text: nothing from a request ever becomes part
 * of a command. An image without the editor still gets a shell, with a line saying why.
 */
export const PROGRAMS: Record<TerminalProgram, string> = {
  terminal: 'if command -v bash >/dev/null 2>&1; then exec bash; else exec sh; fi',
  vim:
    'if command -v vim >/dev/null 2>&1; then exec vim .; elif command -v vi >/dev/null 2>&1; then exec vi; ' +
    'else echo "vim is not installed in this workspace\'s image; here is a shell."; exec sh; fi',
  emacs:
    'if command -v emacs >/dev/null 2>&1; then exec emacs -nw .; ' +
    'else echo "emacs is not installed in this workspace\'s image; here is a shell."; exec sh; fi',
};

/**
 * The engine keeps a program running after its client goes away, so the terminal learns the
 * process id first (the wrapper prints it before exec-ing the program, which keeps the pid)
 * and kills it when the browser closes the socket.
 */
const PID_LINE = /^berth-pid:(\d+)\r?\n/;
const WRAPPER = (program: string) => `printf 'berth-pid:%s\\n' "$$"; ${program}`;

const MAX_COLS = 1000;
const MAX_ROWS = 500;

type ClientMessage = { type: 'input'; data: string } | { type: 'resize'; cols: number; rows: number };

/**
 * One browser terminal: a WebSocket bridged to a TTY program started in the workspace's main
 * container, in /workspace. Text frames from the browser are JSON (`input`, `resize`);
 * output goes back as binary frames. The exec ends when the socket closes, and the socket
 * closes when the program exits.
 */
export async function runTerminal(
  socket: WebSocket,
  container: WorkspaceShell,
  program: TerminalProgram,
  /** env: added to the exec's environment (the person's git identity and credential helper) */
  opts: { cols?: number; rows?: number; onActivity?: () => void; env?: string[] } = {},
): Promise<void> {
  // Messages are held until the program runs at the browser's size: keystrokes typed while
  // the exec starts are kept, and a command typed first sees the right `stty size`.
  const held: ClientMessage[] = [];
  let flowing = false;
  let closed = false;
  let apply: (msg: ClientMessage) => void = () => {};
  socket.on('message', (data: RawData, isBinary: boolean) => {
    opts.onActivity?.();
    const msg = parseMessage(data, isBinary);
    if (!msg || closed) return;
    if (flowing) apply(msg);
    else held.push(msg);
  });

  const exec = await container.exec({
    argv: ['sh', '-c', WRAPPER(PROGRAMS[program])],
    tty: true,
    stdin: true,
    workingDir: '/workspace',
    env: ['TERM=xterm-256color', 'COLORTERM=truecolor', ...(opts.env ?? [])],
  });
  let pid: string | undefined;
  let head = Buffer.alloc(0);
  /** the browser left before the pid was known: kill as soon as it is */
  let hangUpWhenKnown = false;

  const resize = async (cols: number, rows: number) => {
    if (!Number.isInteger(cols) || !Number.isInteger(rows) || cols < 1 || rows < 1) return;
    await exec.resize(Math.min(cols, MAX_COLS), Math.min(rows, MAX_ROWS));
  };
  apply = (msg) => {
    if (msg.type === 'input') exec.stdin.write(msg.data);
    else void resize(msg.cols, msg.rows);
  };
  /** Once the program runs (the engine cannot size it before that): size it, then let input through. */
  const startFlowing = async () => {
    if (flowing) return;
    const lastResize = [...held].reverse().find((m) => m.type === 'resize');
    const size = lastResize?.type === 'resize' ? lastResize : opts.cols && opts.rows ? { cols: opts.cols, rows: opts.rows } : undefined;
    if (size) await resize(size.cols, size.rows);
    flowing = true;
    for (const msg of held.splice(0)) if (msg.type === 'input' && !closed) apply(msg);
  };
  // A wrapper that never says its pid (an odd shell) must not hold the keyboard for ever.
  setTimeout(() => void startFlowing(), 3_000).unref();

  exec.stdout.on('data', (chunk: Buffer) => {
    if (pid === undefined) {
      head = Buffer.concat([head, chunk]);
      const m = PID_LINE.exec(head.toString('latin1'));
      if (!m && head.length < 64 && !head.includes(10)) return; // wait for the whole first line
      pid = m ? m[1]! : '';
      chunk = m ? head.subarray(m[0].length) : head;
      head = Buffer.alloc(0);
      if (hangUpWhenKnown) {
        if (pid) void hangUp(container, pid);
        exec.destroy();
        return;
      }
      void startFlowing();
      if (!chunk.length) return;
    }
    if (socket.readyState === socket.OPEN) socket.send(chunk, { binary: true });
  });
  const finish = (code: number, reason: string) => {
    if (closed) return;
    closed = true;
    if (socket.readyState === socket.OPEN || socket.readyState === socket.CONNECTING) socket.close(code, reason);
    exec.destroy();
  };
  void exec.ended.then((how) => (how === 'end' ? finish(1000, 'the program exited') : finish(1011, 'the terminal failed')));

  const onBrowserGone = () => {
    if (closed) return; // the program ended first: nothing left to kill
    closed = true;
    if (pid !== undefined) {
      exec.destroy();
      if (pid) void hangUp(container, pid);
      return;
    }
    // Keep reading until the wrapper says its pid, then kill; give up after a few seconds.
    hangUpWhenKnown = true;
    setTimeout(() => exec.destroy(), 5_000).unref();
  };
  socket.on('close', onBrowserGone);
  // The browser may have left while the exec was being set up.
  if (socket.readyState === socket.CLOSING || socket.readyState === socket.CLOSED) onBrowserGone();
}

function parseMessage(data: RawData, isBinary: boolean): ClientMessage | null {
  if (isBinary) return null;
  try {
    const msg = JSON.parse(data.toString()) as ClientMessage;
    if (msg.type === 'input' && typeof msg.data === 'string') return msg;
    if (msg.type === 'resize') return { type: 'resize', cols: Number(msg.cols), rows: Number(msg.rows) };
  } catch {
    // not a message of ours
  }
  return null;
}

/** SIGHUP as a real terminal hang-up would send (editors save their swap files), then SIGKILL. */
async function hangUp(container: WorkspaceShell, pid: string): Promise<void> {
  if (!/^\d+$/.test(pid) || pid === '1') return; // never the container's init
  try {
    await container.exec({ argv: ['sh', '-c', 'kill -HUP "$1" 2>/dev/null; sleep 2; kill -KILL "$1" 2>/dev/null; true', 'sh', pid], detach: true });
  } catch {
    // the container is gone, and the process with it
  }
}
