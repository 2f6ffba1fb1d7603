/**
 * Part 5 of `npm run bench` (issue 13, "instant-feeling lifecycle"): what a user feels of stop,
 * a new commit on a running workspace, the idle timer, and the preview gateway's cost per request.
 *
 *   a. stop: `stop` asked → every container of the workspace gone, vs `docker stop` by hand
 *   b. a new commit on a running workspace: push → the preview serves it, and the answers of a
 *      GET every 100 ms meanwhile (non-200s are downtime)
 *   c. idle timeout (10 s): the stop's distance from its deadline (last request + timeout)
 *   d. the gateway: `wrk -t2 -c16 -d10s` on the sample app's /health through Berth, through nginx
 *      (Debian's, keep-alive upstream) and to the container directly; a WebSocket's connect and
 *      first message through Berth and directly, and echo round trips on an open WebSocket
 *      through Berth, nginx and directly
 *
 * Called by bench/main.ts with its Berth and fake GitHub; returns Markdown tables.
 */
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import Dockerode from 'dockerode';
import WebSocket from 'ws';
import type { FakeGitHub } from '../test/fakes/github.js';
import { pushPayload, sendWebhook } from '../test/fakes/webhooks.js';
import type { PrismaClient } from '../lib/db/client.js';
import type { Queues } from '../lib/queue.js';

const run = promisify(execFile);
const docker = new Dockerode();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface LifecycleBenchContext {
  /** `native`: whether nginx is in front of Berth's port (app/gateway/native-front.ts) */
  berth: { port: number; webhookUrl: string; db: PrismaClient; queues: Queues; native?: boolean };
  fake: FakeGitHub;
  owner: string;
  repo: string;
  /** the sample app's files, with a unique nonce */
  files: (nonce: string, extra?: Record<string, string>) => Record<string, string>;
  say: (m: string) => void;
  /** adds a table to the report as soon as it is ready (a later failure does not lose it) */
  emit: (text: string) => void;
  table: (title: string, header: string[], rows: (string | number)[][]) => string;
  reps: number;
}

const IDLE_S = 10;

function berthYml(mode: string): string {
  return [
    'services:',
    '  web:',
    '    build: .',
    '    port: 3000',
    '    command: node server.js',
    '    migrate: node migrate.js',
    '    seed: node seed.js',
    '    health: /health',
    `    env: { NODE_ENV: development, BERTH_SAMPLE_MODE: ${mode} }`,
    'preview: { service: web, visibility: public }',
    'workspace:',
    '  ide: terminal',
    `  idle_timeout: ${IDLE_S}s`,
    '',
  ].join('\n');
}

function get(port: number, host: string, urlPath = '/', timeoutMs = 60_000): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, headers: { host }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', (err) => resolve({ status: 0, body: err.message }));
    req.setTimeout(timeoutMs, () => req.destroy(new Error('timeout')));
  });
}

async function until<T>(what: string, check: () => Promise<T | null | false | undefined>, timeoutMs = 120_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check().catch(() => null);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

const median = (xs: number[]) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)]! : NaN;
};
const sec = (x: number) => (Number.isFinite(x) ? `${(x / 1000).toFixed(2)} s` : '–');

export async function partLifecycle(ctx: LifecycleBenchContext): Promise<string[]> {
  const { berth, fake, owner, repo, say, table } = ctx;
  const out: string[] = [];
  const branch = `lifecycle-${Date.now().toString(36)}`;
  const pushCommit = async (files: Record<string, string>) => {
    const sha = await fake.pushFiles(owner, repo, branch, files, `bench ${branch}`);
    const res = await sendWebhook(berth.webhookUrl, 'push', pushPayload({ fake, owner, repo, branch, after: sha }), fake.webhookSecret);
    await res.arrayBuffer();
    return sha;
  };
  const state = async (id: string) => (await berth.db.workspace.findUnique({ where: { id } }))!;
  const containers = (id: string) => docker.listContainers({ all: true, filters: { label: [`berth.workspace=${id}`, 'berth.role=service'] } });

  say('part 5: lifecycle (stop, new commit, idle) and the gateway');
  const sha1 = await pushCommit(ctx.files(`lc-${branch}`, { '.github/berth.yml': berthYml('v1') }));
  const ws = await until('the workspace', () => berth.db.workspace.findFirst({ where: { branch, repository: { name: repo } } }));
  await until('running', async () => (await state(ws.id)).state === 'running' && (await state(ws.id)).runningSha === sha1, 150_000);
  const host = `${ws.slug}.localhost:${berth.port}`;

  // a. stop
  const stops: number[] = [];
  const wakes: number[] = [];
  for (let i = 0; i < ctx.reps; i++) {
    const t0 = Date.now();
    await berth.queues.enqueueWorkspace('stop', { workspaceId: ws.id, actor: 'bench', reason: 'bench: stop' });
    await until('containers gone', async () => (await state(ws.id)).state === 'stopped' && (await containers(ws.id)).length === 0, 60_000, 20);
    stops.push(Date.now() - t0);
    await sleep(500);
    // wake with one plain GET (held until the app answers)
    const w0 = Date.now();
    const r = await get(berth.port, host, '/');
    if (r.status !== 200) throw new Error(`the held GET answered ${r.status}: ${r.body.slice(0, 200)}`);
    wakes.push(Date.now() - w0);
  }
  // by hand: docker stop (default grace 10 s) of a container of the same image running the same app
  const image = (await containers(ws.id))[0]!.Image;
  const byHand: number[] = [];
  for (let i = 0; i < ctx.reps; i++) {
    const c = await docker.createContainer({ Image: image, Cmd: ['node', 'server.js'], WorkingDir: '/workspace', Labels: { 'berth.bench': 'lifecycle' }, HostConfig: { Init: true } });
    await c.start();
    await sleep(300);
    const t0 = Date.now();
    await c.stop();
    await c.remove({ force: true });
    byHand.push(Date.now() - t0);
  }
  say(`  stop: Berth ${stops.map(sec).join(', ')}; docker stop + rm by hand ${byHand.map(sec).join(', ')}; held GET on wake ${wakes.map(sec).join(', ')}`);

  // b. a new commit on the running workspace, a GET every 100 ms meanwhile
  const seen: Array<{ at: number; status: number; mode: string }> = [];
  let polling = true;
  const poller = (async () => {
    while (polling) {
      const r = await get(berth.port, host, '/', 10_000);
      seen.push({ at: Date.now(), status: r.status, mode: /BERTH_SAMPLE_MODE: (\w+)/.exec(r.body)?.[1] ?? `${r.status}` });
      await sleep(100);
    }
  })();
  const p0 = Date.now();
  const sha2 = await pushCommit({ '.github/berth.yml': berthYml('v2') });
  const served = await until('the new commit served', async () => {
    const last = seen.at(-1);
    return last?.mode === 'v2' ? last.at : null;
  }, 150_000);
  await until('running the new commit', async () => (await state(ws.id)).runningSha === sha2, 30_000);
  await sleep(2_000);
  polling = false;
  await poller;
  const during = seen.filter((s) => s.at >= p0);
  const bad = during.filter((s) => s.status !== 200);
  say(`  new commit: push → served ${sec(served - p0)}; ${during.length} GETs, ${bad.length} not 200`);

  // c. idle: a few requests, then silence
  let last = 0;
  for (let i = 0; i < 10; i++) {
    await get(berth.port, host, '/health');
    last = Date.now();
    await sleep(200);
  }
  await until('idle stop', async () => (await state(ws.id)).state === 'stopped', 60_000, 100);
  const stopEvent = await berth.db.workspaceEvent.findFirstOrThrow({ where: { workspaceId: ws.id, toState: 'stopped' }, orderBy: { id: 'desc' } });
  const idleLate = stopEvent.createdAt.getTime() - (last + IDLE_S * 1000);
  say(`  idle ${IDLE_S} s: stopped ${sec(idleLate)} after its deadline`);

  out.push(
    table(
      'Lifecycle (sample app, `ide: terminal`, BERTH_STOP_GRACE 2 s)',
      ['what a user does', 'runs', 'median', 'by hand / goal'],
      [
        ['stop asked → containers gone, state stopped', stops.map(sec).join(', '), sec(median(stops)), `\`docker stop\` + rm: ${sec(median(byHand))} · goal ≤ 3 s`],
        ['GET to the stopped preview → the app’s 200 (held)', wakes.map(sec).join(', '), sec(median(wakes)), 'the app’s own answer, no 503'],
        ['new commit → the preview serves it', sec(served - p0), sec(served - p0), '–'],
        ['GETs every 100 ms during that rollout: not 200', `${bad.length} of ${during.length}`, `${bad.length}`, 'goal 0'],
        [`idle ${IDLE_S} s: stop after the deadline (last request + timeout)`, sec(idleLate), sec(idleLate), 'goal within 5 s'],
      ],
    ),
  );

  ctx.emit(out.pop()!);

  // d. the gateway, woken again; one request a second through Berth keeps the idle timer (10 s
  // here) from stopping it while wrk talks to the container directly or through nginx
  const r = await get(berth.port, host, '/health');
  if (r.status !== 200) throw new Error(`wake for the gateway part answered ${r.status}`);
  await until('running', async () => (await state(ws.id)).state === 'running', 60_000);
  const now = await state(ws.id);
  let awake = true;
  const keepAwake = (async () => {
    while (awake) {
      await get(berth.port, host, '/health', 5_000);
      await sleep(1_000);
    }
  })();
  try {
    for (const t of await gatewayBench(ctx, now.previewHost!, now.previewPort ?? 3000, host)) ctx.emit(t);
  } finally {
    awake = false;
    await keepAwake;
  }
  return out;
}

interface WrkResult {
  rps: number;
  p50: number;
  p99: number;
  errors: string;
}

async function wrk(url: string, hostHeader?: string): Promise<WrkResult> {
  const script = path.join(os.tmpdir(), `berth-wrk-${process.pid}.lua`);
  await fs.writeFile(script, 'done = function(summary, latency, requests)\n  io.write(string.format("P50 %d\\nP99 %d\\n", latency:percentile(50), latency:percentile(99)))\nend\n');
  const args = ['-t2', '-c16', '-d10s', '--latency', '-s', script, ...(hostHeader ? ['-H', `Host: ${hostHeader}`] : []), url];
  const { stdout } = await run('wrk', args, { timeout: 60_000 });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1] ?? NaN);
  const p50 = Number(/P50 (\d+)/.exec(stdout)?.[1] ?? NaN) / 1000;
  const p99 = Number(/P99 (\d+)/.exec(stdout)?.[1] ?? NaN) / 1000;
  const errors = /Non-2xx or 3xx responses: (\d+)|Socket errors: .*/.exec(stdout)?.[0] ?? '';
  return { rps, p50, p99, errors };
}

/** Debian's nginx on a free port, proxying to the container with a keep-alive upstream. */
async function startNginx(upstream: string): Promise<{ port: number; stop: () => Promise<void> }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-bench-nginx-'));
  const port = await freePort();
  const conf = `worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  upstream app { server ${upstream}; keepalive 64; }
  map $http_upgrade $connection_upgrade { default upgrade; "" ""; }
  server {
    listen 127.0.0.1:${port};
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection $connection_upgrade; proxy_set_header Upgrade $http_upgrade; proxy_set_header Host $host; }
  }
}
`;
  await fs.writeFile(path.join(dir, 'nginx.conf'), conf);
  const child = spawn('nginx', ['-c', path.join(dir, 'nginx.conf'), '-g', 'daemon off;'], { stdio: 'ignore' });
  await until('nginx', async () => (await get(port, 'x', '/health', 1000)).status === 200, 10_000, 100);
  return {
    port,
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** WebSocket handshake + first message round trips: the sample app's /live sends one message on connect. */
async function wsRoundTrips(url: string, host: string | undefined, n: number): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await new Promise<void>((resolve, reject) => {
      const socket = new WebSocket(url, host ? { headers: { host } } : {});
      socket.once('message', () => {
        socket.close();
        resolve();
      });
      socket.once('error', reject);
    });
    times.push(performance.now() - t0);
  }
  return median(times);
}

/**
 * WebSocket echo round trips on one open socket (the sample app's /echo): a message sent, its
 * echo received, `n` times one after the other; the median and p99 in ms.
 */
async function wsEchoRoundTrips(url: string, host: string | undefined, n: number): Promise<{ p50: number; p99: number }> {
  const socket = new WebSocket(url, host ? { headers: { host } } : {});
  await new Promise<void>((resolve, reject) => (socket.once('open', () => resolve()), socket.once('error', reject)));
  const times: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await new Promise<void>((resolve, reject) => {
        socket.once('message', () => resolve());
        socket.once('error', reject);
        socket.send(`ping ${i}`);
      });
      times.push(performance.now() - t0);
      socket.removeAllListeners('error');
    }
  } finally {
    socket.close();
  }
  times.sort((a, b) => a - b);
  return { p50: times[Math.floor(n / 2)]!, p99: times[Math.floor(n * 0.99)]! };
}

async function gatewayBench(ctx: LifecycleBenchContext, ip: string, port: number, host: string): Promise<string[]> {
  const { say, table, berth } = ctx;
  const have = async (cmd: string) => run('sh', ['-c', `command -v ${cmd}`]).then(() => true, () => false);
  if (!(await have('wrk')) || !(await have('nginx'))) {
    say('  gateway: wrk or nginx missing (apt-get install -y wrk nginx-light); skipped');
    return ['\n(gateway rows skipped: wrk or nginx not installed)\n'];
  }
  const load = os.loadavg()[0]!.toFixed(1);
  const direct = await wrk(`http://${ip}:${port}/health`);
  const nginx = await startNginx(`${ip}:${port}`);
  let viaNginx: WrkResult;
  try {
    viaNginx = await wrk(`http://127.0.0.1:${nginx.port}/health`);
  } finally {
    await nginx.stop();
  }
  const viaBerth = await wrk(`http://127.0.0.1:${berth.port}/health`, host);
  const wsDirect = await wsRoundTrips(`ws://${ip}:${port}/live`, undefined, 50);
  const wsBerth = await wsRoundTrips(`ws://127.0.0.1:${berth.port}/live`, host, 50);
  // echo round trips on an open WebSocket: direct, through nginx, through Berth
  const ECHOES = 2000;
  const echoDirect = await wsEchoRoundTrips(`ws://${ip}:${port}/echo`, undefined, ECHOES);
  const echoNginx = await startNginx(`${ip}:${port}`);
  let echoViaNginx: { p50: number; p99: number };
  try {
    echoViaNginx = await wsEchoRoundTrips(`ws://127.0.0.1:${echoNginx.port}/echo`, undefined, ECHOES);
  } finally {
    await echoNginx.stop();
  }
  const echoBerth = await wsEchoRoundTrips(`ws://127.0.0.1:${berth.port}/echo`, host, ECHOES);
  say(`  gateway: Berth ${viaBerth.rps.toFixed(0)} req/s p50 ${viaBerth.p50} ms; nginx ${viaNginx.rps.toFixed(0)} req/s p50 ${viaNginx.p50} ms; direct ${direct.rps.toFixed(0)} req/s p50 ${direct.p50} ms`);
  const f = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '–');
  return [
    table(
      `Preview gateway, \`wrk -t2 -c16 -d10s\` on /health (load ${load} when it started)`,
      ['path', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'vs nginx', 'p50 added over direct'],
      [
        ['Berth gateway', viaBerth.rps.toFixed(0), f(viaBerth.p50), f(viaBerth.p99), viaBerth.errors || '–', `${(viaBerth.rps / viaNginx.rps).toFixed(2)}×`, `${f(viaBerth.p50 - direct.p50)} ms`],
        ['nginx (keep-alive upstream)', viaNginx.rps.toFixed(0), f(viaNginx.p50), f(viaNginx.p99), viaNginx.errors || '–', '1.00×', `${f(viaNginx.p50 - direct.p50)} ms`],
        ['the container directly', direct.rps.toFixed(0), f(direct.p50), f(direct.p99), direct.errors || '–', '–', '–'],
        ['WebSocket connect + first message, median of 50: Berth / direct', `${f(wsBerth)} / ${f(wsDirect)} ms`, '', '', '', '', `${f(wsBerth - wsDirect)} ms`],
      ],
    ),
    table(
      `WebSocket echo round trip on one open socket (sample app /echo, ${ECHOES} in a row)`,
      ['path', 'p50 ms', 'p99 ms', 'p50 added over direct', 'vs nginx (p50 added)'],
      [
        [`Berth${berth.native === false ? ' (Node gateway)' : berth.native ? ' (native proxy)' : ''}`, f(echoBerth.p50), f(echoBerth.p99), `${f(echoBerth.p50 - echoDirect.p50)} ms`, `${f(echoBerth.p50 - echoDirect.p50 - (echoViaNginx.p50 - echoDirect.p50))} ms more`],
        ['nginx (keep-alive upstream)', f(echoViaNginx.p50), f(echoViaNginx.p99), `${f(echoViaNginx.p50 - echoDirect.p50)} ms`, '–'],
        ['the container directly', f(echoDirect.p50), f(echoDirect.p99), '–', '–'],
      ],
    ),
  ];
}
