import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeGitHub, type FakeGitHub } from '../fakes/github.js';
import { pushPayload, sign } from '../fakes/webhooks.js';
import { waitFor } from '../helpers/http.js';
import { portOpen, startEmbeddedPostgres } from '../../lib/db/embedded.js';

const MB = 1024 * 1024;
const METRICS_TOKEN = randomBytes(16).toString('hex');

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

interface Answer {
  status: number;
  body: string;
  ms: number;
  /** bytes of the body written when the answer came: less than all of it = Berth did not wait for the body */
  sentWhenAnswered: number;
}

/**
 * POSTs `size` bytes to the webhook URL, written 1 MB at a time as a sender would (with
 * Content-Length unless `chunked`); resolves with Berth's answer as soon as it comes, whether
 * or not the whole body went out.
 */
function postBody(port: number, size: number, headers: Record<string, string>, opts: { chunked?: boolean; body?: Buffer } = {}): Promise<Answer> {
  const t0 = Date.now();
  let sent = 0;
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/api/github/webhooks',
        headers: { 'content-type': 'application/json', ...(opts.chunked ? {} : { 'content-length': String(size) }), ...headers },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (body += c));
        const sentWhenAnswered = sent;
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, ms: Date.now() - t0, sentWhenAnswered }));
        res.on('error', () => resolve({ status: res.statusCode ?? 0, body, ms: Date.now() - t0, sentWhenAnswered }));
      },
    );
    // Berth may close the connection mid-body once it has answered: that is the point.
    req.on('error', (err) => setTimeout(() => reject(err), 2_000));
    req.setTimeout(60_000, () => req.destroy(new Error('no answer within 60 s')));
    if (opts.body) return void req.end(opts.body);
    const chunk = Buffer.alloc(MB, 0x61);
    const write = () => {
      while (sent < size && !req.destroyed) {
        const piece = chunk.subarray(0, Math.min(MB, size - sent));
        sent += piece.length;
        if (!req.write(piece)) return void req.once('drain', write);
      }
      req.end();
    };
    write();
  });
}

/** A raw WebSocket handshake; resolves with the status line Berth answers (or 'closed'). */
function upgrade(port: number, host: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write(
        `GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n\r\n`,
      );
    });
    let text = '';
    socket.on('data', (d) => (text += d.toString('latin1')));
    const done = () => resolve(text.split('\r\n')[0] || 'closed');
    socket.on('close', done);
    socket.on('error', done);
    socket.setTimeout(15_000, () => socket.destroy());
  });
}

/**
 * Requests anyone on the internet can send to Berth's port: oversized and unsigned webhooks, a
 * WebSocket to an IDE host while PostgreSQL is down. Berth runs as `npm start` runs it (its own
 * process, its own log on stdout), so "the process is alive" and "its log grew by one line"
 * are what an operator would see; PostgreSQL is this test's own, so it can be stopped.
 */
describe('requests from strangers', () => {
  let fake: FakeGitHub;
  let dataDir: string;
  let pgPort: number;
  let pg: { url: string; stop: () => Promise<void> } | undefined;
  let berth: ChildProcess;
  let port: number;
  let output = '';
  let exited: string | undefined;

  const healthy = async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).status === 200;
  /** what Berth logged after `mark`, once it has had a moment to write it */
  const loggedSince = async (mark: number) => {
    await new Promise((r) => setTimeout(r, 300));
    return output.slice(mark);
  };
  const lines = (text: string) => text.split('\n').filter((l) => l.trim());

  beforeAll(async () => {
    fake = await startFakeGitHub();
    fake.createRepo('acme', 'shop', { installationId: fake.addInstallation({ login: 'acme', type: 'Organization' }).id });
    dataDir = await mkdtemp(join(tmpdir(), 'berth-hostile-'));
    await chmod(dataDir, 0o755); // PostgreSQL runs as its own user
    pgPort = await freePort();
    pg = await startEmbeddedPostgres(join(dataDir, 'pg'), pgPort);
    port = await freePort();
    berth = spawn(join(process.cwd(), 'node_modules/.bin/tsx'), ['app/main.ts'], {
      env: {
        PATH: process.env.PATH!,
        HOME: process.env.HOME!,
        APP_ID: String(fake.appId),
        PRIVATE_KEY: fake.privateKey,
        WEBHOOK_SECRET: fake.webhookSecret,
        GITHUB_CLIENT_ID: fake.clientId,
        GITHUB_CLIENT_SECRET: fake.clientSecret,
        GHE_HOST: fake.host,
        GHE_PROTOCOL: 'http',
        DATABASE_URL: pg.url,
        REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
        BERTH_QUEUE_PREFIX: `hostile${port}`,
        BERTH_DATA_DIR: join(dataDir, 'data'),
        BERTH_ROLE: 'app',
        LOG_LEVEL: 'info',
        BERTH_METRICS_TOKEN: METRICS_TOKEN,
        PORT: String(port),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    berth.stdout!.on('data', (d) => (output += d));
    berth.stderr!.on('data', (d) => (output += d));
    berth.once('exit', (code, signal) => (exited = `exited (${code ?? signal})`));
    await waitFor(
      'Berth to listen',
      async () => {
        if (exited) throw new Error(`Berth ${exited}:\n${output}`);
        // the port answers (nginx in front) before the start's last lines are logged: wait for them too
        return output.includes('SSH on port') && healthy().catch(() => false);
      },
      90_000,
      200,
    );
  }, 150_000);

  afterAll(async () => {
    if (berth && !exited) await new Promise((r) => (berth.once('exit', r), berth.kill('SIGTERM')));
    await pg?.stop().catch(() => {});
    await fake?.close();
    await rm(dataDir, { recursive: true, force: true });
  }, 60_000);

  const webhookHeaders = (event: string, delivery: string, signature: string) => ({
    'x-github-event': event,
    'x-github-delivery': delivery,
    'x-hub-signature-256': signature,
  });

  it('refuses a 100 MB webhook with 413 at once; Berth stays up and logs one short line', async () => {
    const mark = output.length;
    const res = await postBody(port, 100 * MB, webhookHeaders('push', 'big-delivery-1', `sha256=${'0'.repeat(64)}`));
    expect(res.status).toBe(413);
    // at once: answered from the headers, long before the sender got the 100 MB out (a clock
    // would say the same on a quiet machine and fail on a loaded one)
    expect(res.sentWhenAnswered).toBeLessThan(50 * MB);
    expect(exited).toBeUndefined();
    expect(await healthy()).toBe(true);
    const logged = lines(await loggedSince(mark));
    expect(logged).toHaveLength(1);
    expect(logged[0]).toContain('big-delivery-1');
    expect(logged[0]).toContain('413');
    expect(logged[0]!.length).toBeLessThan(300);
  });

  it('refuses a body without Content-Length once it passes 25 MB', async () => {
    const mark = output.length;
    const res = await postBody(port, 60 * MB, webhookHeaders('push', 'chunked-delivery', `sha256=${'0'.repeat(64)}`), { chunked: true });
    expect(res.status).toBe(413);
    expect(await healthy()).toBe(true);
    const logged = lines(await loggedSince(mark));
    expect(logged).toHaveLength(1);
    expect(logged[0]).toContain('chunked-delivery');
  });

  it('answers an unsigned 20 MB delivery 400 quickly and logs one short line, not the body', async () => {
    const mark = output.length;
    const body = Buffer.from(JSON.stringify({ zen: 'BODYMARKER'.repeat(2 * MB) }));
    const res = await postBody(port, body.length, webhookHeaders('push', 'unsigned-delivery', `sha256=${'0'.repeat(64)}`), { body });
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body).error).toContain('signature does not match');
    expect(res.ms).toBeLessThan(5_000); // Probot took 29 s for 200 MB; a shared CI machine needs slack
    const logged = lines(await loggedSince(mark));
    expect(logged).toHaveLength(1);
    expect(logged[0]).toContain('unsigned-delivery');
    expect(logged[0]).toContain('signature does not match');
    expect(logged[0]).not.toContain('BODYMARKER');
  });

  it('keeps made-up event names out of its metrics (each would be kept for ever)', async () => {
    for (let i = 0; i < 3; i++) {
      const res = await postBody(port, 2, webhookHeaders(`made-up-event-${i}`, `made-up-${i}`, `sha256=${'0'.repeat(64)}`), { body: Buffer.from('{}') });
      expect(res.status).toBe(400);
    }
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).text();
    expect(metrics).toMatch(/berth_webhook_duration_seconds_count\{event="other",status="400"\} [1-9]/);
    expect(metrics).not.toContain('made-up-event');
  });

  it('still takes a signed delivery', async () => {
    const payload = pushPayload({ fake, owner: 'acme', repo: 'shop', branch: 'main', after: 'a'.repeat(40) });
    const body = Buffer.from(JSON.stringify(payload));
    const res = await postBody(port, body.length, webhookHeaders('push', 'signed-delivery', sign(body.toString(), fake.webhookSecret)), { body });
    expect(res.status).toBe(200);
  });

  it('lives through WebSockets to IDE and preview hosts while PostgreSQL is down, and a failed delivery logs no body', async () => {
    await pg!.stop();
    pg = undefined;
    try {
      await waitFor('PostgreSQL to be down', async () => !(await portOpen(pgPort)), 10_000, 100);
      // never looked up before, so nothing cached: the lookup itself fails
      expect(await upgrade(port, `ws-outage.ide.localhost:${port}`)).toMatch(/^HTTP\/1\.1 503/);
      expect(await upgrade(port, `ws-outage.localhost:${port}`)).toMatch(/^HTTP\/1\.1 503/);
      // a client that gives up mid-lookup
      const quitter = net.connect(port, '127.0.0.1', () => {
        quitter.write(`GET / HTTP/1.1\r\nHost: quitter.ide.localhost:${port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`);
        quitter.resetAndDestroy();
      });
      quitter.on('error', () => {});

      // a genuine delivery that cannot be recorded: GitHub is told to redeliver; the log has no payload
      const mark = output.length;
      const payload = { ...pushPayload({ fake, owner: 'acme', repo: 'shop', branch: 'main', after: 'b'.repeat(40) }), padding: 'PAYLOADMARKER'.repeat(50_000) };
      const body = Buffer.from(JSON.stringify(payload));
      const res = await postBody(port, body.length, webhookHeaders('push', 'outage-delivery', sign(body.toString(), fake.webhookSecret)), { body });
      expect(res.status).toBeGreaterThanOrEqual(500);
      const logged = await loggedSince(mark);
      expect(logged).not.toContain('PAYLOADMARKER');
      expect(logged.length).toBeLessThan(20_000);

      await new Promise((r) => setTimeout(r, 500));
      expect(exited).toBeUndefined();
      expect(await healthy()).toBe(true);
    } finally {
      pg = await startEmbeddedPostgres(join(dataDir, 'pg'), pgPort);
    }
  }, 60_000);
});
