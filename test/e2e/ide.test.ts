import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import { promisify } from 'node:util';
import path from 'node:path';
import Dockerode from 'dockerode';
import { chromium, type Browser } from 'playwright-core';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeGitHub, type FakeGitHub } from '../fakes/github.js';
import { pushPayload, sendWebhook } from '../fakes/webhooks.js';
import { sampleAppFiles } from '../fixtures/sample-app.js';
import { startTestBerth, type TestBerth } from '../helpers/berth.js';
import { CookieClient } from '../helpers/cookie-client.js';
import { waitFor } from '../helpers/http.js';

const ARTIFACTS = path.resolve('test-artifacts');

/** The sample app's berth.yml with another `preview` and `workspace` section. */
function berthYml(preview: string, ide: string) {
  return [
    'services:',
    '  web:',
    '    build: .',
    '    port: 3000',
    '    command: node server.js',
    '    migrate: node migrate.js',
    '    seed: node seed.js',
    '    health: /health',
    '    env:',
    '      NODE_ENV: development',
    '      BERTH_SAMPLE_MODE: dev',
    `preview: ${preview}`,
    'workspace:',
    `  ide: ${ide}`,
    '',
  ].join('\n');
}

/**
 * The browser IDE end to end: real workspaces of the sample app (real Docker), sign-in through
 * the fake GitHub, the terminal IDE over a WebSocket to a docker exec, VS Code (code-server
 * from scripts/install-code-server.sh) in its container, private previews, and real Chromium.
 */
describe('browser IDE behind GitHub sign-in', () => {
  let fake: FakeGitHub;
  let berth: TestBerth;
  let installationId: number;
  let browser: Browser | undefined;
  const docker = new Dockerode();
  let termWs: { id: string; slug: string };
  let codeWs: { id: string; slug: string };

  const ideOrigin = (slug: string) => `http://${slug}.ide.localhost:${berth.port}`;
  const previewOrigin = (slug: string) => `http://${slug}.localhost:${berth.port}`;
  const entry = (id: string, kind = 'ide') => `${berth.config.berthUrl}/workspaces/${id}/${kind}`;

  async function push(branch: string, files: Record<string, string | null>) {
    const sha = await fake.pushFiles('acme', 'shop', branch, files);
    const res = await sendWebhook(berth.webhookUrl, 'push', pushPayload({ fake, owner: 'acme', repo: 'shop', branch, after: sha, installationId }), fake.webhookSecret);
    expect(res.status).toBeLessThan(300);
  }

  async function running(branch: string) {
    return waitFor(
      `workspace ${branch} to run`,
      async () => {
        const ws = await berth.db.workspace.findFirst({ where: { branch } });
        if (ws?.state === 'failed') throw new Error(`workspace failed: ${ws.stateReason}`);
        return ws?.state === 'running' ? ws : null;
      },
      240_000,
      500,
    );
  }

  async function signIn(login: string, start: string) {
    fake.setOAuthUser(login);
    const client = new CookieClient();
    const res = await client.get(start, { follow: true });
    return { client, res };
  }

  beforeAll(async () => {
    await fs.mkdir(ARTIFACTS, { recursive: true });
    // Idempotent and instant once installed (CI runs it before the tests); a minute otherwise.
    await promisify(execFile)('bash', ['scripts/install-code-server.sh'], { timeout: 300_000 });
    fake = await startFakeGitHub();
    installationId = fake.addInstallation({ login: 'acme', type: 'Organization' }).id;
    fake.createRepo('acme', 'shop', { installationId, private: true });
    fake.setPermission('acme', 'shop', 'wes-writer', 'write');
    fake.setPermission('acme', 'shop', 'rita-reader', 'read');
    berth = await startTestBerth(fake);
    await push('feature/term', sampleAppFiles({ '.github/berth.yml': berthYml('{ service: web, visibility: private }', 'terminal') }));
    // a private repository's preview is private unless berth.yml opts in: this one does
    await push('feature/code', sampleAppFiles({ '.github/berth.yml': berthYml('{ service: web, visibility: public }', 'vscode') }));
    termWs = await running('feature/term');
    codeWs = await running('feature/code');
  }, 420_000);

  afterAll(async () => {
    await browser?.close();
    for (const ws of (await berth?.db.workspace.findMany()) ?? []) await berth.queues.enqueueWorkspace('delete', { workspaceId: ws.id, actor: 'test' });
    if (berth) {
      await waitFor('workspaces to be deleted', async () => (await berth.db.workspace.count({ where: { state: { not: 'deleted' } } })) === 0, 60_000).catch(() => {});
    }
    await berth?.close();
    await fake?.close();
  }, 120_000);

  it('never lets the session cookie reach the sample app (private preview, /echo-headers)', async () => {
    const { client, res } = await signIn('rita-reader', `${previewOrigin(termWs.slug)}/echo-headers`);
    expect(res.status).toBe(200);
    const seen = JSON.parse(res.body) as Record<string, string>;
    expect(seen.host).toBe(`${termWs.slug}.localhost:${berth.port}`);
    expect(seen.cookie ?? '').not.toContain('berth_');
    // the browser does hold Berth's cookies: the session on BERTH_URL, the gate's on the preview host
    expect(client.cookie('localhost', 'berth_session')).toBeTruthy();
    expect(client.cookie(`${termWs.slug}.localhost`, 'berth_ws')).toBeTruthy();
    // even when the browser sends a session cookie to the preview host, the app does not get it
    client.setCookie(`${termWs.slug}.localhost`, 'berth_session', client.cookie('localhost', 'berth_session')!);
    client.setCookie(`${termWs.slug}.localhost`, 'app_pref', 'dark');
    const again = JSON.parse((await client.get(`${previewOrigin(termWs.slug)}/echo-headers`)).body) as Record<string, string>;
    expect(again.cookie).toBe('app_pref=dark');
    // a public preview is open to anyone, and strips Berth's cookies all the same
    const anon = new CookieClient();
    anon.setCookie(`${codeWs.slug}.localhost`, 'berth_session', 'x');
    const pub = await anon.get(`${previewOrigin(codeWs.slug)}/echo-headers`);
    expect(pub.status).toBe(200);
    expect((JSON.parse(pub.body) as Record<string, string>).cookie).toBeUndefined();
  });

  it('refuses the IDE to a reader', async () => {
    const { res } = await signIn('rita-reader', entry(termWs.id));
    expect(res.status).toBe(403);
    expect(res.body).toContain('rita-reader can only read it');
  });

  it('opens a terminal in /workspace over a WebSocket; resize works; closing ends the exec', async () => {
    const { client, res } = await signIn('wes-writer', entry(termWs.id));
    expect(res.status).toBe(200);
    expect(res.body).toContain('data-program="terminal"');
    const cookie = client.cookieHeader(new URL(ideOrigin(termWs.slug)));

    // Another site's page cannot open it, cookie or not.
    const foreign = new WebSocket(`ws://127.0.0.1:${berth.port}/__berth/terminal`, { headers: { host: `${termWs.slug}.ide.localhost:${berth.port}`, origin: previewOrigin(codeWs.slug), cookie } });
    const refused = await new Promise<number>((resolve) => foreign.on('unexpected-response', (_req, r) => resolve(r.statusCode ?? 0)).on('error', () => resolve(-1)));
    expect(refused).toBe(403);

    const socket = new WebSocket(`ws://127.0.0.1:${berth.port}/__berth/terminal?cols=100&rows=30`, {
      headers: { host: `${termWs.slug}.ide.localhost:${berth.port}`, origin: ideOrigin(termWs.slug), cookie },
    });
    let output = '';
    socket.on('message', (data) => (output += data.toString()));
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
    const send = (msg: object) => socket.send(JSON.stringify(msg));
    send({ type: 'input', data: 'pwd; echo answer-$((6*7)); stty size\n' });
    await waitFor('the command output', async () => output.includes('answer-42') && /\n30 100\r?\n/.test(output), 15_000, 100);
    expect(output).toContain('/workspace');
    send({ type: 'resize', cols: 132, rows: 40 });
    await new Promise((r) => setTimeout(r, 300));
    send({ type: 'input', data: 'stty size; cat message.txt\n' });
    await waitFor('the new size and the checkout', async () => output.includes('40 132') && output.includes('Hello from Berth sample v1'), 15_000, 100);
    expect(output).not.toContain('berth-pid:');

    // Edits in the IDE are on the workspace disk, which the running app reads (message.txt on every request).
    send({ type: 'input', data: 'printf "Edited in the IDE\\n" > message.txt; echo saved-$((1+1))\n' });
    await waitFor('the edit', async () => output.includes('saved-2'), 15_000, 100);
    const preview = await client.get(`${previewOrigin(termWs.slug)}/`, { follow: true });
    expect(preview.status).toBe(200);
    expect(preview.body).toContain('Edited in the IDE');
    send({ type: 'input', data: 'sleep 3000\n' });

    // The exec runs `sleep 3000` in the workspace's web container; closing the socket ends it.
    const [web] = await docker.listContainers({ filters: { label: [`berth.workspace=${termWs.id}`, 'berth.service=web', 'berth.role=service'] } });
    const ps = async () => {
      const exec = await docker.getContainer(web!.Id).exec({ Cmd: ['ps'], AttachStdout: true, AttachStderr: true });
      const stream = await exec.start({});
      const chunks: Buffer[] = [];
      for await (const c of stream) chunks.push(c as Buffer);
      return Buffer.concat(chunks).toString('latin1');
    };
    await waitFor('the sleep to run', async () => (await ps()).includes('sleep 3000'), 15_000, 250);
    socket.close();
    await waitFor('the terminal’s processes to end', async () => !(await ps()).includes('sleep 3000'), 15_000, 250);

    // IDE traffic is activity for the idle timer.
    const ws = await berth.db.workspace.findUniqueOrThrow({ where: { id: termWs.id } });
    expect(Date.now() - ws.lastActivityAt.getTime()).toBeLessThan(30_000);
  });

  it('closes the open terminal and VS Code WebSockets when their user signs out, and refuses them afterwards', async () => {
    const { client } = await signIn('wes-writer', entry(termWs.id));
    await client.get(entry(codeWs.id), { follow: true });
    // VS Code starts after the app: wait until code-server answers on the IDE host
    await waitFor('code-server', async () => (await client.get(`${ideOrigin(codeWs.slug)}/healthz`)).status === 200, 120_000, 500);
    const open = (slug: string, path: string) => {
      const socket = new WebSocket(`ws://127.0.0.1:${berth.port}${path}`, {
        headers: { host: `${slug}.ide.localhost:${berth.port}`, origin: ideOrigin(slug), cookie: client.cookieHeader(new URL(ideOrigin(slug))) },
      });
      socket.on('error', () => {});
      const closed = new Promise<{ code: number; reason: string; at: number }>((r) => socket.once('close', (code, reason) => r({ code, reason: reason.toString(), at: Date.now() })));
      const opened = new Promise<number>((resolve) => socket.once('open', () => resolve(101)).once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)));
      return { socket, closed, opened };
    };
    const terminal = open(termWs.slug, '/__berth/terminal?cols=80&rows=24');
    // the workbench's WebSocket to code-server, through Berth's proxy
    const vscode = open(codeWs.slug, '/?reconnectionToken=berth-test&reconnection=false&skipWebSocketFrames=false');
    expect(await terminal.opened).toBe(101);
    expect(await vscode.opened).toBe(101);
    let output = '';
    terminal.socket.on('message', (d) => (output += d.toString()));
    terminal.socket.send(JSON.stringify({ type: 'input', data: 'echo still-here-$((2*3))\n' }));
    await waitFor('the shell to answer', async () => output.includes('still-here-6'), 15_000, 100);

    const csrf = /name="_csrf" value="([^"]+)"/.exec((await client.get(`${berth.config.berthUrl}/logout`)).body)![1]!;
    const signedOutAt = Date.now();
    expect((await client.post(`${berth.config.berthUrl}/logout`, { _csrf: csrf })).status).toBe(303);
    const timeout = new Promise<null>((r) => setTimeout(() => r(null), 5_000));
    const [term, code] = await Promise.all([Promise.race([terminal.closed, timeout]), Promise.race([vscode.closed, timeout])]);
    expect(term).not.toBeNull();
    expect(term!.code).toBe(1008);
    expect(term!.reason).toContain('signed out');
    expect(term!.at - signedOutAt).toBeLessThan(2_000);
    expect(code).not.toBeNull();
    expect(code!.at - signedOutAt).toBeLessThan(2_000);
    // the same cookie opens nothing any more
    expect(await open(termWs.slug, '/__berth/terminal').opened).toBe(401);
  });

  it('starts the editor for `ide: vim` (busybox vi here) and ends it when the tab closes', async () => {
    await berth.db.workspace.update({ where: { id: termWs.id }, data: { ide: 'vim' } });
    await new Promise((r) => setTimeout(r, 1100)); // the IDE gateway caches a workspace for a second
    try {
      const { client, res } = await signIn('wes-writer', entry(termWs.id));
      expect(res.body).toContain('data-program="vim"');
      const socket = new WebSocket(`ws://127.0.0.1:${berth.port}/__berth/terminal?cols=80&rows=24`, {
        headers: { host: `${termWs.slug}.ide.localhost:${berth.port}`, origin: ideOrigin(termWs.slug), cookie: client.cookieHeader(new URL(ideOrigin(termWs.slug))) },
      });
      let screen = '';
      socket.on('message', (d) => (screen += d.toString()));
      await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
      await waitFor('vi to draw its screen', async () => (screen.match(/~/g) ?? []).length >= 10, 15_000, 100);
      const [web] = await docker.listContainers({ filters: { label: [`berth.workspace=${termWs.id}`, 'berth.service=web', 'berth.role=service'] } });
      const editors = async () => {
        const exec = await docker.getContainer(web!.Id).exec({ Cmd: ['ps', '-o', 'comm'], AttachStdout: true });
        const chunks: Buffer[] = [];
        for await (const c of await exec.start({})) chunks.push(c as Buffer);
        return Buffer.concat(chunks).toString('latin1').split('\n').filter((l) => /\bvi\b/.test(l)).length;
      };
      expect(await editors()).toBe(1);
      socket.close();
      await waitFor('vi to end', async () => (await editors()) === 0, 15_000, 250);
    } finally {
      await berth.db.workspace.update({ where: { id: termWs.id }, data: { ide: 'terminal' } });
    }
  });

  it('serves VS Code (code-server) for /workspace on the IDE host', async () => {
    const { client, res } = await signIn('wes-writer', entry(codeWs.id));
    // code-server answers / with a redirect to the folder it opened
    expect(res.status).toBe(200);
    expect(new URL(res.url).searchParams.get('folder')).toBe('/workspace');
    expect(res.body).toContain('vscode-workbench-web-configuration');
    const health = await client.get(`${ideOrigin(codeWs.slug)}/healthz`);
    expect(health.status).toBe(200);
    // nothing of Berth's reaches code-server either: its cookie jar stays its own
    expect(client.cookie(`${codeWs.slug}.ide.localhost`, 'berth_ws')).toBeTruthy();
  });

  it('starts VS Code after the app runs, and says so on the IDE host meanwhile (no terminal fallback)', async () => {
    await push('feature/ide-wait', sampleAppFiles());
    const ws = await waitFor('the workspace to be recorded', () => berth.db.workspace.findFirst({ where: { branch: 'feature/ide-wait' } }), 60_000, 100);
    const { client } = await signIn('wes-writer', entry(ws.id));
    const seen: string[] = [];
    let previewWhileIdeStarting = false;
    await waitFor(
      'VS Code on the IDE host',
      async () => {
        const now = await berth.db.workspace.findUniqueOrThrow({ where: { id: ws.id } });
        if (now.state === 'failed') throw new Error(`workspace failed: ${now.stateReason}`);
        if (now.state !== 'running') return false;
        const res = await client.get(`${ideOrigin(ws.slug)}/`, { follow: true });
        const kind =
          res.body.includes('vscode-workbench-web-configuration') ? 'vscode'
          : res.status === 503 && res.body.includes('Starting the IDE') ? 'starting'
          : res.body.includes('data-program=') ? 'terminal'
          : `HTTP ${res.status}`;
        seen.push(kind);
        if (kind === 'starting' && !previewWhileIdeStarting) {
          // the preview does not wait for the IDE: it already answers
          previewWhileIdeStarting = (await berth.preview(ws.slug)).status === 200;
        }
        return kind === 'vscode';
      },
      240_000,
      100,
    );
    expect(seen.filter((k) => k !== 'starting' && k !== 'vscode')).toEqual([]);
    expect(seen).toContain('starting');
    expect(previewWhileIdeStarting).toBe(true);
    const final = await berth.db.workspace.findUniqueOrThrow({ where: { id: ws.id } });
    expect(final.ideState).toBe('running');
    const log = (await berth.db.buildLogChunk.findMany({ where: { buildId: final.currentBuildId! }, orderBy: { id: 'asc' } })).map((c) => c.text).join('');
    expect(log.indexOf('==> running: preview service')).toBeLessThan(log.indexOf('==> IDE: VS Code is running'));
  });

  it('in Chromium: signs in, types in the terminal IDE and sees the output; opens VS Code on the repository', async () => {
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    fake.setOAuthUser('wes-writer');

    await page.goto(entry(termWs.id));
    expect(new URL(page.url()).host).toBe(`${termWs.slug}.ide.localhost:${berth.port}`);
    await page.waitForSelector('body[data-terminal="open"]', { timeout: 20_000 });
    await page.click('#term');
    await page.keyboard.type('echo "typed in the browser: $((40+2))" && ls\n');
    await page.waitForFunction(() => document.querySelector('.xterm-rows')?.textContent?.includes('typed in the browser: 42'), undefined, { timeout: 20_000 });
    await page.waitForFunction(() => document.querySelector('.xterm-rows')?.textContent?.includes('server.js'), undefined, { timeout: 10_000 });
    const terminalShot = path.join(ARTIFACTS, 'ide-terminal.png');
    await page.screenshot({ path: terminalShot });
    console.log(`screenshot: ${terminalShot}`);

    // Same browser, already signed in: VS Code opens without another trip to GitHub.
    await page.goto(entry(codeWs.id));
    expect(new URL(page.url()).host).toBe(`${codeWs.slug}.ide.localhost:${berth.port}`);
    await page.waitForSelector('.monaco-workbench', { timeout: 60_000 });
    await page.locator('.explorer-folders-view').getByText('server.js').first().waitFor({ timeout: 60_000 });
    // Open a file of the repository in the editor.
    await page.locator('.explorer-folders-view').getByText('server.js').first().click();
    await page
      .waitForFunction(() => [...document.querySelectorAll('.monaco-editor .view-lines')].some((e) => e.textContent?.includes('escapeHtml')), undefined, { timeout: 30_000 })
      .catch(async (err) => {
        await page.screenshot({ path: path.join(ARTIFACTS, 'ide-vscode-failure.png') });
        throw err;
      });
    await page.waitForTimeout(1000); // let the workbench finish painting for the picture
    const vscodeShot = path.join(ARTIFACTS, 'ide-vscode.png');
    await page.screenshot({ path: vscodeShot });
    console.log(`screenshot: ${vscodeShot}`);
    const explorer = await page.locator('.explorer-folders-view').innerText();
    expect(explorer).toContain('server.js');
    expect(explorer).toContain('message.txt');
  });

  it('wakes a stopped workspace when its IDE is opened', async () => {
    await berth.queues.enqueueWorkspace('stop', { workspaceId: termWs.id, actor: 'test' });
    await waitFor('the workspace to stop', async () => (await berth.db.workspace.findUniqueOrThrow({ where: { id: termWs.id } })).state === 'stopped', 60_000);
    const { client, res } = await signIn('wes-writer', entry(termWs.id));
    expect(res.status).toBe(503);
    expect(res.body).toContain('Waking up');
    await running('feature/term');
    await waitFor('the terminal page', async () => (await client.get(`${ideOrigin(termWs.slug)}/`)).status === 200, 60_000, 500);
  });
});
