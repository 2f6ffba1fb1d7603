import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Probot } from 'probot';
import type { Handler } from './http.js';

/** GitHub does not deliver payloads over 25 MB, so a bigger body is not GitHub's. */
export const MAX_WEBHOOK_BYTES = 25 * 1024 * 1024;
/** GitHub sends a delivery in one go; a body that trickles in for longer is refused. */
const BODY_TIMEOUT_MS = 20_000;
/** GitHub gives up after 10 s: answer 202 before that while the handlers still run (as Probot does). */
const ANSWER_WITHIN_MS = 9_000;

type Log = Pick<Probot['log'], 'warn'>;

/**
 * GitHub's webhook endpoint, in front of Probot's handlers. Probot's own middleware buffers any
 * body before it checks the signature and, on a refusal, logs the whole body three times (the
 * error carries the delivery): one unsigned 200 MB POST took 29 s and 600 MB of log. Here a
 * body over 25 MB is refused with 413 as soon as its Content-Length (or the stream) says so,
 * before it is kept; the signature is checked before anything is parsed; every refusal is one
 * short log line naming the delivery, the event and the reason, never the body.
 */
export function webhookEndpoint(probot: Probot, path: string, log: Log): Handler {
  return async (req, res) => {
    if (pathOf(req.url) !== path) return false;
    const delivery = headerText(req, 'x-github-delivery');
    const event = headerText(req, 'x-github-event');
    const refuse = (status: number, reason: string) => {
      log.warn({ delivery: delivery ?? null, event: event ?? null, status }, `webhook refused with ${status}: ${reason}`);
      answer(req, res, status, { error: reason });
      return true;
    };
    if (req.method !== 'POST') return refuse(405, `${req.method} is not a webhook delivery (GitHub POSTs)`);
    const length = Number(req.headers['content-length']);
    if (length > MAX_WEBHOOK_BYTES) return refuse(413, `body of ${length} bytes is over GitHub's 25 MB limit`);
    if (!/^\s*application\/json\s*(;|$)/i.test(String(req.headers['content-type'] ?? ''))) {
      return refuse(415, 'Content-Type must be application/json');
    }
    const signature = headerText(req, 'x-hub-signature-256');
    const missing = [!event && 'x-github-event', !delivery && 'x-github-delivery', !signature && 'x-hub-signature-256'].filter(Boolean);
    if (missing.length) return refuse(400, `required headers missing: ${missing.join(', ')}`);

    const body = await readBody(req, MAX_WEBHOOK_BYTES, BODY_TIMEOUT_MS);
    if (body === 'too-large') return refuse(413, "body is over GitHub's 25 MB limit");
    if (body === 'timeout') return refuse(408, `body did not arrive within ${BODY_TIMEOUT_MS / 1000} s`);
    if (body === 'aborted') {
      log.warn({ delivery, event }, 'webhook dropped: the sender closed the connection mid-body');
      return true;
    }
    const text = body.toString('utf8');
    if (!(await probot.webhooks.verify(text, signature!).catch(() => false))) {
      return refuse(400, 'signature does not match: check that WEBHOOK_SECRET is the GitHub App’s webhook secret');
    }
    let payload: unknown;
    try {
      payload = JSON.parse(text);
    } catch {
      return refuse(400, 'body is not JSON');
    }

    // Handlers only record and enqueue; a slow one still gets an answer to GitHub in time.
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), ANSWER_WITHIN_MS)));
    const handled: Promise<{ status: number; error?: string }> = probot.webhooks.receive({ id: delivery!, name: event as never, payload: payload as never }).then(
      () => ({ status: 200 }),
      // Probot has logged each handler's error (app/probot-app.ts keeps the payload out of it).
      (err: { errors?: Array<{ status?: number; message?: string }>; status?: number; message?: string }) => {
        const first = err.errors?.[0] ?? err;
        return { status: typeof first.status === 'number' ? first.status : 500, error: first.message ?? 'the delivery could not be handled' };
      },
    );
    const outcome = await Promise.race([handled, late]);
    clearTimeout(timer);
    if (outcome === 'late') answer(req, res, 202, { ok: true, note: 'still processing' });
    else if (outcome.status < 300) answer(req, res, outcome.status, { ok: true });
    else answer(req, res, outcome.status, { error: outcome.error });
    return true;
  };
}

function pathOf(url: string | undefined): string {
  const path = (url ?? '/').split('?')[0]!;
  return path.length > 1 ? path.replace(/\/+$/, '') : path;
}

/** A header as a short printable string for a log line (it is the sender's, so anything). */
function headerText(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  const text = Array.isArray(value) ? value[0] : value;
  if (!text) return undefined;
  return text.replace(/[^\x20-\x7e]/g, '?').slice(0, 100);
}

/** How long the rest of a refused body is read (and thrown away) before the connection is cut. */
const LINGER_MS = 5_000;

/**
 * Answers. When the body was not read to its end, the rest is read and thrown away for a few
 * seconds before the connection is cut: cut at once, the sender (still writing) would get a
 * reset instead of the answer.
 */
function answer(req: IncomingMessage, res: ServerResponse, status: number, body: object) {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) });
  res.end(text);
  if (!req.complete) {
    const cut = setTimeout(() => req.socket.destroy(), LINGER_MS);
    cut.unref();
    req.once('end', () => clearTimeout(cut));
    req.once('close', () => clearTimeout(cut));
    req.resume();
  }
}

/** The body, or why not: over `limit` bytes (stops reading there), too slow, or the sender left. */
function readBody(req: IncomingMessage, limit: number, timeoutMs: number): Promise<Buffer | 'too-large' | 'timeout' | 'aborted'> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (result: Buffer | 'too-large' | 'timeout' | 'aborted') => {
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onGone);
      req.off('close', onClose);
      if (typeof result === 'string') chunks.length = 0;
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) return done('too-large');
      chunks.push(chunk);
    };
    const onEnd = () => done(Buffer.concat(chunks, size));
    const onGone = () => done('aborted');
    const onClose = () => {
      if (!req.complete) done('aborted');
    };
    const timer = setTimeout(() => done('timeout'), timeoutMs);
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onGone);
    req.on('close', onClose);
  });
}
