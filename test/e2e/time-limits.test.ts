import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeGitHub, type FakeGitHub } from '../fakes/github.js';
import { pushPayload, sendWebhook } from '../fakes/webhooks.js';
import { sampleAppFiles } from '../fixtures/sample-app.js';
import { startTestBerth, type TestBerth } from '../helpers/berth.js';
import { waitFor } from '../helpers/http.js';
import type { WorkspaceState } from '../../lib/db/client.js';
import { containersOf } from './lifecycle.helpers.js';

const O = 'h4-acme';
const REPO = 'h4-limits';
const HANG = 'echo h4-migrating; sleep infinity';

function appFiles(opts: { migrate?: string; idle?: string; image?: string } = {}) {
  const yml = [
    'services:',
    '  web:',
    '    build: .',
    '    port: 3000',
    '    command: node server.js',
    `    migrate: ${opts.migrate ?? 'node migrate.js'}`,
    '    seed: node seed.js',
    '    health: /health',
    ...(opts.image ? ['  cache:', `    image: ${opts.image}`] : []),
    'preview: { service: web, visibility: public }',
    'workspace:',
    '  ide: terminal',
    ...(opts.idle ? [`  idle_timeout: ${opts.idle}`] : []),
    '',
  ].join('\n');
  return sampleAppFiles({ '.github/berth.yml': yml });
}

/**
 * Code from a branch cannot hold Berth: a migrate that never ends is killed at
 * BERTH_TASK_TIMEOUT and fails its workspace with that reason, while two of them hold both of
 * the worker's slots the previews keep serving and the idle reaper still stops workspaces.
 */
describe('time limits (h4)', () => {
  let fake: FakeGitHub;
  let berth: TestBerth;
  let installationId: number;

  beforeAll(async () => {
    fake = await startFakeGitHub();
    installationId = fake.addInstallation({ login: O, type: 'Organization' }).id;
    fake.createRepo(O, REPO, { installationId });
    await fake.pushFiles(O, REPO, 'main', { 'README.md': '# limits\n' });
    berth = await startTestBerth(fake, {
      BERTH_TASK_TIMEOUT: '25s',
      BERTH_WORKER_CONCURRENCY: '2',
      BERTH_REAP_INTERVAL: '1s',
      BERTH_HEALTH_TIMEOUT: '60s',
    });
  });

  afterAll(async () => {
    await berth?.close();
    await fake?.close();
  });

  async function push(branch: string, files: Record<string, string | null>) {
    const sha = await fake.pushFiles(O, REPO, branch, files);
    const res = await sendWebhook(berth.webhookUrl, 'push', pushPayload({ fake, owner: O, repo: REPO, branch, after: sha, installationId }), fake.webhookSecret);
    expect(res.status).toBe(200);
    return sha;
  }
  const byId = (id: string) => berth.db.workspace.findUniqueOrThrow({ where: { id } });
  const workspaceOf = (branch: string) => waitFor(`the workspace of ${branch}`, () => berth.db.workspace.findFirst({ where: { branch } }));
  const untilState = (id: string, state: WorkspaceState, ms = 120_000) =>
    waitFor(`workspace ${state}`, async () => {
      const ws = await byId(id);
      if (ws.state === 'failed' && state !== 'failed') throw new Error(`failed: ${ws.stateReason}`);
      return ws.state === state ? ws : null;
    }, ms, 250);

  it('a migrate that never ends fails at BERTH_TASK_TIMEOUT; meanwhile previews serve and an idle workspace is stopped', async () => {
    await push('h4/idle', appFiles({ idle: '3s' }));
    const idle = await workspaceOf('h4/idle');
    await untilState(idle.id, 'running');

    // someone keeps using it until both hanging migrates hold the worker's two slots
    const statuses: number[] = [];
    let keepBusy = true;
    const busy = (async () => {
      while (keepBusy) {
        statuses.push((await berth.preview(idle.slug, '/')).status);
        await new Promise((r) => setTimeout(r, 500));
      }
    })();
    const hanging = [];
    for (const branch of ['h4/hang-a', 'h4/hang-b']) {
      await push(branch, appFiles({ migrate: HANG }));
      hanging.push(await workspaceOf(branch));
    }
    for (const ws of hanging) {
      await waitFor(`${ws.branch} migrating`, async () => {
        const now = await byId(ws.id);
        if (now.state === 'failed') throw new Error(`failed: ${now.stateReason}`);
        return now.state === 'starting' && now.stateReason === 'migrating (web)';
      });
    }
    keepBusy = false;
    await busy;
    // the preview answered all along, also while both migrates hung
    expect(statuses.length).toBeGreaterThan(0);
    const events = await berth.db.workspaceEvent.findMany({ where: { workspaceId: idle.id }, orderBy: { id: 'asc' } });
    expect(statuses.filter((s) => s !== 200), `${statuses.join(' ')}\n${events.map((e) => `${e.createdAt.toISOString()} ${e.toState} ${e.actor} ${e.reason}`).join('\n')}`).toEqual([]);

    // nobody uses it any more: the reaper stops it although both workspace slots are taken
    const stopped = await untilState(idle.id, 'stopped', 20_000);
    expect(stopped.stateReason).toBe('idle for 3 s');
    for (const ws of hanging) expect(await byId(ws.id)).toMatchObject({ state: 'starting', stateReason: 'migrating (web)' });

    // each hanging migrate ends at its limit, with the reason and its output, and leaves no container
    for (const ws of hanging) {
      const failed = await untilState(ws.id, 'failed', 90_000);
      expect(failed.stateReason).toContain(`migrate of service web (${HANG}) did not finish within 25s (BERTH_TASK_TIMEOUT)`);
      expect(failed.stateReason).toContain('h4-migrating');
      const check = await waitFor('a failed check run', async () => fake.checkRuns(O, REPO, ws.headSha!).find((c) => c.status === 'completed' && c.conclusion === 'failure'));
      expect(`${check.output?.summary}\n${check.output?.text}`).toContain('did not finish within 25s (BERTH_TASK_TIMEOUT)');
      expect(await containersOf(ws.id, 'task')).toEqual([]);
    }

    // the worker is free again: a request wakes the idle workspace
    await berth.preview(idle.slug, '/');
    await untilState(idle.id, 'running', 90_000);
    expect((await berth.preview(idle.slug, '/')).status).toBe(200);
  }, 300_000);

  it("image: berth/... is refused on the check run with the file and line; nothing runs another workspace's build", async () => {
    const sha = await push('h4/steal', appFiles({ image: 'berth/h4-acme-h4-limits-main/web:0123456789ab' }));
    const ws = await workspaceOf('h4/steal');
    const failed = await untilState(ws.id, 'failed', 60_000);
    expect(failed.stateReason).toMatch(/^\.github\/berth\.yml:10: services\.cache\.image: berth\/… images are the builds of workspaces/);
    const check = await waitFor('a failed check run', async () => fake.checkRuns(O, REPO, sha).find((c) => c.status === 'completed' && c.conclusion === 'failure'));
    expect(check.output?.summary).toContain('.github/berth.yml:10');
    expect(await containersOf(ws.id, 'service')).toEqual([]);
  }, 120_000);

  it("_extends to another repository is refused at its line, before Berth reads anything of it", async () => {
    fake.createRepo(O, 'h4-payroll', { installationId });
    await fake.pushFiles(O, 'h4-payroll', 'main', { '.github/berth.yml': 'services:\n  web:\n    image: secret-registry.example.com/payroll:prod\n' });
    const files = appFiles();
    const sha = await push('h4/extends', { ...files, '.github/berth.yml': `_extends: h4-payroll\n${files['.github/berth.yml']}` });
    const ws = await workspaceOf('h4/extends');
    const failed = await untilState(ws.id, 'failed', 60_000);
    expect(failed.stateReason).toContain('.github/berth.yml:1: _extends: "h4-payroll" is not allowed');
    expect(failed.stateReason).not.toContain('payroll:prod');
    const check = await waitFor('a failed check run', async () => fake.checkRuns(O, REPO, sha).find((c) => c.status === 'completed' && c.conclusion === 'failure'));
    expect(check.output?.summary).toContain('`_extends: .github`');
  }, 120_000);
});
