/**
 * `npm run bench`: Berth's performance figures on this machine, next to what the same work
 * costs when done by hand with Docker. Everything is real (PostgreSQL, Redis, the Docker
 * engine); only GitHub is the fake from test/fakes, served from this process. Berth runs in a
 * process of its own (bench/berth-process.ts), as `npm start` runs it, and records every call
 * it makes to the Docker runtime so each measurement comes with a breakdown of where the time
 * went. See docs/benchmarks.md for the method and the last recorded figures.
 *
 *   1. webhook acknowledgement latency: web only (500 pushes); whole Berth with builds running
 *      (100 pushes to one branch); web and worker in two processes (the same 100)
 *   2. push → first 200 from the preview URL, cold and cached, vs docker build + run by hand
 *   3. wake: request to a stopped workspace → first 200, vs `docker start` of a stopped container
 *   4. memory and start time per extra running workspace at 1, 10, 30 running
 *   5. lifecycle (bench/lifecycle.ts): stop, a new commit without downtime, the idle timer, and
 *      the preview gateway under wrk next to nginx and the container directly
 *   7. warm pools (bench/warm-pool.ts): a new branch → first 200 from the warm pool, without a
 *      pool, and `docker start` + first 200 by hand (only with BENCH_PARTS including 7)
 *   8. base disk (bench/base-disk.ts): a new branch → first 200 with a 20 s seed, from a copy of
 *      the base disk and cold, next to `docker start` + first 200; a copy of a 1 GiB data volume
 *      (only with BENCH_PARTS including 8)
 *
 * It removes every container, volume, network and image it made, its databases and its Redis
 * keys, also when a part fails or it is interrupted. BENCH_PARTS=1,2 runs a subset; BENCH_REPS
 * changes the repetitions of parts 2 and 3; BENCH_OUT=<file> also writes the results as
 * Markdown; BENCH_CPU_PROF=<dir> writes V8 CPU profiles of the Berth processes. */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fork, type ChildProcess } from 'node:child_process';
import Dockerode from 'dockerode';
import { startFakeGitHub, type FakeGitHub } from '../test/fakes/github.js';
import { pushPayload, sendWebhook } from '../test/fakes/webhooks.js';
import { ensureBaseImage } from '../test/fixtures/base-image.js';
import { sampleAppFiles } from '../test/fixtures/sample-app.js';
import { getWithHost } from '../test/helpers/http.js';
import { packBuildContext } from '../worker/runtime/context.js';
import { createPrisma, type PrismaClient } from '../lib/db/client.js';
import { Queues } from '../lib/queue.js';
import { partLifecycle } from './lifecycle.js';
import { partWarmPool } from './warm-pool.js';
import { partBaseDisk } from './base-disk.js';

// ---------------------------------------------------------------------------------------------
// settings

const BUDGET_MS = Number(process.env.BENCH_BUDGET_MS ?? 9 * 60_000);
const REPS = Number(process.env.BENCH_REPS ?? 3);
const PARTS = new Set((process.env.BENCH_PARTS ?? '1,2,3,4,5').split(',').map((s) => s.trim()));
const ACK_PUSHES = 500;
const ACK_WARMUP = 20;
const ACK_BRANCHES = 5;
const FULL_ACK_PUSHES = 100;
const SCALE_LEVELS = [1, 10, 30];
const POLL_MS = 50;
const SAMPLE_ENV = { NODE_ENV: 'development', BERTH_SAMPLE_MODE: 'dev', PORT: '3000' };

const RUN_ID = crypto.randomBytes(3).toString('hex');
const OWNER = 'bench';
const REPO = `b${RUN_ID}`;
const BENCH_LABEL = 'berth.bench';

const docker = new Dockerode();
const started = Date.now();
const elapsed = () => Date.now() - started;
const remaining = () => BUDGET_MS - elapsed();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const say = (m: string) => console.log(`[bench +${(elapsed() / 1000).toFixed(0).padStart(3)}s] ${m}`);
/** the machine is shared: the load when each part starts goes into the report */
const loads: string[] = [];
function noteLoad(part: string) {
  const [one] = os.loadavg();
  loads.push(`${part}: ${one!.toFixed(1)}`);
}

// ---------------------------------------------------------------------------------------------
// small statistics and formatting

function quantile(sorted: number[], q: number): number {
  if (!sorted.length) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}
const median = (xs: number[]) => quantile(xs.filter(Number.isFinite).sort((a, b) => a - b), 0.5);
function summary(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  return { n: s.length, p50: quantile(s, 0.5), p90: quantile(s, 0.9), p99: quantile(s, 0.99), max: s[s.length - 1] ?? NaN, mean: s.reduce((a, b) => a + b, 0) / (s.length || 1) };
}
const ms = (x: number) => (Number.isFinite(x) ? `${x < 10 ? x.toFixed(1) : Math.round(x)} ms` : '–');
const sec = (x: number) => (Number.isFinite(x) ? `${(x / 1000).toFixed(2)} s` : '–');
const mib = (x: number) => (Number.isFinite(x) ? `${(x / 1024 / 1024).toFixed(1)} MiB` : '–');

function table(title: string, header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => `| ${r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  const sep = `|${widths.map((w, i) => (i === 0 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [`\n### ${title}\n`, line(header), sep, ...cells.slice(1).map(line), ''].join('\n');
}

const report: string[] = [];
function emit(text: string) {
  report.push(text);
  console.log(text);
}

// ---------------------------------------------------------------------------------------------
// profiling: every Runtime call Berth makes, with its workspace, start and end (recorded by
// bench/berth-process.ts, fetched after each measurement)

interface Span {
  ws: string;
  name: string;
  start: number;
  end: number;
}
let spans: Span[] = [];
async function refreshSpans(berth: Berth) {
  spans = await berth.call<Span[]>('spans');
}
/** spans of a workspace by name; `task:<text>` matches a one-off task whose command contains the text */
const spansOf = (ws: string, name: string, after = 0) =>
  spans.filter((s) => s.ws === ws && s.start >= after && (name.startsWith('task:') ? s.name.startsWith('task:') && s.name.includes(name.slice(5)) : s.name === name));
const lastSpan = (ws: string, name: string, after = 0) => spansOf(ws, name, after).at(-1);
const firstSpan = (ws: string, name: string, after = 0) => spansOf(ws, name, after)[0];

/** Consecutive points on a critical path (ms after t0) → the length of each phase; a missing point's time goes to the next phase. */
function phasesOf(points: Array<[string, number]>): Record<string, number> {
  const phases: Record<string, number> = {};
  let prev = 0;
  for (const [name, point] of points) {
    phases[name] = point - prev;
    if (Number.isFinite(point)) prev = point;
  }
  return phases;
}

// ---------------------------------------------------------------------------------------------
// HTTP helpers

/** GET http://host:port/path, status only; 0 when refused or timed out. */
function status(host: string, port: number, urlPath = '/', timeoutMs = 2000): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get({ host, port, path: urlPath, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.setTimeout(timeoutMs, () => req.destroy());
  });
}

/** The address of a container on the default bridge. */
function bridgeIp(info: Dockerode.ContainerInspectInfo): string {
  return info.NetworkSettings.Networks['bridge']?.IPAddress ?? '';
}

/** Thrown by a poll's check to give up at once (a failed workspace), unlike a refused request. */
class Fatal extends Error {}

async function pollUntil(what: string, check: () => Promise<boolean>, timeoutMs: number, everyMs = POLL_MS): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await check().catch((err) => {
      if (err instanceof Fatal) throw err;
      return false;
    });
    if (ok) return Date.now();
    if (Date.now() > deadline) throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`);
    await sleep(everyMs);
  }
}

// ---------------------------------------------------------------------------------------------
// the sample app, with a nonce so no layer of its image is in Docker's cache from elsewhere

function benchFiles(nonce: string, extra: Record<string, string> = {}): Record<string, string> {
  const base = sampleAppFiles();
  const dockerfile = base['Dockerfile']!.replace(/^(FROM .*)$/m, `$1\nLABEL berth.bench.nonce="${nonce}"`);
  if (!dockerfile.includes(nonce)) throw new Error('sample Dockerfile has no FROM line');
  return { ...base, Dockerfile: dockerfile, 'message.txt': `Hello from Berth bench ${nonce}\n`, ...extra };
}

// ---------------------------------------------------------------------------------------------
// Docker inventory and cleanup

const created = { images: new Set<string>() };

async function removeBenchObjects(prefixes: string[]) {
  // Berth's objects carry berth.instance=<queue prefix>; the hand-made ones berth.bench=<run id>.
  const filters = [...prefixes.map((p) => ({ label: [`berth.instance=${p}`] })), { label: [`${BENCH_LABEL}=${RUN_ID}`] }];
  for (const f of filters) {
    const containers = await docker.listContainers({ all: true, filters: f });
    await Promise.all(containers.map((c) => docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => {})));
  }
  for (const f of filters) {
    const networks = await docker.listNetworks({ filters: f });
    await Promise.all(networks.map((n) => docker.getNetwork(n.Id).remove().catch(() => {})));
    const { Volumes } = await docker.listVolumes({ filters: f });
    await Promise.all((Volumes ?? []).map((v) => docker.getVolume(v.Name).remove().catch(() => {})));
  }
  // Images: the ones this run's Berths built (label berth.instance) and the hand-made ones.
  const images = await docker.listImages({ all: false });
  for (const img of images) {
    const labels = img.Labels ?? {};
    const mine = labels[BENCH_LABEL] === RUN_ID || prefixes.includes(labels['berth.instance'] ?? '') || (img.RepoTags ?? []).some((t) => created.images.has(t));
    if (!mine) continue;
    for (const tag of img.RepoTags ?? []) if (tag !== '<none>:<none>') await docker.getImage(tag).remove().catch(() => {});
    await docker.getImage(img.Id).remove().catch(() => {});
  }
}

async function networkCount(): Promise<number> {
  return (await docker.listNetworks({ filters: { driver: ['bridge'] } })).length;
}

/** docker stats, one shot: memory as `docker stats` shows it (usage minus page cache). */
async function containerMemory(id: string): Promise<number> {
  const s = (await docker.getContainer(id).stats({ stream: false, 'one-shot': true } as object)) as any;
  const m = s.memory_stats ?? {};
  const cache = m.stats?.total_inactive_file ?? m.stats?.inactive_file ?? m.stats?.cache ?? 0;
  return Math.max(0, (m.usage ?? 0) - cache);
}

/**
 * Memory of host processes by command name (dockerd, containerd-shim…), summed: PSS (shared
 * pages divided among the processes sharing them, so 50 shims do not count the Go runtime 50 times).
 */
async function processRss(match: (comm: string) => boolean): Promise<{ count: number; rss: number }> {
  let count = 0;
  let rss = 0;
  for (const pid of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const comm = (await fs.readFile(`/proc/${pid}/comm`, 'utf8')).trim();
      if (!match(comm)) continue;
      const st = await fs.readFile(`/proc/${pid}/smaps_rollup`, 'utf8').catch(() => fs.readFile(`/proc/${pid}/status`, 'utf8'));
      const kb = Number((/^Pss:\s+(\d+)/m.exec(st) ?? /VmRSS:\s+(\d+)/.exec(st))?.[1] ?? 0);
      count++;
      rss += kb * 1024;
    } catch {
      /* gone */
    }
  }
  return { count, rss };
}

// ---------------------------------------------------------------------------------------------
// Berth helpers

/** A Berth in its own process (bench/berth-process.ts), with this process's own clients of its database and queues. */
interface Berth {
  port: number;
  /** nginx in front of its port (app/gateway/native-front.ts) */
  native: boolean;
  pid: number;
  databaseUrl: string;
  webhookUrl: string;
  prefix: string;
  db: PrismaClient;
  queues: Queues;
  child: ChildProcess;
  call<T>(type: string): Promise<T>;
}

async function startBerthProcess(fake: FakeGitHub, env: Record<string, string>, mode: 'berth' | 'worker' = 'berth'): Promise<Berth> {
  const fakeLike = { host: fake.host, appId: fake.appId, privateKey: fake.privateKey, webhookSecret: fake.webhookSecret, clientId: fake.clientId, clientSecret: fake.clientSecret };
  const profile = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
  const child = fork(path.join(import.meta.dirname, 'berth-process.ts'), [], {
    execArgv: ['--import', 'tsx', ...profile],
    env: { ...process.env, BENCH_BERTH: JSON.stringify({ fake: fakeLike, env, mode }) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const pending = new Map<number, (v: unknown) => void>();
  let nextId = 1;
  const ready = await new Promise<{ port: number; native: boolean; prefix: string; databaseUrl: string; redisUrl: string; pid: number }>((resolve, reject) => {
    child.on('message', (m: any) => {
      if (m?.type === 'ready') resolve(m);
      else if (m && typeof m.id === 'number') pending.get(m.id)?.(m.value), pending.delete(m.id);
    });
    child.once('exit', (code) => reject(new Error(`the Berth process exited with ${code} before it was ready`)));
  });
  child.on('exit', () => {
    for (const r of pending.values()) r(undefined);
    pending.clear();
  });
  return {
    port: ready.port,
    native: ready.native,
    pid: ready.pid,
    databaseUrl: ready.databaseUrl,
    webhookUrl: `http://127.0.0.1:${ready.port}/api/github/webhooks`,
    prefix: ready.prefix,
    db: createPrisma(ready.databaseUrl),
    queues: new Queues({ url: ready.redisUrl, maxRetriesPerRequest: null }, ready.prefix),
    child,
    call<T>(type: string) {
      return new Promise<T>((resolve) => {
        const id = nextId++;
        pending.set(id, resolve as (v: unknown) => void);
        child.send({ id, type });
      });
    },
  };
}

/** CPU ticks (own + reaped children's) of every process, and the machine's busy/total ticks. */
async function cpuSnapshot() {
  const procs = new Map<number, { comm: string; ticks: number; container: boolean }>();
  for (const pid of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const st = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
      const comm = st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'));
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      const container = (await fs.readFile(`/proc/${pid}/cgroup`, 'utf8').catch(() => '')).includes('/docker/');
      procs.set(Number(pid), { comm, ticks: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]), container });
    } catch {
      /* gone */
    }
  }
  const cpu = (await fs.readFile('/proc/stat', 'utf8')).split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const idle = cpu[3]! + cpu[4]!;
  const total = cpu.slice(0, 8).reduce((a, b) => a + b, 0);
  return { procs, busy: total - idle, total };
}

/** Where the machine's CPU went while `fn` ran, in CPU seconds by kind of process. */
async function withCpu<T>(roles: Record<number, string>, fn: () => Promise<T>): Promise<{ value: T; cpu: CpuReading }> {
  const a = await cpuSnapshot();
  const value = await fn();
  const b = await cpuSnapshot();
  const hz = 100;
  const by: Record<string, number> = {};
  for (const [pid, p] of b.procs) {
    const before = a.procs.get(pid)?.ticks ?? 0;
    const d = (p.ticks - before) / hz;
    if (d <= 0) continue;
    const role =
      roles[pid] ??
      (p.container ? "processes in containers (any user's)" : p.comm === 'postgres' ? 'PostgreSQL' : p.comm === 'dockerd' || p.comm.startsWith('containerd') || p.comm === 'runc' ? 'dockerd + containerd' : p.comm === 'redis-server' ? 'Redis' : 'other processes (other users of the machine)');
    by[role] = (by[role] ?? 0) + d;
  }
  return { value, cpu: { busy: (b.busy - a.busy) / (b.total - a.total), seconds: (b.total - a.total) / hz / os.cpus().length, by } };
}

/**
 * What Berth's database connections were doing while `fn` ran: pg_stat_activity sampled every
 * 20 ms, counting active backends of that database by wait event (Lock = waiting for a row lock).
 */
async function withPgWaits<T>(databaseUrl: string, fn: () => Promise<T>): Promise<{ value: T; pg: Record<string, number> }> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  const db = new URL(databaseUrl).pathname.slice(1);
  const counts: Record<string, number> = {};
  const stats = async () =>
    (await client.query(`SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = $1)::float8 AS commits, (SELECT wal_sync FROM pg_stat_wal)::float8 AS syncs`, [db])).rows[0] as { commits: number; syncs: number };
  const before = await stats();
  let done = false;
  const sampler = (async () => {
    while (!done) {
      const { rows } = await client.query(`SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU') AS w FROM pg_stat_activity WHERE datname = $1 AND state = 'active' AND pid <> pg_backend_pid()`, [db]);
      for (const r of rows) counts[r.w] = (counts[r.w] ?? 0) + 1;
      counts.samples = (counts.samples ?? 0) + 1;
      await sleep(20);
    }
  })();
  try {
    const value = await fn();
    done = true;
    await sampler.catch(() => {});
    const after = await stats();
    // the sampler's own statements are transactions too: one per sample
    counts.commits = after.commits - before.commits - (counts.samples ?? 0) - 1;
    counts.walSyncs = after.syncs - before.syncs;
    return { value, pg: counts };
  } finally {
    done = true;
    await sampler.catch(() => {});
    await client.end();
  }
}

interface CpuReading {
  /** share of all cores busy */
  busy: number;
  /** wall seconds of the window */
  seconds: number;
  /** CPU seconds by kind of process (children's CPU counts to the parent that reaped them) */
  by: Record<string, number>;
}

interface LoopReading {
  p50: number;
  p99: number;
  max: number;
  cpu: number;
  wall: number;
}

/** Berth's event-loop delay and CPU while `fn` runs. */
async function withLoopDelay<T>(berth: Berth, fn: () => Promise<T>): Promise<{ value: T; loop: LoopReading }> {
  await berth.call('loop-start');
  const value = await fn();
  const loop = await berth.call<LoopReading>('loop-stop');
  return { value, loop };
}

async function pushAndAck(berth: Berth, fake: FakeGitHub, branch: string, sha: string, before?: string) {
  const payload = pushPayload({ fake, owner: OWNER, repo: REPO, branch, after: sha, before });
  const t0 = performance.now();
  const res = await sendWebhook(berth.webhookUrl, 'push', payload, fake.webhookSecret);
  await res.arrayBuffer();
  const ack = performance.now() - t0;
  if (res.status >= 300) throw new Error(`webhook answered ${res.status}`);
  return ack;
}

async function workspaceOf(berth: Berth, branch: string) {
  const ws = await berth.db.workspace.findFirst({ where: { branch, repository: { name: REPO } } });
  if (!ws) throw new Error(`no workspace for ${branch}`);
  return ws;
}

async function waitState(berth: Berth, id: string, states: string[], timeoutMs: number) {
  let last = '';
  await pollUntil(
    `workspace state ${states.join('/')}`,
    async () => {
      const ws = await berth.db.workspace.findUnique({ where: { id } });
      last = `${ws?.state}: ${ws?.stateReason}`;
      if (ws?.state === 'failed' && !states.includes('failed')) throw new Fatal(`workspace failed: ${ws.stateReason}`);
      return Boolean(ws && states.includes(ws.state));
    },
    timeoutMs,
    100,
  ).catch((err) => {
    throw new Error(`${err.message} (last ${last})`);
  });
}

async function deleteWorkspace(berth: Berth, id: string, timeoutMs = 60_000) {
  await berth.queues.enqueueWorkspace('delete', { workspaceId: id, actor: 'bench' });
  await waitState(berth, id, ['deleted'], timeoutMs);
}

/** The workspace's history and the build, as ms after `t0` (epoch ms). */
async function timeline(berth: Berth, wsId: string, t0: number) {
  const events = await berth.db.workspaceEvent.findMany({ where: { workspaceId: wsId, createdAt: { gte: new Date(t0 - 1000) } }, orderBy: { id: 'asc' } });
  return events.map((e) => ({ to: e.toState, reason: e.reason, at: e.createdAt.getTime() - t0 }));
}

// ---------------------------------------------------------------------------------------------
// Part 1: webhook acknowledgement

async function partAck(fake: FakeGitHub): Promise<void> {
  noteLoad('part 1');
  say(`part 1: ${ACK_PUSHES} signed push webhooks against Berth with BERTH_ROLE=app`);
  const berth = await startBerthProcess(fake, { BERTH_ROLE: 'app' });
  const prefixes = [berth.prefix];
  try {
    const branches = Array.from({ length: ACK_BRANCHES }, (_, i) => `ack-${i}`);
    const heads = new Map<string, string>();
    // Made-up shas (nothing builds them: no worker); payloads made before the clock starts.
    const payloads = Array.from({ length: ACK_WARMUP + ACK_PUSHES }, (_, i) => {
      const branch = branches[i % branches.length]!;
      const sha = crypto.randomBytes(20).toString('hex');
      const p = pushPayload({ fake, owner: OWNER, repo: REPO, branch, after: sha, before: heads.get(branch) ?? '0'.repeat(40) });
      heads.set(branch, sha);
      return p;
    });
    const send = async (payload: unknown) => {
      const t0 = performance.now();
      const res = await sendWebhook(berth.webhookUrl, 'push', payload, fake.webhookSecret);
      await res.arrayBuffer();
      if (res.status >= 300) throw new Error(`webhook answered ${res.status}`);
      return performance.now() - t0;
    };
    for (const p of payloads.slice(0, ACK_WARMUP)) await send(p);
    const { value: { value: run, cpu }, pg } = await withPgWaits(berth.databaseUrl, () => withCpu({ [berth.pid]: 'Berth (web only)', [process.pid]: 'bench driver + fake GitHub (incl. its git)' }, () =>
      withLoopDelay(berth, async () => {
        const samples: number[] = [];
        for (const p of payloads.slice(ACK_WARMUP)) samples.push(await send(p));
        return samples;
      }),
    ));
    const samples = run.value;
    const builds = await berth.db.build.count();
    const workspaces = await berth.db.workspace.count();
    const jobs = await berth.queues.builds.getJobCounts();
    ackResults.app = { ...summary(samples), builds, workspaces, waiting: jobs.waiting ?? 0, loop: run.loop, cpu, pg };
    say(`  p50 ${ms(ackResults.app.p50)}, p99 ${ms(ackResults.app.p99)}, max ${ms(ackResults.app.max)}; event loop delay p99 ${ms(run.loop.p99)}, max ${ms(run.loop.max)}; ${builds} builds recorded, ${jobs.waiting} build jobs waiting (dedup: one per workspace)`);
  } finally {
    await closeBerth(berth);
  }
}

/**
 * `n` commits on `branch` of the fake's repository in one `git fast-import` (pushFiles spawns
 * several git processes per commit: 100 of them take half a minute). Returns their shas, oldest first.
 */
async function fastCommits(fake: FakeGitHub, branch: string, n: number, first: Record<string, string>, next: (i: number) => Record<string, string>): Promise<string[]> {
  const repo = fake.getRepo(OWNER, REPO);
  if (!repo) throw new Error('no fake repository');
  const chunks: Buffer[] = [];
  const data = (text: string | Buffer) => {
    const b = Buffer.isBuffer(text) ? text : Buffer.from(text);
    chunks.push(Buffer.from(`data ${b.length}\n`), b, Buffer.from('\n'));
  };
  const when = Math.floor(Date.now() / 1000);
  for (let i = 0; i < n; i++) {
    chunks.push(Buffer.from(`commit refs/heads/${branch}\nmark :${i + 1}\ncommitter Bench <bench@example.com> ${when + i} +0000\n`));
    data(`bench commit ${i}`);
    for (const [file, content] of Object.entries(i === 0 ? first : next(i))) {
      chunks.push(Buffer.from(`M 100644 inline ${file}\n`));
      data(content);
    }
  }
  const marks = path.join(os.tmpdir(), `berth-bench-marks-${RUN_ID}`);
  const { spawn } = await import('node:child_process');
  await new Promise<void>((resolve, reject) => {
    const child = spawn('git', ['--git-dir', repo.gitDir, 'fast-import', '--quiet', `--export-marks=${marks}`], { stdio: ['pipe', 'ignore', 'pipe'], env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null' } });
    let err = '';
    child.stderr.on('data', (c) => (err += c));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`git fast-import: ${code} ${err}`))));
    child.stdin.end(Buffer.concat(chunks));
  });
  const byMark = new Map((await fs.readFile(marks, 'utf8')).trim().split('\n').map((l) => { const [m, sha] = l.split(' '); return [Number(m!.slice(1)), sha!] as const; }));
  await fs.rm(marks, { force: true });
  return Array.from({ length: n }, (_, i) => byMark.get(i + 1)!);
}

async function partAckFull(berth: Berth, fake: FakeGitHub): Promise<void> {
  noteLoad('part 1b');
  say(`part 1b: ${FULL_ACK_PUSHES} pushes to one branch against the whole Berth (worker on)`);
  const branch = 'hot';
  // Real commits (the worker clones them) and their payloads, made before the clock starts:
  // pushPayload reads the fake's git synchronously, which stalls this process (the fake GitHub's).
  const shas = await fastCommits(fake, branch, FULL_ACK_PUSHES, benchFiles(`${RUN_ID}-hot`), (i) => ({ 'message.txt': `hot ${i}\n` }));
  const payloads = shas.map((sha, i) => pushPayload({ fake, owner: OWNER, repo: REPO, branch, after: sha, before: i ? shas[i - 1] : undefined }));
  const { value: { value: run, cpu }, pg } = await withPgWaits(berth.databaseUrl, () => withCpu({ [berth.pid]: 'Berth (web + worker, incl. its git)', [process.pid]: 'bench driver + fake GitHub (incl. its git)' }, () =>
    withLoopDelay(berth, async () => {
      const samples: number[] = [];
      for (const payload of payloads) {
        const t0 = performance.now();
        const res = await sendWebhook(berth.webhookUrl, 'push', payload, fake.webhookSecret);
        await res.arrayBuffer();
        samples.push(performance.now() - t0);
        if (res.status >= 300) throw new Error(`webhook answered ${res.status}`);
      }
      return samples;
    }),
  ));
  const ws = await workspaceOf(berth, branch);
  await waitState(berth, ws.id, ['running', 'failed'], 120_000);
  const builds = await berth.db.build.groupBy({ by: ['state'], where: { workspaceId: ws.id }, _count: true });
  const counts = Object.fromEntries(builds.map((b) => [b.state, b._count]));
  const final = await berth.db.workspace.findUniqueOrThrow({ where: { id: ws.id } });
  await refreshSpans(berth);
  counts['docker builds started'] = spansOf(ws.slug, 'buildImage').length;
  ackResults.full = { ...summary(run.value), counts, runningLast: final.runningSha === shas.at(-1), state: final.state, loop: run.loop, cpu, pg };
  say(`  p50 ${ms(ackResults.full.p50)}, p99 ${ms(ackResults.full.p99)}, max ${ms(ackResults.full.max)}; event loop delay p99 ${ms(run.loop.p99)}, max ${ms(run.loop.max)}; Berth's CPU ${Math.round((100 * run.loop.cpu) / run.loop.wall)}% of one core; builds ${JSON.stringify(counts)}`);

  await deleteWorkspace(berth, ws.id);
}

/**
 * 1c: the same 100 pushes with web and worker in two processes (BERTH_ROLE=app next to the
 * worker alone, as `npm run start:app` + `npm run start:worker`), to tell what the worker's
 * work does to the web's answers when they share a process.
 */
async function partAckSplit(fake: FakeGitHub): Promise<void> {
  noteLoad('part 1c');
  say(`part 1c: ${FULL_ACK_PUSHES} pushes to one branch, web and worker in separate processes`);
  const web = await startBerthProcess(fake, { BERTH_ROLE: 'app' });
  const worker = await startBerthProcess(fake, { DATABASE_URL: web.databaseUrl, BERTH_QUEUE_PREFIX: web.prefix }, 'worker');
  try {
    const branch = 'hot-split';
    const shas = await fastCommits(fake, branch, FULL_ACK_PUSHES, benchFiles(`${RUN_ID}-split`), (i) => ({ 'message.txt': `split ${i}\n` }));
    const payloads = shas.map((sha, i) => pushPayload({ fake, owner: OWNER, repo: REPO, branch, after: sha, before: i ? shas[i - 1] : undefined }));
    const { value: { value: run, cpu }, pg } = await withPgWaits(web.databaseUrl, () => withCpu({ [web.pid]: 'Berth web', [worker.pid]: 'Berth worker (incl. its git)', [process.pid]: 'bench driver + fake GitHub (incl. its git)' }, () =>
      withLoopDelay(web, async () => {
        const samples: number[] = [];
        for (const payload of payloads) {
          const t0 = performance.now();
          const res = await sendWebhook(web.webhookUrl, 'push', payload, fake.webhookSecret);
          await res.arrayBuffer();
          samples.push(performance.now() - t0);
          if (res.status >= 300) throw new Error(`webhook answered ${res.status}`);
        }
        return samples;
      }),
    ));
    const ws = await workspaceOf(web, branch);
    await waitState(web, ws.id, ['running', 'failed'], 120_000);
    const builds = await web.db.build.groupBy({ by: ['state'], where: { workspaceId: ws.id }, _count: true });
    const counts = Object.fromEntries(builds.map((b) => [b.state, b._count]));
    const final = await web.db.workspace.findUniqueOrThrow({ where: { id: ws.id } });
    await refreshSpans(worker);
    counts['docker builds started'] = spansOf(ws.slug, 'buildImage').length;
    ackResults.split = { ...summary(run.value), counts, runningLast: final.runningSha === shas.at(-1), state: final.state, loop: run.loop, cpu, pg };
    say(`  p50 ${ms(ackResults.split.p50)}, p99 ${ms(ackResults.split.p99)}, max ${ms(ackResults.split.max)}; web's event loop delay p99 ${ms(run.loop.p99)}, max ${ms(run.loop.max)}; builds ${JSON.stringify(counts)}`);
    await deleteWorkspace(web, ws.id);
  } finally {
    await closeBerth(worker, { keepQueues: true });
    await closeBerth(web);
  }
}

type LoopStats = { loop: LoopReading; cpu: CpuReading; pg?: Record<string, number> };
const ackResults: { app?: ReturnType<typeof summary> & LoopStats & { builds: number; workspaces: number; waiting: number }; full?: ReturnType<typeof summary> & LoopStats & { counts: Record<string, number>; runningLast: boolean; state: string }; split?: ReturnType<typeof summary> & LoopStats & { counts: Record<string, number>; runningLast: boolean; state: string } } = {};

// ---------------------------------------------------------------------------------------------
// Part 2: push → first 200, Berth vs by hand

interface BerthRun {
  total: number;
  ack: number;
  phases: Record<string, number>;
  cacheHits: number;
  steps: number;
  wsId: string;
  slug: string;
}
interface DirectRun {
  total: number;
  phases: Record<string, number>;
  cacheHits: number;
  steps: number;
}

async function berthPushToPreview(berth: Berth, fake: FakeGitHub, branch: string, files: Record<string, string>): Promise<BerthRun> {
  const sha = await fake.pushFiles(OWNER, REPO, branch, files, `bench ${branch}`);
  const payload = pushPayload({ fake, owner: OWNER, repo: REPO, branch, after: sha });
  const t0 = Date.now();
  const res = await sendWebhook(berth.webhookUrl, 'push', payload, fake.webhookSecret);
  await res.arrayBuffer();
  const ackAt = Date.now();
  if (res.status >= 300) throw new Error(`webhook answered ${res.status}`);
  const ws = await workspaceOf(berth, branch);
  let failed = '';
  const okAt = await pollUntil(
    `the preview of ${branch}`,
    async () => {
      const r = await getWithHost(berth.port, `${ws.slug}.localhost:${berth.port}`, '/');
      if (r.status === 200) return r.body.includes(files['message.txt']!.trim());
      if (r.status === 502) {
        failed = (await berth.db.workspace.findUnique({ where: { id: ws.id } }))?.stateReason ?? 'failed';
        throw new Fatal(failed);
      }
      return false;
    },
    150_000,
  ).catch((err) => {
    throw new Error(`${branch}: ${failed || err.message}`);
  });
  const build = await berth.db.build.findFirstOrThrow({ where: { workspaceId: ws.id, sha } });
  const log = (await berth.db.buildLogChunk.findMany({ where: { buildId: build.id }, orderBy: { id: 'asc' } })).map((c) => c.text).join('');
  const events = await timeline(berth, ws.id, t0);
  await refreshSpans(berth);
  const at = (name: string) => lastSpan(ws.id, name, t0);
  const startingAt = events.find((e) => e.to === 'starting')?.at ?? NaN;
  const runningAt = events.find((e) => e.to === 'running')?.at ?? NaN;
  const img = lastSpan(ws.slug, 'buildImage', t0);
  const migrate = at('task:migrate.js');
  // on a new disk migrate and seed share one task container: their time shows as the seed's
  const seed = at('task:seed.js') ?? at('task:migrate+seed');
  const svc = at('startServices');
  const hw = at('health:web');
  const ide = at('startIde');
  const rel = (x?: number) => (x === undefined ? NaN : x - t0);
  // consecutive points on the critical path; each phase is the gap to the next point
  const afterStarting = t0 + (Number.isFinite(startingAt) ? startingAt : 0);
  const phases = phasesOf([
    ['webhook acknowledged', ackAt - t0],
    ['queue → build job', build.startedAt ? build.startedAt.getTime() - t0 : NaN],
    ['clone + read berth.yml', rel(img?.start)],
    ['docker build', rel(img?.end)],
    ['build done → start job (state starting)', startingAt],
    ['clear leftover tasks', rel(firstSpan(ws.id, 'removeTasks', afterStarting)?.end)],
    ['network + volumes', rel(firstSpan(ws.id, 'ensureDisk', afterStarting)?.end)],
    ['checkout for the disk (the build’s, or a clone)', rel(at('populateWorkspace')?.start)],
    ['copy the checkout onto the disk', rel(at('populateWorkspace')?.end)],
    ['migrate (one-off container)', rel(migrate?.end)],
    ['seed (one-off container; with migrate when they share one)', rel(seed?.end)],
    ['→ service container started', rel(hw?.start)],
    ['health check of web', rel(hw?.end)],
    ['IDE start + health, if before running', rel(ide?.end)],
    ['→ state running', runningAt],
    ['running → first 200 via gateway', okAt - t0],
  ]);
  void svc;
  return {
    total: okAt - t0,
    ack: ackAt - t0,
    phases,
    cacheHits: (log.match(/Using cache/g) ?? []).length,
    steps: (log.match(/^Step \d+\/\d+/gm) ?? []).length,
    wsId: ws.id,
    slug: ws.slug,
  };
}

interface DirectApp {
  container: Dockerode.Container;
  volume: string;
  image: string;
}

/**
 * The same work by hand, with dockerode: build the same context (same query as Berth: no pull,
 * rm), a volume at /workspace (Docker fills it from the image), `node migrate.js` and
 * `node seed.js` in one-off containers on it, then `node server.js` in a container on the
 * default bridge, polled at <ip>:3000/ until 200.
 */
async function directPushToPreview(dir: string, tag: string): Promise<DirectRun & { app: DirectApp }> {
  const labels = { [BENCH_LABEL]: RUN_ID };
  created.images.add(tag);
  const t0 = Date.now();
  const stream = await docker.buildImage(packBuildContext(dir, 'Dockerfile') as never, { t: tag, dockerfile: 'Dockerfile', pull: false, rm: true, forcerm: true, labels });
  let out = '';
  await new Promise<void>((resolve, reject) =>
    docker.modem.followProgress(stream, (err: Error | null, events: any[]) => {
      if (err) return reject(err);
      const bad = events.find((e) => e.error);
      return bad ? reject(new Error(bad.error)) : resolve();
    }, (e: any) => (out += e.stream ?? '')),
  );
  const tBuilt = Date.now();
  const volume = `berth-bench-${RUN_ID}-${crypto.randomBytes(3).toString('hex')}`;
  await docker.createVolume({ Name: volume, Labels: labels });
  const mounts = [{ Type: 'volume' as const, Source: volume, Target: '/workspace' }];
  const runOnce = async (cmd: string[]) => {
    const c = await docker.createContainer({ Image: tag, Cmd: cmd, Env: Object.entries(SAMPLE_ENV).map(([k, v]) => `${k}=${v}`), WorkingDir: '/workspace', Labels: labels, HostConfig: { Mounts: mounts } });
    await c.start();
    const { StatusCode } = (await c.wait()) as { StatusCode: number };
    await c.remove({ force: true });
    if (StatusCode !== 0) throw new Error(`${cmd.join(' ')} exited with ${StatusCode}`);
  };
  await runOnce(['node', 'migrate.js']);
  const tMigrated = Date.now();
  await runOnce(['node', 'seed.js']);
  const tSeeded = Date.now();
  const container = await docker.createContainer({
    Image: tag,
    Cmd: ['node', 'server.js'],
    Env: Object.entries(SAMPLE_ENV).map(([k, v]) => `${k}=${v}`),
    WorkingDir: '/workspace',
    Labels: labels,
    HostConfig: { Mounts: mounts },
  });
  await container.start();
  const ip = bridgeIp(await container.inspect());
  const tRunning = Date.now();
  const okAt = await pollUntil('the hand-made container', async () => (await status(ip, 3000, '/')) === 200, 60_000);
  return {
    total: okAt - t0,
    phases: {
      'docker build': tBuilt - t0,
      'volume + migrate (one-off container)': tMigrated - tBuilt,
      'seed (one-off container)': tSeeded - tMigrated,
      'create + start app container': tRunning - tSeeded,
      'first 200': okAt - tRunning,
    },
    cacheHits: (out.match(/Using cache/g) ?? []).length,
    steps: (out.match(/^Step \d+\/\d+/gm) ?? []).length,
    app: { container, volume, image: tag },
  };
}

async function removeDirect(app: DirectApp) {
  await app.container.remove({ force: true }).catch(() => {});
  await docker.getVolume(app.volume).remove().catch(() => {});
}

const pushResults: { berthCold: BerthRun[]; directCold: DirectRun[]; berthCached: BerthRun[]; directCached: DirectRun[]; berthNoIde: BerthRun[] } = { berthCold: [], directCold: [], berthCached: [], directCached: [], berthNoIde: [] };
let keptBerth: BerthRun | undefined;
let keptDirect: DirectApp | undefined;

async function partPush(berth: Berth, fake: FakeGitHub) {
  noteLoad('part 2');
  say(`part 2: push → first 200, cold and cached, Berth vs by hand, ${REPS} times each`);
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-bench-'));
  try {
    // The same, cached, with `workspace.ide: terminal` (no code-server container to wait for):
    // one untimed push builds the image, then one new branch per repetition.
    const noIde = benchFiles(`${RUN_ID}-noide`, { '.github/berth.yml': `${sampleAppFiles()['.github/berth.yml']!.trimEnd()}\nworkspace:\n  ide: terminal\n` });
    await deleteWorkspace(berth, (await berthPushToPreview(berth, fake, 'noide-warm', noIde)).wsId);
    for (let i = 0; i < REPS; i++) {
      const run = await berthPushToPreview(berth, fake, `noide-${i}`, noIde);
      pushResults.berthNoIde.push(run);
      say(`  Berth cached, ide: terminal #${i + 1}: ${sec(run.total)} (cache hits ${run.cacheHits}/${run.steps} steps)`);
      await deleteWorkspace(berth, run.wsId);
    }
    for (let i = 0; i < REPS; i++) {
      if (remaining() < 4 * 60_000) {
        say(`  stopping after ${i} repetitions: time budget`);
        break;
      }
      const last = i === REPS - 1;
      // cold: a nonce early in the Dockerfile, so no layer after FROM is cached
      const bFiles = benchFiles(`${RUN_ID}-berth-${i}`);
      const bc = await berthPushToPreview(berth, fake, `cold-${i}`, bFiles);
      pushResults.berthCold.push(bc);
      say(`  Berth cold #${i + 1}: ${sec(bc.total)} (cache hits ${bc.cacheHits}/${bc.steps} steps)`);
      await deleteWorkspace(berth, bc.wsId);

      const dir = path.join(tmp, `direct-${i}`);
      for (const [rel, content] of Object.entries(benchFiles(`${RUN_ID}-direct-${i}`))) {
        await fs.mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
        await fs.writeFile(path.join(dir, rel), content);
      }
      const dc = await directPushToPreview(dir, `berth-bench-${RUN_ID}/direct:cold-${i}`);
      pushResults.directCold.push(dc);
      say(`  direct cold #${i + 1}: ${sec(dc.total)} (cache hits ${dc.cacheHits}/${dc.steps} steps)`);
      await removeDirect(dc.app);

      // cached: a new branch with the same content (Berth) / the same context again (by hand)
      const bw = await berthPushToPreview(berth, fake, `cached-${i}`, bFiles);
      pushResults.berthCached.push(bw);
      say(`  Berth cached #${i + 1}: ${sec(bw.total)} (cache hits ${bw.cacheHits}/${bw.steps} steps)`);
      if (last && PARTS.has('3')) keptBerth = bw;
      else await deleteWorkspace(berth, bw.wsId);

      const dw = await directPushToPreview(dir, `berth-bench-${RUN_ID}/direct:cached-${i}`);
      pushResults.directCached.push(dw);
      say(`  direct cached #${i + 1}: ${sec(dw.total)} (cache hits ${dw.cacheHits}/${dw.steps} steps)`);
      if (last && PARTS.has('3')) keptDirect = dw.app;
      else await removeDirect(dw.app);
    }
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Part 3: wake

interface WakeRun {
  total: number;
  phases: Record<string, number>;
}
const wakeResults: { berth: WakeRun[]; direct: WakeRun[]; directMigrate: WakeRun[] } = { berth: [], direct: [], directMigrate: [] };

async function partWake(berth: Berth) {
  noteLoad('part 3');
  say(`part 3: wake a stopped workspace, ${REPS} times, vs docker start`);
  if (!keptBerth || !keptDirect) throw new Error('part 3 needs the workspace and container of part 2');
  const ws = keptBerth;
  const host = `${ws.slug}.localhost:${berth.port}`;
  for (let i = 0; i < REPS; i++) {
    if (remaining() < 3 * 60_000) {
      say(`  stopping after ${i} repetitions: time budget`);
      break;
    }
    // Stop as the idle reaper would, and wait until the containers are gone too.
    await berth.queues.enqueueWorkspace('stop', { workspaceId: ws.wsId, actor: 'bench', reason: 'bench: stop before wake' });
    await waitState(berth, ws.wsId, ['stopped'], 60_000);
    await pollUntil('containers removed', async () => (await docker.listContainers({ all: true, filters: { label: [`berth.workspace=${ws.wsId}`] } })).length === 0, 60_000, 100);
    await sleep(1500); // let the gateway's 1 s lookup cache see `stopped`, as after a real idle stop
    const t0 = Date.now();
    let first503 = NaN;
    const okAt = await pollUntil(
      'the woken preview',
      async () => {
        const r = await getWithHost(berth.port, host, '/');
        if (r.status === 503 && !Number.isFinite(first503)) first503 = Date.now() - t0;
        return r.status === 200;
      },
      120_000,
    );
    const events = await timeline(berth, ws.wsId, t0);
    await refreshSpans(berth);
    const at = (name: string) => lastSpan(ws.wsId, name, t0);
    const startingAt = events.find((e) => e.to === 'starting')?.at ?? NaN;
    const runningAt = events.find((e) => e.to === 'running')?.at ?? NaN;
    const rel = (x?: number) => (x === undefined ? NaN : x - t0);
    const migrate = at('task:migrate.js');
    const hw = at('health:web');
    const ide = at('startIde');
    const afterStarting = t0 + (Number.isFinite(startingAt) ? startingAt : 0);
    const phases = phasesOf([
      ['first request answered (503 "waking")', first503],
      ['→ start job (state starting)', startingAt],
      ['clear leftover tasks', rel(firstSpan(ws.wsId, 'removeTasks', afterStarting)?.end)],
      ['network + volumes checked', rel(firstSpan(ws.wsId, 'ensureDisk', afterStarting)?.end)],
      ['→ migrate started', rel(migrate?.start)],
      ['migrate (one-off container)', rel(migrate?.end)],
      ['→ service container started', rel(hw?.start)],
      ['health check of web', rel(hw?.end)],
      ['IDE start + health, if before running', rel(ide?.end)],
      ['→ state running', runningAt],
      ['running → first 200 via gateway', okAt - t0],
    ]);
    wakeResults.berth.push({ total: okAt - t0, phases });
    say(`  Berth wake #${i + 1}: ${sec(okAt - t0)}`);

    // By hand: the stopped container of the same image and volume, started again.
    const c = keptDirect.container;
    await c.stop({ t: 5 }).catch(() => {});
    const d0 = Date.now();
    await c.start();
    const ip = bridgeIp(await c.inspect());
    const dStarted = Date.now();
    const dOk = await pollUntil('the restarted container', async () => (await status(ip, 3000, '/')) === 200, 60_000);
    wakeResults.direct.push({ total: dOk - d0, phases: { 'docker start': dStarted - d0, 'first 200': dOk - dStarted } });
    say(`  docker start #${i + 1}: ${sec(dOk - d0)}`);

    // By hand, as Berth does it: migrate in a one-off container first, then start.
    await c.stop({ t: 5 }).catch(() => {});
    const m0 = Date.now();
    const task = await docker.createContainer({ Image: keptDirect.image, Cmd: ['node', 'migrate.js'], WorkingDir: '/workspace', Labels: { [BENCH_LABEL]: RUN_ID }, HostConfig: { Mounts: [{ Type: 'volume', Source: keptDirect.volume, Target: '/workspace' }] } });
    await task.start();
    await task.wait();
    await task.remove({ force: true });
    const mMigrated = Date.now();
    await c.start();
    const ip2 = bridgeIp(await c.inspect());
    const mOk = await pollUntil('the restarted container', async () => (await status(ip2, 3000, '/')) === 200, 60_000);
    wakeResults.directMigrate.push({ total: mOk - m0, phases: { migrate: mMigrated - m0, 'docker start + first 200': mOk - mMigrated } });
    say(`  migrate + docker start #${i + 1}: ${sec(mOk - m0)}`);
  }
  await deleteWorkspace(berth, ws.wsId);
  await removeDirect(keptDirect);
}

// ---------------------------------------------------------------------------------------------
// Part 4: scale

interface ScalePoint {
  running: number;
  upMs: number;
  berthRss: number;
  berthHeap: number;
  appMem: number[];
  ideMem: number[];
  dockerd: number;
  shims: { count: number; rss: number };
  networks: number;
}
const scaleRuns: BerthRun[] = [];
const scale: { base?: { berthRss: number; berthHeap: number; dockerd: number; shims: { count: number; rss: number }; networks: number }; points: ScalePoint[]; ups: number[]; stoppedAt?: string } = { points: [], ups: [] };

async function partScale(berth: Berth, fake: FakeGitHub) {
  const target = Math.max(...SCALE_LEVELS);
  noteLoad('part 4');
  say(`part 4: bring up ${target} workspaces one after the other; memory at ${SCALE_LEVELS.join(', ')} running`);
  const files = benchFiles(`${RUN_ID}-scale`);
  const base = await berthMemory(berth);
  scale.base = { berthRss: base.rss, berthHeap: base.heap, dockerd: (await processRss((c) => c === 'dockerd')).rss, shims: await processRss((c) => c.startsWith('containerd-shim')), networks: await networkCount() };
  say(`  before: ${scale.base.networks} bridge networks exist on this engine (Docker's default address pools hold 31)`);
  const ids: string[] = [];
  for (let n = 1; n <= target; n++) {
    if (remaining() < 75_000) {
      scale.stoppedAt = `stopped at ${n - 1} running workspaces: time budget of the benchmark (${Math.round(BUDGET_MS / 60000)} min) nearly used`;
      say(`  ${scale.stoppedAt}`);
      break;
    }
    let run: BerthRun;
    try {
      run = await berthPushToPreview(berth, fake, `scale-${n}`, files);
    } catch (err) {
      const why = (err as Error).message.split('\n')[0]!;
      const pools = /non-overlapping|address pool/i.test(why) ? ` (Docker has no free address pool for another bridge network: ${await networkCount()} bridge networks exist on the engine, the default pools hold 31)` : '';
      scale.stoppedAt = `workspace ${n} did not come up: ${why}${pools}`;
      say(`  ${scale.stoppedAt}`);
      // the failed one still holds a workspace row; its objects are removed at cleanup
      break;
    }
    ids.push(run.wsId);
    scale.ups.push(run.total);
    scaleRuns.push(run);
    if (n % 5 === 0 || n < 3) say(`  ${n} running (last came up in ${sec(run.total)})`);
    if (SCALE_LEVELS.includes(n)) await sample(n, run.total);
  }
  const reached = ids.length;
  if (reached && !SCALE_LEVELS.includes(reached)) await sample(reached, scale.ups.at(-1)!);

  async function sample(n: number, upMs: number) {
    await sleep(2000); // let the newest code-server settle
    const mem = await berthMemory(berth);
    const containers = await docker.listContainers({ filters: { label: [`berth.instance=${berth.prefix}`, 'berth.role'] } });
    const usage = await Promise.all(containers.map(async (c) => ({ role: c.Labels['berth.service'] === 'ide' ? 'ide' : 'app', mem: await containerMemory(c.Id).catch(() => NaN) })));
    scale.points.push({
      running: n,
      upMs,
      berthRss: mem.rss,
      berthHeap: mem.heap,
      appMem: usage.filter((u) => u.role === 'app').map((u) => u.mem),
      ideMem: usage.filter((u) => u.role === 'ide').map((u) => u.mem),
      dockerd: (await processRss((c) => c === 'dockerd')).rss,
      shims: await processRss((c) => c.startsWith('containerd-shim')),
      networks: await networkCount(),
    });
    say(`  sampled at ${n} running: Berth RSS ${mib(mem.rss)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// report

function pushReport() {
  const r = pushResults;
  const rows: (string | number)[][] = [];
  const both = (label: string, b: BerthRun[], d: DirectRun[]) => {
    if (!b.length || !d.length) return;
    const bm = median(b.map((x) => x.total));
    const dm = median(d.map((x) => x.total));
    rows.push([label, b.map((x) => sec(x.total)).join(', '), sec(bm), d.map((x) => sec(x.total)).join(', '), sec(dm), `${(bm / dm).toFixed(2)}×`, `${b[0]!.cacheHits}/${b[0]!.steps} · ${d[0]!.cacheHits}/${d[0]!.steps}`]);
  };
  both('cold', r.berthCold, r.directCold);
  both('cached', r.berthCached, r.directCached);
  both('cached, workspace.ide: terminal', r.berthNoIde, r.directCached);
  emit(table('Push → first 200 from the preview (sample app)', ['cache', 'Berth runs', 'Berth median', 'by hand runs', 'by hand median', 'Berth / by hand', 'cache hits Berth · by hand'], rows));
  const phaseTable = (title: string, runs: Array<{ phases: Record<string, number>; total: number }>) => {
    if (!runs.length) return;
    const names = Object.keys(runs[0]!.phases);
    emit(table(title, ['phase (critical path)', 'median', ...runs.map((_, i) => `run ${i + 1}`)], [...names.map((n) => [n, ms(median(runs.map((x) => x.phases[n]!))), ...runs.map((x) => ms(x.phases[n]!))]), ['total', ms(median(runs.map((x) => x.total))), ...runs.map((x) => ms(x.total))]]));
  };
  phaseTable('Where Berth\'s time goes, cold', r.berthCold);
  phaseTable('Where Berth\'s time goes, cached', r.berthCached);
  phaseTable('Where Berth\'s time goes, cached, workspace.ide: terminal', r.berthNoIde);
  phaseTable('By hand, cold', r.directCold);
  phaseTable('By hand, cached', r.directCached);
  return phaseTable;
}

function finalReport(machine: string) {
  emit(`\n## Results (run ${RUN_ID}, ${new Date().toISOString()})\n\n${machine}\n\nLoad average (1 min) when each part started, on ${os.cpus().length} cores: ${loads.join(', ')}.`);
  if (ackResults.app || ackResults.full || ackResults.split) {
    const rows: (string | number)[][] = [];
    const a = ackResults.app;
    const extra = (x: LoopStats) => [`${ms(x.loop.p99)} / ${ms(x.loop.max)}`, `${Math.round((100 * x.loop.cpu) / x.loop.wall)}% of a core`];
    if (a) rows.push([`BERTH_ROLE=app, ${ACK_BRANCHES} branches, fresh sha each`, a.n, ms(a.p50), ms(a.p90), ms(a.p99), ms(a.max), a.p99 < 50 ? 'met' : `missed by ${ms(a.p99 - 50)}`, ...extra(a)]);
    const f = ackResults.full;
    if (f) rows.push(['whole Berth (worker on), 1 branch, real commits', f.n, ms(f.p50), ms(f.p90), ms(f.p99), ms(f.max), f.p99 < 50 ? 'met' : `missed by ${ms(f.p99 - 50)}`, ...extra(f)]);
    const sp = ackResults.split;
    if (sp) rows.push(['web and worker in 2 processes, 1 branch, real commits', sp.n, ms(sp.p50), ms(sp.p90), ms(sp.p99), ms(sp.max), sp.p99 < 50 ? 'met' : `missed by ${ms(sp.p99 - 50)}`, ...extra(sp)]);
    emit(table('Webhook acknowledgement (HTTP round trip of a signed push)', ['setup', 'pushes', 'p50', 'p90', 'p99', 'max', 'goal p99 < 50 ms', "Berth's event-loop delay p99 / max", "Berth's CPU"], rows));
    if (a) emit(`Web only: ${a.workspaces} workspaces, ${a.builds} builds recorded, ${a.waiting} build jobs left waiting in the queue (deduplicated per workspace).`);
    if (f) emit(`Whole Berth: build records of the 100 commits by outcome ${JSON.stringify(f.counts)}; the workspace ended ${f.state}${f.runningLast ? ' on the last commit' : ' NOT on the last commit'}.`);
    const cpuLine = (label: string, x?: LoopStats & { n: number }) => {
      if (!x) return;
      const parts = Object.entries(x.cpu.by).sort((p, q) => q[1] - p[1]).map(([k, v]) => `${k} ${v.toFixed(1)} s`);
      emit(`CPU while the pushes of "${label}" ran (${x.cpu.seconds.toFixed(1)} s, all ${os.cpus().length} cores ${Math.round(100 * x.cpu.busy)}% busy): ${parts.join(', ')}.`);
      if (x.pg) {
        const { samples = 0, commits = 0, walSyncs = 0, ...waits } = x.pg;
        emit(`  ${Math.round(commits / x.n)} PostgreSQL transactions per push in Berth's database (statements outside a transaction count one each; reads included); ${Math.round(walSyncs / x.n)} WAL flushes (fdatasync) per push on the whole server.`);
        const active = Object.values(waits).reduce((p, q) => p + q, 0);
        emit(`  Berth's PostgreSQL connections, sampled ${samples} times: ${(active / (samples || 1)).toFixed(2)} active on average; by wait: ${Object.entries(waits).sort((p, q) => q[1] - p[1]).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}.`);
      }
    };
    cpuLine('web only', a);
    cpuLine('whole Berth', f);
    cpuLine('web and worker apart', sp);
    if (sp) emit(`Web and worker apart: builds by outcome ${JSON.stringify(sp.counts)}; the workspace ended ${sp.state}${sp.runningLast ? ' on the last commit' : ' NOT on the last commit'}. The event-loop delay and CPU in this row are the web process's.`);
  }
  const phaseTable = pushReport();
  if (wakeResults.berth.length) {
    const b = median(wakeResults.berth.map((x) => x.total));
    const d = median(wakeResults.direct.map((x) => x.total));
    const m = median(wakeResults.directMigrate.map((x) => x.total));
    emit(
      table('Wake: request to a stopped workspace → first 200', ['path', 'runs', 'median', 'Berth / this'], [
        ['Berth (request → 503 page → … → 200)', wakeResults.berth.map((x) => sec(x.total)).join(', '), sec(b), ''],
        ['docker start of the stopped container + first 200', wakeResults.direct.map((x) => sec(x.total)).join(', '), sec(d), `${(b / d).toFixed(2)}× (goal 1.5×)`],
        ['migrate in a one-off container + docker start + first 200', wakeResults.directMigrate.map((x) => sec(x.total)).join(', '), sec(m), `${(b / m).toFixed(2)}×`],
      ]),
    );
    phaseTable("Where Berth's wake time goes", wakeResults.berth);
  }
  if (scale.base && scale.points.length) {
    const b = scale.base;
    const avg = (xs: number[]) => xs.filter(Number.isFinite).reduce((s, x) => s + x, 0) / (xs.filter(Number.isFinite).length || 1);
    const first = scale.points[0]!;
    emit(
      table('Per running workspace (sample app + code-server IDE)', ['running', 'time to bring up the last one', 'Berth RSS (Δ from 0 running)', 'Berth heap', 'app container mem (avg)', 'IDE container mem (avg)', 'all containers', 'dockerd PSS', 'containerd-shims (count, PSS)', 'bridge networks'], [
        ['0', '–', `${mib(b.berthRss)}`, mib(b.berthHeap), '–', '–', '–', mib(b.dockerd), `${b.shims.count}, ${mib(b.shims.rss)}`, b.networks],
        ...scale.points.map((p) => [
          String(p.running),
          sec(p.upMs),
          `${mib(p.berthRss)} (${mib(p.berthRss - b.berthRss)})`,
          mib(p.berthHeap),
          mib(avg(p.appMem)),
          mib(avg(p.ideMem)),
          mib([...p.appMem, ...p.ideMem].filter(Number.isFinite).reduce((s, x) => s + x, 0)),
          mib(p.dockerd),
          `${p.shims.count}, ${mib(p.shims.rss)}`,
          p.networks,
        ]),
      ]),
    );
    const last = scale.points.at(-1)!;
    if (last.running > first.running) {
      const per = (x: number, y: number) => mib((x - y) / (last.running - first.running));
      emit(
        `Per extra running workspace between ${first.running} and ${last.running}: Berth RSS ${per(last.berthRss, first.berthRss)}, ` +
          `containers ${per([...last.appMem, ...last.ideMem].reduce((s, x) => s + (x || 0), 0), [...first.appMem, ...first.ideMem].reduce((s, x) => s + (x || 0), 0))}, ` +
          `dockerd ${per(last.dockerd, first.dockerd)}, containerd-shims ${per(last.shims.rss, first.shims.rss)} (PSS; the engine is shared with other users, so these two are approximate).`,
      );
    }
    const ups = scale.ups;
    const bucket = (from: number, to: number) => ups.slice(from - 1, to).filter(Number.isFinite);
    emit(`Bring-up times (push → first 200, one after another, cached image): ${ups.map((x) => (x / 1000).toFixed(1)).join(', ')} s. Median of workspaces 1–3: ${sec(median(bucket(1, 3)))}, 8–10: ${sec(median(bucket(8, 10)))}, 28–30: ${sec(median(bucket(28, 30)))}.`);
    if (scale.stoppedAt) emit(`**Stopped early:** ${scale.stoppedAt}`);
    const picks = scale.points.map((p) => scaleRuns[p.running - 1]).filter((r): r is BerthRun => Boolean(r));
    if (picks.length) {
      const names = Object.keys(picks[0]!.phases);
      emit(table('Where the bring-up time goes as more workspaces run', ['phase', ...scale.points.map((p) => `workspace ${p.running}`)], [...names.map((n) => [n, ...picks.map((r) => ms(r.phases[n]!))]), ['total', ...picks.map((r) => ms(r.total))]]));
    }
  }
}

// ---------------------------------------------------------------------------------------------

async function berthMemory(berth: Berth): Promise<{ rss: number; heap: number }> {
  const m = await berth.call<NodeJS.MemoryUsage>('memory');
  return { rss: m.rss, heap: m.heapUsed };
}

async function closeBerth(berth: Berth, opts: { keepQueues?: boolean } = {}) {
  await berth.db.$disconnect().catch(() => {});
  if (berth.child.exitCode === null) {
    const exited = new Promise((r) => berth.child.once('exit', r));
    await Promise.race([berth.call('close'), sleep(30_000)]);
    await Promise.race([exited, sleep(5_000)]);
    if (berth.child.exitCode === null) berth.child.kill('SIGKILL');
  }
  // Its queues in Redis (the prefix is this run's own).
  if (!opts.keepQueues) for (const q of [berth.queues.builds, berth.queues.workspaces, berth.queues.reports]) await q.obliterate({ force: true }).catch(() => {});
  await berth.queues.close().catch(() => {});
}

async function main() {
  await ensureBaseImage(docker);
  const cpu = os.cpus()[0]?.model ?? 'cpu';
  const dockerVersion = (await docker.version()).Version;
  const others = (await docker.listContainers()).length;
  const machine = `Machine: ${os.cpus().length} × ${cpu}, ${mib(os.totalmem())} RAM, ${os.type()} ${os.release()}, Node ${process.version}, Docker ${dockerVersion} (legacy builder, ${(await docker.info()).Driver}). ${others} other containers were running on the engine when the run started.`;
  say(machine);
  const fake = await startFakeGitHub({ validateCheckRunSha: false });
  const installationId = fake.addInstallation({ login: OWNER, type: 'Organization' }).id;
  fake.createRepo(OWNER, REPO, { installationId });
  const prefixes: string[] = [];
  let berth: Berth | undefined;
  let failure: unknown;
  const onSignal = () => {
    say('interrupted: cleaning up');
    void (async () => {
      if (berth) await closeBerth(berth).catch(() => {});
      await removeBenchObjects(prefixes).catch(() => {});
      process.exit(130);
    })();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    if (PARTS.has('1')) await partAck(fake).catch((err) => say(`part 1 failed: ${err.stack ?? err}`));
    if (['1', '2', '3', '4', '5', '7', '8'].some((p) => PARTS.has(p))) {
      berth = await startBerthProcess(fake, {
        BERTH_MAX_RUNNING: '60',
        BERTH_MAX_RUNNING_PER_REPO: '60',
        BERTH_HEALTH_TIMEOUT: '90s',
      });
      prefixes.push(berth.prefix);
      say(`whole Berth on port ${berth.port}, pid ${berth.pid} (queue prefix ${berth.prefix})`);
      if (PARTS.has('1')) await partAckFull(berth, fake).catch((err) => say(`part 1b failed: ${err.stack ?? err}`));
      if (PARTS.has('1')) await partAckSplit(fake).catch((err) => say(`part 1c failed: ${err.stack ?? err}`));
      if (PARTS.has('2') || PARTS.has('3')) await partPush(berth, fake).catch((err) => say(`part 2 failed: ${err.stack ?? err}`));
      if (PARTS.has('3')) await partWake(berth).catch((err) => say(`part 3 failed: ${err.stack ?? err}`));
      if (PARTS.has('5')) {
        noteLoad('part 5');
        const files = (nonce: string, extra: Record<string, string> = {}) => benchFiles(nonce, extra);
        await partLifecycle({ berth, fake, owner: OWNER, repo: REPO, files, say, emit, table, reps: REPS }).catch((err) => say(`part 5 failed: ${err.stack ?? err}`));
      }
      if (PARTS.has('4')) await partScale(berth, fake).catch((err) => say(`part 4 failed: ${err.stack ?? err}`));
      if (PARTS.has('7')) {
        noteLoad('part 7');
        await partWarmPool({ berth, fake, owner: OWNER, repoPrefix: REPO, installationId, files: benchFiles, say, emit, table, reps: REPS, label: { [BENCH_LABEL]: RUN_ID } }).catch((err) => say(`part 7 failed: ${err.stack ?? err}`));
      }
      if (PARTS.has('8')) {
        noteLoad('part 8');
        await partBaseDisk({ berth, fake, owner: OWNER, repoPrefix: REPO, installationId, files: benchFiles, say, emit, table, reps: REPS, label: { [BENCH_LABEL]: RUN_ID } }).catch((err) => say(`part 8 failed: ${err.stack ?? err}`));
      }
    }
    finalReport(machine);
  } catch (err) {
    failure = err;
  } finally {
    say('cleaning up');
    if (berth) await closeBerth(berth);
    await removeBenchObjects(prefixes).catch((err) => say(`cleanup: ${(err as Error).message}`));
    await fake.close();
    const left = await docker.listContainers({ all: true, filters: { label: [`${BENCH_LABEL}=${RUN_ID}`] } });
    const leftBerth = prefixes.length ? await docker.listContainers({ all: true, filters: { label: [`berth.instance=${prefixes[0]}`] } }) : [];
    say(`done in ${sec(elapsed())}; containers left behind: ${left.length + leftBerth.length}`);
  }
  const out = process.env.BENCH_OUT;
  if (out) await fs.writeFile(out, report.join('\n'));
  if (failure) {
    console.error(failure);
    process.exit(1);
  }
  process.exit(0);
}

await main();
