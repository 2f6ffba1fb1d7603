import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeGitHub, type FakeGitHub } from '../fakes/github.js';
import { issueCommentPayload, pushPayload, sendWebhook } from '../fakes/webhooks.js';
import { sampleAppFiles } from '../fixtures/sample-app.js';
import { startTestBerth, type TestBerth } from '../helpers/berth.js';
import { CookieClient } from '../helpers/cookie-client.js';
import { NotYet, waitFor } from '../helpers/http.js';
import { diskFile, lineCount } from './lifecycle.helpers.js';
import { portOpen, startEmbeddedPostgres } from '../../lib/db/embedded.js';

const O = 'acme';
const R = 'shop';

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

/** A Redis of this test's own (the shared one must not go down under other tests), with its data kept on disk. */
function startRedis(port: number, dir: string): ChildProcess {
  return spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--save', ''], { stdio: 'ignore' });
}

async function stopProcess(child: ChildProcess) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise((r) => (child.once('exit', r), child.kill('SIGTERM')));
}

/**
 * Berth keeps working through restarts of its Redis and its PostgreSQL (issue 4): webhooks
 * that arrive during an outage answer quickly and are not lost, jobs interrupted by it finish
 * afterwards, and pushes after the restart reach the preview. Both servers are this test's own.
 */
describe('Redis and PostgreSQL restarts', () => {
  let fake: FakeGitHub;
  let berth: TestBerth;
  let installationId: number;
  let dataDir: string;
  let redisPort: number;
  let redis: ChildProcess;
  let pgPort: number;
  let pg: { url: string; stop: () => Promise<void> };

  const redisUp = async () => {
    await mkdir(join(dataDir, 'redis'), { recursive: true });
    redis = startRedis(redisPort, join(dataDir, 'redis'));
    await waitFor('Redis to answer', () => portOpen(redisPort), 10_000, 50);
  };
  /** GET /readyz: which of Berth's checks pass */
  const readiness = async () => {
    const res = await fetch(`${berth.url}/readyz`);
    const body = (await res.json()) as { checks: Record<string, { ok: boolean }> };
    return { status: res.status, database: body.checks.database!.ok, redis: body.checks.redis!.ok };
  };
  /** Berth's connections come back by themselves (ioredis retries every ≤ 2 s): wait for /readyz */
  const untilReady = () => waitFor('Berth to be ready again', async () => (await readiness()).status === 200, 30_000, 100);

  beforeAll(async () => {
    fake = await startFakeGitHub();
    installationId = fake.addInstallation({ login: O, type: 'Organization' }).id;
    fake.createRepo(O, R, { installationId });
    fake.addUser('wendy');
    fake.setPermission(O, R, 'wendy', 'write');
    dataDir = await mkdtemp(join(tmpdir(), 'berth-restarts-'));
    await chmod(dataDir, 0o755); // PostgreSQL runs as its own user
    redisPort = await freePort();
    await redisUp();
    pgPort = await freePort();
    pg = await startEmbeddedPostgres(join(dataDir, 'pg'), pgPort);
    berth = await startTestBerth(fake, {
      DATABASE_URL: pg.url,
      REDIS_URL: `redis://127.0.0.1:${redisPort}`,
      BERTH_RECONCILE_INTERVAL: '2s',
      BERTH_JOB_LOCK_TIMEOUT: '5s',
    });
  }, 180_000);

  afterAll(async () => {
    if (redisPort && !(await portOpen(redisPort))) await redisUp().catch(() => {});
    if (berth) {
      for (const ws of await berth.db.workspace.findMany().catch(() => [])) await berth.queues.enqueueWorkspace('delete', { workspaceId: ws.id, actor: 'test' }).catch(() => {});
      await waitFor('workspaces deleted', async () => (await berth.db.workspace.count({ where: { state: { not: 'deleted' } } })) === 0, 60_000, 500).catch(() => {});
      await berth.close();
    }
    await pg?.stop().catch(() => {});
    if (redis) await stopProcess(redis);
    await fake?.close();
    await rm(dataDir, { recursive: true, force: true });
  }, 180_000);

  const hook = async (event: string, payload: unknown, delivery?: string) => {
    const t0 = Date.now();
    const res = await sendWebhook(berth.webhookUrl, event, payload, fake.webhookSecret, delivery ? { deliveryId: delivery } : undefined);
    return { status: res.status, ms: Date.now() - t0 };
  };
  const push = async (branch: string, files: Record<string, string | null>, delivery?: string) => {
    const sha = await fake.pushFiles(O, R, branch, files);
    return { sha, ...(await hook('push', pushPayload({ fake, owner: O, repo: R, branch, after: sha, installationId }), delivery)) };
  };
  const previewShows = (slug: string, text: string, ms = 150_000) =>
    waitFor(`the preview to show “${text}”`, async () => {
      const r = await berth.preview(slug);
      const ws = await berth.db.workspace.findUnique({ where: { slug } });
      // the old version may serve a new commit's files from the disk before its rollout ends: wait for that end too
      if (r.status === 200 && r.body.includes(text) && ws?.state === 'running') return true;
      // not yet: say where the workspace is, for the timeout's message
      if (ws?.state === 'failed') throw new Error(`workspace failed: ${ws.stateReason}`);
      throw new NotYet(`preview answered ${r.status}; workspace ${ws?.state}: ${ws?.stateReason}`);
    }, ms, 250);
  const workspace = (branch: string) => waitFor(`workspace ${branch}`, () => berth.db.workspace.findFirst({ where: { branch } }), 60_000, 100);
  /**
   * The branch's workspace as an earlier test of this file leaves it; run alone (`-t`), the test
   * makes it here: pushed and serving `files`.
   */
  const existing = async (branch: string, files: Record<string, string>) => {
    const found = await berth.db.workspace.findFirst({ where: { branch } });
    if (found) return found;
    await push(branch, files);
    const ws = await workspace(branch);
    await previewShows(ws.slug, files['message.txt']!.trim());
    return ws;
  };
  const slowMigrateApp = () => {
    // migrate takes a while, so PostgreSQL or Redis can go while it runs
    const files = sampleAppFiles({ 'message.txt': 'pg start one\n' });
    files['.github/berth.yml'] = files['.github/berth.yml']!.replace('migrate: node migrate.js', 'migrate: sleep 4 && node migrate.js');
    return files;
  };

  it('Redis restarts: a push during the outage is answered at once and built once Redis is back; later pushes work', async () => {
    const first = await push('feature/redis', sampleAppFiles({ 'message.txt': 'redis one\n' }));
    expect(first.status).toBeLessThan(300);
    const ws = await workspace('feature/redis');
    await previewShows(ws.slug, 'redis one');

    await stopProcess(redis);
    const delivery = `redis-outage-${Date.now()}`;
    const during = await push('feature/redis', { 'message.txt': 'redis two, pushed while Redis was down\n' }, delivery);
    // GitHub gives up on a delivery after 10 s: the answer must come well before
    expect(during.ms).toBeLessThan(5_000);
    expect(during.status).toBeLessThan(600);
    // the running workspace keeps serving meanwhile
    expect((await berth.preview(ws.slug)).body).toContain('redis one');

    await redisUp();
    await untilReady();
    if (during.status >= 300) {
      // refused: GitHub's redelivery (same delivery id) must then be taken
      const redelivered = await hook('push', pushPayload({ fake, owner: O, repo: R, branch: 'feature/redis', after: during.sha, installationId }), delivery);
      expect(redelivered.status).toBeLessThan(300);
    }
    await previewShows(ws.slug, 'redis two');
    const later = await push('feature/redis', { 'message.txt': 'redis three\n' });
    expect(later.status).toBeLessThan(300);
    await previewShows(ws.slug, 'redis three');
    expect((await berth.db.workspace.findUniqueOrThrow({ where: { id: ws.id } })).state).toBe('running');
  });

  it('Redis restarted without its data: the reconciler still runs and builds a push that never got its job', async () => {
    const ws = await existing('feature/redis', sampleAppFiles({ 'message.txt': 'redis one\n' }));
    await stopProcess(redis);
    const during = await push('feature/redis', { 'message.txt': 'redis four, its job lost with Redis\n' });
    expect(during.ms).toBeLessThan(5_000);
    // Redis comes back empty: no queued jobs, no job schedulers; nobody redelivers the push
    await rm(join(dataDir, 'redis'), { recursive: true, force: true });
    await redisUp();
    await untilReady();
    await previewShows(ws.slug, 'redis four');
  });

  it('PostgreSQL restarts: readiness says so, a webhook during the outage fails fast and its redelivery works; pushes after it reach the preview', async () => {
    const first = await push('feature/pg', sampleAppFiles({ 'message.txt': 'pg one\n' }));
    expect(first.status).toBeLessThan(300);
    const ws = await workspace('feature/pg');
    await previewShows(ws.slug, 'pg one');
    // a signed-in user on the workspace's dashboard page (sessions live in Redis)
    fake.setOAuthUser('wendy');
    const browser = new CookieClient();
    const dashboardUrl = `${berth.config.berthUrl}/workspaces/${ws.id}`;
    expect((await browser.get(dashboardUrl, { follow: true })).status).toBe(200);

    await pg.stop();
    expect(await readiness()).toEqual({ status: 503, database: false, redis: true });
    const dashboard = await browser.get(dashboardUrl);
    expect(dashboard.status).toBe(503);
    expect(dashboard.body).toContain('cannot reach its database');
    // the running workspace keeps serving; Berth's own pages say what is wrong
    expect((await berth.preview(ws.slug)).body).toContain('pg one');
    const page = await berth.preview('not-looked-up-before');
    expect(page.status).toBe(503);
    expect(page.headers['retry-after']).toBe('5');
    expect(page.body).toContain('cannot reach its database');
    const sha = await fake.pushFiles(O, R, 'feature/pg', { 'message.txt': 'pg two, pushed while PostgreSQL was down\n' });
    const payload = pushPayload({ fake, owner: O, repo: R, branch: 'feature/pg', after: sha, installationId });
    const delivery = `pg-outage-${Date.now()}`;
    const during = await hook('push', payload, delivery);
    expect(during.ms).toBeLessThan(5_000);
    expect(during.status).toBeGreaterThanOrEqual(500);

    pg = await startEmbeddedPostgres(join(dataDir, 'pg'), pgPort);
    await untilReady();
    const back = await browser.get(dashboardUrl);
    expect(back.status).toBe(200);
    expect(back.body).toContain('feature/pg');
    const redelivered = await hook('push', payload, delivery);
    expect(redelivered.status).toBeLessThan(300);
    await previewShows(ws.slug, 'pg two');
    const later = await push('feature/pg', { 'message.txt': 'pg three\n' });
    expect(later.status).toBeLessThan(300);
    await previewShows(ws.slug, 'pg three');
  });

  it('PostgreSQL restarts in the middle of a start: the start runs again once it is back, and the preview shows the commit', async () => {
    const files = slowMigrateApp();
    expect(files['.github/berth.yml']).toContain('sleep 4');
    await push('feature/pg-start', files);
    const ws = await workspace('feature/pg-start');
    await waitFor('the first start to migrate', async () => (await berth.db.workspace.findUniqueOrThrow({ where: { id: ws.id } })).stateReason?.startsWith('migrating'), 150_000, 100);

    await pg.stop();
    // the migrate finishes on the workspace disk; what the start writes next cannot land
    await waitFor('the migrate to finish', async () => lineCount(await diskFile(ws.slug, '.data/migrations.log')) === 1, 30_000, 100);
    // an outage longer than BullMQ's own retries of a start (1 s, then 2 s)
    await new Promise((r) => setTimeout(r, 6_000));
    pg = await startEmbeddedPostgres(join(dataDir, 'pg'), pgPort);

    await previewShows(ws.slug, 'pg start one', 120_000);
    const after = await berth.db.workspace.findUniqueOrThrow({ where: { id: ws.id } });
    expect(after.state).toBe('running');
    // started again from the top: migrate once more (every start does), the seed only once
    expect(lineCount(await diskFile(ws.slug, '.data/seed.log'))).toBe(1);
    expect(lineCount(await diskFile(ws.slug, '.data/migrations.log'))).toBe(2);
  });

  it('Redis restarted without its data in the middle of a start: the start still ends running', async () => {
    const ws = await existing('feature/pg-start', slowMigrateApp()); // its migrate takes 4 s
    const pushed = await push('feature/pg-start', { 'message.txt': 'pg start two, Redis lost its data meanwhile\n' });
    expect(pushed.status).toBeLessThan(300);
    await waitFor('the start to migrate', async () => {
      const now = await berth.db.workspace.findUniqueOrThrow({ where: { id: ws.id } });
      return now.state === 'starting' && now.stateReason?.startsWith('migrating');
    }, 120_000, 100);

    // the start job vanishes from Redis while the worker runs it
    await stopProcess(redis);
    await rm(join(dataDir, 'redis'), { recursive: true, force: true });
    await redisUp();

    await previewShows(ws.slug, 'pg start two', 120_000);
    expect((await berth.db.workspace.findUniqueOrThrow({ where: { id: ws.id } })).state).toBe('running');
  });

  it('Redis restarts in the middle of a build: the build finishes and the preview shows the commit', async () => {
    const ws = await existing('feature/redis', sampleAppFiles({ 'message.txt': 'redis one\n' }));
    // a fresh layer (never from the cache) that takes a while, so Redis can go while it builds
    const dockerfile = `FROM berth-base:node20\nRUN echo ${Date.now()} && sleep 4\nWORKDIR /workspace\nCOPY . /workspace\nEXPOSE 3000\nCMD ["node","server.js"]\n`;
    const pushed = await push('feature/redis', { Dockerfile: dockerfile, 'message.txt': 'redis five, built across a Redis restart\n' });
    expect(pushed.status).toBeLessThan(300);
    const build = await waitFor('the build to run', () => berth.db.build.findFirst({ where: { workspaceId: ws.id, sha: pushed.sha, state: 'running', step: { startsWith: 'building service' } } }), 60_000, 100);

    await stopProcess(redis);
    await waitFor('the image to be built', async () => (await berth.db.build.findUniqueOrThrow({ where: { id: build.id } })).state === 'succeeded', 60_000, 250);
    // down for longer than the job's lock (BERTH_JOB_LOCK_TIMEOUT 5 s): BullMQ takes the job for stalled
    await new Promise((r) => setTimeout(r, 6_000));
    await redisUp();

    await previewShows(ws.slug, 'redis five');
    expect((await berth.db.workspace.findUniqueOrThrow({ where: { id: ws.id } })).state).toBe('running');
    expect(await berth.db.build.count({ where: { workspaceId: ws.id, sha: pushed.sha } })).toBe(1);
  });

  it('a slash command during a Redis outage is refused quickly, and its redelivery runs it', async () => {
    const ws = await existing('feature/redis', sampleAppFiles({ 'message.txt': 'redis one\n' }));
    fake.createPullRequest(O, R, { number: 7, head: 'feature/redis', user: 'wendy' });
    await stopProcess(redis);
    const payload = issueCommentPayload({ fake, owner: O, repo: R, issueNumber: 7, body: '/berth stop', user: 'wendy', installationId });
    const delivery = `cmd-outage-${Date.now()}`;
    const during = await hook('issue_comment', payload, delivery);
    expect(during.ms).toBeLessThan(5_000);
    expect(during.status).toBeGreaterThanOrEqual(500);
    expect((await readiness()).redis).toBe(false);
    await redisUp();
    await untilReady();
    const redelivered = await hook('issue_comment', payload, delivery);
    expect(redelivered.status).toBeLessThan(300);
    await waitFor('the stop', async () => (await berth.db.workspace.findUniqueOrThrow({ where: { id: ws.id } })).state === 'stopped', 60_000, 250);
  });
});
