/**
 * Part 8 of `npm run bench` (bench/main.ts): the base disk (issue 17).
 *
 * 1. A new branch's push → the first 200 from its preview, with a seed that takes 20 s, two ways,
 *    interleaved: `copy` (a branch of the default branch, whose base disk is ready: copy,
 *    checkout, migrate, no seed) and `cold` (a branch whose history does not hold the base
 *    disk's commit, so Berth starts it fresh: clone, migrate, the 20 s seed); next to
 *    `docker start` of a stopped container of the same image + its first 200 (by hand).
 * 2. Runtime.copyDisk of a 1 GiB data volume (16 MiB of random bytes written 64 times), next to
 *    the host's own `cp -a` of the same folder onto the same file system (the floor: what the
 *    disk gives), and the method the engine's file system allowed (reflink or streaming copy).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import http from 'node:http';
import { promisify } from 'node:util';
import Dockerode from 'dockerode';
import { pushPayload, sendWebhook } from '../test/fakes/webhooks.js';
import { workspaceSlug } from '../lib/slug.js';
import { DockerRuntime, dockerNames, LABELS } from '../worker/runtime/docker.js';
import type { WorkspaceRunSpec } from '../worker/runtime/types.js';
import type { WarmBenchContext } from './warm-pool.js';

const docker = new Dockerode();
const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const SEED_SECONDS = 20;

function berthYml() {
  return [
    'services:',
    '  web:',
    '    build: .',
    '    port: 3000',
    '    command: node server.js',
    '    migrate: node migrate.js',
    `    seed: sleep ${SEED_SECONDS} && node seed.js`,
    '    health: /health',
    '    data: /data',
    '    env: { NODE_ENV: development, BERTH_SAMPLE_MODE: dev, DATA_DIR: /data }',
    'preview: { service: web, visibility: public }',
    'workspace:',
    '  ide: terminal',
    '',
  ].join('\n');
}

async function until<T>(what: string, check: () => Promise<T | null | false | undefined>, timeoutMs = 300_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check().catch(() => null);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** GET / with the Host header `host` (fetch may not set Host: node's http may) */
function get(port: number, host: string, address = '127.0.0.1'): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = http.get({ host: address, port, path: '/', headers: { host }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', () => resolve({ status: 0, body: '' }));
    req.setTimeout(5_000, () => req.destroy(new Error('timeout')));
  });
}

const median = (xs: number[]) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)]! : NaN;
};
const sec = (x: number) => (Number.isFinite(x) ? `${(x / 1000).toFixed(2)} s` : '–');

export async function partBaseDisk(ctx: WarmBenchContext): Promise<void> {
  const { berth, fake, owner, say } = ctx;
  const repo = `${ctx.repoPrefix}-base`;
  fake.createRepo(owner, repo, { installationId: ctx.installationId });
  const nonce = `base-${ctx.repoPrefix}`;
  const files = ctx.files(nonce, { '.github/berth.yml': berthYml() });
  const push = async (branch: string, content: Record<string, string>, from?: string) => {
    const sha = await fake.pushFiles(owner, repo, branch, content, `bench ${branch}`, from ? { from } : undefined);
    const res = await sendWebhook(berth.webhookUrl, 'push', pushPayload({ fake, owner, repo, branch, after: sha, installationId: ctx.installationId }), fake.webhookSecret);
    await res.arrayBuffer();
    if (res.status >= 300) throw new Error(`webhook answered ${res.status}`);
    return sha;
  };

  say(`part 8: base disk: copy of a 1 GiB data volume; new branch → first 200 with a ${SEED_SECONDS} s seed, copy vs cold vs docker start`);
  await copyGiB(ctx);
  await push('main', files);
  const base = await until('the base disk of main', async () => {
    const b = await berth.db.baseDisk.findFirst({ where: { repository: { name: repo } }, orderBy: { createdAt: 'desc' } });
    if (b?.state === 'failed') throw new Error(`base disk failed: ${b.error}`);
    return b?.state === 'ready' ? b : null;
  }, 400_000, 250);
  say(`  base disk ready (${JSON.stringify(base.steps)})`);
  // a root commit with the same files: branches of it do not hold the base disk's commit (cold)
  await fake.pushFiles(owner, repo, 'cold-root', files, 'bench cold root', { from: 'no-such-branch' });

  const measure = async (branch: string, from: string) => {
    const slug = workspaceSlug(`${owner}/${repo}`, branch);
    const text = `${branch} ${nonce}`;
    const fromHead = await fake.resolveRef(owner, repo, `refs/heads/${from}`);
    if (!fromHead) throw new Error(`no branch ${from}`);
    const t0 = Date.now();
    await push(branch, { 'message.txt': `${text}\n` }, from);
    await until(`${branch}'s preview`, async () => {
      const r = await get(berth.port, `${slug}.localhost:${berth.port}`);
      return r.status === 200 && r.body.includes(text) && r.body.includes('seeded-alice');
    }).catch(async (err) => {
      const ws = await berth.db.workspace.findFirst({ where: { branch, repository: { name: repo } } });
      throw new Error(`${(err as Error).message} (workspace ${ws?.state}: ${ws?.stateReason})`);
    });
    const total = Date.now() - t0;
    const ws = await berth.db.workspace.findFirstOrThrow({ where: { branch, repository: { name: repo } } });
    const steps = (ws.startSteps as Array<{ step: string; ms: number }> | null) ?? [];
    await berth.queues.enqueueWorkspace('delete', { workspaceId: ws.id, actor: 'bench' });
    await until('deleted', async () => (await berth.db.workspace.findUnique({ where: { id: ws.id } }))?.state === 'deleted', 60_000, 200);
    return { total, origin: ws.diskOrigin ?? '?', steps };
  };

  // by hand: a stopped container of main's image running the app on its own (already seeded) filesystem
  const mainWs = await berth.db.workspace.findFirstOrThrow({ where: { branch: 'main', repository: { name: repo } } });
  const mainBuild = await berth.db.build.findFirstOrThrow({ where: { workspaceId: mainWs.id, state: 'succeeded' }, orderBy: { createdAt: 'desc' } });
  const image = (mainBuild.images as Record<string, string>).web!;
  const byHand = await docker.createContainer({ Image: image, Cmd: ['sh', '-c', 'node migrate.js && node seed.js && exec node server.js'], WorkingDir: '/workspace', Env: ['PORT=3000'], Labels: ctx.label });
  await byHand.start();
  await sleep(1500);
  await byHand.stop({ t: 1 });
  const dockerStart = async () => {
    const t0 = Date.now();
    await byHand.start();
    const ip = Object.values((await byHand.inspect()).NetworkSettings.Networks)[0]?.IPAddress ?? '';
    await until('the container by hand', async () => (await get(3000, ip, ip)).status === 200 || null, 60_000);
    const total = Date.now() - t0;
    await byHand.stop({ t: 1 });
    return total;
  };

  const copy: Array<Awaited<ReturnType<typeof measure>>> = [];
  const cold: Array<Awaited<ReturnType<typeof measure>>> = [];
  const hand: number[] = [];
  const reps = Math.max(1, Math.min(ctx.reps, 3));
  try {
    for (let i = 0; i < reps; i++) {
      const c = await measure(`copy-${i}`, 'main');
      copy.push(c);
      say(`  copy #${i + 1}: ${sec(c.total)} (${c.origin}; ${c.steps.map((s) => `${s.step} ${sec(s.ms)}`).join(', ')})`);
      const f = await measure(`cold-${i}`, 'cold-root');
      cold.push(f);
      say(`  cold #${i + 1}: ${sec(f.total)} (${f.origin}; ${f.steps.map((s) => `${s.step} ${sec(s.ms)}`).join(', ')})`);
      const h = await dockerStart();
      hand.push(h);
      say(`  docker start + first 200 #${i + 1}: ${sec(h)}`);
    }
  } finally {
    await byHand.remove({ force: true }).catch(() => {});
  }
  const floor = median(hand);
  const stepsOf = (runs: typeof copy) => {
    const names = [...new Set(runs.flatMap((r) => r.steps.map((s) => s.step)))];
    return names.map((n) => `${n} ${sec(median(runs.map((r) => r.steps.find((s) => s.step === n)?.ms ?? NaN)))}`).join(' · ');
  };
  ctx.emit(
    ctx.table(
      `New branch → first 200 with a ${SEED_SECONDS} s seed: base disk copy, cold, docker start by hand (part 8; push to first 200, build included)`,
      ['path', 'runs', 'median', 'vs docker start + first 200', 'start steps (medians)'],
      [
        [`copy of the base disk (${[...new Set(copy.map((r) => r.origin))].join('/')})`, copy.map((r) => sec(r.total)).join(', '), sec(median(copy.map((r) => r.total))), `${(median(copy.map((r) => r.total)) / floor).toFixed(1)}×`, stepsOf(copy)],
        [`cold (${[...new Set(cold.map((r) => r.origin))].join('/')}: clone, migrate, seed)`, cold.map((r) => sec(r.total)).join(', '), sec(median(cold.map((r) => r.total))), `${(median(cold.map((r) => r.total)) / floor).toFixed(1)}×`, stepsOf(cold)],
        ['`docker start` + first 200 (by hand)', hand.map(sec).join(', '), sec(floor), '1.0×', 'a stopped container of the same image'],
      ],
    ),
  );
}

/** Runtime.copyDisk of a 1 GiB data volume vs the host's `cp -a` of the same folder */
async function copyGiB(ctx: WarmBenchContext): Promise<void> {
  const runtime = new DockerRuntime(docker, ctx.berth.prefix);
  const id = `bench-${Date.now().toString(36)}`;
  // copyDisk reads the names and the services' volumes only: no limits needed here
  const spec = (slug: string) => ({ workspaceId: slug, slug, services: [{ name: 'db', image: 'none', env: {}, mountsWorkspace: false, data: '/data' }] }) as unknown as WorkspaceRunSpec;
  const src = spec(`${id}-src`);
  const srcVolume = dockerNames.dataVolume(src.slug, 'db');
  const labels = { [LABELS.workspace]: src.workspaceId, [LABELS.slug]: src.slug, [LABELS.service]: 'db', [LABELS.instance]: ctx.berth.prefix, ...ctx.label };
  await docker.createVolume({ Name: srcVolume, Labels: labels });
  const image = (await docker.listImages({ filters: { reference: ['berth-base:node20'] } }))[0] ? 'berth-base:node20' : null;
  if (!image) return ctx.say('  1 GiB copy skipped: no berth-base:node20 image to write the data with');
  const writer = await docker.createContainer({
    Image: image,
    Cmd: ['node', '-e', "const fs=require('fs'),c=require('crypto');const f=fs.openSync('/d/blob','w');const b=c.randomBytes(16<<20);for(let i=0;i<64;i++)fs.writeSync(f,b);fs.closeSync(f)"],
    HostConfig: { Mounts: [{ Type: 'volume', Source: srcVolume, Target: '/d' }] },
    Labels: ctx.label,
  });
  const rows: (string | number)[][] = [];
  const volumes: string[] = [srcVolume];
  try {
    await writer.start();
    await writer.wait();
    await writer.remove({ force: true });
    const berthRuns: number[] = [];
    let method = '';
    let bytes = 0;
    for (let i = 0; i < 3; i++) {
      const dst = spec(`${id}-dst${i}`);
      volumes.push(dockerNames.dataVolume(dst.slug, 'db'));
      const r = await runtime.copyDisk(src, dst, { part: 'data', timeoutMs: 600_000 });
      berthRuns.push(r.durationMs);
      method = r.method;
      bytes = r.bytes;
    }
    const mount = (await docker.getVolume(srcVolume).inspect()).Mountpoint;
    const hostRuns: number[] = [];
    for (let i = 0; i < 3; i++) {
      const target = `${mount}/../../bench-host-cp-${id}-${i}`;
      const t0 = Date.now();
      await run('cp', ['-a', '--reflink=auto', `${mount}/.`, target]);
      hostRuns.push(Date.now() - t0);
      await fs.rm(target, { recursive: true, force: true });
    }
    const { stdout } = await run('df', ['-T', mount]);
    const fsType = stdout.trim().split('\n')[1]?.split(/\s+/)[1] ?? '?';
    rows.push([`Runtime.copyDisk (${method}; container start, cp, du)`, berthRuns.map(sec).join(', '), sec(median(berthRuns)), `${(bytes / 2 ** 30 / (median(berthRuns) / 1000)).toFixed(2)} GiB/s`]);
    rows.push(['host `cp -a --reflink=auto` of the same folder (floor)', hostRuns.map(sec).join(', '), sec(median(hostRuns)), `${(2 ** 30 / 2 ** 30 / (median(hostRuns) / 1000)).toFixed(2)} GiB/s`]);
    ctx.emit(ctx.table(`Copy of a 1 GiB data volume (part 8; the engine's volumes are on ${fsType})`, ['how', 'runs', 'median', 'rate'], rows));
  } finally {
    for (const v of volumes) await docker.getVolume(v).remove().catch(() => {});
  }
}
