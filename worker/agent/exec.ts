import type { Duplex } from 'node:stream';
import type { ExecRequest, WorkspaceAccess } from '../../lib/workspace-access.js';
import { FRAME, readFrames, writeFrame } from '../../lib/hosts/agent-frames.js';

import { EXEC_PROTOCOL } from '../../lib/hosts/agent-client.js';
import { refuseSocket } from './refuse.js';

/**
 * `GET /v1/exec?workspace=<id>&container=<id or name>&req=<base64url JSON ExecRequest>` (signed,
 * Upgrade `berth-exec`): runs the program in that container of the workspace on this host and
 * carries its streams in frames (lib/hosts/agent-frames.ts). The container must be a running one
 * of that workspace on this host (`belongs`): a terminal, an SSH session or SFTP runs only where
 * the web process could have run it on a single host.
 */
export async function handleExec(
  access: WorkspaceAccess,
  belongs: (workspaceId: string, container: string) => Promise<boolean>,
  workspaceId: string,
  url: URL,
  socket: Duplex,
  head: Buffer,
  log?: (m: string) => void,
): Promise<void> {
  const container = url.searchParams.get('container') ?? '';
  let req: ExecRequest;
  try {
    req = JSON.parse(Buffer.from(url.searchParams.get('req') ?? '', 'base64url').toString('utf8')) as ExecRequest;
    if (!Array.isArray(req.argv) || !req.argv.every((a) => typeof a === 'string')) throw new Error('argv');
  } catch {
    return refuseSocket(socket, 400, 'not an exec request');
  }
  if (!container || !(await belongs(workspaceId, container))) return refuseSocket(socket, 403, `${container} is not a running container of workspace ${workspaceId} on this host`);
  const session = await access.shell(container).exec({ argv: req.argv, tty: req.tty, stdin: req.stdin, env: req.env, workingDir: req.workingDir, detach: req.detach });
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${EXEC_PROTOCOL}\r\n\r\n`);
  if (head.length) socket.unshift(head);
  readFrames(socket, (type, payload) => {
    if (type === FRAME.stdin) session.stdin.write(payload);
    else if (type === FRAME.stdinEnd) session.stdin.end();
    else if (type === FRAME.resize) {
      const size = safeJson(payload) as { cols?: number; rows?: number } | null;
      if (size && Number.isInteger(size.cols) && Number.isInteger(size.rows)) void session.resize(size.cols!, size.rows!).catch(() => {});
    }
  });
  session.stdout.on('data', (c: Buffer) => writeFrame(socket, FRAME.stdout, c));
  session.stderr.on('data', (c: Buffer) => writeFrame(socket, FRAME.stderr, c));
  // the web went away: drop the program's connection (a terminal's hang-up is the web's to send)
  socket.once('close', () => session.destroy());
  socket.on('error', () => session.destroy());
  void session.ended.then(async () => {
    const exitCode = await session.exitCode().catch(() => null);
    if (socket.writable) {
      writeFrame(socket, FRAME.exit, JSON.stringify({ exitCode }));
      socket.end();
    }
  }).catch((err: Error) => {
    log?.(`exec in ${container}: ${err.message}`);
    socket.destroy();
  });
}

function safeJson(b: Buffer): unknown {
  try {
    return JSON.parse(b.toString('utf8'));
  } catch {
    return null;
  }
}
