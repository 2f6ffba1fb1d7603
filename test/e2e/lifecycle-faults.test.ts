import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeGitHub, type FakeGitHub } from '../fakes/github.js';
import { pushPayload, sendWebhook } from '../fakes/webhooks.js';
import { sampleAppFiles } from '../fixtures/sample-app.js';
import { startTestBerth, type TestBerth } from '../helpers/berth.js';
import { waitFor } from '../helpers/http.js';
import type { WorkspaceState } from '../../lib/db/client.js';
import { dockerNames, LABELS } from '../../worker/runtime/docker.js';
import { workspaceSlug } from '../../lib/slug.js';
import { containersOf, diskFile, docker, lineCount } from './lifecycle.helpers.js';

const O = 'acme';
const run = promisify(execFile);

function appFiles(opts: { command?: string; seed?: string; dockerfile?: string } = {}) {
  const yml = [
    'services:',
    '  web:',
    '    build: .',
    '    port: 3000',
    ...(opts.command ? ['    command: |', ...opts.command.split('\n').map((l) => `      ${l}`)] : ['    command: node server.js']),
    '    migrate: node migrate.js',
    `    seed: ${opts.seed ?? 'node seed.js'}`,
    '    health: /health',
    "preview: { service: web, visibility: public }", // opened without sign-in; the fake's repositories are private
    'workspace:',
    '  ide: terminal',
    '',
  ].join('\n');
  return sampleAppFiles({ '.github/berth.yml': yml, ...(opts.dockerfile ? { Dockerfile: opts.dockerfile } : {}) });
}

/** Environment of this file's Berth; the worker process gets the same (plus what startTestBerth adds). */
const ENV = {
  BERTH_ROLE: 'app',
  BERTH_JOB_LOCK_TIMEOUT: '3s',
  BERTH_REAP_INTERVAL: '2s',
  BERTH_RECONCILE_INTERVAL: '2s',
  BERTH_MAX_RUNNING_PER_REPO: '1',
  BERTH_MEMORY_LIMIT: '64m',
};

/**
 * Faults and limits, with the worker as a process of its own (as when app and worker run
 * apart): a worker killed in the middle of a build and of a start, an OOM-killed service, and
 * the per-repository limit of running workspaces.
 */
describe('workspace lifecycle: faults and limits', () => {
  let fake: FakeGitHub;
  let berth: TestBerth;
  let installationId: number;
  let worker: ChildProcess | undefined;
  const workerLog: string[] = [];
  /** volumes the disk-full test made (without Berth's labels), with their loop devices */
  const smallDisks: Array<{ name: string; image: string; device: string }> = [];

  beforeAll(async () => {
    fake = await startFakeGitHub();
    installationId = fake.addInstallation({ login: O, type: 'Organization' }).id;
    for (const repo of ['api', 'oom', 'lim', 'full']) {
      fake.createRepo(O, repo, { installationId });
      await fake.pushFiles(O, repo, 'main', { 'README.md': `# ${repo}\n` });
    }
    berth = await startTestBerth(fake, ENV);
  });

  afterAll(async () => {
    if (berth) {
      if (!worker || worker.exitCode !== null) worker = startWorkerProcess();
      for (const ws of await berth.db.workspace.findMany({ where: { state: { not: 'deleted' } } })) {
        await berth.queues.enqueueWorkspace('delete', { workspaceId: ws.id, actor: 'test' });
      }
      await waitFor('every workspace deleted', async () => (await berth.db.workspace.count({ where: { state: { not: 'deleted' } } })) === 0, 60_000, 500).catch(() => {});
      await stopWorkerProcess();
      const filters = { label: [`${LABELS.instance}=${berth.config.BERTH_QUEUE_PREFIX}`] };
      for (const c of await docker.listContainers({ all: true, filters })) await docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => {});
      for (const n of await docker.listNetworks({ filters })) await docker.getNetwork(n.Id).remove().catch(() => {});
      for (const v of (await docker.listVolumes({ filters })).Volumes ?? []) await docker.getVolume(v.Name).remove().catch(() => {});
      for (const disk of smallDisks) {
        await docker.getVolume(disk.name).remove().catch(() => {});
        await run('losetup', ['-d', disk.device]).catch(() => {});
        await fs.rm(disk.image, { force: true });
      }
      await berth.close();
    }
    await fake?.close();
  });

  /** `node --import tsx worker/main.ts` with this Berth's environment: one process, so SIGKILL kills the worker itself. */
  function startWorkerProcess(): ChildProcess {
    const c = berth.config;
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/root',
      APP_ID: c.APP_ID!,
      PRIVATE_KEY: c.PRIVATE_KEY!,
      WEBHOOK_SECRET: c.WEBHOOK_SECRET!,
      GHE_HOST: c.GHE_HOST!,
      GHE_PROTOCOL: c.GHE_PROTOCOL,
      DATABASE_URL: c.DATABASE_URL!,
      REDIS_URL: c.REDIS_URL!,
      BERTH_QUEUE_PREFIX: c.BERTH_QUEUE_PREFIX,
      BERTH_PREVIEW_DOMAIN: c.BERTH_PREVIEW_DOMAIN,
      BERTH_HEALTH_TIMEOUT: `${c.BERTH_HEALTH_TIMEOUT}ms`,
      BERTH_DATA_DIR: c.BERTH_DATA_DIR,
      LOG_LEVEL: 'error',
      ...ENV,
      BERTH_ROLE: 'worker',
    };
    const child = spawn(process.execPath, ['--import', 'tsx', 'worker/main.ts'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (chunk: Buffer) => workerLog.push(...chunk.toString('utf8').split('\n').filter(Boolean).map((l) => `[${child.pid}] ${l}`));
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    return child;
  }

  async function killWorker(signal: NodeJS.Signals) {
    const w = worker;
    if (!w || w.exitCode !== null || w.signalCode !== null) return;
    const exited = new Promise((r) => w.once('exit', r));
    w.kill(signal);
    const late = setTimeout(() => w.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(late);
  }
  const stopWorkerProcess = () => killWorker('SIGTERM');
  const ensureWorker = () => {
    if (!worker || worker.exitCode !== null || worker.signalCode !== null) worker = startWorkerProcess();
  };

  const hook = async (event: string, payload: unknown) => {
    const res = await sendWebhook(berth.webhookUrl, event, payload, fake.webhookSecret);
    expect(res.status).toBeLessThan(300);
  };
  async function push(repo: string, branch: string, files: Record<string, string | null>) {
    const sha = await fake.pushFiles(O, repo, branch, files);
    await hook('push', pushPayload({ fake, owner: O, repo, branch, after: sha, installationId }));
    return sha;
  }
  const byId = (id: string) => berth.db.workspace.findUniqueOrThrow({ where: { id } });
  const workspaceOf = (repo: string, branch: string) =>
    waitFor(`the workspace of ${repo}@${branch}`, () => berth.db.workspace.findFirst({ where: { branch, repository: { name: repo } } }));
  const untilState = (id: string, state: WorkspaceState, ms = 120_000) =>
    waitFor(
      `workspace ${state}`,
      async () => {
        const ws = await byId(id);
        // a failed workspace is the end of a wait for anything but its deletion (the way out of failed)
        if (ws.state === 'failed' && state !== 'failed' && state !== 'deleted') throw new Error(`failed: ${ws.stateReason}`);
        return ws.state === state ? ws : null;
      },
      ms,
      250,
    ).catch((err) => {
      console.error(workerLog.slice(-40).join('\n'));
      throw err;
    });

  it('a worker killed in the middle of a build, then of a start: another worker finishes the job, the workspace ends running', async () => {
    worker = startWorkerProcess();
    // a fresh layer each run (never from the layer cache), slow enough to kill the worker in it
    const dockerfile = `FROM berth-base:node20\nRUN echo ${Date.now()} && sleep 4\nWORKDIR /workspace\nCOPY . /workspace\nEXPOSE 3000\nCMD ["node","server.js"]\n`;
    const sha = await push('api', 'feature/slow', appFiles({ dockerfile, seed: 'sleep 4 && node seed.js' }));
    const ws = await workspaceOf('api', 'feature/slow');

    // 1. during `docker build` (its RUN sleep 4)
    const build = await waitFor('the build to reach docker build', async () => {
      const b = await berth.db.build.findFirst({ where: { workspaceId: ws.id, sha } });
      return b?.step?.startsWith('building service web') ? b : null;
    }, 120_000, 100);
    await new Promise((r) => setTimeout(r, 1500));
    await killWorker('SIGKILL');
    expect((await berth.db.build.findUniqueOrThrow({ where: { id: build.id } })).state).toBe('running');
    expect((await byId(ws.id)).state).toBe('building');

    // 2. a new worker takes the build over once its lock expired; kill it while it seeds
    worker = startWorkerProcess();
    await waitFor('the start to reach the seed', async () => (await byId(ws.id)).stateReason === 'seeding (web)', 120_000, 100);
    await new Promise((r) => setTimeout(r, 1000));
    await killWorker('SIGKILL');
    expect((await byId(ws.id)).state).toBe('starting');
    expect(await containersOf(ws.id, 'task')).toHaveLength(1); // the seed, orphaned, still sleeping

    // 3. a third worker finishes the start
    worker = startWorkerProcess();
    const running = await untilState(ws.id, 'running');
    expect(running.runningSha).toBe(sha);
    expect((await berth.db.build.findUniqueOrThrow({ where: { id: build.id } })).state).toBe('succeeded');
    const page = await waitFor('the preview', async () => {
      const r = await berth.preview(ws.slug);
      return r.status === 200 ? r : null;
    });
    expect(page.body).toContain('seeded-alice');
    // the orphaned seed was allowed to finish, marked the disk, and was not run again
    expect(lineCount(await diskFile(ws.slug, '.data/seed.log'))).toBe(1);
    const log = (await berth.db.buildLogChunk.findMany({ where: { buildId: build.id }, orderBy: { id: 'asc' } })).map((c) => c.text).join('');
    expect(log).toContain('seed of web already ran on this disk');
    expect(await containersOf(ws.id, 'task')).toHaveLength(0);
    const events = await berth.db.workspaceEvent.findMany({ where: { workspaceId: ws.id }, orderBy: { id: 'asc' } });
    expect(events.map((e) => e.toState)).not.toContain('failed');
  });

  it('a service killed for running out of memory fails its workspace with that reason', async () => {
    ensureWorker();
    const alloc = 'node -e "const a=[];for(;;)a.push(Buffer.alloc(1e6,1))"';
    await push('oom', 'feature/hungry', appFiles({ command: `node server.js &\nsleep 6\n${alloc}` }));
    const ws = await workspaceOf('oom', 'feature/hungry');
    await untilState(ws.id, 'running');
    const failed = await untilState(ws.id, 'failed', 60_000);
    expect(failed.stateReason).toBe('service web was killed: out of memory (limit 64m per container)');
    const event = await berth.db.workspaceEvent.findFirstOrThrow({ where: { workspaceId: ws.id }, orderBy: { id: 'desc' } });
    expect(event).toMatchObject({ fromState: 'running', toState: 'failed', actor: 'reconciler' });
    await waitFor('its containers removed', async () => (await containersOf(ws.id)).length === 0, 30_000);
    const page = await berth.preview(ws.slug);
    expect(page.status).toBe(502);
  });

  it('a full disk fails the workspace with that reason, in the seed and in a service that fills it later', async () => {
    ensureWorker();
    // A workspace disk of 4 MB, an ext4 file system on a loop device (Berth adopts a volume of
    // that name it finds unowned): writing 8 MB really runs out of space.
    const fill = (file: string) => `node -e "require('fs').writeFileSync('/workspace/${file}', Buffer.alloc(8e6, 1))"`;
    const smallDisk = async (branch: string) => {
      const name = dockerNames.workspaceVolume(workspaceSlug(`${O}/full`, branch));
      const image = path.join(os.tmpdir(), `${name}.img`);
      await run('truncate', ['-s', '4M', image]);
      await run('mkfs.ext4', ['-q', '-F', image]);
      const device = (await run('losetup', ['-f', '--show', image])).stdout.trim();
      smallDisks.push({ name, image, device });
      await docker.createVolume({ Name: name, Driver: 'local', DriverOpts: { type: 'ext4', device } });
    };

    const failedPage = async (slug: string) => {
      const page = await berth.preview(slug);
      expect(page.status).toBe(502);
      return page.body;
    };

    // 1. the seed fills the disk: the start fails, and says so wherever the user looks
    await smallDisk('feature/seed-fills');
    await push('full', 'feature/seed-fills', appFiles({ seed: `node seed.js && ${fill('seed-output.bin')}` }));
    const seeded = await workspaceOf('full', 'feature/seed-fills');
    const failed = await untilState(seeded.id, 'failed');
    expect(failed.stateReason).toMatch(/^seed of service web .* exited with code 1: the workspace disk is full \(no space left on device\)/);
    expect(failed.stateReason).toContain('delete the workspace (Delete on its dashboard page, or /berth delete) and push again to start over on an empty disk');
    expect(failed.stateReason).toContain('ENOSPC'); // the seed's own output follows
    const build = await berth.db.build.findFirstOrThrow({ where: { workspaceId: seeded.id }, orderBy: { createdAt: 'desc' } });
    const check = await waitFor('the failed check run', async () => fake.checkRuns(O, 'full', build.sha).find((c) => c.conclusion === 'failure'));
    expect(check.output?.summary ?? '').toContain('the workspace disk is full');
    expect(await failedPage(seeded.slug)).toContain('the workspace disk is full (no space left on device)');

    // 2. doing what it says works: deleting the workspace removes the disk it adopted, and the
    // next push (its seed fixed) starts on an empty one instead of adopting the full one again
    const disk = dockerNames.workspaceVolume(seeded.slug);
    await berth.queues.enqueueWorkspace('delete', { workspaceId: seeded.id, actor: '@alice', reason: 'deleted by @alice' });
    await untilState(seeded.id, 'deleted');
    await expect(docker.getVolume(disk).inspect()).rejects.toMatchObject({ statusCode: 404 });
    await push('full', 'feature/seed-fills', appFiles());
    await untilState(seeded.id, 'running');
    expect((await berth.preview(seeded.slug)).body).toContain('seeded-alice');

    // 3. a service that runs, then fills the disk and dies on every restart: the reconciler fails
    // the workspace and says why, instead of only how often it crashed
    await smallDisk('feature/app-fills');
    const appSha = await push('full', 'feature/app-fills', appFiles({ command: `node server.js &\nsleep 4\n${fill('app-output.bin')}` }));
    const app = await workspaceOf('full', 'feature/app-fills');
    await untilState(app.id, 'running');
    const dead = await untilState(app.id, 'failed', 150_000);
    expect(dead.stateReason).toMatch(/^service web keeps crashing \(restarted \d+ times\): the workspace disk is full \(no space left on device\): free space under \/workspace from the IDE terminal/);
    const appCheck = await waitFor('the check run failed', async () => fake.checkRuns(O, 'full', appSha).find((c) => c.conclusion === 'failure'));
    expect(appCheck.output?.summary ?? '').toContain('the workspace disk is full');
    expect(await failedPage(app.slug)).toContain('the workspace disk is full (no space left on device)');
  });

  it('BERTH_MAX_RUNNING_PER_REPO=1: starting a second branch stops the least recently used one, and its history says why', async () => {
    ensureWorker();
    await push('lim', 'first', appFiles());
    const first = await workspaceOf('lim', 'first');
    await untilState(first.id, 'running');
    await push('lim', 'second', appFiles());
    const second = await workspaceOf('lim', 'second');
    await untilState(second.id, 'running');
    const stopped = await byId(first.id);
    expect(stopped.state).toBe('stopped');
    expect(stopped.stateReason).toBe('stopped to make room for second (BERTH_MAX_RUNNING_PER_REPO reached)');
    const event = await berth.db.workspaceEvent.findFirstOrThrow({ where: { workspaceId: first.id }, orderBy: { id: 'desc' } });
    expect(event).toMatchObject({ fromState: 'running', toState: 'stopped', actor: 'limits' });
    expect(await containersOf(first.id, 'service', false)).toHaveLength(0);

    // a request wakes the first one, which in turn makes room by stopping the second
    // (held while it wakes: the app answers it, issue 13)
    expect((await berth.preview(first.slug)).status).toBe(200);
    await untilState(first.id, 'running');
    const second2 = await untilState(second.id, 'stopped', 30_000);
    expect(second2.stateReason).toBe('stopped to make room for first (BERTH_MAX_RUNNING_PER_REPO reached)');
    expect(await berth.db.workspace.count({ where: { state: 'running', repository: { name: 'lim' } } })).toBe(1);
  });
});
