import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeGitHub, type FakeGitHub } from '../fakes/github.js';
import { checkRunPayload, deletePayload, issueCommentPayload, pullRequestPayload, pushPayload, sendWebhook } from '../fakes/webhooks.js';
import { assertDocumentedRequests } from '../fakes/openapi-check.js';
import { sampleAppFiles } from '../fixtures/sample-app.js';
import { startTestBerth, type TestBerth } from '../helpers/berth.js';
import { nextSecond, waitFor } from '../helpers/http.js';

const O = 'acme';
const R = 'shop';

/**
 * Where users meet Berth every day: the pull request. Check runs, one sticky comment with
 * Preview and Open IDE links, slash commands by writers and readers, forks, closing.
 */
describe('pull requests', () => {
  let fake: FakeGitHub;
  let berth: TestBerth;
  let installationId: number;

  beforeAll(async () => {
    fake = await startFakeGitHub();
    installationId = fake.addInstallation({ login: O, type: 'Organization' }).id;
    fake.createRepo(O, R, { installationId, private: false });
    await fake.pushFiles(O, R, 'main', { 'README.md': '# shop\n' });
    for (const [login, perm] of [['wendy', 'write'], ['rita', 'read'], ['mo', 'maintain']] as const) {
      fake.addUser(login);
      fake.setPermission(O, R, login, perm);
    }
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
  const comments = (n: number) => fake.issueComments(O, R, n);
  const sticky = (n: number) => comments(n).filter((c) => c.body?.includes('<!-- berth:sticky'));
  const stickyBody = (n: number) => sticky(n)[0]?.body ?? '';
  const workspace = (branch: string) => berth.db.workspace.findFirstOrThrow({ where: { branch } });
  const until = (what: string, check: () => boolean | Promise<boolean>) => waitFor(what, async () => (await check()) || null, 120_000);

  async function command(n: number, user: string, body: string) {
    const payload = issueCommentPayload({ fake, owner: O, repo: R, issueNumber: n, body, user, installationId });
    await hook('issue_comment', payload);
    return (payload as { comment: { id: number } }).comment.id;
  }

  it('opened → a check run with links and one sticky comment; synchronize edits it; commands work for writers only; closed deletes', async () => {
    const sha1 = await fake.pushFiles(O, R, 'feature/cart', sampleAppFiles());
    fake.createPullRequest(O, R, { number: 7, head: 'feature/cart', user: 'wendy' });
    // GitHub sends the push and the pull request event for the same commit: one build.
    await hook('push', pushPayload({ fake, owner: O, repo: R, branch: 'feature/cart', after: sha1, installationId }));
    await hook('pull_request', pullRequestPayload('opened', { fake, owner: O, repo: R, number: 7, installationId }));

    await until('running and shown in the comment', async () => stickyBody(7).includes('running'));
    expect(sticky(7)).toHaveLength(1);
    const body = stickyBody(7);
    expect(body).toMatch(/\[Preview\]\(http:\/\/[a-z0-9-]+\.localhost:\d+\/\)/);
    expect(body).toMatch(/\[Open IDE\]\(http:\/\/localhost:\d+\/workspaces\/[^/]+\/ide\)/);
    expect(body).toContain(sha1.slice(0, 7));
    expect(sticky(7)[0]!.user.type).toBe('Bot');
    const checks1 = fake.checkRuns(O, R, sha1);
    expect(checks1).toHaveLength(1);
    await until('the check run completes', () => fake.checkRuns(O, R, sha1)[0]!.status === 'completed');
    const check = fake.checkRuns(O, R, sha1)[0]!;
    expect(check).toMatchObject({ name: 'Berth', conclusion: 'success' });
    expect(check.details_url).toMatch(/\/workspaces\//);
    expect(check.output?.summary).toContain('Preview');
    expect(check.output?.summary).toContain('Open IDE');
    expect(check.actions?.map((a) => a.identifier)).toEqual(['stop', 'refresh']);
    // it moved through queued and in_progress on its way
    expect(check.history?.map((h) => (h as { status?: string }).status)).toEqual(expect.arrayContaining(['queued', 'in_progress', 'completed']));
    expect(await berth.db.build.count({ where: { sha: sha1 } })).toBe(1);
    const commentId = sticky(7)[0]!.id;

    // synchronize: the same comment is edited, a new check run appears for the new commit
    const sha2 = await fake.pushFiles(O, R, 'feature/cart', { 'message.txt': 'cart v2' });
    await hook('pull_request', pullRequestPayload('synchronize', { fake, owner: O, repo: R, number: 7, installationId }));
    await until('the comment shows the second commit running', () => stickyBody(7).includes(sha2.slice(0, 7)) && stickyBody(7).includes('running'));
    expect(sticky(7).map((c) => c.id)).toEqual([commentId]);
    await until('a check run for the new commit', () => fake.checkRuns(O, R, sha2).some((c) => c.conclusion === 'success'));

    // a reader may not stop it
    const readerComment = await command(7, 'rita', '/berth stop');
    await until('a polite refusal', () => comments(7).some((c) => c.body.includes('@rita') && c.body.includes('only people with write access')));
    expect(fake.reactions(O, R, readerComment).map((r) => r.content)).toContain('eyes');
    expect((await workspace('feature/cart')).state).toBe('running');

    // a quoted command is ignored entirely
    const quoted = await command(7, 'wendy', '> /stop\nI agree with that');
    await new Promise((r) => setTimeout(r, 800));
    expect(fake.reactions(O, R, quoted)).toHaveLength(0);
    expect((await workspace('feature/cart')).state).toBe('running');

    // a writer stops it: 👀 at once, 🚀 and a reply, the comment says stopped
    const stop = await command(7, 'wendy', '/stop');
    await until('stopped', async () => (await workspace('feature/cart')).state === 'stopped');
    await until('the comment says stopped', () => stickyBody(7).includes('stopped'));
    expect(fake.reactions(O, R, stop).map((r) => r.content)).toEqual(expect.arrayContaining(['eyes', 'rocket']));
    expect(comments(7).some((c) => c.body.includes('Stopping the workspace'))).toBe(true);

    // start again (maintain is enough)
    await command(7, 'mo', '/berth start');
    await until('running again', async () => (await workspace('feature/cart')).state === 'running');

    // refresh builds the newest commit of the branch and keeps the disk
    const sha3 = await fake.pushFiles(O, R, 'feature/cart', { 'message.txt': 'cart v3' });
    await command(7, 'wendy', '/berth refresh');
    await until('running the newest commit', async () => (await workspace('feature/cart')).runningSha === sha3 && (await workspace('feature/cart')).state === 'running');
    const ws = await workspace('feature/cart');
    expect((await berth.preview(ws.slug)).body).toContain('cart v3');

    // help and unknown verbs answer with the help text
    await command(7, 'rita', '/berth dance');
    await until('help for an unknown verb', () => comments(7).some((c) => c.body.includes('`/berth dance` is not a Berth command') && c.body.includes('/berth rebuild')));

    // the Stop button on the check run
    const lastCheck = fake.checkRuns(O, R, sha3).at(-1)!;
    await hook('check_run', checkRunPayload('requested_action', { fake, owner: O, repo: R, id: lastCheck.id, requestedAction: 'stop', sender: 'wendy', installationId }));
    await until('stopped by the button', async () => (await workspace('feature/cart')).state === 'stopped');

    // closing the pull request deletes everything and the comment says so
    fake.updatePullRequest(O, R, 7, { state: 'closed' });
    await hook('pull_request', pullRequestPayload('closed', { fake, owner: O, repo: R, number: 7, installationId }));
    await until('deleted', async () => (await workspace('feature/cart')).state === 'deleted');
    await until('the comment says deleted', () => stickyBody(7).includes('deleted'));
    expect(sticky(7)).toHaveLength(1);
    expect((await berth.preview(ws.slug)).status).toBe(404);

    assertDocumentedRequests(fake.requests);
  });

  it('forks are not built until a writer approves; a new fork push needs approval again', async () => {
    fake.createRepo('eve', R, { forkOf: `${O}/${R}`, private: false, installationId: null });
    const sha = await fake.pushFiles('eve', R, 'patch-1', sampleAppFiles({ 'message.txt': 'from a fork' }));
    fake.createPullRequest(O, R, { number: 9, head: 'patch-1', headRepo: `eve/${R}`, user: 'eve' });
    await hook('pull_request', pullRequestPayload('opened', { fake, owner: O, repo: R, number: 9, installationId }));
    await until('the comment asks for approval', () => stickyBody(9).includes('/berth approve'));
    expect(await berth.db.build.count({ where: { sha } })).toBe(0);

    // the fork's author cannot approve their own code
    fake.addUser('eve');
    await command(9, 'eve', '/berth approve');
    await until('a refusal', () => comments(9).some((c) => c.body.includes('@eve') && c.body.includes('only people with write access')));
    expect(await berth.db.build.count({ where: { sha } })).toBe(0);

    // the maintainer reviews the head (a comment in the same second as the push that opened the
    // pull request cannot be ordered after it, and Berth would rightly ask for the commit)
    await nextSecond();
    await command(9, 'wendy', '/berth approve');
    await until('the fork runs', async () => (await workspace('pr/9')).state === 'running');
    const ws = await workspace('pr/9');
    expect((await berth.preview(ws.slug)).body).toContain('from a fork');

    const sha2 = await fake.pushFiles('eve', R, 'patch-1', { 'message.txt': 'sneaky change' });
    await hook('pull_request', pullRequestPayload('synchronize', { fake, owner: O, repo: R, number: 9, installationId }));
    await until('approval asked again', () => stickyBody(9).includes(sha2.slice(0, 7)) && stickyBody(9).includes('/berth approve'));
    expect(await berth.db.build.count({ where: { sha: sha2 } })).toBe(0);
  });

  it('deleting a branch deletes its workspace; commands on plain issues and from bots are ignored', async () => {
    const sha = await fake.pushFiles(O, R, 'short-lived', sampleAppFiles());
    await hook('push', pushPayload({ fake, owner: O, repo: R, branch: 'short-lived', after: sha, installationId }));
    await until('running', async () => (await berth.db.workspace.findFirst({ where: { branch: 'short-lived' } }))?.state === 'running');
    await fake.deleteBranch(O, R, 'short-lived');
    await hook('delete', deletePayload({ fake, owner: O, repo: R, ref: 'short-lived', installationId }));
    await until('deleted', async () => (await workspace('short-lived')).state === 'deleted');

    const onIssue = issueCommentPayload({ fake, owner: O, repo: R, issueNumber: 50, body: '/berth stop', user: 'wendy', isPullRequest: false, installationId });
    await hook('issue_comment', onIssue);
    const fromBot = issueCommentPayload({ fake, owner: O, repo: R, issueNumber: 9, body: '/berth delete', user: { login: 'dependabot[bot]', type: 'Bot' }, installationId });
    await hook('issue_comment', fromBot);
    await new Promise((r) => setTimeout(r, 1000));
    expect(fake.reactions(O, R, (onIssue as { comment: { id: number } }).comment.id)).toHaveLength(0);
    expect(fake.reactions(O, R, (fromBot as { comment: { id: number } }).comment.id)).toHaveLength(0);
    expect((await workspace('pr/9')).state).not.toBe('deleted');
  });
});
