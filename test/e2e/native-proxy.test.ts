import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeGitHub, type FakeGitHub } from '../fakes/github.js';
import { pushPayload, sendWebhook } from '../fakes/webhooks.js';
import { SAMPLE_MESSAGE, sampleAppFiles } from '../fixtures/sample-app.js';
import { startTestBerth, type TestBerth } from '../helpers/berth.js';
import { CookieClient } from '../helpers/cookie-client.js';
import { getWithHost, NotYet, waitFor } from '../helpers/http.js';

const IDLE_S = 12;

/** the sample app previewed (`web`) and again as `api`, each with its own host; `idle` seconds or the default */
const berthYml = (idle?: number) => [
  'services:',
  '  web:',
  '    build: .',
  '    port: 3000',
  '    command: node server.js',
  '    health: /health',
  '  api:',
  '    build: .',
  '    port: 4000',
  '    command: node server.js',
  '    health: /health',
  '    env: { SERVICE_NAME: api }',
  'preview: web',
  'workspace:',
  '  ide: terminal',
  ...(idle ? [`  idle_timeout: ${idle}s`] : []),
  '',
].join('\n');

/**
 * Issue 13's gateway row: nginx in front of Berth's port serves running workspaces' hosts
 * straight from their containers (app/gateway/native-front.ts), with sign-in still asked of
 * Berth for private previews, the idle timer fed from nginx's log, and everything else (a
 * stopped workspace's wake, unknown hosts, Berth's pages) handed to Berth's Node gateway.
 */
describe('native proxy (nginx) in front of Berth', () => {
  let fake: FakeGitHub;
  let berth: TestBerth;
  let installationId: number;
  let pub: { id: string; slug: string };
  let priv: { id: string; slug: string };

  const host = (label: string) => `${label}.localhost:${berth.port}`;

  /**
   * curl, run while this process (Berth's web server and worker) cannot answer anything: its
   * event loop waits for curl. A 200 can only come from nginx and the container.
   */
  function curlWhileBerthBlocked(hostHeader: string, urlPath: string, maxS = 8): { status: number; body: string } {
    const out = execFileSync('curl', ['-s', '--max-time', String(maxS), '-w', '\n%{http_code}', '-H', `Host: ${hostHeader}`, `http://127.0.0.1:${berth.port}${urlPath}`], { encoding: 'utf8' });
    const cut = out.lastIndexOf('\n');
    return { status: Number(out.slice(cut + 1)), body: out.slice(0, cut) };
  }

  async function push(repo: string, branch: string, idle?: number) {
    const sha = await fake.pushFiles('acme', repo, branch, sampleAppFiles({ '.github/berth.yml': berthYml(idle) }));
    const res = await sendWebhook(berth.webhookUrl, 'push', pushPayload({ fake, owner: 'acme', repo, branch, after: sha, installationId }), fake.webhookSecret);
    expect(res.status).toBeLessThan(300);
  }

  const stateOf = async (id: string) => (await berth.db.workspace.findUniqueOrThrow({ where: { id } })).state;

  /** running, and routed by nginx (its routes follow the database within a poll) */
  async function serving(ws: { id: string; slug: string }, opts: { private?: boolean } = {}) {
    await waitFor('nginx to route the workspace', async () => {
      let state = await stateOf(ws.id);
      // a request wakes it (one that met a container in its last moments was answered by it: asked again)
      if (state === 'stopped') {
        await getWithHost(berth.port, host(ws.slug), '/health').catch(() => {});
        state = await stateOf(ws.id);
      }
      if (state === 'running' && routed(ws.slug)) return true;
      const events = await berth.db.workspaceEvent.findMany({ where: { workspaceId: ws.id }, orderBy: { id: 'desc' }, take: 4 });
      const history = events.map((e) => `${e.fromState}→${e.toState} by ${e.actor} (${e.reason})`).join('; ');
      throw new NotYet(`state ${state} [${history}], nginx routes: ${nginxConf().match(/server_name\s[^;]*;/g)?.join(' ').replace(/\s+/g, ' ') ?? 'none'}`);
    }, 90_000, 100);
    // a private host asks Berth on every request: nginx's serving it cannot be seen with Berth blocked
    if (opts.private) return new Promise((r) => setTimeout(r, 500));
    // the new configuration is written at once, nginx's new workers take over a moment later
    await waitFor('nginx to serve it', async () => {
      try {
        return curlWhileBerthBlocked(host(ws.slug), '/health', 1).status === 200;
      } catch {
        return false;
      }
    }, 30_000, 100);
  }

  const nginxConf = () => readFileSync(path.resolve(berth.config.BERTH_DATA_DIR, 'native-proxy', String(berth.port), 'nginx.conf'), 'utf8');
  /** whether nginx's configuration routes `label`'s host */
  const routed = (label: string) => new RegExp(`\\s${label}\\.localhost[\\s;]`).test(nginxConf());

  const openWebSocket = (hostHeader: string, urlPath: string) =>
    new Promise<string>((resolve, reject) => {
      const socket = new WebSocket(`ws://127.0.0.1:${berth.port}${urlPath}`, { headers: { host: hostHeader } });
      socket.once('message', (data) => {
        resolve(String(data));
        socket.close();
      });
      socket.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      socket.once('error', reject);
    });

  beforeAll(async () => {
    fake = await startFakeGitHub();
    installationId = fake.addInstallation({ login: 'acme', type: 'Organization' }).id;
    fake.createRepo('acme', 'shop', { installationId, private: false });
    fake.createRepo('acme', 'vault', { installationId, private: true });
    fake.setPermission('acme', 'vault', 'rita-reader', 'read');
    berth = await startTestBerth(fake, { BERTH_WAKE_HOLD: '40s', BERTH_NATIVE_PROXY: 'on' });
    expect(berth.front.native, berth.logs.join('\n')).toBe(true);
    await push('shop', 'feature/fast', IDLE_S);
    // the private one keeps the default idle timeout: only a signed-in request could wake it
    await push('vault', 'feature/secret');
    const running = (branch: string) =>
      waitFor(
        `workspace ${branch} to run`,
        async () => {
          const ws = await berth.db.workspace.findFirst({ where: { branch } });
          if (ws?.state === 'failed') throw new Error(`workspace failed: ${ws.stateReason}`);
          return ws?.state === 'running' ? ws : null;
        },
        300_000,
        500,
      );
    pub = await running('feature/fast');
    priv = await running('feature/secret');
  }, 600_000);

  afterAll(async () => {
    for (const ws of (await berth?.db.workspace.findMany()) ?? []) await berth.queues.enqueueWorkspace('delete', { workspaceId: ws.id, actor: 'test' });
    if (berth) await waitFor('workspaces to be deleted', async () => (await berth.db.workspace.count({ where: { state: { not: 'deleted' } } })) === 0, 60_000).catch(() => {});
    await berth?.close();
    await fake?.close();
  }, 120_000);

  it('a running preview and its api host answer from their containers while Berth itself cannot answer; WebSockets pass', async () => {
    await serving(pub);
    const page = curlWhileBerthBlocked(host(pub.slug), '/');
    expect(page.status, page.body).toBe(200);
    expect(page.body).toContain(SAMPLE_MESSAGE);
    const api = curlWhileBerthBlocked(host(`api--${pub.slug}`), '/env/SERVICE_NAME');
    expect(api).toEqual({ status: 200, body: 'api' });
    // what the app is told: the client's address and host, never Berth's cookies
    const echoed = JSON.parse(curlWhileBerthBlocked(host(pub.slug), '/echo-headers').body) as Record<string, string>;
    expect(echoed['x-forwarded-host']).toBe(host(pub.slug));
    expect(echoed['x-forwarded-for']).toBe('127.0.0.1');
    const viaCookies = await getWithHost(berth.port, host(pub.slug), '/echo-headers', { cookie: 'theme=dark; berth_ws=stolen; __Host-berth_x=1; cart=3' });
    expect(JSON.parse(viaCookies.body).cookie).toBe('theme=dark; cart=3');
    // a host Berth does not route is Berth's to answer: the Node gateway's 404 page
    const unknown = await getWithHost(berth.port, host('no-such-workspace'), '/');
    expect(unknown.status).toBe(404);
    expect(unknown.body).toContain('No workspace is called “no-such-workspace”');
    expect(await openWebSocket(host(pub.slug), '/live')).toBe(`live: ${SAMPLE_MESSAGE}`);
    expect(await openWebSocket(host(`api--${pub.slug}`), '/live')).toBe(`live: ${SAMPLE_MESSAGE}`);
  });

  it('a private preview still needs sign-in on every request: a reader gets in until signing out, a stranger never', async () => {
    await serving(priv, { private: true });
    const origin = `http://${host(priv.slug)}`;
    const anonymous = await new CookieClient().get(`${origin}/env/SERVICE_NAME`);
    expect(anonymous.status).toBe(302);
    expect(anonymous.headers.location).toBe(`${berth.config.berthUrl}/workspaces/${priv.id}/preview?path=${encodeURIComponent('/env/SERVICE_NAME')}`);
    await expect(openWebSocket(host(priv.slug), '/live')).rejects.toThrow('HTTP 401');

    fake.setOAuthUser('rita-reader');
    const rita = new CookieClient();
    const signedIn = await rita.get(`${origin}/echo-headers`, { follow: true });
    expect(signedIn.status, signedIn.body).toBe(200);
    expect(JSON.parse(signedIn.body).cookie).toBeUndefined(); // her host cookie stays Berth's
    expect((await rita.get(`http://${host(`api--${priv.slug}`)}/`)).status).toBe(302); // each host signs in on its own
    // the app's WebSocket (Berth watches its sign-in while it is open)
    const page = await rita.get(`${origin}/`);
    expect(page.status).toBe(200);
    expect(page.body).toContain(SAMPLE_MESSAGE);

    // sign-out on Berth: the very next request to the preview is refused
    const logout = await rita.get(`${berth.config.berthUrl}/logout`);
    const csrf = /name="_csrf" value="([^"]+)"/.exec(logout.body)?.[1];
    expect(csrf, logout.body).toBeTruthy();
    expect((await rita.post(`${berth.config.berthUrl}/logout`, { _csrf: csrf! })).status).toBeLessThan(400);
    const after = await rita.get(`${origin}/`);
    expect(after.status).toBe(302);
    expect(after.body).not.toContain(SAMPLE_MESSAGE);

    fake.setOAuthUser('sam-stranger');
    const stranger = await new CookieClient().get(`${origin}/`, { follow: true });
    expect(stranger.status).toBe(403);
    expect(stranger.body).not.toContain(SAMPLE_MESSAGE);
  });

  it('requests nginx serves count as activity: the workspace outlives its idle timeout while used, and stops once not', async () => {
    await serving(pub);
    const started = Date.now();
    let last = 0;
    // requests only nginx can have answered, over longer than the idle timeout
    while (Date.now() - started < (IDLE_S + 6) * 1000) {
      expect(curlWhileBerthBlocked(host(`api--${pub.slug}`), '/health').status).toBe(200);
      last = Date.now();
      expect(await stateOf(pub.id)).toBe('running');
      await new Promise((r) => setTimeout(r, 2000));
    }
    const recorded = (await berth.db.workspace.findUniqueOrThrow({ where: { id: pub.id } })).lastActivityAt!.getTime();
    expect(recorded).toBeGreaterThan(started);
    // no more requests: it stops on its deadline (last request + idle timeout), not before
    await waitFor('the idle stop', async () => (await stateOf(pub.id)) === 'stopped', (IDLE_S + 15) * 1000, 250);
    const stoppedAfter = Date.now() - last;
    expect(stoppedAfter).toBeGreaterThan((IDLE_S - 1) * 1000);
  }, 120_000);

  it('a request to a stopped workspace goes to Berth, which wakes it and answers with the app', async () => {
    await serving(pub);
    await berth.queues.enqueueWorkspace('stop', { workspaceId: pub.id, actor: 'test', reason: 'stopped by the test' });
    await waitFor('the workspace to stop', async () => (await stateOf(pub.id)) === 'stopped', 60_000);
    await waitFor('nginx to drop its routes', async () => !routed(pub.slug) && !routed(`api--${pub.slug}`), 10_000, 100);
    const held = await getWithHost(berth.port, host(`api--${pub.slug}`), '/env/SERVICE_NAME');
    expect(held.status, held.body).toBe(200);
    expect(held.body).toBe('api');
    const wake = await berth.db.workspaceEvent.findFirst({ where: { workspaceId: pub.id, toState: 'starting' }, orderBy: { id: 'desc' } });
    expect(wake).toMatchObject({ fromState: 'stopped', actor: 'gateway' });
  }, 120_000);
});

describe('without the native proxy', () => {
  /** a Berth with `env`, closed after `check` */
  async function withBerth(env: Record<string, string>, check: (berth: TestBerth) => Promise<void>) {
    const fake = await startFakeGitHub();
    const berth = await startTestBerth(fake, env).catch(async (err) => (await fake.close(), Promise.reject(err)));
    try {
      await check(berth);
    } finally {
      await berth.close();
      await fake.close();
    }
  }

  it('BERTH_NATIVE_PROXY=off: Berth serves its port itself, and no nginx runs for it', async () => {
    await withBerth({ BERTH_NATIVE_PROXY: 'off' }, async (berth) => {
      expect(berth.front.native).toBe(false);
      expect((await getWithHost(berth.port, `localhost:${berth.port}`, '/healthz')).status).toBe(200);
      expect((await getWithHost(berth.port, `nothing.localhost:${berth.port}`, '/')).status).toBe(404);
      expect(existsSync(path.resolve(berth.config.BERTH_DATA_DIR, 'native-proxy', String(berth.port)))).toBe(false);
      expect(berth.logs.filter((l) => l.includes('native proxy'))).toEqual([]);
    });
  });

  it('nginx that cannot start: Berth serves its port itself and says why, once', async () => {
    // a data folder nginx's configuration cannot name
    const dir = `/tmp/berth native ${process.pid}`;
    try {
      await withBerth({ BERTH_DATA_DIR: dir, BERTH_NATIVE_PROXY: 'on' }, async (berth) => {
        expect(berth.front.native).toBe(false);
        expect((await getWithHost(berth.port, `localhost:${berth.port}`, '/healthz')).status).toBe(200);
        const said = berth.logs.filter((l) => l.includes('native proxy off'));
        expect(said).toHaveLength(1);
        expect(said[0]).toContain('cannot take');
      });
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
