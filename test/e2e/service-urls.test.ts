import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeGitHub, type FakeGitHub } from '../fakes/github.js';
import { pushPayload, sendWebhook } from '../fakes/webhooks.js';
import { SAMPLE_MESSAGE, sampleAppFiles } from '../fixtures/sample-app.js';
import { startTestBerth, type TestBerth } from '../helpers/berth.js';
import { CookieClient } from '../helpers/cookie-client.js';
import { getWithHost, waitFor } from '../helpers/http.js';

/** A frontend that shows where its backend is: BERTH_URL_API, as a browser would follow it. */
const FRONT_JS = `'use strict';
const http = require('node:http');
http.createServer((req, res) => {
  if (req.url === '/health') return res.end('ok');
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  res.end('<!doctype html><title>front</title><p id="backend">Backend: <a href="' + process.env.BERTH_URL_API + '">' + process.env.BERTH_URL_API + '</a></p>');
}).listen(Number(process.env.PORT));
`;

/** `web` (the frontend, previewed) and `api` (the sample app) with ports of their own. */
const BERTH_YML = [
  'services:',
  '  web:',
  '    build: .',
  '    port: 3000',
  '    command: node front.js',
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
  '',
].join('\n');

/**
 * Issue 16: every service with a port has a public URL (`<service>--<slug>.<domain>`), which
 * BERTH_URL_<SERVICE> gives every service, so a frontend preview finds its own backend. The
 * gateway proxies that host to the service (HTTP and WebSocket), with the preview's privacy.
 */
describe('a public URL for every service with a port', () => {
  let fake: FakeGitHub;
  let berth: TestBerth;
  let installationId: number;
  let pub: { id: string; slug: string };
  let priv: { id: string; slug: string };

  const host = (label: string) => `${label}.localhost:${berth.port}`;
  const viaBerth = (label: string, path = '/') => getWithHost(berth.port, host(label), path);

  async function push(repo: string, branch: string) {
    const sha = await fake.pushFiles('acme', repo, branch, sampleAppFiles({ '.github/berth.yml': BERTH_YML, 'front.js': FRONT_JS }));
    const res = await sendWebhook(berth.webhookUrl, 'push', pushPayload({ fake, owner: 'acme', repo, branch, after: sha, installationId }), fake.webhookSecret);
    expect(res.status).toBeLessThan(300);
  }

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

  async function signIn(login: string, start: string) {
    fake.setOAuthUser(login);
    const client = new CookieClient();
    const res = await client.get(start, { follow: true });
    return { client, res };
  }

  const openWebSocket = (hostHeader: string, path: string) =>
    new Promise<string>((resolve, reject) => {
      const socket = new WebSocket(`ws://127.0.0.1:${berth.port}${path}`, { headers: { host: hostHeader } });
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
    // a held request to a stopped workspace waits for the wake (the machine may be busy): under getWithHost's 45 s
    berth = await startTestBerth(fake, { BERTH_WAKE_HOLD: '40s' });
    await push('shop', 'feature/front');
    // a private repository's preview is private, and so are its services' hosts
    await push('vault', 'feature/secret-front');
    pub = await running('feature/front');
    priv = await running('feature/secret-front');
  }, 600_000);

  afterAll(async () => {
    for (const ws of (await berth?.db.workspace.findMany()) ?? []) await berth.queues.enqueueWorkspace('delete', { workspaceId: ws.id, actor: 'test' });
    if (berth) {
      await waitFor('workspaces to be deleted', async () => (await berth.db.workspace.count({ where: { state: { not: 'deleted' } } })) === 0, 60_000).catch(() => {});
    }
    await berth?.close();
    await fake?.close();
  }, 120_000);

  it('the web app’s page shows BERTH_URL_API, and that URL reaches the api service through Berth, WebSockets too', async () => {
    const apiUrl = `http://api--${pub.slug}.localhost:${berth.port}/`;
    const page = await berth.preview(pub.slug, '/');
    expect(page.status).toBe(200);
    expect(page.body).toContain(`<p id="backend">Backend: <a href="${apiUrl}">`);

    // the URL the page links to, as a browser sends it: its host in the Host header
    const link = new URL(/href="([^"]+)"/.exec(page.body)![1]!);
    const api = await getWithHost(berth.port, link.host, '/env/SERVICE_NAME');
    expect(api.status, api.body).toBe(200);
    expect(api.body).toBe('api');
    // the preview host is still the web app's, and every service knows the other's URL
    expect((await berth.preview(pub.slug, '/env/SERVICE_NAME')).body).toContain('id="backend"');
    expect((await viaBerth(`api--${pub.slug}`, '/env/BERTH_URL_WEB')).body).toBe(`http://${pub.slug}.localhost:${berth.port}/`);
    expect((await viaBerth(`api--${pub.slug}`, '/env/BERTH_PREVIEW_URL')).body).toBe(`http://${pub.slug}.localhost:${berth.port}/`);
    expect((await viaBerth(`api--${pub.slug}`, '/env/BERTH_URL_API')).body).toBe(apiUrl);
    // the sample app's live channel, over the api's host
    expect(await openWebSocket(host(`api--${pub.slug}`), '/live')).toBe(`live: ${SAMPLE_MESSAGE}`);
  });

  it('a host naming a service the workspace does not have, or no workspace, is 404', async () => {
    const unknownService = await viaBerth(`nope--${pub.slug}`, '/');
    expect(unknownService.status).toBe(404);
    expect(unknownService.body).toContain(`No workspace has a service at “nope--${pub.slug}”`);
    const unknownWorkspace = await viaBerth('api--no-such-workspace', '/');
    expect(unknownWorkspace.status).toBe(404);
    await expect(openWebSocket(host(`nope--${pub.slug}`), '/live')).rejects.toThrow('HTTP 404');
  });

  it('a request to a stopped workspace’s api host wakes it and is answered by the api, like the preview', async () => {
    await berth.queues.enqueueWorkspace('stop', { workspaceId: pub.id, actor: 'test', reason: 'stopped by the test' });
    await waitFor('the workspace to stop', async () => (await berth.db.workspace.findUniqueOrThrow({ where: { id: pub.id } })).state === 'stopped', 60_000);
    const held = await viaBerth(`api--${pub.slug}`, '/env/SERVICE_NAME');
    expect(held.status, held.body).toBe(200);
    expect(held.body).toBe('api');
    const wake = await berth.db.workspaceEvent.findFirst({ where: { workspaceId: pub.id, toState: 'starting' }, orderBy: { id: 'desc' } });
    expect(wake).toMatchObject({ fromState: 'stopped', actor: 'gateway' });
    expect((await berth.db.workspace.findUniqueOrThrow({ where: { id: pub.id } })).state).toBe('running');
  });

  it('a private repository’s api URL needs sign-in like its preview: a reader gets in, a stranger does not', async () => {
    const apiOrigin = `http://api--${priv.slug}.localhost:${berth.port}`;
    const anonymous = await new CookieClient().get(`${apiOrigin}/env/SERVICE_NAME`);
    expect(anonymous.status).toBe(302);
    expect(anonymous.headers.location).toBe(`${berth.config.berthUrl}/workspaces/${priv.id}/preview?service=api&path=${encodeURIComponent('/env/SERVICE_NAME')}`);
    expect(anonymous.body).not.toContain('api');
    await expect(openWebSocket(host(`api--${priv.slug}`), '/live')).rejects.toThrow('HTTP 401');

    // sign-in brings the reader back to the api's own host, which then answers
    const { client, res } = await signIn('rita-reader', `${apiOrigin}/env/SERVICE_NAME`);
    expect(res.status, res.body).toBe(200);
    expect(res.body).toBe('api');
    expect(new URL(res.url).host).toBe(host(`api--${priv.slug}`));
    const again = await client.get(`${apiOrigin}/env/BERTH_URL_API`);
    expect(again.body).toBe(`${apiOrigin}/`);
    // the api host's sign-in is its own: the preview's host asks again, as another site would
    expect((await client.get(`http://${priv.slug}.localhost:${berth.port}/`)).status).toBe(302);

    const stranger = await signIn('sam-stranger', `${apiOrigin}/env/SERVICE_NAME`);
    expect(stranger.res.status).toBe(403);
    expect(stranger.res.body).not.toBe('api');

    // the workspace page lists the services' URLs
    const details = await client.get(`${berth.config.berthUrl}/workspaces/${priv.id}`);
    expect(details.status).toBe(200);
    expect(details.body).toMatch(new RegExp(`data-service="api">[\\s\\S]*?<a href="${apiOrigin}/" data-service-url>`));
    expect(details.body).toMatch(new RegExp(`data-service="web">[\\s\\S]*?<a href="http://${priv.slug}.localhost:${berth.port}/" data-service-url>`));
  });
});
