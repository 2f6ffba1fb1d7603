import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeGitHub, type FakeGitHub } from '../fakes/github.js';
import { issueCommentPayload, pullRequestPayload, pushPayload, sendWebhook } from '../fakes/webhooks.js';
import { sampleAppFiles } from '../fixtures/sample-app.js';
import { startTestBerth, type TestBerth } from '../helpers/berth.js';
import { CookieClient } from '../helpers/cookie-client.js';
import { nextSecond, waitFor } from '../helpers/http.js';

const O = 'h2co';
const R = 'forkshop';
const SECRET = 'h2secretshop';
const PERMISSION_ROUTE = 'GET /repos/{owner}/{repo}/collaborators/{username}/permission';


/**
 * What strangers can do through pull requests and what the public can see (issue 10, items 3,
 * 4 and 11): a fork pushing between a maintainer's approval and its job, a pull request whose
 * fork was deleted, a private repository's preview, and a visitor making Berth ask GitHub for
 * permissions over and over.
 */
describe('forks, private previews and permission look-ups', () => {
  let fake: FakeGitHub;
  let berth: TestBerth;
  let installationId: number;

  beforeAll(async () => {
    fake = await startFakeGitHub();
    installationId = fake.addInstallation({ login: O, type: 'Organization' }).id;
    fake.createRepo(O, R, { installationId, private: false });
    fake.createRepo(O, SECRET, { installationId, private: true });
    await fake.pushFiles(O, R, 'main', { 'README.md': '# shop\n' });
    fake.addUser('h2wendy');
    fake.setPermission(O, R, 'h2wendy', 'write');
    fake.addUser('h2rita');
    fake.setPermission(O, SECRET, 'h2rita', 'read');
    fake.addUser('h2stranger');
    berth = await startTestBerth(fake);
    // the repositories as their first webhook records them, so every test can run alone
    await berth.db.installation.create({ data: { id: BigInt(installationId), accountLogin: O, accountType: 'Organization' } });
    for (const name of [R, SECRET]) {
      const repo = fake.getRepo(O, name)!;
      await berth.db.repository.create({ data: { id: BigInt(repo.id), installationId: BigInt(installationId), owner: O, name, fullName: `${O}/${name}`, private: name === SECRET } });
    }
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
  const stickyBody = (n: number) => comments(n).find((c) => c.body?.includes('<!-- berth:sticky'))?.body ?? '';
  const replied = (n: number, ...parts: string[]) => comments(n).some((c) => parts.every((p) => c.body.includes(p)));
  const workspace = (repo: string, branch: string) => berth.db.workspace.findFirstOrThrow({ where: { branch, repository: { name: repo } } });
  const until = (what: string, check: () => boolean | Promise<boolean>, ms = 120_000) => waitFor(what, async () => (await check()) || null, ms);
  const command = (n: number, user: string, body: string) => hook('issue_comment', issueCommentPayload({ fake, owner: O, repo: R, issueNumber: n, body, user, installationId }));
  const pr = (action: string, number: number) => pullRequestPayload(action, { fake, owner: O, repo: R, number, installationId });
  const short = (sha: string) => sha.slice(0, 7);

  it('a raced /berth approve builds nothing the maintainer did not see; /berth approve <sha> builds exactly that commit', async () => {
    fake.createRepo('h2eve', R, { forkOf: `${O}/${R}`, private: false, installationId: null });
    const a = await fake.pushFiles('h2eve', R, 'patch-1', sampleAppFiles({ 'message.txt': 'fork commit A' }));
    fake.createPullRequest(O, R, { number: 21, head: 'patch-1', headRepo: `h2eve/${R}`, user: 'h2eve' });
    await hook('pull_request', pr('opened', 21));
    await until('the comment asks to approve A', () => stickyBody(21).includes(`/berth approve ${short(a)}`));

    // h2wendy writes "/berth approve" while the head is A; the fork pushes B before the
    // approval runs (the comment's webhook comes after the push's)
    await nextSecond();
    const approveA = issueCommentPayload({ fake, owner: O, repo: R, issueNumber: 21, body: '/berth approve', user: 'h2wendy', installationId });
    await nextSecond();
    const b = await fake.pushFiles('h2eve', R, 'patch-1', { 'message.txt': 'fork commit B, unseen' });
    await hook('pull_request', pr('synchronize', 21));
    await hook('issue_comment', approveA);
    await until('the reply says the head moved and what to approve', () => replied(21, 'head of this pull request moved', `\`${short(a)}\``, `/berth approve ${short(b)}`));
    await until('the comment asks to approve B', () => stickyBody(21).includes(`/berth approve ${short(b)}`));

    // the same race when Berth has not even heard of the new push yet
    await nextSecond();
    const approveB = issueCommentPayload({ fake, owner: O, repo: R, issueNumber: 21, body: '/berth approve', user: 'h2wendy', installationId });
    await nextSecond();
    const c = await fake.pushFiles('h2eve', R, 'patch-1', { 'message.txt': 'fork commit C' });
    await hook('issue_comment', approveB);
    await until('the reply names B as seen and C as the head', () => replied(21, 'head of this pull request moved', `\`${short(b)}\``, `/berth approve ${short(c)}`));

    // a commit that is not the head, and something that is not a commit
    await command(21, 'h2wendy', `/berth approve ${b.slice(0, 10)}`);
    await until('a stale sha is refused', () => replied(21, `\`${b.slice(0, 10)}\` is not the head`, `/berth approve ${short(c)}`));
    await command(21, 'h2wendy', '/berth approve please');
    await until('a non-sha is refused', () => replied(21, '`please` is not a commit'));
    expect(await berth.db.build.count({ where: { sha: { in: [a, b, c] } } })).toBe(0);
    expect(fake.checkRuns(O, R, b)).toHaveLength(0);

    // naming the head approves and builds it
    await hook('pull_request', pr('synchronize', 21));
    await command(21, 'h2wendy', `/berth approve ${short(c)}`);
    await until('the reply says C is approved', () => replied(21, `approved commit \`${short(c)}\``, 'any later push to the fork needs approval again'));
    await until('C runs', async () => (await workspace(R, 'pr/21')).state === 'running' && fake.checkRuns(O, R, c).some((r) => r.conclusion === 'success'));
    const ws = await workspace(R, 'pr/21');
    expect((await berth.preview(ws.slug)).body).toContain('fork commit C');
    await until('the comment says which commit is approved', () => stickyBody(21).includes(`| Approved commit | \`${short(c)}\``));
    expect(await berth.db.build.count({ where: { sha: { in: [a, b] } } })).toBe(0);

    // a later push needs approval again, and Refresh builds only the approved commit
    const d = await fake.pushFiles('h2eve', R, 'patch-1', { 'message.txt': 'fork commit D' });
    await command(21, 'h2wendy', '/berth refresh');
    await until('refresh refuses the unapproved head', () => replied(21, `its head \`${short(d)}\` is not approved`, `/berth approve ${short(d)}`));
    expect(await berth.db.build.count({ where: { sha: d } })).toBe(0);
  });

  it('a pull request whose head repository is gone is a fork: closing it leaves the base branch alone', async () => {
    const main = await fake.pushFiles(O, R, 'main', sampleAppFiles({ 'message.txt': 'the real main' }));
    await hook('push', pushPayload({ fake, owner: O, repo: R, branch: 'main', after: main, installationId }));
    await until('main runs', async () => (await workspace(R, 'main').catch(() => null))?.state === 'running');

    // a stranger's fork with a branch called main, a pull request from it, then the fork is deleted
    fake.createRepo('h2mallory', R, { forkOf: `${O}/${R}`, private: false, installationId: null });
    await fake.pushFiles('h2mallory', R, 'main', { 'evil.txt': 'x' });
    fake.createPullRequest(O, R, { number: 22, head: 'main', headRepo: `h2mallory/${R}`, user: 'h2mallory' });
    const headless = (action: string) => {
      const payload = pr(action, 22);
      (payload.pull_request.head as { repo: unknown }).repo = null;
      return payload;
    };
    await hook('pull_request', headless('opened'));
    await until('it waits for approval like any fork', () => stickyBody(22).includes('/berth approve') && stickyBody(22).includes('no longer shows'));
    fake.updatePullRequest(O, R, 22, { state: 'closed' });
    await hook('pull_request', headless('closed'));
    await until("the pull request's own workspace is deleted", async () => (await workspace(R, 'pr/22')).state === 'deleted');

    const ws = await workspace(R, 'main');
    expect(ws.state).toBe('running');
    expect(await berth.db.workspaceEvent.count({ where: { workspaceId: ws.id, toState: 'deleted' } })).toBe(0);
    expect((await berth.preview(ws.slug)).body).toContain('the real main');
  });

  it('a repository made private takes its previews private at once', async () => {
    const repo = 'h2turning';
    fake.createRepo(O, repo, { installationId, private: false });
    const sha = await fake.pushFiles(O, repo, 'main', sampleAppFiles({ 'message.txt': 'soon private' }));
    await hook('push', pushPayload({ fake, owner: O, repo, branch: 'main', after: sha, installationId }));
    await until('it runs', async () => (await workspace(repo, 'main').catch(() => null))?.state === 'running');
    const ws = await workspace(repo, 'main');
    expect((await berth.preview(ws.slug)).body).toContain('soon private');

    const privatized = {
      action: 'privatized',
      repository: { ...fake.json.repository(O, repo), private: true, visibility: 'private' },
      organization: { login: O },
      installation: { id: installationId, node_id: 'x' },
      sender: fake.json.user('h2wendy'),
    };
    await hook('repository', privatized);
    await until('the preview asks for sign-in', async () => (await berth.preview(ws.slug)).status === 302);
    expect((await berth.preview(ws.slug)).body).not.toContain('soon private');
  });

  it("a private repository's preview needs sign-in with read access unless berth.yml makes it public", async () => {
    const yml = sampleAppFiles()['.github/berth.yml']!.replace(/^preview:.*$/m, 'preview: web');
    const sha = await fake.pushFiles(O, SECRET, 'feature/h2-private', sampleAppFiles({ '.github/berth.yml': yml, 'message.txt': 'private stuff' }));
    await hook('push', pushPayload({ fake, owner: O, repo: SECRET, branch: 'feature/h2-private', after: sha, installationId }));
    await until('it runs', async () => (await workspace(SECRET, 'feature/h2-private').catch(() => null))?.state === 'running');
    const ws = await workspace(SECRET, 'feature/h2-private');
    expect(ws.previewPrivate).toBe(true);
    const preview = `http://${ws.slug}.localhost:${berth.port}/`;

    const anonymous = await new CookieClient().get(preview);
    expect(anonymous.status).toBe(302);
    expect(anonymous.headers.location).toContain(`/workspaces/${ws.id}/preview`);
    expect(anonymous.body).not.toContain('private stuff');

    fake.setOAuthUser('h2stranger');
    const stranger = await new CookieClient().get(preview, { follow: true });
    expect(stranger.status).toBe(403);
    expect(stranger.body).not.toContain('private stuff');

    fake.setOAuthUser('h2rita');
    const reader = await new CookieClient().get(preview, { follow: true });
    expect(reader.status).toBe(200);
    expect(reader.body).toContain('private stuff');
  });

  it("a public preview's failed page and the check run show no secret-looking output, and the failed page no log lines", async () => {
    const token = `ghp_${'h2'.repeat(18)}`;
    const yml = [
      'services:',
      '  web:',
      '    build: .',
      '    port: 3000',
      '    command: node server.js',
      '    migrate: echo "token $LEAK" && echo output-line-$((40 + 2)) && exit 3',
      `    env: { LEAK: ${token} }`,
      'preview: { service: web, visibility: public }',
      '',
    ].join('\n');
    const sha = await fake.pushFiles(O, R, 'h2-leaky', sampleAppFiles({ '.github/berth.yml': yml }));
    await hook('push', pushPayload({ fake, owner: O, repo: R, branch: 'h2-leaky', after: sha, installationId }));
    await until('it fails', async () => (await workspace(R, 'h2-leaky').catch(() => null))?.state === 'failed');
    const ws = await workspace(R, 'h2-leaky');
    expect(ws.stateReason).toContain('output-line-42'); // the signed-in workspace page has it all

    const page = await berth.preview(ws.slug);
    expect(page.status).toBe(502);
    expect(page.body).toContain('This workspace failed');
    expect(page.body).toContain('exited with code 3');
    expect(page.body).not.toContain(token);
    expect(page.body).not.toContain('output-line-42');

    await until('the check run fails', () => fake.checkRuns(O, R, sha).some((c) => c.conclusion === 'failure'));
    const check = fake.checkRuns(O, R, sha).find((c) => c.conclusion === 'failure')!;
    const shown = `${check.output?.title}\n${check.output?.summary}\n${check.output?.text}`;
    expect(shown).toContain('output-line-42');
    expect(shown).toContain('[redacted]');
    expect(shown).not.toContain(token);
  });

  it("dashboard visitors cannot spend the installation's rate limit: permission look-ups are cached per user and repository", async () => {
    fake.addUser('h2visitor');
    fake.setPermission(O, SECRET, 'h2visitor', 'read');
    fake.setOAuthUser('h2visitor');
    const client = new CookieClient();
    const dashboard = new URL(`${berth.config.berthUrl}/`);
    // sign in, stopping before the dashboard itself loads: the first page loads come all at once
    let res = await client.get(dashboard.toString());
    while (res.status >= 300 && res.status < 400) {
      const next = new URL(res.headers.location!, res.url);
      if (next.host === dashboard.host && next.pathname === '/') break;
      res = await client.get(next.toString());
    }
    const lookups = () => fake.requests.filter((r) => r.route === PERMISSION_ROUTE && r.path.endsWith('/h2visitor/permission')).length;
    expect(lookups()).toBe(0);
    // 40 page loads, 20 of them at once: each repository's permission is asked once
    const pages = await Promise.all(Array.from({ length: 20 }, () => client.get(dashboard.toString())));
    for (let i = 0; i < 20; i++) pages.push(await client.get(`${dashboard}?q=${i}`));
    expect(pages.map((p) => p.status)).toEqual(pages.map(() => 200));
    const repositories = await berth.db.repository.count({ where: { removed: false } });
    expect(lookups()).toBeGreaterThan(0);
    expect(lookups()).toBeLessThanOrEqual(repositories);
  });
});
