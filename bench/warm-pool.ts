/**
 * Part 7 of `npm run bench` (bench/main.ts): warm pools (issue 17). A new branch's push → the
 * first 200 from its preview, three ways, interleaved, median of `reps`:
 *   - warm: a repository with `workspace: { warm: 1 }`, a ready member waiting; the push claims
 *     it (the build of the branch's commit, its checkout on the prepared disk, migrate, start);
 *     the pool refills before the next repetition;
 *   - no pool: the same files in a repository without one (what Berth does then: a copy of the
 *     base disk when one is ready, else fresh; the table says which);
 *   - by hand: `docker start` of a stopped container of the same image running the same app,
 *     until its first 200 (the floor any start has to pay).
 * Each Berth figure comes with the start's steps as Berth recorded them (Workspace.startSteps)
 * and the build's own time.
 */
import http from 'node:http';
import Dockerode from 'dockerode';
import type { FakeGitHub } from '../test/fakes/github.js';
import { pushPayload, sendWebhook } from '../test/fakes/webhooks.js';
import type { PrismaClient } from '../lib/db/client.js';
import type { Queues } from '../lib/queue.js';
import { workspaceSlug } from '../lib/slug.js';

const docker = new Dockerode();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const POLL_MS = 50;

export interface WarmBenchContext {
  berth: { port: number; webhookUrl: string; db: PrismaClient; queues: Queues; prefix: string };
  fake: FakeGitHub;
  owner: string;
  /** repository name prefix: the part makes `<prefix>-warm` and `<prefix>-nopool` */
  repoPrefix: string;
  installationId: number;
  /** the sample app's files with a unique Dockerfile nonce */
  files: (nonce: string, extra?: Record<string, string>) => Record<string, string>;
  say: (m: string) => void;
  emit: (text: string) => void;
  table: (title: string, header: string[], rows: (string | number)[][]) => string;
  reps: number;
  /** a label every container made by hand carries, for the bench's cleanup */
  label: Record<string, string>;
}

function berthYml(warm: number) {
  return [
    'services:',
    '  web:',
    '    build: .',
    '    port: 3000',
    '    command: node server.js',
    '    migrate: node migrate.js',
    '    seed: node seed.js',
    '    health: /health',
    '    env: { NODE_ENV: development, BERTH_SAMPLE_MODE: dev }',
    'preview: { service: web, visibility: public }',
    'workspace:',
    '  ide: terminal',
    `  warm: ${warm}`,
    '',
  ].join('\n');
}

/** GET / on `address:port` with the Host header `host` (a preview through Berth's gateway, or a container directly) */
function get(port: number, host: string, timeoutMs = 5_000, address = '127.0.0.1'): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = http.get({ host: address, port, path: '/', headers: { host }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', (err) => resolve({ status: 0, body: err.message }));
    req.setTimeout(timeoutMs, () => req.destroy(new Error('timeout')));
  });
}

async function until<T>(what: string, check: () => Promise<T | null | false | undefined>, timeoutMs = 240_000, everyMs = POLL_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
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

interface Run {
  total: number;
  origin: string;
  build: number;
  steps: Array<{ step: string; ms: number }>;
}

export async function partWarmPool(ctx: WarmBenchContext): Promise<void> {
  const { berth, fake, owner, say } = ctx;
  const warmRepo = `${ctx.repoPrefix}-warm`;
  const plainRepo = `${ctx.repoPrefix}-nopool`;
  for (const repo of [warmRepo, plainRepo]) fake.createRepo(owner, repo, { installationId: ctx.installationId });
  const nonce = `warm-${ctx.repoPrefix}`;
  const push = async (repo: string, branch: string, files: Record<string, string>) => {
    const sha = await fake.pushFiles(owner, repo, branch, files, `bench ${branch}`);
    const res = await sendWebhook(berth.webhookUrl, 'push', pushPayload({ fake, owner, repo, branch, after: sha, installationId: ctx.installationId }), fake.webhookSecret);
    await res.arrayBuffer();
    if (res.status >= 300) throw new Error(`webhook answered ${res.status}`);
    return sha;
  };
  const repoId = async (repo: string) => (await berth.db.repository.findFirstOrThrow({ where: { fullName: `${owner}/${repo}` } })).id;
  const readyMember = async (repo: string) => {
    const id = await repoId(repo);
    return until('a ready warm pool member', async () => {
      const members = await berth.db.workspace.findMany({ where: { repositoryId: id, poolMember: true, state: { not: 'deleted' } } });
      const failed = members.find((m) => m.state === 'failed');
      if (failed) throw new Error(`a pool member failed to fill: ${failed.stateReason}`);
      return members.find((m) => m.state === 'stopped') ?? null;
    });
  };

  say('part 7: new branch → first 200 from the warm pool, without a pool, and docker start by hand');
  // the default branches: same files (one image in Docker's cache for all), one with a pool of 1
  await push(warmRepo, 'main', ctx.files(nonce, { '.github/berth.yml': berthYml(1) }));
  await push(plainRepo, 'main', ctx.files(nonce, { '.github/berth.yml': berthYml(0) }));
  for (const repo of [warmRepo, plainRepo]) {
    await until(`${repo}'s main running`, async () => (await berth.db.workspace.findFirst({ where: { branch: 'main', repository: { name: repo }, state: 'running' } })) ?? null);
  }
  const firstMember = await readyMember(warmRepo);
  say(`  pool of ${warmRepo} ready (member ${firstMember.id})`);

  const measure = async (repo: string, branch: string, text: string): Promise<Run> => {
    const slug = workspaceSlug(`${owner}/${repo}`, branch);
    const t0 = Date.now();
    await push(repo, branch, { 'message.txt': `${text}\n` });
    await until(`${branch}'s preview`, async () => {
      const r = await get(berth.port, `${slug}.localhost:${berth.port}`);
      return r.status === 200 && r.body.includes(text);
    });
    const total = Date.now() - t0;
    const ws = await berth.db.workspace.findFirstOrThrow({ where: { branch, repository: { name: repo } } });
    const build = await berth.db.build.findFirstOrThrow({ where: { workspaceId: ws.id }, orderBy: { createdAt: 'desc' } });
    const steps = (ws.startSteps as Array<{ step: string; ms: number }> | null) ?? [];
    const origin = ws.diskOrigin ?? (ws.claimedAt ? 'warm-pool' : 'fresh');
    return { total, origin, build: build.finishedAt && build.startedAt ? build.finishedAt.getTime() - build.startedAt.getTime() : NaN, steps };
  };
  const remove = async (repo: string, branch: string) => {
    const ws = await berth.db.workspace.findFirst({ where: { branch, repository: { name: repo } } });
    if (!ws) return;
    await berth.queues.enqueueWorkspace('delete', { workspaceId: ws.id, actor: 'bench' });
    await until('deleted', async () => (await berth.db.workspace.findUnique({ where: { id: ws.id } }))?.state === 'deleted', 60_000, 200);
  };

  // by hand: a stopped container of main's image running the same app; docker start → first 200
  const mainWs = await berth.db.workspace.findFirstOrThrow({ where: { branch: 'main', repository: { name: warmRepo } } });
  const mainBuild = await berth.db.build.findFirstOrThrow({ where: { workspaceId: mainWs.id, state: 'succeeded' }, orderBy: { createdAt: 'desc' } });
  const image = (mainBuild.images as Record<string, string>).web!;
  const byHand = await docker.createContainer({
    Image: image,
    Cmd: ['sh', '-c', 'node migrate.js && node seed.js && exec node server.js'],
    WorkingDir: '/workspace',
    Env: ['NODE_ENV=development', 'BERTH_SAMPLE_MODE=dev', 'PORT=3000'],
    Labels: ctx.label,
  });
  const dockerStart = async () => {
    const t0 = Date.now();
    await byHand.start();
    const ip = Object.values((await byHand.inspect()).NetworkSettings.Networks)[0]?.IPAddress ?? '';
    await until('the container by hand to answer', async () => (await get(3000, ip, 2_000, ip)).status === 200 || null, 60_000);
    const total = Date.now() - t0;
    await byHand.stop({ t: 1 });
    return total;
  };
  // its first start runs migrate and seed on its own filesystem; the measured ones only start it
  await byHand.start();
  await sleep(1500);
  await byHand.stop({ t: 1 });

  const warm: Run[] = [];
  const plain: Run[] = [];
  const hand: number[] = [];
  try {
    for (let i = 0; i < ctx.reps; i++) {
      await readyMember(warmRepo);
      const w = await measure(warmRepo, `warm-${i}`, `warm branch ${i} ${nonce}`);
      warm.push(w);
      say(`  warm pool #${i + 1}: ${sec(w.total)} (${w.origin}; build ${sec(w.build)}; ${w.steps.map((s) => `${s.step} ${sec(s.ms)}`).join(', ')})`);
      const p = await measure(plainRepo, `nopool-${i}`, `plain branch ${i} ${nonce}`);
      plain.push(p);
      say(`  no pool #${i + 1}: ${sec(p.total)} (${p.origin}; build ${sec(p.build)}; ${p.steps.map((s) => `${s.step} ${sec(s.ms)}`).join(', ')})`);
      const h = await dockerStart();
      hand.push(h);
      say(`  docker start + first 200 #${i + 1}: ${sec(h)}`);
      await remove(warmRepo, `warm-${i}`);
      await remove(plainRepo, `nopool-${i}`);
    }
  } finally {
    await byHand.remove({ force: true }).catch(() => {});
  }
  const floor = median(hand);
  const stepsOf = (runs: Run[]) => {
    const names = [...new Set(runs.flatMap((r) => r.steps.map((s) => s.step)))];
    return [`build ${sec(median(runs.map((r) => r.build)))}`, ...names.map((n) => `${n} ${sec(median(runs.map((r) => r.steps.find((s) => s.step === n)?.ms ?? NaN)))}`)].join(' · ');
  };
  ctx.emit(
    ctx.table(
      'New branch → first 200 from the preview: warm pool, no pool, docker start by hand (part 7)',
      ['path', 'runs', 'median', 'vs docker start + first 200', 'where the time goes (medians)'],
      [
        ['warm pool (`warm: 1`, claimed)', warm.map((r) => sec(r.total)).join(', '), sec(median(warm.map((r) => r.total))), `${(median(warm.map((r) => r.total)) / floor).toFixed(2)}×`, stepsOf(warm)],
        [`no pool (${[...new Set(plain.map((r) => r.origin))].join(' / ')})`, plain.map((r) => sec(r.total)).join(', '), sec(median(plain.map((r) => r.total))), `${(median(plain.map((r) => r.total)) / floor).toFixed(2)}×`, stepsOf(plain)],
        ['`docker start` + first 200 (by hand)', hand.map(sec).join(', '), sec(floor), '1.00×', 'start of a stopped container, poll its address every 50 ms'],
      ],
    ),
  );
}
