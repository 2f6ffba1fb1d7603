import { randomBytes } from 'node:crypto';
import type { Job } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../lib/config.js';
import { applyMigrations } from '../../lib/db/migrate.js';
import { createPrisma, type PrismaClient, type WorkspaceState } from '../../lib/db/client.js';
import { canTransition } from '../../lib/lifecycle.js';
import { Queues, type WorkspaceJob } from '../../lib/queue.js';
import { transition } from '../../lib/workspaces.js';
import type { RepoConfig } from '../../lib/repo-config.js';
import type { WorkerDeps } from '../../worker/deps.js';
import { startJob } from '../../worker/jobs/start.js';
import { stopJob } from '../../worker/jobs/stop.js';
import { statusJob } from '../../worker/jobs/status.js';
import { diagnose, reconcileJob } from '../../worker/jobs/reconcile.js';
import type { ContainerStatus, Runtime, ServiceEndpoint, StartOptions } from '../../worker/runtime/types.js';
import { createTestDatabase } from '../helpers/database.js';
import { waitFor } from '../helpers/http.js';

/**
 * The workspace state machine under races, on the real PostgreSQL: `transition()` must let
 * exactly the legal changes through when commands collide, and its history must name the
 * states a workspace really went through. Then the start and stop jobs themselves, racing as
 * two workers would (no in-process lock between them), on a runtime that only counts
 * containers: whatever the interleaving, the record and the containers agree.
 */
describe('workspace transitions under races (real PostgreSQL)', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let db: PrismaClient;
  let queues: Queues;
  let n = 0;

  beforeAll(async () => {
    database = await createTestDatabase();
    await applyMigrations(database.url);
    db = createPrisma(database.url);
    queues = new Queues({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', maxRetriesPerRequest: null }, `tl${randomBytes(4).toString('hex')}`);
    await db.installation.create({ data: { id: 1n, accountLogin: 'acme', accountType: 'Organization' } });
    await db.repository.create({ data: { id: 2n, installationId: 1n, owner: 'acme', name: 'shop', fullName: 'acme/shop' } });
  });

  afterAll(async () => {
    for (const q of [queues?.builds, queues?.workspaces, queues?.reports]) await q?.obliterate({ force: true }).catch(() => {});
    await queues?.close();
    await db?.$disconnect();
    await database?.drop();
  });

  async function workspaceIn(state: WorkspaceState) {
    n++;
    const ws = await db.workspace.create({ data: { repositoryId: 2n, branch: `b${n}`, slug: `b${n}-shop`, headSha: 'a'.repeat(40), state } });
    await db.workspaceEvent.create({ data: { workspaceId: ws.id, toState: state, reason: 'test', actor: 'test' } });
    return ws;
  }

  /** Every event leaves the state the previous one entered, by a legal step, and the last one is the state. */
  async function expectConsistentHistory(id: string) {
    const ws = await db.workspace.findUniqueOrThrow({ where: { id } });
    const events = await db.workspaceEvent.findMany({ where: { workspaceId: id }, orderBy: { id: 'asc' } });
    for (let i = 1; i < events.length; i++) {
      expect(events[i]!.fromState, `event ${i} of ${events.length}`).toBe(events[i - 1]!.toState);
      expect(canTransition(events[i]!.fromState!, events[i]!.toState)).toBe(true);
    }
    expect(events.at(-1)!.toState).toBe(ws.state);
    return { ws, events };
  }

  it('stop while starting: whichever lands first, the workspace ends stopped, never running or stuck', async () => {
    for (let i = 0; i < 20; i++) {
      const ws = await workspaceIn('starting');
      // the start's last step and a stop arrive together
      const [ran, stopped] = await Promise.all([
        transition(db, queues, ws.id, 'running', 'running abc1234', 'worker', { previewHost: '10.0.0.2' }),
        transition(db, queues, ws.id, 'stopped', 'stopped by @wendy', '@wendy', { previewHost: null }),
      ]);
      const { ws: after, events } = await expectConsistentHistory(ws.id);
      expect(after.state).toBe('stopped');
      expect(after.previewHost).toBeNull();
      expect(stopped).not.toBeNull();
      // running first then stopped: both happened, in that order; stopped first: running was refused
      expect(events.map((e) => e.toState)).toEqual(ran ? ['starting', 'running', 'stopped'] : ['starting', 'stopped']);
    }
  });

  it('many racing commands: each change is legal, the history is one unbroken chain, deleted is final', async () => {
    const ws = await workspaceIn('running');
    const targets: WorkspaceState[] = ['stopped', 'starting', 'running', 'queued', 'building', 'failed', 'stopped', 'starting', 'running', 'stopped'];
    const results = await Promise.all(
      Array.from({ length: 60 }, (_, i) => transition(db, queues, ws.id, targets[i % targets.length]!, `race ${i}`, 'test')),
    );
    const { events } = await expectConsistentHistory(ws.id);
    expect(events.length - 1).toBe(results.filter(Boolean).length);

    await transition(db, queues, ws.id, 'deleted', 'deleted by test', 'test');
    const late = await Promise.all((['starting', 'running', 'stopped', 'failed', 'queued'] as const).map((to) => transition(db, queues, ws.id, to, 'too late', 'test')));
    expect(late.every((r) => r === null)).toBe(true);
    expect((await expectConsistentHistory(ws.id)).ws.state).toBe('deleted');
  });

  it('refuses illegal changes and honours an explicit "only from" condition', async () => {
    const ws = await workspaceIn('stopped');
    expect(await transition(db, queues, ws.id, 'running', 'no', 'test')).toBeNull(); // stopped → running skips starting
    expect(await transition(db, queues, ws.id, 'starting', 'wake', 'gateway', {}, { from: ['running'] })).toBeNull();
    const woke = await transition(db, queues, ws.id, 'starting', 'wake', 'gateway', {}, { from: ['stopped'] });
    expect(woke?.state).toBe('starting');
    // two wake-ups at once: only one leaves `stopped`
    const other = await workspaceIn('stopped');
    const wakes = await Promise.all(Array.from({ length: 5 }, () => transition(db, queues, other.id, 'starting', 'wake', 'gateway', {}, { from: ['stopped'] })));
    expect(wakes.filter(Boolean)).toHaveLength(1);
    await expectConsistentHistory(other.id);
  });

  it('start and stop jobs racing on two workers: the record and the containers always agree', async () => {
    const runtime = new CountingRuntime();
    const config = loadConfig({ DATABASE_URL: database.url, BERTH_MEMORY_LIMIT: '64m' } as NodeJS.ProcessEnv);
    const deps: WorkerDeps = { config, db, queues, runtime, probot: undefined as never, log: () => {} };
    const outcomes = new Set<string>();
    for (let i = 0; i < 12; i++) {
      const ws = await workspaceIn('stopped');
      const build = await db.build.create({
        data: {
          repositoryId: 2n,
          workspaceId: ws.id,
          sha: 'b'.repeat(40),
          state: 'succeeded',
          images: { web: 'img' },
          config: { source: 'berth.yml', services: [{ name: 'web', build: { context: '.', dockerfile: 'Dockerfile', args: {} }, port: 3000, env: {} }], preview: { service: 'web', visibility: 'public' }, workspace: { ide: 'terminal' } } satisfies RepoConfig as never,
        },
      });
      // an existing, seeded disk on the same commit: no clone, no GitHub
      await db.workspace.update({ where: { id: ws.id }, data: { currentBuildId: build.id, seededAt: new Date(), runningSha: build.sha } });
      const job = (name: string, data: WorkspaceJob) => ({ name, data }) as Job<WorkspaceJob>;
      await Promise.all([
        startJob(deps, job('start', { workspaceId: ws.id, actor: '@wendy', reason: 'started by @wendy' })),
        (async () => {
          // from "before the start began" to "after it finished" (0 to 330 ms: a busy machine takes
          // longer than 77 ms just to reach `starting`, and then the stop never raced anything)
          await sleep(i * 30);
          await stopJob(deps, job('stop', { workspaceId: ws.id, actor: '@mo', reason: 'stopped by @mo' }));
        })(),
      ]);
      const { ws: after } = await expectConsistentHistory(ws.id);
      expect(['running', 'stopped']).toContain(after.state);
      expect(runtime.running.has(ws.id), `${after.state} with containers ${runtime.running.has(ws.id)}`).toBe(after.state === 'running');
      expect(after.previewHost === null).toBe(after.state === 'stopped');
      outcomes.add(after.state);
    }
    expect(outcomes.has('stopped')).toBe(true);
  });

  it('an idle stop that read the workspace as idle leaves it running when activity is written before its stop commits', async () => {
    const runtime = new CountingRuntime();
    const config = loadConfig({ DATABASE_URL: database.url, BERTH_MEMORY_LIMIT: '64m' } as NodeJS.ProcessEnv);
    const deps: WorkerDeps = { config, db, queues, runtime, probot: undefined as never, log: () => {} };
    const idleStop = (id: string) => stopJob(deps, { name: 'stop', data: { workspaceId: id, actor: 'idle', reason: 'idle for 6 s' } } as Job<WorkspaceJob>);
    const idleWorkspace = async () => {
      const ws = await workspaceIn('running');
      runtime.running.add(ws.id);
      return db.workspace.update({ where: { id: ws.id }, data: { idleTimeoutSec: 6, lastActivityAt: new Date(Date.now() - 60_000) } });
    };
    // An SSH session opens as the stop runs: its activity write holds the row while the stop job
    // has already read the workspace as idle and waits for the row's lock to stop it.
    const used = await idleWorkspace();
    let stopping: Promise<void> | undefined;
    await db.$transaction(
      async (tx) => {
        await tx.$executeRaw`UPDATE "Workspace" SET "lastActivityAt" = now() WHERE "id" = ${used.id}`;
        stopping = idleStop(used.id);
        await waitFor('the stop to wait for the row', async () => {
          const rows = await db.$queryRaw<Array<{ n: number }>>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE "datname" = current_database() AND "wait_event_type" = 'Lock'`;
          return rows[0]!.n > 0;
        }, 10_000, 20);
      },
      { timeout: 15_000 },
    );
    await stopping;
    expect((await db.workspace.findUniqueOrThrow({ where: { id: used.id } })).state).toBe('running');
    expect(runtime.running.has(used.id)).toBe(true);
    // and without the activity, the same stop stops it
    const idle = await idleWorkspace();
    await idleStop(idle.id);
    expect((await expectConsistentHistory(idle.id)).ws.state).toBe('stopped');
    expect(runtime.running.has(idle.id)).toBe(false);
  });

  describe('reconciler decisions', () => {
    const runtime = new CountingRuntime();
    const probot = { auth: async () => ({ rest: { repos: { getBranch: async () => ({ data: {} }) } } }) } as never;
    let deps: WorkerDeps;
    beforeAll(() => {
      deps = { config: loadConfig({ BERTH_MEMORY_LIMIT: '64m' } as NodeJS.ProcessEnv), db, queues, runtime, probot, log: () => {} };
    });
    const job = (name: string, data: WorkspaceJob) => ({ name, data }) as Job<WorkspaceJob>;

    async function runningWorkspace() {
      const ws = await workspaceIn('running');
      const build = await db.build.create({
        data: { repositoryId: 2n, workspaceId: ws.id, sha: 'c'.repeat(40), state: 'succeeded', images: { web: 'img' }, config: { services: [{ name: 'web' }] } as never },
      });
      await db.workspace.update({ where: { id: ws.id }, data: { currentBuildId: build.id, previewService: 'web', previewHost: '10.0.0.2', previewPort: 3000 } });
      runtime.running.add(ws.id);
      return db.workspace.findUniqueOrThrow({ where: { id: ws.id } });
    }
    const web = (over: Partial<ContainerStatus>): ContainerStatus[] => [{ service: 'web', containerId: 'c1', state: 'running', ip: '10.0.0.2', ...over }];
    const ago = (ms: number) => new Date(Date.now() - ms).toISOString();

    it('judges what a running workspace needs from what the engine runs', async () => {
      const ws = await runningWorkspace();
      const judge = async (statuses: ContainerStatus[]) => {
        runtime.statuses.set(ws.id, statuses);
        return diagnose(deps, ws);
      };
      expect(await judge(web({}))).toEqual({ action: 'none' });
      expect(await judge([])).toMatchObject({ action: 'stop', reason: 'its containers vanished' });
      expect(await judge(web({ state: 'exited', exitCode: 1, finishedAt: ago(60_000) }))).toMatchObject({ action: 'restart', reason: 'service web has exited (exit code 1)' });
      // just exited (e.g. dockerd shutting down): the restart policy gets its chance first
      expect(await judge(web({ state: 'exited', exitCode: 0, finishedAt: ago(1000) }))).toEqual({ action: 'none' });
      expect(await judge(web({ state: 'running', oomKilled: true, restartCount: 1 }))).toMatchObject({ action: 'fail', reason: 'service web was killed: out of memory (limit 64m per container)' });
      expect(await judge(web({ state: 'crash-looping', restartCount: 12 }))).toMatchObject({ action: 'fail', reason: 'service web keeps crashing (restarted 12 times)' });
      expect(await judge(web({ ip: '10.0.0.7' }))).toMatchObject({ action: 'refresh', previewHost: '10.0.0.7' });
      expect(await judge([{ service: 'db', containerId: 'c2', state: 'running' }])).toMatchObject({ action: 'restart', reason: 'the container of service web vanished' });
      runtime.statuses.delete(ws.id);
    });

    it('follows a service that moved to another IP: its own host (issue 16) proxies to the new address', async () => {
      const ws = await runningWorkspace();
      const recorded = [
        { service: 'web', label: 'web', port: 3000, host: '10.0.0.2' },
        { service: 'api', label: 'api', port: 4000, host: '10.0.0.3' },
      ];
      await db.workspace.update({ where: { id: ws.id }, data: { serviceEndpoints: recorded } });
      await db.build.update({ where: { id: ws.currentBuildId! }, data: { config: { services: [{ name: 'web' }, { name: 'api' }] } as never } });
      const api = (ip: string): ContainerStatus => ({ service: 'api', containerId: 'c3', state: 'running', ip });
      runtime.statuses.set(ws.id, [...web({}), api('10.0.0.3')]);
      expect(await diagnose(deps, { ...ws, serviceEndpoints: recorded })).toEqual({ action: 'none' });
      runtime.statuses.set(ws.id, [...web({}), api('10.0.0.8')]);
      await statusJob(deps, job('status', { workspaceId: ws.id, actor: 'gateway' }));
      const after = await db.workspace.findUniqueOrThrow({ where: { id: ws.id } });
      expect(after.previewHost).toBe('10.0.0.2');
      expect(after.serviceEndpoints).toEqual([recorded[0], { ...recorded[1], host: '10.0.0.8' }]);
      runtime.statuses.delete(ws.id);
    });

    it('repairs under the status job: follows a new IP, fails an OOM kill, restarts a dead service at most three times', async () => {
      const ws = await runningWorkspace();
      runtime.statuses.set(ws.id, web({ ip: '10.0.0.9' }));
      await statusJob(deps, job('status', { workspaceId: ws.id, actor: 'gateway' }));
      expect((await db.workspace.findUniqueOrThrow({ where: { id: ws.id } })).previewHost).toBe('10.0.0.9');

      runtime.statuses.set(ws.id, web({ state: 'exited', exitCode: 1, finishedAt: ago(60_000) }));
      await statusJob(deps, job('status', { workspaceId: ws.id, actor: 'reconciler' }));
      const starts = await queues.workspaces.getJobs(['waiting', 'prioritized', 'delayed']);
      expect(starts.find((j) => j?.name === 'start' && j.data.workspaceId === ws.id)?.data).toMatchObject({ actor: 'reconciler', onlyIf: ['running'] });
      for (let i = 0; i < 3; i++) {
        await db.workspaceEvent.create({ data: { workspaceId: ws.id, fromState: 'running', toState: 'starting', reason: 'restart', actor: 'reconciler' } });
      }
      await db.workspaceEvent.create({ data: { workspaceId: ws.id, fromState: 'starting', toState: 'running', reason: 'running', actor: 'reconciler' } });
      await statusJob(deps, job('status', { workspaceId: ws.id, actor: 'reconciler' }));
      const gaveUp = await db.workspace.findUniqueOrThrow({ where: { id: ws.id } });
      expect(gaveUp.state).toBe('failed');
      expect(gaveUp.stateReason).toContain('restarted 3 times in the last 15 minutes');
      expect(runtime.running.has(ws.id)).toBe(false);

      const hungry = await runningWorkspace();
      runtime.statuses.set(hungry.id, web({ oomKilled: true, restartCount: 1 }));
      await statusJob(deps, job('status', { workspaceId: hungry.id, actor: 'reconciler' }));
      expect(await db.workspace.findUniqueOrThrow({ where: { id: hungry.id } })).toMatchObject({ state: 'failed', previewHost: null });
      expect(runtime.running.has(hungry.id)).toBe(false);
    });

    it('fails a workspace stuck starting with no job left to finish it, and leaves one with a job alone', async () => {
      const lost = await workspaceIn('starting');
      const queuedFor = await workspaceIn('starting');
      await queues.enqueueWorkspace('start', { workspaceId: queuedFor.id }, { delay: 60_000 });
      // three minutes in the state (the history says when it entered it)
      await db.$executeRaw`UPDATE "WorkspaceEvent" SET "createdAt" = now() - interval '3 minutes' WHERE "workspaceId" IN (${lost.id}, ${queuedFor.id})`;
      const { repaired } = await reconcileJob(deps);
      expect(repaired).toContain(lost.id);
      expect(await db.workspace.findUniqueOrThrow({ where: { id: lost.id } })).toMatchObject({ state: 'failed', stateReason: expect.stringContaining('no job is left to finish it') });
      expect((await db.workspace.findUniqueOrThrow({ where: { id: queuedFor.id } })).state).toBe('starting');
    });
  });
});

function sleep(ms: number) {
  return new Promise((r) => setTimeout(r, ms));
}

/** A runtime whose every call takes a few milliseconds and which only remembers what runs. */
class CountingRuntime implements Runtime {
  running = new Set<string>();
  /** what status() reports, per workspace, instead of the default */
  statuses = new Map<string, ContainerStatus[]>();
  private tick = () => sleep(3 + Math.random() * 10);
  async ping() {}
  async buildImage() {
    return 'img';
  }
  async ensureImage() {}
  async ensureDisk() {
    await this.tick();
    return { created: false };
  }
  async writeWorkspaceFiles() {}
  async runDiskGit() {
    return { exitCode: 0, output: '', timedOut: false };
  }
  /** every disk holds a checkout and no seed mark */
  async diskEntryExists(_spec: unknown, relPath: string) {
    return relPath === '.git/HEAD';
  }
  async populateWorkspace() {}
  async runTask() {
    await this.tick();
    return { exitCode: 0, tail: '', oomKilled: false };
  }
  async startServices(spec: { workspaceId: string }, opts: StartOptions = {}): Promise<ServiceEndpoint[]> {
    await this.tick();
    await opts.prepare?.(); // migrate and seed, before any service starts
    this.running.add(spec.workspaceId);
    return [{ service: 'web', containerId: `c-${spec.workspaceId}`, host: '10.0.0.2' }];
  }
  async waitHealthy() {
    await this.tick();
  }
  async startIde(): Promise<ServiceEndpoint> {
    throw new Error('no IDE here');
  }
  async stopIde() {}
  async containerLogTail() {
    return '';
  }
  async workspaceDiskPlace() {
    return 'unknown' as const;
  }
  async listBuiltImages() {
    return [];
  }
  async removeImage() {
    return true;
  }
  async stopServices(workspaceId: string) {
    await this.tick();
    this.running.delete(workspaceId);
  }
  async removeWorkspace(workspaceId: string) {
    this.running.delete(workspaceId);
  }
  async status(workspaceId: string): Promise<ContainerStatus[]> {
    const set = this.statuses.get(workspaceId);
    if (set) return set;
    return this.running.has(workspaceId) ? [{ service: 'web', containerId: `c-${workspaceId}`, state: 'running' }] : [];
  }
  async listWorkspaceIds() {
    return [...this.running];
  }
  async listWorkspaceVolumes() {
    return [];
  }
  async runningWorkspaceIds() {
    return [...this.running];
  }
  async removeTasks() {}
}
