import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeGitHub, type FakeGitHub } from '../fakes/github.js';
import { issueCommentPayload, pullRequestPayload, pushPayload, sendWebhook } from '../fakes/webhooks.js';
import { sampleAppFiles } from '../fixtures/sample-app.js';
import { startTestBerth, type TestBerth } from '../helpers/berth.js';
import { waitFor } from '../helpers/http.js';

const O = 'acme';
const R = 'api';

/** GitHub misbehaving, and events Berth cannot fully act on: sensible answers, no stuck check runs. */
describe('GitHub faults and odd events', () => {
  let fake: FakeGitHub;
  let berth: TestBerth;
  let installationId: number;

  beforeAll(async () => {
    fake = await startFakeGitHub();
    installationId = fake.addInstallation({ login: O, type: 'Organization' }).id;
    fake.createRepo(O, R, { installationId });
    fake.addUser('wendy');
    fake.setPermission(O, R, 'wendy', 'write');
    berth = await startTestBerth(fake);
  });

  afterAll(async () => {
    await berth?.close();
    await fake?.close();
  });

  const hook = async (event: string, payload: unknown) => expect((await sendWebhook(berth.webhookUrl, event, payload, fake.webhookSecret)).status).toBe(200);

  it('GitHub errors while writing the check run and comment are retried and do not fail the build', async () => {
    const sha = await fake.pushFiles(O, R, 'flaky', sampleAppFiles());
    fake.createPullRequest(O, R, { number: 3, head: 'flaky', user: 'wendy' });
    fake.failNext('POST', /\/check-runs$/, 502, 2);
    fake.failNext('POST', /\/issues\/3\/comments$/, 500, 1);
    fake.failNext('PATCH', /\/check-runs\/\d+$/, 503, 2);
    await hook('pull_request', pullRequestPayload('opened', { fake, owner: O, repo: R, number: 3, installationId }));
    const ws = await waitFor('running', async () => (await berth.db.workspace.findFirst({ where: { branch: 'flaky', state: 'running' } })) ?? null);
    expect(ws.runningSha).toBe(sha);
    const check = await waitFor('the check run completes despite the errors', async () => fake.checkRuns(O, R, sha).find((c) => c.status === 'completed'), 60_000);
    expect(check.conclusion).toBe('success');
    expect(fake.checkRuns(O, R, sha)).toHaveLength(1);
    await waitFor('one sticky comment', async () => fake.issueComments(O, R, 3).filter((c) => c.body.includes('berth:sticky')).length === 1 || null, 60_000);
    expect(fake.requests.filter((r) => r.status >= 500).length).toBeGreaterThanOrEqual(5);
  });

  it('a pull request whose branch is already gone fails with a reason and a completed check run', async () => {
    const sha = await fake.pushFiles(O, R, 'gone', sampleAppFiles());
    fake.createPullRequest(O, R, { number: 4, head: 'gone', user: 'wendy' });
    await fake.deleteBranch(O, R, 'gone');
    await hook('pull_request', pullRequestPayload('opened', { fake, owner: O, repo: R, number: 4, installationId }));
    const ws = await waitFor('failed', async () => (await berth.db.workspace.findFirst({ where: { branch: 'gone', state: 'failed' } })) ?? null);
    expect(ws.stateReason).toMatch(/git fetch failed/);
    const check = await waitFor('failed check', async () => fake.checkRuns(O, R, sha).find((c) => c.status === 'completed'));
    expect(check.conclusion).toBe('failure');
    expect(JSON.stringify(check)).not.toMatch(/ghs_[A-Za-z0-9]{10,}/);
  });

  it('a command on a pull request Berth has not seen yet builds it; a push for an unknown repository is mirrored', async () => {
    fake.createRepo(O, 'newcomer', { installationId });
    const sha = await fake.pushFiles(O, 'newcomer', 'main', sampleAppFiles());
    await hook('push', pushPayload({ fake, owner: O, repo: 'newcomer', branch: 'main', after: sha, installationId }));
    expect(await berth.db.repository.count({ where: { fullName: `${O}/newcomer` } })).toBe(1);

    await fake.pushFiles(O, R, 'late', sampleAppFiles());
    fake.createPullRequest(O, R, { number: 5, head: 'late', user: 'wendy' });
    await hook('issue_comment', issueCommentPayload({ fake, owner: O, repo: R, issueNumber: 5, body: '/berth refresh', user: 'wendy', installationId }));
    await waitFor('the late pull request runs', async () => (await berth.db.workspace.findFirst({ where: { branch: 'late', state: 'running' } })) ?? null);
  });
});
