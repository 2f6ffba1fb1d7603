import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeGitHub, type FakeGitHub } from '../fakes/github.js';
import { issueCommentPayload, pullRequestPayload, pushPayload, sendWebhook } from '../fakes/webhooks.js';
import { ensureBaseImage } from '../fixtures/base-image.js';
import { sampleAppFiles } from '../fixtures/sample-app.js';
import { startTestBerth, TestOctokit, type TestBerth } from '../helpers/berth.js';
import { CookieClient } from '../helpers/cookie-client.js';
import { waitFor } from '../helpers/http.js';
import { Queues } from '../../lib/queue.js';
import { hostRouter } from '../../lib/hosts/registry.js';
import { createProbotFor } from '../../lib/github-app.js';
import { startWorker } from '../../worker/main.js';
import { runCli } from '../../app/cli.js';

/**
 * Issue 18 (hosts, placement, faults) with several workers, each its own host (BERTH_HOST_NAME),
 * against one Berth's database and Redis: the Berth's own worker is host `alpha`, a second worker
 * is `beta` with the label gpu. They share the machine's Docker engine here (the cluster harness
 * of test/helpers/cluster.ts gives each its own); what is tested is which host's worker takes a
 * workspace's jobs, what placement decides, and what users see when a host goes away.
 */
const O = 'acme';
const R = 'fleet';

describe('hosts: placement, drain and an unreachable host', () => {
  let fake: FakeGitHub;
  let berth: TestBerth;
  let installationId: number;
  const workers = new Map<string, { close(): Promise<void> }>();

  /** a worker for host `name` in this process: the same database and queues, another BERTH_HOST_NAME */
  async function startHost(name: string, labels: string[]) {
    const config = { ...berth.config, BERTH_HOST_NAME: name, BERTH_HOST_LABELS: labels };
    const queues = new Queues({ url: berth.config.REDIS_URL!, maxRetriesPerRequest: null }, berth.config.BERTH_QUEUE_PREFIX);
    queues.routeBy(hostRouter(berth.db));
    const worker = await startWorker({ config, db: berth.db, queues, probot: createProbotFor(config, TestOctokit), log: () => {} });
    workers.set(name, {
      async close() {
        await worker.close();
        await queues.close();
      },
    });
  }
  async function stopHost(name: string) {
    await workers.get(name)?.close();
    workers.delete(name);
  }

  beforeAll(async () => {
    await ensureBaseImage();
    fake = await startFakeGitHub();
    installationId = fake.addInstallation({ login: O, type: 'Organization' }).id;
    fake.createRepo(O, R, { installationId, private: false });
    await fake.pushFiles(O, R, 'main', { 'README.md': '# fleet\n' });
    for (const [login, perm] of [['ada', 'admin'], ['wendy', 'write']] as const) {
      fake.addUser(login);
      fake.setPermission(O, R, login, perm);
    }
    berth = await startTestBerth(fake, { BERTH_HOST_NAME: 'alpha', BERTH_ADMINS: 'ada' });
    await startHost('beta', ['gpu']);
  }, 120_000);

  afterAll(async () => {
    for (const name of [...workers.keys()]) await stopHost(name);
    await berth?.close();
    await fake?.close();
  });

  const hook = async (event: string, payload: unknown) => {
    const res = await sendWebhook(berth.webhookUrl, event, payload, fake.webhookSecret);
    // 202: accepted while the handler still runs (a loaded machine)
    expect(res.status).toBeLessThan(300);
  };
  /** the sample app on `branch`, its berth.yml asking for `labels` */
  async function push(branch: string, labels: string[] = []) {
    const base = sampleAppFiles()['.github/berth.yml']!;
    const yml = labels.length ? `${base}workspace:\n  host_labels: [${labels.join(', ')}]\n` : base;
    const sha = await fake.pushFiles(O, R, branch, sampleAppFiles({ '.github/berth.yml': yml }));
    await hook('push', pushPayload({ fake, owner: O, repo: R, branch, after: sha, installationId }));
    return sha;
  }
  const workspace = (branch: string) => waitFor(`workspace ${branch}`, () => berth.db.workspace.findFirst({ where: { branch }, include: { host: true } }), 30_000);
  const running = (branch: string) =>
    waitFor(`${branch} running`, async () => {
      const ws = await berth.db.workspace.findFirst({ where: { branch }, include: { host: true } });
      if (ws?.state === 'failed') throw new Error(`${branch} failed: ${ws.stateReason}`);
      return ws?.state === 'running' ? ws : null;
    }, 240_000, 500);
  const hostId = async (name: string) => (await berth.db.host.findUniqueOrThrow({ where: { name } })).id;
  async function signIn(login: string) {
    fake.setOAuthUser(login);
    const client = new CookieClient();
    const res = await client.get(`${berth.config.berthUrl}/hosts`, { follow: true });
    expect(res.status).toBe(200);
    return { client, res };
  }
  const csrfOf = (html: string) => /name="_csrf" value="([^"]+)"/.exec(html)?.[1] ?? '';
  const cli = async (...args: string[]) => {
    const lines: string[] = [];
    const code = await runCli(args, berth.db, (l) => lines.push(l));
    return { code, text: lines.join('\n') };
  };

  it('every worker registers its host with capacity, labels and a heartbeat; the hosts page and `berth hosts` list them', async () => {
    const hosts = await berth.db.host.findMany({ orderBy: { name: 'asc' } });
    expect(hosts.map((h) => [h.name, h.labels])).toEqual(expect.arrayContaining([['alpha', []], ['beta', ['gpu']]]));
    for (const h of hosts) {
      expect(Number(h.memoryTotal)).toBeGreaterThan(0);
      expect(Number(h.diskFree)).toBeGreaterThan(0);
      expect(h.maxRunning).toBe(berth.config.BERTH_MAX_RUNNING);
    }
    // the heartbeat moves on
    const before = hosts.find((h) => h.name === 'beta')!.lastHeartbeatAt;
    await waitFor('a newer heartbeat of beta', async () => (await berth.db.host.findUnique({ where: { name: 'beta' } }))!.lastHeartbeatAt > before, 15_000);

    const { res } = await signIn('wendy');
    expect(res.body).toMatch(/<tr data-host="alpha">[\s\S]*?healthy[\s\S]*?last heartbeat \d+ s ago/);
    expect(res.body).toMatch(/<tr data-host="beta">[\s\S]*?<code>gpu<\/code>/);
    // not an administrator: no Drain button
    expect(res.body).not.toContain('>Drain<');
    const listed = await cli('hosts');
    expect(listed.code).toBe(0);
    expect(listed.text).toMatch(/^alpha\thealthy\t\d+\/20 running\tlabels: -/m);
    expect(listed.text).toMatch(/^beta\thealthy\t\d+\/20 running\tlabels: gpu/m);
  });

  it('berth.yml host_labels: [gpu] places the workspace on the gpu host, whose worker builds and starts it', async () => {
    await push('feature/train', ['gpu']);
    const ws = await running('feature/train');
    expect(ws.host?.name).toBe('beta');
    // beta's own queues ran the build and the start (which may still wait for VS Code); alpha's never saw them
    const taken = ['completed', 'active', 'failed'] as const;
    const betaJobs = berth.queues.forHost('beta');
    const done = [...(await betaJobs.builds.getJobs([...taken])), ...(await betaJobs.workspaces.getJobs([...taken]))].filter((j) => j.data.workspaceId === ws.id);
    expect(done.map((j) => j.name)).toEqual(expect.arrayContaining(['build', 'start']));
    const alphaJobs = [...(await berth.queues.builds.getJobs([...taken])), ...(await berth.queues.workspaces.getJobs([...taken]))].filter((j) => j.data.workspaceId === ws.id);
    expect(alphaJobs).toEqual([]);
    const page = await berth.preview(ws.slug, '/');
    expect(page.status).toBe(200);
  });

  it('no host has the label: the check run says so and the workspace waits; a host with it appears and takes it', async () => {
    const sha = await push('feature/tpu', ['tpu']);
    await waitFor('the check run says it waits for a host', async () => {
      const check = fake.checkRuns(O, R, sha)[0];
      return check?.output?.title === 'Waiting for a host' ? check : null;
    }, 60_000);
    const check = fake.checkRuns(O, R, sha)[0]!;
    expect(check.status).toBe('queued');
    expect(check.output?.summary).toContain('alpha: no label tpu');
    expect(check.output?.summary).toContain('beta: no label tpu');
    // it keeps waiting, placed nowhere
    await new Promise((r) => setTimeout(r, 6_000));
    const waiting = await workspace('feature/tpu');
    expect(waiting).toMatchObject({ state: 'queued', hostId: null });

    await startHost('gamma', ['tpu']);
    try {
      const ws = await running('feature/tpu');
      expect(ws.host?.name).toBe('gamma');
      await waitFor('the check run succeeds', async () => fake.checkRuns(O, R, sha)[0]?.conclusion === 'success', 60_000);
    } finally {
      // gamma leaves: drained first, so nothing new goes there while its heartbeat is still fresh
      expect((await cli('hosts', 'drain', 'gamma')).code).toBe(0);
      await stopHost('gamma');
    }
  });

  it('a drained host gets no new workspace; admins resume it from the hosts page (CSRF), others cannot', async () => {
    // every other host drained but beta (gamma may be left over from another test)
    for (const h of await berth.db.host.findMany({ where: { name: { not: 'beta' } } })) await cli('hosts', 'drain', h.name);
    const drained = await cli('hosts', 'drain', 'alpha');
    expect(drained).toEqual({ code: 0, text: 'host alpha is draining: no new workspace is placed there; the ones it holds stay' });
    expect(await cli('hosts', 'drain', 'nowhere')).toMatchObject({ code: 1, text: expect.stringContaining('there is no host named nowhere') });
    try {
      await push('feature/plain');
      const ws = await running('feature/plain');
      expect(ws.host?.name).toBe('beta');
    } finally {
      // the dashboard's button: only administrators, only with the page's CSRF token
      const wendy = await signIn('wendy');
      const refused = await wendy.client.post(`${berth.config.berthUrl}/hosts/alpha/undrain`, { _csrf: csrfOf(wendy.res.body) });
      expect(refused.status).toBe(403);
      expect(refused.body).toContain('Only Berth&#39;s administrators');
      const ada = await signIn('ada');
      expect(ada.res.body).toMatch(/<tr data-host="alpha">[\s\S]*?draining[\s\S]*?Resume placement/);
      const forged = await ada.client.post(`${berth.config.berthUrl}/hosts/alpha/undrain`, { _csrf: 'forged' });
      expect(forged.status).toBe(403);
      expect((await berth.db.host.findUniqueOrThrow({ where: { name: 'alpha' } })).draining).toBe(true);
      const resumed = await ada.client.post(`${berth.config.berthUrl}/hosts/alpha/undrain`, { _csrf: csrfOf(ada.res.body) });
      expect(resumed.status).toBe(303);
      expect((await berth.db.host.findUniqueOrThrow({ where: { name: 'alpha' } })).draining).toBe(false);
    }
  });

  it('a host that stops heartbeating: its workspace shows unreachable (not failed), its jobs wait, and everything resumes when it is back', async () => {
    const branch = 'feature/away';
    await push(branch, ['gpu']);
    fake.createPullRequest(O, R, { number: 31, head: branch, user: 'wendy' });
    await hook('pull_request', pullRequestPayload('opened', { fake, owner: O, repo: R, number: 31, installationId }));
    const ws = await running(branch);
    expect(ws.hostId).toBe(await hostId('beta'));
    const sticky = () => fake.issueComments(O, R, 31).find((c) => c.body?.includes('<!-- berth:sticky'))?.body ?? '';
    await waitFor('the comment says running', async () => sticky().includes('Berth workspace: running'), 60_000);

    await stopHost('beta');
    await waitFor('the comment says unreachable', async () => sticky().includes('Berth workspace: unreachable'), 40_000, 500);
    expect(sticky()).toContain('Its host `beta` stopped answering');
    const { client } = await signIn('wendy');
    const page = await client.get(`${berth.config.berthUrl}/workspaces/${ws.id}`);
    expect(page.body).toContain('data-host-state="unreachable"');
    expect(page.body).toMatch(/id="host">[\s\S]*?beta[\s\S]*?unreachable/);
    expect((await cli('hosts')).text).toMatch(/^beta\tUNREACHABLE/m);

    // a stop asked for now waits in beta's queue: nothing is failed or deleted meanwhile
    await hook('issue_comment', issueCommentPayload({ fake, owner: O, repo: R, issueNumber: 31, body: '/berth stop', user: 'wendy', installationId }));
    await waitFor('the stop waits in beta\'s queue', async () => (await berth.queues.forHost('beta').workspaces.getJobs(['waiting'])).some((j) => j.name === 'stop' && j.data.workspaceId === ws.id), 30_000);
    await new Promise((r) => setTimeout(r, 3_000));
    expect((await berth.db.workspace.findUniqueOrThrow({ where: { id: ws.id } })).state).toBe('running');

    await startHost('beta', ['gpu']);
    await waitFor('beta runs the stop once back', async () => (await berth.db.workspace.findUniqueOrThrow({ where: { id: ws.id } })).state === 'stopped', 60_000);
    await waitFor('the comment says stopped', async () => sticky().includes('Berth workspace: stopped'), 30_000);
    expect((await berth.db.host.findUniqueOrThrow({ where: { name: 'beta' } })).unreachableSince).toBeNull();
  });
});
