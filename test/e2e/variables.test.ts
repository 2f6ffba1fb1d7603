import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeGitHub, type FakeGitHub } from '../fakes/github.js';
import { issueCommentPayload, pullRequestPayload, sendWebhook } from '../fakes/webhooks.js';
import { sampleAppFiles } from '../fixtures/sample-app.js';
import { startTestBerth, type TestBerth } from '../helpers/berth.js';
import { CookieClient } from '../helpers/cookie-client.js';
import { nextSecond, waitFor } from '../helpers/http.js';

const O = 'h16org';
const R = 'shop';

/**
 * Issue 16, end to end: variables and secrets set through the API (a person's GitHub token) and
 * the dashboard reach the app in the workspace, and no text Berth produces shows them; forks
 * get secrets only with `/berth approve --with-secrets`; readers get nothing; a missing
 * required variable fails the check run with its name; the database holds only ciphertext.
 */
describe('variables and secrets', () => {
  let fake: FakeGitHub;
  let berth: TestBerth;
  let installationId: number;
  // long and unlike anything else, so a search for them cannot match by accident
  const API_SECRET = `h16-api-${randomBytes(12).toString('hex')}`;
  const DASH_SECRET = `h16-dash-${randomBytes(12).toString('hex')}`;

  beforeAll(async () => {
    fake = await startFakeGitHub();
    installationId = fake.addInstallation({ login: O, type: 'Organization' }).id;
    fake.createRepo(O, R, { installationId, private: false });
    await fake.pushFiles(O, R, 'main', { 'README.md': '# shop\n' });
    for (const [login, role] of [['h16admin', 'admin'], ['h16maint', 'maintain'], ['h16writer', 'write'], ['h16reader', 'read']] as const) {
      fake.addUser(login);
      fake.setPermission(O, R, login, role);
    }
    berth = await startTestBerth(fake, { BERTH_ADMINS: 'h16admin' });
    await berth.db.installation.create({ data: { id: BigInt(installationId), accountLogin: O, accountType: 'Organization' } });
    const repo = fake.getRepo(O, R)!;
    await berth.db.repository.create({ data: { id: BigInt(repo.id), installationId: BigInt(installationId), owner: O, name: R, fullName: `${O}/${R}`, private: false } });
  });

  afterAll(async () => {
    await berth?.close();
    await fake?.close();
  });

  const api = (method: string, name: string | null, opts: { token?: string; body?: unknown; query?: string; client?: CookieClient; headers?: Record<string, string> } = {}) =>
    (opts.client ?? new CookieClient()).request(method, `${berth.config.berthUrl}/api/repos/${O}/${R}/variables${name ? `/${name}` : ''}${opts.query ?? ''}`, {
      headers: { ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}), ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}), ...opts.headers },
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    });
  const tokenOf = (login: string) => fake.mintUserToken(login);
  const setVariable = async (name: string, body: Record<string, unknown>) => {
    const res = await api('PUT', name, { token: tokenOf('h16admin'), body });
    expect([200, 201], res.body).toContain(res.status);
  };
  async function signIn(login: string): Promise<CookieClient> {
    fake.setOAuthUser(login);
    const client = new CookieClient();
    const res = await client.get(`${berth.config.berthUrl}/login`, { follow: true });
    expect(res.status).toBe(200);
    return client;
  }
  const csrfOf = (html: string) => /name="_csrf" value="([^"]+)"/.exec(html)?.[1] ?? '';
  const hook = async (event: string, payload: unknown) => {
    const res = await sendWebhook(berth.webhookUrl, event, payload, fake.webhookSecret);
    expect(res.status).toBe(200);
  };
  const workspace = (branch: string) => berth.db.workspace.findFirst({ where: { branch, repository: { name: R } } });
  const until = (what: string, check: () => boolean | Promise<boolean>, ms = 150_000) => waitFor(what, async () => (await check()) || null, ms);
  const comments = (n: number) => fake.issueComments(O, R, n);
  const stickyBody = (n: number) => comments(n).find((c) => c.body?.includes('<!-- berth:sticky'))?.body ?? '';
  const running = async (branch: string) => {
    await until(`${branch} runs`, async () => {
      const ws = await workspace(branch);
      if (ws?.state === 'failed') throw new Error(`${branch} failed: ${ws.stateReason}`);
      return ws?.state === 'running';
    });
    return (await workspace(branch))!;
  };
  const openPullRequest = async (number: number, branch: string, files: Record<string, string | null>) => {
    const sha = await fake.pushFiles(O, R, branch, sampleAppFiles(files));
    fake.createPullRequest(O, R, { number, head: branch, user: 'h16writer' });
    await hook('pull_request', pullRequestPayload('opened', { fake, owner: O, repo: R, number, installationId }));
    return sha;
  };
  /** every text Berth wrote to GitHub, to its log and its build logs */
  async function everythingBerthWrote(shas: string[], prs: number[]): Promise<string> {
    const checks = shas.flatMap((sha) => fake.checkRuns(O, R, sha)).map((c) => JSON.stringify(c));
    const written = prs.flatMap((n) => comments(n).map((c) => c.body));
    const logs = (await berth.db.buildLogChunk.findMany({ select: { text: true } })).map((c) => c.text);
    const reasons = (await berth.db.workspaceEvent.findMany({ select: { reason: true } })).map((e) => e.reason);
    const states = (await berth.db.workspace.findMany({ select: { stateReason: true, notice: true } })).map((w) => `${w.stateReason} ${w.notice}`);
    const errors = (await berth.db.build.findMany({ select: { error: true, config: true } })).map((b) => `${b.error} ${JSON.stringify(b.config)}`);
    return [...checks, ...written, ...logs, ...reasons, ...states, ...errors, ...berth.logs].join('\n');
  }

  it('an admin sets secrets through the API and the dashboard; the app sees them; no text Berth produced shows them; the database holds only ciphertext', async () => {
    // through the API, with the admin's GitHub token
    const put = await api('PUT', 'API_KEY', { token: tokenOf('h16admin'), body: { value: API_SECRET, secret: true, branches: [] } });
    expect(put.status, put.body).toBe(201);
    expect(put.body).not.toContain(API_SECRET);
    await setVariable('SHOP_CONFIG', { value: 'greeting=hello from a variable file\n', secret: false, path: 'config/shop.conf' });
    await setVariable('SHOP_MODE', { value: 'default mode', secret: false });
    await setVariable('SHOP_MODE', { value: 'feature mode', secret: false, branches: ['h16/*'] });
    // the global layer, BERTH_ADMINS' (h16admin): a name of its own, and one the repository overrides
    for (const [name, value] of [['H16_GLOBAL', 'from the global layer'], ['SHOP_MODE', 'global mode']]) {
      const res = await new CookieClient().request('PUT', `${berth.config.berthUrl}/api/variables/${name}`, {
        headers: { authorization: `Bearer ${tokenOf('h16admin')}`, 'content-type': 'application/json' },
        body: JSON.stringify({ value, secret: false }),
      });
      expect([200, 201], res.body).toContain(res.status);
    }

    // through the dashboard, as a maintainer
    const maint = await signIn('h16maint');
    const settingsUrl = `${berth.config.berthUrl}/repos/${O}/${R}/variables`;
    const settings = await maint.get(settingsUrl);
    expect(settings.status).toBe(200);
    expect(settings.body).toContain('API_KEY');
    expect(settings.body).not.toContain(API_SECRET);
    const saved = await maint.post(settingsUrl, { _csrf: csrfOf(settings.body), action: 'set', keep: 'yes', name: 'DASH_SECRET', value: DASH_SECRET, secret: 'yes', branches: '' });
    expect(saved.status).toBe(303);
    const after = await maint.get(settingsUrl);
    expect(after.body).toContain('Saved DASH_SECRET');
    expect(after.body).toMatch(/data-variable="DASH_SECRET"[\s\S]*?secret/);
    expect(after.body).not.toContain(DASH_SECRET);

    // a pull request whose berth.yml names the secret, requires it, and whose migrate prints it
    const yml = [
      'services:',
      '  web:',
      '    build: .',
      '    port: 3000',
      '    command: node server.js',
      '    migrate: echo "migrating with key $API_KEY" && node migrate.js',
      '    health: /health',
      "    env: { NODE_ENV: development, KEY_REF: 'Bearer ${{ secrets.API_KEY }}' }",
      'required: [API_KEY, DASH_SECRET]',
      'preview: { service: web, visibility: public }',
      '',
    ].join('\n');
    const sha = await openPullRequest(161, 'h16/feature', { '.github/berth.yml': yml });
    const ws = await running('h16/feature');
    const env = async (name: string) => (await berth.preview(ws.slug, `/env/${name}`)).body;
    expect(await env('API_KEY')).toBe(API_SECRET);
    expect(await env('DASH_SECRET')).toBe(DASH_SECRET);
    expect(await env('KEY_REF')).toBe(`Bearer ${API_SECRET}`);
    expect(await env('SHOP_MODE')).toBe('feature mode'); // the branch entry wins over the repository's and the global one
    expect(await env('H16_GLOBAL')).toBe('from the global layer');
    expect(await env('BERTH_BRANCH')).toBe('h16/feature');
    expect(await env('BERTH_SHA')).toBe(sha);
    expect(await env('BERTH_PR')).toBe('161');
    expect(await env('BERTH_WORKSPACE')).toBe(ws.slug);
    expect(await env('BERTH_PREVIEW_URL')).toBe(`http://${ws.slug}.localhost:${berth.port}/`);
    expect(await env('BERTH_URL_WEB')).toBe(`http://${ws.slug}.localhost:${berth.port}/`);
    expect((await berth.preview(ws.slug, '/file/config/shop.conf')).body).toBe('greeting=hello from a variable file\n');

    // the workspace page says where each name came from, and no value
    const admin = await signIn('h16admin');
    const page = await admin.get(`${berth.config.berthUrl}/workspaces/${ws.id}`);
    expect(page.status).toBe(200);
    expect(page.body).toMatch(/data-variable="API_KEY"><td><code>API_KEY<\/code><\/td><td data-layer>repository<\/td>/);
    expect(page.body).toMatch(/data-variable="H16_GLOBAL"><td><code>H16_GLOBAL<\/code><\/td><td data-layer>global<\/td>/);
    expect(page.body).toMatch(/data-variable="SHOP_MODE"><td><code>SHOP_MODE<\/code><\/td><td data-layer>repository, branches h16\/\*<\/td>/);
    await until('the check run succeeds and the comment shows the preview', () => fake.checkRuns(O, R, sha).some((c) => c.conclusion === 'success') && stickyBody(161).includes('Preview'));

    // every text Berth produced: check runs, comments, build logs, state reasons, its log, its pages and API answers
    const build = await berth.db.build.findFirstOrThrow({ where: { sha } });
    const pages = await Promise.all(
      [`/workspaces/${ws.id}`, `/builds/${build.id}/log`, `/builds/${build.id}/log.txt`, `/repos/${O}/${R}/variables`, '/'].map(async (p) => (await admin.get(`${berth.config.berthUrl}${p}`)).body),
    );
    const answers = [await api('GET', null, { token: tokenOf('h16admin') }), await api('GET', 'API_KEY', { token: tokenOf('h16admin') }), await api('GET', 'DASH_SECRET', { token: tokenOf('h16admin') })].map((r) => r.body);
    expect(JSON.parse(answers[1]!)).toMatchObject({ name: 'API_KEY', secret: true, value: null, branches: [] });
    const all = [await everythingBerthWrote([sha], [161]), ...pages, ...answers].join('\n');
    expect(all).toContain('migrating with key [redacted]');
    expect(all).not.toContain(API_SECRET);
    expect(all).not.toContain(DASH_SECRET);

    // the database holds only ciphertext
    const rows = await berth.db.$queryRawUnsafe<Array<Record<string, unknown>>>('SELECT * FROM "Variable"');
    const dump = JSON.stringify(rows, (_k, v) => (typeof v === 'bigint' ? String(v) : v));
    expect(rows.length).toBeGreaterThanOrEqual(5);
    expect(dump).not.toContain(API_SECRET);
    expect(dump).not.toContain(DASH_SECRET);
    expect(dump).not.toContain('hello from a variable file');
    for (const row of rows) expect(String(row.ciphertext)).toMatch(/^v1\.[0-9a-f]{16}\.[\w-]+\.[\w-]+\.[\w-]*$/);
  });

  it('a read user cannot read or set values; a write user sees names only; no token or a bad one gets 401', async () => {
    await setVariable('READ_TEST', { value: 'r3ad-test-value', secret: true });
    const reader = tokenOf('h16reader');
    for (const [method, name, body] of [['GET', null], ['GET', 'READ_TEST'], ['PUT', 'READ_TEST', { value: 'x' }], ['DELETE', 'READ_TEST']] as const) {
      const res = await api(method, name, { token: reader, body });
      expect(res.status, `${method} ${name}`).toBe(404);
      expect(res.body).not.toContain('r3ad-test-value');
    }
    const writer = tokenOf('h16writer');
    const list = await api('GET', null, { token: writer });
    expect(list.status).toBe(200);
    const names = JSON.parse(list.body).variables as Array<Record<string, unknown>>;
    expect(names.map((v) => v.name)).toContain('READ_TEST');
    expect(names.every((v) => !('value' in v))).toBe(true);
    expect((await api('GET', 'READ_TEST', { token: writer })).status).toBe(403);
    expect((await api('PUT', 'READ_TEST', { token: writer, body: { value: 'overwritten' } })).status).toBe(403);
    expect((await api('DELETE', 'READ_TEST', { token: writer })).status).toBe(403);
    // the global layer is BERTH_ADMINS' only, a repository's maintainer included
    const global = await new CookieClient().request('PUT', `${berth.config.berthUrl}/api/variables/H16_NOT_YOURS`, {
      headers: { authorization: `Bearer ${tokenOf('h16maint')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ value: 'x' }),
    });
    expect(global.status).toBe(404);
    expect(await berth.db.variable.count({ where: { name: 'H16_NOT_YOURS' } })).toBe(0);
    expect((await api('GET', null)).status).toBe(401);
    expect((await api('GET', null, { token: 'ghu_notarealtoken0000000000000000' })).status).toBe(401);

    // the dashboard: the reader sees nothing, the writer names without a form, and a forged post changes nothing
    const readerPage = await (await signIn('h16reader')).get(`${berth.config.berthUrl}/repos/${O}/${R}/variables`);
    expect(readerPage.status).toBe(404);
    expect(readerPage.body).not.toContain('READ_TEST');
    const writerClient = await signIn('h16writer');
    const writerPage = await writerClient.get(`${berth.config.berthUrl}/repos/${O}/${R}/variables`);
    expect(writerPage.status).toBe(200);
    expect(writerPage.body).toContain('READ_TEST');
    expect(writerPage.body).toContain('id="names-only"');
    expect(writerPage.body).not.toContain('id="set-variable"');
    const forged = await writerClient.post(`${berth.config.berthUrl}/repos/${O}/${R}/variables`, { _csrf: csrfOf(writerPage.body), action: 'set', name: 'READ_TEST', value: 'overwritten', secret: 'yes' });
    expect(forged.status).toBe(403);
    // a session without the CSRF token cannot write through the API either
    const maint = await signIn('h16maint');
    expect((await api('PUT', 'READ_TEST', { client: maint, body: { value: 'overwritten' } })).status).toBe(403);
    const row = await berth.db.variable.findFirstOrThrow({ where: { name: 'READ_TEST' } });
    expect(row.updatedBy).toBe('h16admin');
  });

  it('a missing required variable fails the check run with its name and the settings page; the comment says what to set', async () => {
    const yml = sampleAppFiles()['.github/berth.yml']! + 'required: [H16_NOT_SET_ANYWHERE]\n';
    const sha = await openPullRequest(162, 'h16-missing', { '.github/berth.yml': yml });
    await until('the check run fails', () => fake.checkRuns(O, R, sha).some((c) => c.conclusion === 'failure'));
    const check = fake.checkRuns(O, R, sha).find((c) => c.conclusion === 'failure')!;
    const shown = `${check.output?.title}\n${check.output?.summary}\n${check.output?.text}`;
    expect(shown).toContain('missing variables: H16_NOT_SET_ANYWHERE');
    expect(shown).toContain(`${berth.config.berthUrl}/repos/${O}/${R}/variables`);
    await until('the comment says what to set', () => stickyBody(162).includes('H16_NOT_SET_ANYWHERE') && stickyBody(162).includes(`/repos/${O}/${R}/variables`));
    expect(await berth.db.build.count({ where: { sha, state: 'succeeded' } })).toBe(0);
  });

  it("a fork's pull request gets no secrets until a maintainer approves it with /berth approve --with-secrets", async () => {
    await setVariable('API_KEY', { value: API_SECRET, secret: true });
    await setVariable('FORK_VISIBLE', { value: 'not a secret', secret: false });
    fake.createRepo('h16eve', R, { forkOf: `${O}/${R}`, private: false, installationId: null });
    const sha = await fake.pushFiles('h16eve', R, 'patch', sampleAppFiles({ 'message.txt': 'fork' }));
    fake.createPullRequest(O, R, { number: 163, head: 'patch', headRepo: `h16eve/${R}`, user: 'h16eve' });
    await hook('pull_request', pullRequestPayload('opened', { fake, owner: O, repo: R, number: 163, installationId }));
    await until('the comment asks for approval', () => stickyBody(163).includes('/berth approve'));
    const command = async (user: string, body: string) => {
      await nextSecond();
      await hook('issue_comment', issueCommentPayload({ fake, owner: O, repo: R, issueNumber: 163, body, user, installationId }));
    };
    const replied = (text: string) => comments(163).some((c) => c.body.includes(text));

    await command('h16writer', '/berth approve');
    const ws = await running('pr/163');
    expect((await berth.preview(ws.slug, '/env/FORK_VISIBLE')).body).toBe('not a secret');
    const withheld = await berth.preview(ws.slug, '/env/API_KEY');
    expect(withheld.status).toBe(404);
    expect(withheld.body).toBe('(unset)');

    // a writer may approve the commit, not hand out secrets
    await command('h16writer', `/berth approve --with-secrets ${sha.slice(0, 7)}`);
    await until('the writer is refused', () => replied('only maintainers and admins'));
    expect((await berth.preview(ws.slug, '/env/API_KEY')).status).toBe(404);

    await command('h16maint', `/berth approve --with-secrets ${sha.slice(0, 7)}`);
    await until('the reply says the secrets go with the commit', () => replied("with the repository's secrets"));
    await until('the fork workspace sees the secret', async () => {
      const now = await workspace('pr/163');
      if (now?.state === 'failed') throw new Error(`failed: ${now.stateReason}`);
      return now?.state === 'running' && (await berth.preview(ws.slug, '/env/API_KEY')).body === API_SECRET;
    });
    expect(await everythingBerthWrote([sha], [163])).not.toContain(API_SECRET);
  });
});
