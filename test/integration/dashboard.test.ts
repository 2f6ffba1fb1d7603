import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkspaceAccess } from '../../lib/workspace-access.js';
import { createBerthServer, type BerthServer } from '../../app/server.js';
import { loadConfig, type BerthConfig } from '../../lib/config.js';
import { bootInfra, type Infra } from '../../lib/boot.js';
import { createProbotFor } from '../../lib/github-app.js';
import { startFakeGitHub, type FakeGitHub } from '../fakes/github.js';
import { pushPayload, sendWebhook } from '../fakes/webhooks.js';
import { createTestDatabase } from '../helpers/database.js';
import { TestOctokit } from '../helpers/berth.js';
import { CookieClient } from '../helpers/cookie-client.js';

/**
 * The dashboard over HTTP against real PostgreSQL and Redis and Berth's real sign-in (the fake
 * GitHub's OAuth flow and permission endpoint). The web app runs without a worker, so queued
 * jobs stay visible; Docker is a switchable stand-in so "unreachable" and "broken" can be shown.
 */
/** The engine as the dashboard sees it; switchable to "unreachable" and "broken". The rest is not asked here. */
class TestContainers implements WorkspaceAccess {
  mode: 'ok' | 'down' | 'throws' = 'ok';
  async ping() {
    if (this.mode !== 'ok') throw new Error('connect ENOENT /var/run/docker.sock');
  }
  async containersOf(id: string) {
    if (this.mode === 'throws') throw new Error('secret internal detail at /srv/berth/app.ts:42');
    if (this.mode === 'down') return null;
    return id === 'ws-running'
      ? [{ name: 'berth-shop-main-web', service: 'web', role: 'service', state: 'running', status: 'Up 3 minutes', image: 'x', createdAt: new Date() }]
      : [];
  }
  private notHere = async (): Promise<never> => {
    throw new Error('not asked by the dashboard');
  };
  ideEndpoint = this.notHere;
  mainContainer = this.notHere;
  forwardTarget = this.notHere;
  runsWithEnv = this.notHere;
  ideContainers = this.notHere;
  createPersonIde = this.notHere;
  removeContainer = this.notHere;
  shell = (): never => {
    throw new Error('not asked by the dashboard');
  };
}

interface Res {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

const METRICS_TOKEN = randomBytes(24).toString('hex');
const scraper = { authorization: `Bearer ${METRICS_TOKEN}` };

describe('dashboard over HTTP (real PostgreSQL, Redis and GitHub sign-in)', () => {
  let fake: FakeGitHub;
  let config: BerthConfig;
  let infra: Infra;
  let web: BerthServer;
  let base: string;
  let drop: () => Promise<void>;
  const containers = new TestContainers();
  let writer: CookieClient;
  let reader: CookieClient;
  let stranger: CookieClient;
  let installationId: number;
  let shopId: bigint;

  /** A request as the user of `as` (a signed-in cookie jar), or anonymous. */
  function request(method: string, path: string, opts: { as?: CookieClient; form?: Record<string, string>; headers?: Record<string, string> } = {}): Promise<Res> {
    const client = opts.as ?? new CookieClient();
    const url = `${base}${path}`;
    if (opts.form) return client.request(method, url, { body: new URLSearchParams(opts.form).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded', ...opts.headers } });
    return client.request(method, url, { headers: opts.headers });
  }
  /** GitHub's OAuth round trip as a browser does it, for `login` */
  async function signIn(login: string): Promise<CookieClient> {
    fake.setOAuthUser(login);
    const client = new CookieClient();
    const res = await client.get(`${base}/login`, { follow: true });
    expect(res.status).toBe(200);
    return client;
  }
  /** the CSRF token of `client`'s session, as Berth puts it in every form (the sign-out one included) */
  const csrfFor = async (client: CookieClient) => csrfOf((await request('GET', '/', { as: client })).body);
  const csrfOf = (html: string) => /name="_csrf" value="([^"]+)"/.exec(html)?.[1] ?? '';
  const jobsOf = async (workspaceId: string) =>
    (await infra.queues.workspaces.getJobs(['waiting', 'active', 'delayed'])).filter((j) => j.data.workspaceId === workspaceId);

  beforeAll(async () => {
    fake = await startFakeGitHub();
    installationId = fake.addInstallation({ login: 'acme', type: 'Organization' }).id;
    const shop = fake.createRepo('acme', 'shop', { installationId });
    fake.createRepo('acme', 'secret', { installationId, private: true });
    const db = await createTestDatabase();
    drop = db.drop;
    config = loadConfig({
      APP_ID: String(fake.appId),
      PRIVATE_KEY: fake.privateKey,
      WEBHOOK_SECRET: fake.webhookSecret,
      GITHUB_CLIENT_ID: fake.clientId,
      GITHUB_CLIENT_SECRET: fake.clientSecret,
      BERTH_SESSION_SECRET: randomBytes(32).toString('hex'),
      GHE_HOST: fake.host,
      GHE_PROTOCOL: 'http',
      DATABASE_URL: db.url,
      REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      BERTH_QUEUE_PREFIX: `t${randomBytes(4).toString('hex')}`,
      LOG_LEVEL: 'silent',
      PORT: '0',
      BERTH_METRICS_TOKEN: METRICS_TOKEN,
      BERTH_ADMINS: 'Carol, dave',
    } as NodeJS.ProcessEnv);
    infra = await bootInfra(config, () => {});
    const probot = createProbotFor(config, TestOctokit);
    web = await createBerthServer({ config, db: infra.db, queues: infra.queues }, probot, [], { workspaces: containers });
    await new Promise<void>((r) => web.server.listen(0, '127.0.0.1', () => r()));
    // cookies are host-only: every request, OAuth callback included, goes to BERTH_URL's host
    base = `http://localhost:${(web.server.address() as AddressInfo).port}`;
    config.berthUrl = base;

    const db_ = infra.db;
    await db_.installation.create({ data: { id: BigInt(installationId), accountLogin: 'acme', accountType: 'Organization' } });
    shopId = BigInt(shop.id);
    await db_.repository.create({
      data: { id: shopId, installationId: BigInt(installationId), owner: 'acme', name: 'shop', fullName: 'acme/shop', htmlUrl: `${fake.url}/acme/shop` },
    });
    await db_.repository.create({
      data: { id: 999_001n, installationId: BigInt(installationId), owner: 'acme', name: 'secret', fullName: 'acme/secret', private: true },
    });
    const now = Date.now();
    const ws = (id: string, branch: string, state: string, extra: Record<string, unknown> = {}) =>
      db_.workspace.create({
        data: { id, repositoryId: shopId, branch, slug: `${branch.replace(/\W/g, '-')}-shop`, state: state as never, headSha: 'a'.repeat(40), ...extra },
      });
    await ws('ws-running', 'main', 'running', {
      runningSha: 'a'.repeat(40),
      prNumber: 7,
      lastActivityAt: new Date(now - 10 * 60_000),
      idleTimeoutSec: 1800,
      stateReason: 'running aaaaaaa',
    });
    await ws('ws-stopped', 'feature/login', 'stopped', { runningSha: 'a'.repeat(40), stateReason: 'stopped by the idle timer' });
    await ws('ws-failed', 'fix/crash', 'failed', { stateReason: 'migration failed: boom' });
    await ws('ws-deleted', 'old/thing', 'deleted');
    await db_.workspace.create({
      data: { id: 'ws-secret', repositoryId: 999_001n, branch: 'main', slug: 'main-secret', state: 'running', headSha: 'b'.repeat(40) },
    });
    await db_.workspaceEvent.createMany({
      data: [
        { workspaceId: 'ws-running', toState: 'queued', reason: 'workspace created', actor: 'push', createdAt: new Date(now - 3_600_000) },
        { workspaceId: 'ws-running', fromState: 'queued', toState: 'building', reason: 'building aaaaaaa', actor: 'worker', createdAt: new Date(now - 3_500_000) },
        { workspaceId: 'ws-running', fromState: 'running', toState: 'stopped', reason: 'idle for 30 min', actor: 'idle', createdAt: new Date(now - 3_000_000) },
        { workspaceId: 'ws-running', fromState: 'stopped', toState: 'starting', reason: 'started by @alice', actor: '@alice', createdAt: new Date(now - 2_000_000) },
        { workspaceId: 'ws-running', fromState: 'starting', toState: 'running', reason: 'running aaaaaaa', actor: 'worker', createdAt: new Date(now - 1_900_000) },
      ],
    });
    const build = await db_.build.create({
      data: {
        id: 'build-ok',
        repositoryId: shopId,
        workspaceId: 'ws-running',
        sha: 'a'.repeat(40),
        state: 'succeeded',
        step: 'built',
        startedAt: new Date(now - 3_500_000),
        finishedAt: new Date(now - 3_440_000),
        config: { source: 'berth.yml', services: [{ name: 'web', port: 3000, build: { context: '.', dockerfile: 'Dockerfile', args: {} }, env: {} }, { name: 'db', image: 'postgres:16', env: {} }], preview: { service: 'web', visibility: 'public' }, workspace: { ide: 'vscode' } },
      },
    });
    await db_.workspace.update({ where: { id: 'ws-running' }, data: { currentBuildId: build.id } });
    await db_.buildLogChunk.create({ data: { buildId: build.id, text: '==> cloning\n<script>alert(1)</script>\n==> build finished\n' } });

    fake.setPermission('acme', 'shop', 'alice', 'write');
    fake.setPermission('acme', 'shop', 'bob', 'read');
    fake.setPermission('acme', 'shop', 'carol', 'write');
    fake.addUser('eve');
    writer = await signIn('alice');
    reader = await signIn('bob');
    stranger = await signIn('eve');
  });

  afterAll(async () => {
    await web?.close();
    await infra?.queues.workspaces.obliterate({ force: true }).catch(() => {});
    await infra?.queues.builds.obliterate({ force: true }).catch(() => {});
    await infra?.close();
    await drop?.();
    await fake?.close();
  });

  it('sends people who are not signed in to sign-in', async () => {
    const res = await request('GET', '/');
    expect(res.status).toBe(302);
    expect(res.headers.location).toMatch(new RegExp(`^${fake.url}/login/oauth/authorize\\?`));
    expect((await request('POST', '/workspaces/ws-running/stop', { form: { _csrf: 'x' } })).status).toBe(401);
  });

  it('lists the workspaces of readable repositories, grouped, with state, PR, commit, activity and idle stop', async () => {
    const res = await request('GET', '/', { as: writer });
    expect(res.status).toBe(200);
    expect(res.body).toContain('data-repo="acme/shop"');
    expect(res.body).not.toContain('acme/secret');
    for (const branch of ['main', 'feature/login', 'fix/crash']) expect(res.body).toContain(`data-branch="${branch}"`);
    expect(res.body).not.toContain('data-branch="old/thing"'); // deleted ones only on request
    expect(res.body).toContain('data-state="running"');
    expect(res.body).toContain('#7');
    expect(res.body).toContain('<code>aaaaaaa</code>');
    expect(res.body).toContain('10 min ago');
    expect(res.body).toMatch(/in (19|20) min/); // 30 min idle timeout, 10 min since activity
    expect(res.body).toContain('migration failed: boom');
    // a writer gets the buttons that fit each state
    const row = (branch: string) => res.body.split(`data-branch="${branch}"`)[1]!.split('</tr>')[0]!;
    expect(row('main')).toContain('data-action="stop"');
    expect(row('main')).not.toContain('data-action="start"');
    expect(row('main')).toContain('data-link="open"');
    expect(row('main')).toContain('data-link="preview"');
    expect(row('feature/login')).toContain('data-action="start"');
    expect(row('fix/crash')).toContain('data-action="delete"');
    expect(csrfOf(res.body)).toMatch(/^\S{20,}$/);
    // pages with buttons cannot be framed by another site (clickjacking)
    expect(res.headers['x-frame-options']).toBe('DENY');
    expect(res.headers['content-security-policy']).toContain("frame-ancestors 'none'");
  });

  it('filters by repository and state and searches by branch', async () => {
    const byState = await request('GET', '/?state=stopped', { as: writer });
    expect(byState.body).toContain('data-branch="feature/login"');
    expect(byState.body).not.toContain('data-branch="main"');
    const search = await request('GET', '/?q=LOGIN', { as: writer });
    expect(search.body).toContain('data-branch="feature/login"');
    expect(search.body).not.toContain('data-branch="fix/crash"');
    const all = await request('GET', '/?state=all', { as: writer });
    expect(all.body).toContain('data-branch="old/thing"');
    const otherRepo = await request('GET', '/?repo=acme%2Fsecret', { as: writer });
    expect(otherRepo.body).not.toContain('data-branch=');
    expect(otherRepo.body).toContain('No workspace matches these filters');
  });

  it('shows readers the list without any action and refuses their forged posts', async () => {
    const res = await request('GET', '/', { as: reader });
    expect(res.status).toBe(200);
    expect(res.body).toContain('data-branch="main"');
    expect(res.body).not.toContain('data-action=');
    expect(res.body).not.toContain('data-link="open"');
    const csrf = await csrfFor(reader); // a reader's own, genuine token: the post is still refused
    for (const action of ['stop', 'start', 'refresh', 'delete']) {
      const forged = await request('POST', `/workspaces/ws-running/${action}`, { as: reader, form: { _csrf: csrf, confirm: 'yes' } });
      expect(forged.status).toBe(403);
      expect(forged.body).toContain('write access');
    }
    expect(await jobsOf('ws-running')).toHaveLength(0);
  });

  it('answers 404 for workspaces and builds of repositories the user cannot read', async () => {
    expect((await request('GET', '/workspaces/ws-secret', { as: writer })).status).toBe(404);
    expect((await request('GET', '/workspaces/ws-running', { as: stranger })).status).toBe(404);
    expect((await request('GET', '/workspaces/nope', { as: writer })).status).toBe(404);
    expect((await request('GET', '/builds/build-ok/log', { as: stranger })).status).toBe(404);
    const forged = await request('POST', '/workspaces/ws-secret/stop', { as: writer, form: { _csrf: await csrfFor(writer) } });
    expect(forged.status).toBe(404);
    const missing = await request('GET', '/no/such/page', { as: writer });
    expect(missing.status).toBe(404);
    expect(missing.body).toContain('404');
  });

  it('says so when GitHub cannot tell the access, instead of pretending there is nothing', async () => {
    // carol may write, but GitHub fails when asked about her; she lands on the list after signing in
    // (failures are never cached, answers are for a minute)
    const permissionPath = /\/repos\/acme\/shop\/collaborators\/carol\/permission/;
    fake.failNext('GET', permissionPath, 502, 1);
    fake.setOAuthUser('carol');
    const carol = new CookieClient();
    const list = await carol.get(`${base}/login`, { follow: true });
    expect(list.status).toBe(200);
    expect(list.body).toContain('could not tell your access to acme/shop');
    expect(list.body).not.toContain('data-branch=');
    fake.failNext('GET', permissionPath, 502, 1);
    const ws = await request('GET', '/workspaces/ws-running', { as: carol });
    expect(ws.status).toBe(503);
    expect(ws.body).toContain('could not ask GitHub');
    // once GitHub answers again, she sees everything
    expect((await request('GET', '/workspaces/ws-running', { as: carol })).status).toBe(200);
  });

  it('refuses a post without the CSRF token even from a writer', async () => {
    const res = await request('POST', '/workspaces/ws-running/stop', { as: writer, form: { _csrf: 'forged' } });
    expect(res.status).toBe(403);
    expect(res.body).toContain('did not come from this Berth page');
    expect(await jobsOf('ws-running')).toHaveLength(0);
  });

  it('stops a workspace: enqueues the job, redirects back with a message, and shows it pending', async () => {
    const list = await request('GET', '/?state=running', { as: writer });
    const res = await request('POST', '/workspaces/ws-running/stop', { as: writer, form: { _csrf: csrfOf(list.body), return: '/?state=running' } });
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/?state=running');
    const jobs = await jobsOf('ws-running');
    expect(jobs.map((j) => j.name)).toEqual(['stop']);
    expect(jobs[0]!.data).toMatchObject({ actor: '@alice', reason: 'stopped by @alice from the dashboard' });
    const flash = String(res.headers['set-cookie']).match(/berth_flash=([^;]+)/)![1]!;
    expect(writer.cookie('localhost', 'berth_flash')).toBe(flash);
    const after = await request('GET', '/?state=running', { as: writer });
    expect(after.body).toContain('Stopping the workspace of main');
    expect(after.body).toContain('stopping…');
    expect(after.body).toContain('http-equiv="refresh"');
    await jobs[0]!.remove();
  });

  it('never redirects a form post to another site', async () => {
    const list = await request('GET', '/', { as: writer });
    const res = await request('POST', '/workspaces/ws-stopped/start', { as: writer, form: { _csrf: csrfOf(list.body), return: '//evil.example/' } });
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/');
    for (const j of await jobsOf('ws-stopped')) await j.remove();
  });

  it('asks before deleting, then deletes', async () => {
    const list = await request('GET', '/', { as: writer });
    const csrf = csrfOf(list.body);
    const ask = await request('POST', '/workspaces/ws-failed/delete', { as: writer, form: { _csrf: csrf, return: '/' } });
    expect(ask.status).toBe(200);
    expect(ask.body).toContain('Delete the workspace of fix/crash?');
    expect(ask.body).toContain('name="confirm" value="yes"');
    expect(await jobsOf('ws-failed')).toHaveLength(0);
    const page = await request('GET', '/workspaces/ws-failed/delete', { as: writer });
    expect(page.body).toContain('Delete workspace and disk');
    expect((await request('GET', '/workspaces/ws-failed/delete', { as: reader })).status).toBe(403);
    const done = await request('POST', '/workspaces/ws-failed/delete', { as: writer, form: { _csrf: csrf, return: '/', confirm: 'yes' } });
    expect(done.status).toBe(303);
    expect((await jobsOf('ws-failed')).map((j) => j.name)).toEqual(['delete']);
    // the worker looks at the disk first and keeps work found nowhere else…
    expect((await jobsOf('ws-failed'))[0]!.data.refuseIfUnsaved).toEqual({});
    for (const j of await jobsOf('ws-failed')) await j.remove();
    // …unless the box says to delete it too
    expect(page.body).toContain('name="force" value="yes"');
    await request('POST', '/workspaces/ws-failed/delete', { as: writer, form: { _csrf: csrf, return: '/', confirm: 'yes', force: 'yes' } });
    expect((await jobsOf('ws-failed'))[0]!.data.refuseIfUnsaved).toBeUndefined();
    for (const j of await jobsOf('ws-failed')) await j.remove();
  });

  it('refresh asks GitHub for the newest commit and builds it when the workspace is behind', async () => {
    const sha = await fake.pushFiles('acme', 'shop', 'feature/login', { 'README.md': 'hi' });
    const list = await request('GET', '/', { as: writer });
    const res = await request('POST', '/workspaces/ws-stopped/refresh', { as: writer, form: { _csrf: csrfOf(list.body) } });
    expect(res.status).toBe(303);
    const build = await infra.db.build.findFirst({ where: { workspaceId: 'ws-stopped', sha } });
    expect(build).toMatchObject({ state: 'queued', trigger: '@alice' });
    expect((await jobsOf('ws-stopped')).map((j) => j.name)).toContain('status');
    const ws = await infra.db.workspace.findUniqueOrThrow({ where: { id: 'ws-stopped' } });
    expect(ws.headSha).toBe(sha);
    expect(ws.state).toBe('queued');
    for (const j of await jobsOf('ws-stopped')) await j.remove();
    await infra.queues.builds.obliterate({ force: true });
  });

  it('shows a workspace: state, history with causes, services with containers, builds with log links', async () => {
    const res = await request('GET', '/workspaces/ws-running', { as: reader });
    expect(res.status).toBe(200);
    expect(res.body).toContain('running aaaaaaa');
    // history, newest first, with who or what caused each change
    expect(res.body).toContain('idle for 30 min');
    expect(res.body).toContain('idle timer');
    expect(res.body).toContain('@alice (command)');
    expect(res.body.indexOf('running aaaaaaa</td>')).toBeLessThan(res.body.indexOf('workspace created'));
    expect(res.body).toMatch(/data-service="web"[\s\S]*berth-shop-main-web[\s\S]*data-container-state="running"/);
    expect(res.body).toMatch(/data-service="db"[\s\S]*image postgres:16/);
    expect(res.body).toContain('/builds/build-ok/log');
    expect(res.body).toContain('1 min'); // build duration
    expect(res.body).not.toContain('data-action=');
    containers.mode = 'down';
    const down = await request('GET', '/workspaces/ws-running', { as: writer });
    containers.mode = 'ok';
    expect(down.status).toBe(200);
    expect(down.body).toContain('Docker cannot be reached');
    expect(down.body).toContain('data-action="stop"');
  });

  it('escapes log text and pages long logs newest first', async () => {
    const small = await request('GET', '/builds/build-ok/log', { as: reader });
    expect(small.body).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(small.body).not.toContain('EventSource'); // finished: nothing to stream

    const long = await infra.db.build.create({
      data: { id: 'build-long', repositoryId: shopId, workspaceId: 'ws-stopped', sha: 'c'.repeat(40), state: 'failed', startedAt: new Date(), finishedAt: new Date() },
    });
    const lines = Array.from({ length: 5000 }, (_, i) => `line ${i + 1}`);
    const chunks = [];
    for (let i = 0; i < lines.length; i += 50) chunks.push({ buildId: long.id, text: lines.slice(i, i + 50).join('\n') + '\n' });
    await infra.db.buildLogChunk.createMany({ data: chunks });
    const started = Date.now();
    const last = await request('GET', '/builds/build-long/log', { as: reader });
    expect(Date.now() - started).toBeLessThan(2000);
    expect(last.body).toContain('line 5000\n');
    expect(last.body).toContain('line 3001\n');
    expect(last.body).not.toContain('line 2999\n');
    const earlier = /href="(\/builds\/build-long\/log\?before=\d+)"/.exec(last.body)![1]!;
    const page2 = await request('GET', earlier, { as: reader });
    expect(page2.body).toContain('line 1001\n');
    expect(page2.body).toContain('line 3000\n');
    expect(page2.body).not.toContain('line 3001\n');
    expect(page2.body).toContain('Latest lines');
    const page3 = await request('GET', /href="(\/builds\/build-long\/log\?before=\d+)"/.exec(page2.body)![1]!, { as: reader });
    expect(page3.body).toContain('line 1\n');
    expect(page3.body).not.toContain('Earlier lines');
    const whole = await request('GET', '/builds/build-long/log.txt', { as: reader });
    expect(whole.headers['content-type']).toMatch(/^text\/plain/);
    expect(whole.body).toBe(lines.join('\n') + '\n');
  });

  it('streams new log chunks over Server-Sent Events while the build runs, then ends', async () => {
    const build = await infra.db.build.create({
      data: { id: 'build-live', repositoryId: shopId, sha: 'd'.repeat(40), state: 'running', startedAt: new Date() },
    });
    const first = await infra.db.buildLogChunk.create({ data: { buildId: build.id, text: 'first\n' } });
    const page = await request('GET', '/builds/build-live/log', { as: reader });
    expect(page.body).toContain('EventSource');
    expect(page.body).toContain(`/builds/build-live/log/stream?after=${first.id}`);

    const events: string[] = [];
    const ended = new Promise<void>((resolve, reject) => {
      const url = new URL(`${base}/builds/build-live/log/stream?after=${first.id}`);
      http
        .get({ host: '127.0.0.1', port: url.port, path: url.pathname + url.search, headers: { host: url.host, cookie: reader.cookieHeader(url) } }, (res) => {
          expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
          res.setEncoding('utf8');
          let buffer = '';
          res.on('data', (c) => {
            buffer += c;
            let i;
            while ((i = buffer.indexOf('\n\n')) !== -1) {
              events.push(buffer.slice(0, i));
              buffer = buffer.slice(i + 2);
            }
          });
          res.on('end', resolve);
        })
        .on('error', reject);
    });
    await new Promise((r) => setTimeout(r, 300));
    await infra.db.buildLogChunk.create({ data: { buildId: build.id, text: 'second\n' } });
    await new Promise((r) => setTimeout(r, 700));
    await infra.db.buildLogChunk.create({ data: { buildId: build.id, text: 'third\n' } });
    await infra.db.build.update({ where: { id: build.id }, data: { state: 'succeeded', finishedAt: new Date() } });
    await ended;
    const logs = events.filter((e) => e.includes('event: log')).map((e) => JSON.parse(/data: (.*)/.exec(e)![1]!));
    expect(logs).toEqual(['second\n', 'third\n']);
    const states = events.filter((e) => e.includes('event: status')).map((e) => JSON.parse(/data: (.*)/.exec(e)![1]!).state);
    expect(states).toEqual(['running', 'succeeded']);
    expect(events.join('\n')).not.toContain('"first');
    expect(events[events.length - 1]).toContain('event: end');
    expect(events[events.length - 1]).toContain('"succeeded"');

    // a reconnecting EventSource resumes after Last-Event-ID
    const secondId = /id: (\d+)/.exec(events.find((e) => e.includes('second'))!)![1]!;
    const resumed = await request('GET', '/builds/build-live/log/stream', { as: reader, headers: { 'last-event-id': secondId } });
    expect(resumed.body).toContain('"third\\n"');
    expect(resumed.body).not.toContain('"second\\n"');
  });

  it('/readyz reports database, Redis and Docker, and 503 when one is down', async () => {
    const ok = await request('GET', '/readyz');
    expect(ok.status).toBe(200);
    const body = JSON.parse(ok.body);
    expect(body.ok).toBe(true);
    expect(Object.keys(body.checks).sort()).toEqual(['database', 'docker', 'redis']);
    containers.mode = 'down';
    const down = await request('GET', '/readyz');
    containers.mode = 'ok';
    expect(down.status).toBe(503);
    expect(JSON.parse(down.body).checks.docker).toMatchObject({ ok: false });
    expect(JSON.parse(down.body).checks.database.ok).toBe(true);
  });

  it('/metrics has workspaces by state, queue depth, build durations and webhook latency', async () => {
    const value = (body: string, series: string) => Number(new RegExp(`^${series.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(body)?.[1] ?? 0);
    const before = (await request('GET', '/metrics', { headers: scraper })).body;
    await sendWebhook(`${base}/api/github/webhooks`, 'push', pushPayload({ fake, owner: 'acme', repo: 'shop', branch: 'feature/login', installationId }), fake.webhookSecret);
    await infra.db.build.create({
      data: { repositoryId: shopId, sha: 'e'.repeat(40), state: 'succeeded', startedAt: new Date(Date.now() - 42_000), finishedAt: new Date() },
    });
    const res = await request('GET', '/metrics', { headers: scraper });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.body).toMatch(/berth_workspaces\{state="running"\} \d+/);
    expect(res.body).toContain('berth_workspaces{state="deleted"} 1');
    expect(res.body).toMatch(/berth_queue_depth\{queue="builds"\} \d+/);
    expect(res.body).toMatch(/berth_queue_jobs\{queue="workspaces",state="waiting"\} \d+/);
    expect(value(res.body, 'berth_webhook_duration_seconds_count{event="push",status="200"}')).toBe(1);
    const count = 'berth_build_duration_seconds_count{result="succeeded"}';
    const under60 = 'berth_build_duration_seconds_bucket{le="60",result="succeeded"}';
    const under30 = 'berth_build_duration_seconds_bucket{le="30",result="succeeded"}';
    expect(value(res.body, count)).toBe(value(before, count) + 1);
    expect(value(res.body, under60)).toBe(value(before, under60) + 1);
    expect(value(res.body, under30)).toBe(value(before, under30)); // 42 s is over 30
    // a further scrape does not count the same build twice
    const again = await request('GET', '/metrics', { headers: scraper });
    expect(value(again.body, count)).toBe(value(res.body, count));
  });

  it('/metrics needs the bearer token or a signed-in Berth admin: 401 for anyone else', async () => {
    const anonymous = await request('GET', '/metrics');
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers['www-authenticate']).toMatch(/^Bearer/);
    expect(anonymous.body).toContain('BERTH_METRICS_TOKEN');
    expect(anonymous.body).not.toContain('berth_workspaces');
    expect((await request('GET', '/metrics', { headers: { authorization: `Bearer ${METRICS_TOKEN}x` } })).status).toBe(401);
    expect((await request('GET', '/metrics', { headers: { authorization: 'Bearer ' } })).status).toBe(401);
    expect((await request('GET', '/metrics', { headers: { authorization: `Basic ${Buffer.from(`x:${METRICS_TOKEN}`).toString('base64')}` } })).status).toBe(401);
    expect((await request('HEAD', '/metrics')).status).toBe(401);
    // signed in with write access to a repository is not enough; a login in BERTH_ADMINS is (any case)
    expect((await request('GET', '/metrics', { as: writer })).status).toBe(401);
    fake.addUser('dave'); // an admin of Berth needs no access to any repository for this
    const admin = await signIn('dave');
    const res = await request('GET', '/metrics', { as: admin });
    expect(res.status).toBe(200);
    expect(res.body).toMatch(/berth_workspaces\{state="running"\} \d+/);
  });

  it('answers errors with a page in the same style and no stack trace', async () => {
    containers.mode = 'throws';
    const res = await request('GET', '/workspaces/ws-running', { as: writer });
    containers.mode = 'ok';
    expect(res.status).toBe(500);
    expect(res.body).toContain('Something went wrong');
    expect(res.body).toContain('⚓ Berth');
    expect(res.body).not.toContain('secret internal detail');
    expect(res.body).not.toMatch(/at .*\.ts:\d+/);
  });
});
