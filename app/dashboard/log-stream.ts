import type { IncomingMessage, ServerResponse } from 'node:http';
import type { PrismaClient } from '../../lib/db/client.js';
import { chunksAfter } from './log-pages.js';
import { logIsLive } from './presenters.js';

export interface StreamOptions {
  /** how often the database is asked for new chunks */
  pollMs?: number;
  /** comment lines keep proxies from closing an idle stream */
  heartbeatMs?: number;
  /** a stream ends after this long; EventSource reconnects with Last-Event-ID */
  maxMs?: number;
}

/**
 * GET /builds/:id/log/stream: Server-Sent Events with the log chunks written after `afterId`
 * (the page's last chunk, or the Last-Event-ID of a reconnecting EventSource). Each event's id
 * is its chunk id. The worker writes chunks to PostgreSQL, possibly from another machine, so
 * the stream polls the table rather than listening to the worker. It sends `end` with the
 * build's state when the log can no longer grow (build finished and the workspace no longer
 * starting on it) and closes. `status` events carry the build's state and step and, while the
 * workspace runs on this build, the workspace's state and reason.
 */
export async function streamBuildLog(
  db: PrismaClient,
  req: IncomingMessage,
  res: ServerResponse,
  buildId: string,
  afterId: bigint,
  opts: StreamOptions = {},
): Promise<void> {
  const pollMs = opts.pollMs ?? 500;
  const heartbeatMs = opts.heartbeatMs ?? 15_000;
  const deadline = Date.now() + (opts.maxMs ?? 30 * 60_000);
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    connection: 'keep-alive',
    // nginx buffers responses unless told not to; a buffered stream is not live
    'x-accel-buffering': 'no',
  });
  res.write('retry: 2000\n\n');
  let closed = false;
  req.once('close', () => (closed = true));
  res.once('close', () => (closed = true));
  let last = afterId;
  let lastWrite = Date.now();
  let lastStatus = '';
  while (!closed && Date.now() < deadline) {
    // Liveness first, chunks second: the worker flushes its last chunks before it marks the
    // build finished, so a stream that saw "finished" cannot miss the final output.
    const build = await db.build.findUnique({
      where: { id: buildId },
      select: { id: true, state: true, step: true, workspace: { select: { state: true, stateReason: true, currentBuildId: true } } },
    });
    if (!build) {
      res.write(`event: end\ndata: ${JSON.stringify({ state: 'gone' })}\n\n`);
      break;
    }
    const live = logIsLive(build, build.workspace);
    // Progress besides the text: the page updates its badges from these.
    const status = JSON.stringify({
      state: build.state,
      step: build.step,
      workspace: build.workspace?.currentBuildId === build.id ? { state: build.workspace.state, reason: build.workspace.stateReason } : null,
    });
    if (status !== lastStatus) {
      res.write(`event: status\ndata: ${status}\n\n`);
      lastStatus = status;
    }
    let sent = 0;
    for (;;) {
      const chunks = await chunksAfter(db, buildId, last);
      for (const c of chunks) {
        res.write(`id: ${c.id}\nevent: log\ndata: ${JSON.stringify(c.text)}\n\n`);
        last = c.id;
      }
      sent += chunks.length;
      if (chunks.length < 200 || closed) break;
    }
    if (sent) lastWrite = Date.now();
    if (!live && sent === 0) {
      res.write(`event: end\ndata: ${JSON.stringify({ state: build.state })}\n\n`);
      break;
    }
    if (Date.now() - lastWrite > heartbeatMs) {
      res.write(': keep-alive\n\n');
      lastWrite = Date.now();
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
  res.end();
}

/** The chunk id a stream resumes after: Last-Event-ID (reconnect) wins over `?after=`. */
export function resumeId(req: IncomingMessage, after: string | null): bigint {
  const raw = (req.headers['last-event-id'] as string | undefined) ?? after ?? '0';
  return /^\d{1,19}$/.test(raw) ? BigInt(raw) : 0n;
}
