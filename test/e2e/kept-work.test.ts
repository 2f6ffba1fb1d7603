import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeGitHub, type FakeGitHub } from '../fakes/github.js';
import { deletePayload, issueCommentPayload, pullRequestPayload, pushPayload, sendWebhook } from '../fakes/webhooks.js';
import { sampleAppFiles } from '../fixtures/sample-app.js';
import { startTestBerth, type TestBerth } from '../helpers/berth.js';
import { waitFor } from '../helpers/http.js';
import { dockerExec, serviceContainer, volumeExists } from './lifecycle.helpers.js';
import { dockerNames } from '../../worker/runtime/docker.js';

const O = 'keepers';
const R = 'notes';

/**
 * A closed pull request or a deleted branch takes its workspace with it, but never work that
 * exists only on the workspace disk: that disk is kept, stopped, and the comment says why and
 * how to delete it now (issue "Safe to install", 6).
 */
describe('work found nowhere else survives a closed pull request', () => {
  let fake: FakeGitHub;
  let berth: TestBerth;
  let installationId: number;

  beforeAll(async () => {
    fake = await startFakeGitHub();
    installationId = fake.addInstallation({ login: O, type: 'Organization' }).id;
    fake.createRepo(O, R, { installationId, private: false });
    await fake.pushFiles(O, R, 'main', { 'README.md': '# notes\n' });
    fake.addUser('wendy');
    fake.setPermission(O, R, 'wendy', 'write');
    berth = await startTestBerth(fake);
  });

  afterAll(async () => {
    await berth?.close();
    await fake?.close();
  });

  const hook = async (event: string, payload: unknown) => {
    const res = await sendWebhook(berth.webhookUrl, event, payload, fake.webhookSecret);
    expect(res.status).toBe(200);
  };
  const stickyBody = (n: number) => fake.issueComments(O, R, n).find((c) => c.body?.includes('<!-- berth:sticky'))?.body ?? '';
  const workspace = (branch: string) => berth.db.workspace.findFirstOrThrow({ where: { branch } });
  const until = (what: string, check: () => boolean | Promise<boolean>) =>
    waitFor(
      what,
      async () => {
        const ok = await check();
        return ok || null;
      },
      120_000,
    );

  async function runningPr(branch: string, number: number) {
    const sha = await fake.pushFiles(O, R, branch, sampleAppFiles());
    fake.createPullRequest(O, R, { number, head: branch, user: 'wendy' });
    await hook('push', pushPayload({ fake, owner: O, repo: R, branch, after: sha, installationId }));
    await hook('pull_request', pullRequestPayload('opened', { fake, owner: O, repo: R, number, installationId }));
    await until(`${branch} running`, async () => {
      const ws = await workspace(branch).catch(() => null);
      if (ws?.state === 'failed') throw new Error(`${branch} failed: ${ws.stateReason}`);
      return ws?.state === 'running';
    });
    return workspace(branch);
  }

  it('closed with an uncommitted file: kept stopped, the comment says what and how to delete; /berth delete then deletes', async () => {
    const ws = await runningPr('keep-h0/draft', 31);
    // what someone typed in the IDE and never committed
    await dockerExec((await serviceContainer(ws.id)).Id, 'echo "my draft" > /workspace/draft-notes.txt');

    fake.updatePullRequest(O, R, 31, { state: 'closed' });
    await hook('pull_request', pullRequestPayload('closed', { fake, owner: O, repo: R, number: 31, installationId }));
    await until('kept and stopped', async () => {
      const now = await workspace('keep-h0/draft');
      if (now.state === 'deleted') throw new Error('the workspace was deleted with its unsaved work');
      return now.state === 'stopped' && now.keptUntil !== null;
    });
    const kept = await workspace('keep-h0/draft');
    // the default retention: about seven days
    const days = (kept.keptUntil!.getTime() - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(6.9);
    expect(days).toBeLessThan(7.1);
    await until('the comment says the disk was kept and why', () => stickyBody(31).includes('kept') && stickyBody(31).includes('draft-notes.txt'));
    expect(stickyBody(31)).toContain('/berth delete');
    expect(await volumeExists(dockerNames.workspaceVolume(ws.slug))).toBe(true);

    // a second deletion from GitHub (the branch goes too) keeps it as well, with the same deadline
    await fake.deleteBranch(O, R, 'keep-h0/draft');
    await hook('delete', deletePayload({ fake, owner: O, repo: R, ref: 'keep-h0/draft', installationId }));
    await new Promise((r) => setTimeout(r, 2000));
    const still = await workspace('keep-h0/draft');
    expect(still.state).toBe('stopped');
    expect(still.keptUntil?.getTime()).toBe(kept.keptUntil!.getTime());

    // someone with write access decides: delete it now
    await hook('issue_comment', issueCommentPayload({ fake, owner: O, repo: R, issueNumber: 31, body: '/berth delete', user: 'wendy', installationId }));
    await until('deleted on request', async () => (await workspace('keep-h0/draft')).state === 'deleted');
    expect(await volumeExists(dockerNames.workspaceVolume(ws.slug))).toBe(false);
  });

  it('closed with everything on GitHub: deleted, disk included', async () => {
    const ws = await runningPr('keep-h0/clean', 32);
    fake.updatePullRequest(O, R, 32, { state: 'closed' });
    await hook('pull_request', pullRequestPayload('closed', { fake, owner: O, repo: R, number: 32, installationId }));
    await until('deleted', async () => (await workspace('keep-h0/clean')).state === 'deleted');
    expect(await volumeExists(dockerNames.workspaceVolume(ws.slug))).toBe(false);
    await until('the comment says deleted', () => stickyBody(32).includes('deleted'));
  });

  it('a kept disk whose time is up is deleted by the reaper', async () => {
    const ws = await runningPr('keep-h0/old', 33);
    await dockerExec((await serviceContainer(ws.id)).Id, 'mkdir -p /workspace/wip && echo x > /workspace/wip/todo.txt');
    fake.updatePullRequest(O, R, 33, { state: 'closed' });
    await hook('pull_request', pullRequestPayload('closed', { fake, owner: O, repo: R, number: 33, installationId }));
    await until('kept', async () => (await workspace('keep-h0/old')).keptUntil !== null && (await workspace('keep-h0/old')).state === 'stopped');
    // a week later
    await berth.db.workspace.update({ where: { id: ws.id }, data: { keptUntil: new Date(Date.now() - 1000) } });
    await until('deleted at the end of its retention', async () => (await workspace('keep-h0/old')).state === 'deleted');
    expect(await volumeExists(dockerNames.workspaceVolume(ws.slug))).toBe(false);
  });
});
