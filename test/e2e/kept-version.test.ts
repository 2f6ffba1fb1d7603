import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeGitHub, type FakeGitHub } from '../fakes/github.js';
import { issueCommentPayload, pullRequestPayload, pushPayload, sendWebhook } from '../fakes/webhooks.js';
import { sampleAppFiles } from '../fixtures/sample-app.js';
import { startTestBerth, type TestBerth } from '../helpers/berth.js';
import { waitFor } from '../helpers/http.js';
import { CookieClient } from '../helpers/cookie-client.js';
import type { WorkspaceState } from '../../lib/db/client.js';
import { containersOf } from './lifecycle.helpers.js';

const O = 'acme';
const R = 'kept';
const GRACE_S = 1;

/** the sample app; `mode` shows on its page, so an answer says which version served it */
function appFiles(mode: string, opts: { ide?: 'vscode' | 'terminal'; env?: Record<string, string>; files?: Record<string, string | null> } = {}) {
  const env = { NODE_ENV: 'development', BERTH_SAMPLE_MODE: mode, ...opts.env };
  const yml = [
    'services:',
    '  web:',
    '    build: .',
    '    port: 3000',
    '    command: node server.js',
    '    migrate: node migrate.js',
    '    seed: node seed.js',
    '    health: /health',
    `    env: ${JSON.stringify(env)}`,
    'preview: { service: web, visibility: public }',
    'workspace:',
    `  ide: ${opts.ide ?? 'terminal'}`,
    '',
  ].join('\n');
  return sampleAppFiles({ '.github/berth.yml': yml, ...opts.files });
}

/**
 * Issue 13, what a user sees when a new commit of a running workspace cannot take over: its
 * build or its migrate fails, the running version keeps serving, the new commit's check run
 * fails, and the comment and the workspace page say which commit runs and why. And a
 * `/berth stop` does not wait behind a start that is still waiting for VS Code.
 */
describe('a new commit that fails keeps the running version; a stop wins over a VS Code start', () => {
  let fake: FakeGitHub;
  let berth: TestBerth;
  let installationId: number;
  let nextPr = 20;

  beforeAll(async () => {
    fake = await startFakeGitHub();
    installationId = fake.addInstallation({ login: O, type: 'Organization' }).id;
    fake.createRepo(O, R, { installationId });
    await fake.pushFiles(O, R, 'main', { 'README.md': '# kept\n' });
    fake.addUser('wendy');
    fake.setPermission(O, R, 'wendy', 'write');
    berth = await startTestBerth(fake, { BERTH_STOP_GRACE: `${GRACE_S}s`, BERTH_IDE_TIMEOUT: '90s' });
  });

  afterAll(async () => {
    await berth?.close();
    await fake?.close();
  });

  const hook = async (event: string, payload: unknown) => {
    const res = await sendWebhook(berth.webhookUrl, event, payload, fake.webhookSecret);
    expect(res.status).toBeLessThan(300);
  };
  const sticky = (pr: number) => fake.issueComments(O, R, pr).find((c) => c.body?.includes('<!-- berth:sticky'))?.body ?? '';
  const byId = (id: string) => berth.db.workspace.findUniqueOrThrow({ where: { id } });
  const untilState = (id: string, state: WorkspaceState, ms = 120_000) =>
    waitFor(`workspace ${state}`, async () => {
      const ws = await byId(id);
      if (ws.state === 'failed' && state !== 'failed') throw new Error(`failed: ${ws.stateReason}`);
      return ws.state === state ? ws : null;
    }, ms, 100);
  const page = (slug: string) => berth.preview(slug, '/');

  /** pushes `files` to `branch` and opens (or synchronizes) its pull request; returns the commit */
  async function push(branch: string, pr: number, files: Record<string, string | null>) {
    const sha = await fake.pushFiles(O, R, branch, files);
    await hook('push', pushPayload({ fake, owner: O, repo: R, branch, after: sha, installationId }));
    const existing = fake.getPullRequest(O, R, pr);
    if (!existing) fake.createPullRequest(O, R, { number: pr, head: branch, user: 'wendy' });
    await hook('pull_request', pullRequestPayload(existing ? 'synchronize' : 'opened', { fake, owner: O, repo: R, number: pr, installationId }));
    return sha;
  }

  /** a running workspace of a branch of its own, serving v1 */
  async function runningV1(branch: string) {
    const pr = nextPr++;
    const sha = await push(branch, pr, appFiles('v1'));
    const made = await waitFor('the workspace', () => berth.db.workspace.findFirst({ where: { branch } }));
    await untilState(made.id, 'running');
    expect((await page(made.slug)).body).toContain('BERTH_SAMPLE_MODE: v1');
    return { ...made, pr, sha };
  }

  const failedCheck = (sha: string) =>
    waitFor(`a failed check run for ${sha.slice(0, 7)}`, async () => fake.checkRuns(O, R, sha).find((c) => c.status === 'completed' && c.conclusion === 'failure'), 120_000, 200);

  it('a new commit whose build fails: the old version keeps serving, the check run fails, the comment and the workspace page say which commit runs and why', async () => {
    const ws = await runningV1('feature/bad-build');
    const bad = await push('feature/bad-build', ws.pr, appFiles('v2', { files: { Dockerfile: 'FROM berth-base:node20\nRUN echo "the build broke here" && exit 7\n' } }));
    const check = await failedCheck(bad);
    expect(check.output?.title).toMatch(/Failed while building/);

    const now = await waitFor('the workspace running its old commit again', async () => {
      const w = await byId(ws.id);
      return w.state === 'running' ? w : null;
    }, 30_000, 100);
    expect(now.runningSha).toBe(ws.sha);
    expect(now.notice).toContain(`Commit ${bad.slice(0, 7)} did not build`);
    expect(now.notice).toContain(`so ${ws.sha.slice(0, 7)} keeps running`);
    // still the old version's containers and answers
    const answer = await page(ws.slug);
    expect(answer.status).toBe(200);
    expect(answer.body).toContain('BERTH_SAMPLE_MODE: v1');
    await waitFor('the comment saying running on the old commit and why', async () => {
      const body = sticky(ws.pr);
      return /Berth workspace: running/.test(body) && body.includes(`\`${ws.sha.slice(0, 7)}\``) && body.includes(`Commit ${bad.slice(0, 7)} did not build`);
    }, 30_000, 200);
    // the workspace page, signed in as a writer: the old commit runs, and why the new one does not
    fake.setOAuthUser('wendy');
    const details = await new CookieClient().get(`${berth.config.berthUrl}/workspaces/${ws.id}`, { follow: true });
    expect(details.status).toBe(200);
    expect(details.body).toContain(`Commit ${bad.slice(0, 7)} did not build`);
    expect(details.body).toMatch(new RegExp(`running (<a [^>]*>)?<code>${ws.sha.slice(0, 7)}</code>`));

    // a fix rolls out, and the notice goes
    const fixed = await push('feature/bad-build', ws.pr, appFiles('v3'));
    await waitFor('the fix running', async () => {
      const w = await byId(ws.id);
      return w.state === 'running' && w.runningSha === fixed ? w : null;
    }, 120_000, 100);
    expect((await byId(ws.id)).notice ?? '').not.toContain('keeps running');
    // the gateways switch once their lookup (0.25 s) expires
    await waitFor('the fix answering', async () => (await page(ws.slug)).body.includes('BERTH_SAMPLE_MODE: v3'), 10_000, 100);
    await waitFor('a successful check run for the fix', async () => fake.checkRuns(O, R, fixed).find((c) => c.status === 'completed' && c.conclusion === 'success'), 30_000, 200);
  });

  it('a new commit whose migrate fails: the old version keeps serving and the new commit’s check run fails', async () => {
    const ws = await runningV1('feature/bad-migrate');
    const bad = await push('feature/bad-migrate', ws.pr, appFiles('v2', { env: { FAIL_MIGRATE: '1' } }));
    const check = await failedCheck(bad);
    expect(`${check.output?.title} ${check.output?.summary}`).toMatch(/migrate/);
    const now = await byId(ws.id);
    expect(now.state).toBe('running');
    expect(now.runningSha).toBe(ws.sha);
    expect(now.notice).toContain(`Commit ${bad.slice(0, 7)} did not start`);
    const answer = await page(ws.slug);
    expect(answer.status).toBe(200);
    expect(answer.body).toContain('BERTH_SAMPLE_MODE: v1');
    await waitFor('the comment saying why the old commit still runs', async () => sticky(ws.pr).includes(`Commit ${bad.slice(0, 7)} did not start`), 30_000, 200);
  });

  it('/berth stop while the start waits for VS Code: the stop wins within seconds and the start gives up, leaving no VS Code behind', async () => {
    const pr = nextPr++;
    const branch = 'feature/slow-ide';
    // code-server (and only it: its script is node_modules/code-server/…) sits for 80 s before it
    // loads, like a cold VS Code on a loaded machine; the service's environment reaches the IDE
    const slow = "if ((process.argv[1] || '').includes('code-server')) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 80000);\n";
    await push(branch, pr, appFiles('v1', { ide: 'vscode', env: { NODE_OPTIONS: '--require /workspace/slow-ide.js' }, files: { 'slow-ide.js': slow } }));
    const ws = await waitFor('the workspace', () => berth.db.workspace.findFirst({ where: { branch } }));
    await waitFor('the preview running while VS Code starts', async () => {
      const w = await byId(ws.id);
      if (w.state === 'failed') throw new Error(`failed: ${w.stateReason}`);
      return w.state === 'running' && w.ideState === 'starting' && (await containersOf(ws.id, 'ide')).length === 1;
    }, 120_000, 100);
    expect((await page(ws.slug)).status).toBe(200);

    const asked = Date.now();
    await hook('issue_comment', issueCommentPayload({ fake, owner: O, repo: R, issueNumber: pr, body: '/berth stop', user: 'wendy', installationId }));
    await waitFor('every container gone and the comment saying stopped', async () =>
      (await containersOf(ws.id)).length === 0 && (await containersOf(ws.id, 'ide')).length === 0 && /Berth workspace: stopped/.test(sticky(pr)), 60_000, 50);
    const took = Date.now() - asked;
    // the stop grace plus Berth's own work; before, the stop waited for VS Code (80 s here)
    expect(took).toBeLessThan(8_000);
    expect((await byId(ws.id)).state).toBe('stopped');

    // the start gave up: it says so, and leaves nothing running afterwards
    await new Promise((r) => setTimeout(r, 2_000));
    expect(await containersOf(ws.id, 'ide')).toHaveLength(0);
    expect(await containersOf(ws.id)).toHaveLength(0);
    expect((await byId(ws.id)).state).toBe('stopped');
    const build = await berth.db.build.findFirstOrThrow({ where: { workspaceId: ws.id }, orderBy: { createdAt: 'desc' } });
    const log = (await berth.db.buildLogChunk.findMany({ where: { buildId: build.id }, orderBy: { id: 'asc' } })).map((c) => c.text).join('');
    expect(log).toContain('stopped waiting for VS Code (the workspace is being stopped)');
  });
});
