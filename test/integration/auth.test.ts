import http from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeGitHub, type FakeGitHub } from '../fakes/github.js';
import { startTestBerth, type TestBerth } from '../helpers/berth.js';
import { CookieClient } from '../helpers/cookie-client.js';
import { Signer, purposeSigners } from '../../app/auth/signing.js';
import { sessionSecret } from '../../app/auth/secret.js';

/**
 * Sign-in with GitHub (the fake one) and the gate in front of IDE hosts and private
 * previews, on a whole Berth with real PostgreSQL and Redis. The workspaces here are rows
 * whose "containers" are a local echo server, so no Docker is needed: what the echo server
 * receives is exactly what a workspace's app would.
 */
describe('sign-in, the IDE gate and private previews', () => {
  let fake: FakeGitHub;
  let berth: TestBerth;
  let echo: http.Server;
  let received: http.IncomingHttpHeaders[] = [];
  let ideWs: { id: string; slug: string };
  let privateWs: { id: string; slug: string };
  let publicWs: { id: string; slug: string };
  let port: number;

  const ideHost = () => `http://${ideWs.slug}.ide.localhost:${port}`;
  const previewHost = (slug: string) => `http://${slug}.localhost:${port}`;
  const entry = (id: string, kind = 'ide') => `${berth.config.berthUrl}/workspaces/${id}/${kind}`;

  beforeAll(async () => {
    fake = await startFakeGitHub();
    const inst = fake.addInstallation({ login: 'acme', type: 'Organization' });
    const repo = fake.createRepo('acme', 'shop', { installationId: inst.id, private: true });
    fake.setPermission('acme', 'shop', 'wes-writer', 'write');
    fake.setPermission('acme', 'shop', 'mia-maintainer', 'maintain');
    fake.setPermission('acme', 'shop', 'rita-reader', 'read');
    fake.setPermission('acme', 'shop', 'rex-revoked', 'read');
    fake.addUser('sam-stranger');

    // Stands in for a workspace's app: answers with the headers it got, and tries to set a
    // cookie of its own and one with Berth's name.
    echo = http.createServer((req, res) => {
      received.push(req.headers);
      res.writeHead(200, { 'content-type': 'application/json', 'set-cookie': ['app_cookie=from-app; Path=/', 'berth_ws=planted-by-app; Path=/'] });
      res.end(JSON.stringify({ url: req.url, headers: req.headers }));
    });
    // and a WebSocket that echoes, as a dev server's live reload would be
    new WebSocketServer({ server: echo }).on('connection', (socket) => socket.on('message', (m) => socket.send(m)));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
    const echoPort = (echo.address() as AddressInfo).port;

    // The web app alone: a worker's reconciler would (rightly) stop these container-less workspaces.
    berth = await startTestBerth(fake, { BERTH_ROLE: 'app' });
    port = berth.port;
    await berth.db.installation.create({ data: { id: BigInt(inst.id), accountLogin: 'acme', accountType: 'Organization' } });
    await berth.db.repository.create({ data: { id: BigInt(repo.id), installationId: BigInt(inst.id), owner: 'acme', name: 'shop', fullName: 'acme/shop', private: true } });
    const row = (branch: string, slug: string, extra: Record<string, unknown>) =>
      berth.db.workspace.create({
        data: { repositoryId: BigInt(repo.id), branch, slug, headSha: 'a'.repeat(40), state: 'running', previewHost: '127.0.0.1', previewPort: echoPort, ...extra },
      });
    ideWs = await row('feature/ide', 'ide-shop-acme', { ide: 'terminal' });
    privateWs = await row('feature/private', 'private-shop-acme', { previewPrivate: true });
    publicWs = await row('feature/public', 'public-shop-acme', {});
  });

  afterAll(async () => {
    await berth?.close();
    await fake?.close();
    await new Promise((r) => echo?.close(r));
  });

  /** the whole OAuth round trip, as a browser does it */
  async function signIn(login: string, start: string) {
    fake.setOAuthUser(login);
    const client = new CookieClient();
    const res = await client.get(start, { follow: true });
    return { client, res };
  }

  it('sends the IDE URL without a session to GitHub’s authorize endpoint, with a state', async () => {
    const client = new CookieClient();
    const res = await client.get(entry(ideWs.id));
    expect(res.status).toBe(302);
    const to = new URL(res.headers.location!);
    expect(`${to.origin}${to.pathname}`).toBe(`${fake.url}/login/oauth/authorize`);
    expect(to.searchParams.get('client_id')).toBe(fake.clientId);
    expect(to.searchParams.get('redirect_uri')).toBe(`${berth.config.berthUrl}/login/callback`);
    expect(to.searchParams.get('state')).toMatch(/^[A-Za-z0-9_-]{20,}$/);
    const stateCookie = [res.headers['set-cookie']].flat().find((c) => c?.startsWith('berth_oauth='))!;
    expect(stateCookie).toMatch(/HttpOnly/);
    expect(stateCookie).toMatch(/SameSite=Lax/);
  });

  it('lets a writer through after the OAuth round trip: the IDE answers on its own host', async () => {
    const { client, res } = await signIn('wes-writer', entry(ideWs.id));
    expect(res.status).toBe(200);
    expect(new URL(res.url).host).toBe(`${ideWs.slug}.ide.localhost:${port}`);
    expect(res.body).toContain('data-program="terminal"');
    // the user is stored, the session cookie is host-only on BERTH_URL's host
    const user = await berth.db.user.findUnique({ where: { login: 'wes-writer' } });
    expect(user?.id).toBe(BigInt(fake.getUser('wes-writer')!.id));
    expect(client.cookie('localhost', 'berth_session')).toBeTruthy();
    expect(client.cookie(`${ideWs.slug}.ide.localhost`, 'berth_ws')).toBeTruthy();
    expect(client.cookie(`${ideWs.slug}.ide.localhost`, 'berth_session')).toBeUndefined();
    // maintainers may open it too
    const mia = await signIn('mia-maintainer', entry(ideWs.id));
    expect(mia.res.status).toBe(200);
  });

  it('sets the IDE host cookie only through a one-time ticket', async () => {
    const { client } = await signIn('wes-writer', `${berth.config.berthUrl}/login`);
    const toHost = await client.get(entry(ideWs.id));
    expect(toHost.status).toBe(302);
    const exchange = new URL(toHost.headers.location!);
    expect(exchange.host).toBe(`${ideWs.slug}.ide.localhost:${port}`);
    expect(exchange.pathname).toBe('/__berth/auth');
    const first = await new CookieClient().get(exchange.toString());
    expect(first.status).toBe(302);
    const setCookie = [first.headers['set-cookie']].flat()[0]!;
    expect(setCookie).toMatch(/^berth_ws=/);
    expect(setCookie).toMatch(/HttpOnly/);
    expect(setCookie).toMatch(/SameSite=Lax/);
    expect(setCookie).not.toMatch(/Domain=/i);
    const replay = await new CookieClient().get(exchange.toString());
    expect(replay.status).toBe(400);
    expect(replay.body).toContain('already used or has expired');
  });

  it('refuses a reader with a 403 that says why', async () => {
    const { res } = await signIn('rita-reader', entry(ideWs.id));
    expect(res.status).toBe(403);
    expect(res.body).toContain('write, maintain or admin permission on acme/shop');
    expect(res.body).toContain('rita-reader can only read it');
    const stranger = await signIn('sam-stranger', entry(ideWs.id));
    expect(stranger.res.status).toBe(403);
    expect(stranger.res.body).toContain('has no access');
  });

  it('sends a forged or expired session back to sign-in', async () => {
    const signers = purposeSigners(sessionSecret(berth.config));
    const signer = signers.session;
    const { client } = await signIn('wes-writer', entry(ideWs.id));
    const genuine = client.cookie('localhost', 'berth_session')!;
    const { sid } = signer.verify<{ sid: string }>(decodeURIComponent(genuine))!;

    const forged = new CookieClient();
    forged.setCookie('localhost', 'berth_session', encodeURIComponent(`${genuine.slice(0, -4)}AAAA`));
    expect(new URL((await forged.get(entry(ideWs.id))).headers.location!).pathname).toBe('/login/oauth/authorize');

    const expired = new CookieClient();
    expired.setCookie('localhost', 'berth_session', encodeURIComponent(signer.sign({ sid, exp: Date.now() - 1000 })));
    expect(new URL((await expired.get(entry(ideWs.id))).headers.location!).pathname).toBe('/login/oauth/authorize');

    // Self-signed with another key, on the IDE host: back to Berth to sign in.
    const host = new CookieClient();
    host.setCookie(`${ideWs.slug}.ide.localhost`, 'berth_ws', encodeURIComponent(new Signer(Buffer.from('x'.repeat(40))).sign({ sid, wid: ideWs.id, k: 'ide', exp: Date.now() + 60_000 })));
    const res = await host.get(`${ideHost()}/some/path?q=1`);
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe(`${entry(ideWs.id)}?path=${encodeURIComponent('/some/path?q=1')}`);

    // A genuine cookie for another workspace does not open this one.
    const other = new CookieClient();
    other.setCookie(`${ideWs.slug}.ide.localhost`, 'berth_ws', encodeURIComponent(signers['ide-host'].sign({ sid, wid: privateWs.id, k: 'ide', exp: Date.now() + 60_000 })));
    expect((await other.get(`${ideHost()}/`)).status).toBe(302);
  });

  it('takes no cookie for another purpose than its own: a workspace host cookie is no dashboard session', async () => {
    // the IDE host cookie a signed-in writer really got, and the private preview's
    const { client } = await signIn('wes-writer', entry(ideWs.id));
    const ideCookie = client.cookie(`${ideWs.slug}.ide.localhost`, 'berth_ws')!;
    const reader = await signIn('rita-reader', `${previewHost(privateWs.slug)}/`);
    const previewCookie = reader.client.cookie(`${privateWs.slug}.localhost`, 'berth_ws')!;
    expect(ideCookie).toBeTruthy();
    expect(previewCookie).toBeTruthy();
    const signedIn = async (host: string, name: string, value: string, url: string) => {
      const c = new CookieClient();
      c.setCookie(host, name, value);
      const res = await c.get(url);
      // signed in: on to the workspace host; not: to GitHub's sign-in
      return !(res.status === 302 && new URL(res.headers.location!).pathname === '/login/oauth/authorize');
    };
    // the genuine session works, so the checks below can tell
    expect(await signedIn('localhost', 'berth_session', client.cookie('localhost', 'berth_session')!, entry(ideWs.id))).toBe(true);
    // either workspace host cookie presented to the dashboard as its session: not signed in
    expect(await signedIn('localhost', 'berth_session', ideCookie, entry(ideWs.id))).toBe(false);
    expect(await signedIn('localhost', 'berth_session', previewCookie, entry(ideWs.id))).toBe(false);
    const dashboard = new CookieClient();
    dashboard.setCookie('localhost', 'berth_session', ideCookie);
    expect((await dashboard.get(`${berth.config.berthUrl}/logout`)).headers.location).toBe('/signed-out');
  });

  it('moves sign-in to BERTH_URL’s host when Berth is reached by another name', async () => {
    const res = await new CookieClient().get(`http://127.0.0.1:${port}/login?next=/x`);
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe(`${berth.config.berthUrl}/login?next=/x`);
  });

  it('checks the OAuth state', async () => {
    const client = new CookieClient();
    await client.get(entry(ideWs.id)); // gets a state cookie for another state
    const res = await client.get(`${berth.config.berthUrl}/login/callback?code=whatever&state=not-the-one`);
    expect(res.status).toBe(400);
    expect(res.body).toContain('not the one Berth started');
    expect(client.cookie('localhost', 'berth_session')).toBeUndefined();
  });

  it('signs out only with the CSRF token, and signing out closes the IDE too', async () => {
    const { client } = await signIn('wes-writer', entry(ideWs.id));
    expect((await client.get(`${ideHost()}/`)).status).toBe(200);
    const forged = await client.post(`${berth.config.berthUrl}/logout`, {});
    expect(forged.status).toBe(403);
    const page = await client.get(`${berth.config.berthUrl}/logout`);
    const csrf = /name="_csrf" value="([^"]+)"/.exec(page.body)![1]!;
    const wrong = await client.post(`${berth.config.berthUrl}/logout`, { _csrf: `${csrf}x` });
    expect(wrong.status).toBe(403);
    const out = await client.post(`${berth.config.berthUrl}/logout`, { _csrf: csrf });
    expect(out.status).toBe(303);
    expect(client.cookie('localhost', 'berth_session')).toBeUndefined();
    // the IDE host still holds its cookie, but its session is gone
    expect(client.cookie(`${ideWs.slug}.ide.localhost`, 'berth_ws')).toBeTruthy();
    const after = await client.get(`${ideHost()}/`);
    expect(after.status).toBe(302);
    expect(after.headers.location).toBe(entry(ideWs.id));
  });

  it('refuses requests to the IDE host from other sites', async () => {
    const { client } = await signIn('wes-writer', entry(ideWs.id));
    const res = await client.request('POST', `${ideHost()}/`, { headers: { origin: previewHost(publicWs.slug) }, body: '' });
    expect(res.status).toBe(403);
  });

  it('gates a private preview (read access suffices) and never forwards Berth’s cookies', async () => {
    const anonymous = await new CookieClient().get(`${previewHost(privateWs.slug)}/echo-headers?x=1`);
    expect(anonymous.status).toBe(302);
    expect(anonymous.headers.location).toBe(`${entry(privateWs.id, 'preview')}?path=${encodeURIComponent('/echo-headers?x=1')}`);

    const { client, res } = await signIn('rita-reader', `${previewHost(privateWs.slug)}/echo-headers?x=1`);
    expect(res.status).toBe(200);
    expect(new URL(res.url).host).toBe(`${privateWs.slug}.localhost:${port}`);
    const body = JSON.parse(res.body) as { url: string; headers: Record<string, string> };
    expect(body.url).toBe('/echo-headers?x=1');
    expect(body.headers.cookie ?? '').not.toMatch(/berth_/);
    // the app's own cookie came back to it; the one it tried to plant under Berth's name did not stick
    expect(client.cookie(`${privateWs.slug}.localhost`, 'app_cookie')).toBe('from-app');
    expect(client.cookie(`${privateWs.slug}.localhost`, 'berth_ws')).not.toBe('planted-by-app');
    const again = JSON.parse((await client.get(`${previewHost(privateWs.slug)}/echo-headers`)).body) as { headers: Record<string, string> };
    expect(again.headers.cookie).toBe('app_cookie=from-app');

    const stranger = await signIn('sam-stranger', `${previewHost(privateWs.slug)}/`);
    expect(stranger.res.status).toBe(403);
    expect(stranger.res.body).toContain('This preview is private');
  });

  /** a WebSocket to the private preview with the client's cookies; resolves once it echoed */
  async function previewSocket(client: CookieClient) {
    const socket = new WebSocket(`ws://127.0.0.1:${port}/live`, {
      headers: { host: `${privateWs.slug}.localhost:${port}`, cookie: client.cookieHeader(new URL(previewHost(privateWs.slug))) },
    });
    const closed = new Promise<number>((r) => socket.once('close', () => r(Date.now())));
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
    const echoed = new Promise((r) => socket.once('message', r));
    socket.send('ping');
    await echoed;
    return { socket, closed };
  }

  it('closes a private preview’s WebSocket when its viewer signs out', async () => {
    const { client } = await signIn('rita-reader', `${previewHost(privateWs.slug)}/`);
    const { closed } = await previewSocket(client);
    const csrf = /name="_csrf" value="([^"]+)"/.exec((await client.get(`${berth.config.berthUrl}/logout`)).body)![1]!;
    const signedOutAt = Date.now();
    expect((await client.post(`${berth.config.berthUrl}/logout`, { _csrf: csrf })).status).toBe(303);
    const at = await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(-1), 5_000))]);
    expect(at).toBeGreaterThan(0);
    expect(at - signedOutAt).toBeLessThan(2_000);
    // and it cannot open again
    await expect(previewSocket(client)).rejects.toThrow(/401/);
  });

  it('closes a private preview’s WebSocket within the permission cache time once its viewer loses access', async () => {
    const { client } = await signIn('rex-revoked', `${previewHost(privateWs.slug)}/`);
    const { socket, closed } = await previewSocket(client);
    fake.setPermission('acme', 'shop', 'rex-revoked', 'none');
    const revokedAt = Date.now();
    // still open meanwhile: the access is cached for a minute
    await new Promise((r) => setTimeout(r, 2_000));
    expect(socket.readyState).toBe(WebSocket.OPEN);
    const at = await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(-1), 80_000))]);
    expect(at).toBeGreaterThan(0);
    expect(at - revokedAt).toBeLessThan(75_000);
  }, 100_000);

  it('strips Berth’s cookies from public previews too', async () => {
    received = [];
    const client = new CookieClient();
    client.setCookie(`${publicWs.slug}.localhost`, 'berth_session', 'stolen');
    client.setCookie(`${publicWs.slug}.localhost`, '__Host-berth_session', 'stolen');
    client.setCookie(`${publicWs.slug}.localhost`, 'theirs', '1');
    const res = await client.get(`${previewHost(publicWs.slug)}/echo-headers`);
    expect(res.status).toBe(200);
    expect(received.at(-1)!.cookie).toBe('theirs=1');
    // the next request finds the workspace cached and takes the gateway's hot path: the same rules
    const again = await client.get(`${previewHost(publicWs.slug)}/echo-headers`, { headers: { 'x-forwarded-host': 'forged.example' } });
    expect(again.status).toBe(200);
    // the app's own cookie came back, the one it tried to set under Berth's name did not
    expect(received.at(-1)!.cookie).toBe('theirs=1; app_cookie=from-app');
    expect(received.at(-1)!['x-forwarded-host']).toBe(new URL(previewHost(publicWs.slug)).host);
    // a public preview needs no sign-in, and its Berth entry link just redirects
    const viaBerth = await new CookieClient().get(entry(publicWs.id, 'preview'));
    expect(viaBerth.headers.location).toBe(`${previewHost(publicWs.slug)}/`);
  });
});

/**
 * The setup docs/security.md recommends: previews and IDEs on a registrable domain of their
 * own (*.example-preview.test), Berth on another (berth.example.test), so nothing a preview
 * does with cookies can reach Berth's. Sign-in crosses the two by the one-time ticket.
 */
describe('previews on a domain of their own', () => {
  let fake: FakeGitHub;
  let berth: TestBerth;
  let echo: http.Server;
  let port: number;
  let privateWs: { id: string; slug: string };
  let ideWs: { id: string; slug: string };
  const PREVIEWS = 'example-preview.test';
  const berthHost = 'berth.example.test';

  beforeAll(async () => {
    fake = await startFakeGitHub();
    const inst = fake.addInstallation({ login: 'acme', type: 'Organization' });
    const repo = fake.createRepo('acme', 'site', { installationId: inst.id, private: true });
    fake.setPermission('acme', 'site', 'wes-writer', 'write');
    fake.setPermission('acme', 'site', 'rita-reader', 'read');
    echo = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ url: req.url, cookie: req.headers.cookie ?? null }));
    });
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
    berth = await startTestBerth(fake, { BERTH_ROLE: 'app', BERTH_PREVIEW_DOMAIN: PREVIEWS });
    port = berth.port;
    berth.config.berthUrl = `http://${berthHost}:${port}`;
    await berth.db.installation.create({ data: { id: BigInt(inst.id), accountLogin: 'acme', accountType: 'Organization' } });
    await berth.db.repository.create({ data: { id: BigInt(repo.id), installationId: BigInt(inst.id), owner: 'acme', name: 'site', fullName: 'acme/site', private: true } });
    const row = (branch: string, slug: string, extra: Record<string, unknown>) =>
      berth.db.workspace.create({
        data: { repositoryId: BigInt(repo.id), branch, slug, headSha: 'c'.repeat(40), state: 'running', previewHost: '127.0.0.1', previewPort: (echo.address() as AddressInfo).port, ...extra },
      });
    privateWs = await row('feature/xd', 'xd-site-acme', { previewPrivate: true });
    ideWs = await row('feature/xd-ide', 'xd-ide-site-acme', { ide: 'terminal' });
  });

  afterAll(async () => {
    await berth?.close();
    await fake?.close();
    await new Promise((r) => echo?.close(r));
  });

  it('signs a reader in to a private preview across the two domains, each cookie on its own host', async () => {
    fake.setOAuthUser('rita-reader');
    const client = new CookieClient();
    const res = await client.get(`http://${privateWs.slug}.${PREVIEWS}:${port}/hello?x=1`, { follow: true });
    expect(res.status).toBe(200);
    expect(new URL(res.url).host).toBe(`${privateWs.slug}.${PREVIEWS}:${port}`);
    expect(JSON.parse(res.body)).toEqual({ url: '/hello?x=1', cookie: null });
    expect(client.cookie(berthHost, 'berth_session')).toBeTruthy();
    expect(client.cookie(`${privateWs.slug}.${PREVIEWS}`, 'berth_ws')).toBeTruthy();
    expect([...client.jar.keys()].sort()).toEqual([berthHost, `${privateWs.slug}.${PREVIEWS}`].sort());
  });

  it('opens the IDE on its own host under the preview domain after sign-in on Berth’s', async () => {
    fake.setOAuthUser('wes-writer');
    const client = new CookieClient();
    const res = await client.get(`http://${berthHost}:${port}/workspaces/${ideWs.id}/ide`, { follow: true });
    expect(res.status).toBe(200);
    expect(new URL(res.url).host).toBe(`${ideWs.slug}.ide.${PREVIEWS}:${port}`);
    expect(res.body).toContain('data-program="terminal"');
  });

  it('never serves a workspace on BERTH_URL’s host, even when that name would be a workspace’s', async () => {
    const previous = berth.config.berthUrl;
    // Berth on a name under the preview domain whose first label is a workspace's slug
    berth.config.berthUrl = `http://${privateWs.slug}.${PREVIEWS}:${port}`;
    try {
      const res = await new CookieClient().get(`http://${privateWs.slug}.${PREVIEWS}:${port}/hello`);
      // Berth's own 404 page for an unknown path, not the workspace (which would redirect to sign-in)
      expect(res.status).toBe(404);
      expect((await new CookieClient().get(`http://${privateWs.slug}.${PREVIEWS}:${port}/healthz`)).status).toBe(200);
    } finally {
      berth.config.berthUrl = previous;
    }
  });
});
