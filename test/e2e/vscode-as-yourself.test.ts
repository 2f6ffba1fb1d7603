import { execFile } from 'node:child_process';
import http from 'node:http';
import { promisify } from 'node:util';
import Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeGitHub, type FakeGitHub, type User } from '../fakes/github.js';
import { pushPayload, sendWebhook } from '../fakes/webhooks.js';
import { sampleAppFiles } from '../fixtures/sample-app.js';
import { ensureGitImage, GIT_IMAGE_TAG } from '../fixtures/git-image.js';
import { startTestBerth, type TestBerth } from '../helpers/berth.js';
import { CookieClient } from '../helpers/cookie-client.js';
import { dockerBridgeAddress } from '../helpers/docker-bridge.js';
import { waitFor } from '../helpers/http.js';

const O = 'acme';
const R = 'shop';
const BRANCH = 'feature/vscode-people';

const BERTH_YML = [
  'services:',
  '  web:',
  '    build: .',
  '    port: 3000',
  '    command: node server.js',
  '    migrate: node migrate.js',
  '    health: /health',
  'preview: web',
  'workspace:',
  '  ide: vscode',
  '',
].join('\n');

/**
 * Issue 14, VS Code part: each person who opens a workspace's VS Code gets a code-server
 * container of their own with their git identity and credential helper (a push through it is
 * recorded by the fake GitHub as theirs), their VS Code settings survive a stop and start,
 * and their dotfiles repository (set on Your settings, private, cloned with their token) runs
 * its install.sh in their VS Code.
 */
describe('VS Code in a workspace as yourself', () => {
  let fake: FakeGitHub;
  let berth: TestBerth;
  let installationId: number;
  let bob: User;
  let alice: User;
  let ws: { id: string; slug: string };
  const docker = new Dockerode();

  /** bob (or alice) signs in and opens the workspace's VS Code; returns their code-server container */
  async function openVsCode(login: string) {
    fake.setOAuthUser(login);
    const client = new CookieClient();
    const res = await client.get(`${berth.config.berthUrl}/workspaces/${ws.id}/ide`, { follow: true });
    expect(res.status).toBe(200);
    expect(res.body).toContain('vscode-workbench-web-configuration');
    const [c] = await docker.listContainers({ filters: { label: [`berth.workspace=${ws.id}`, 'berth.role=ide', `berth.person=${login}`], status: ['running'] } });
    expect(c, `${login}'s code-server container`).toBeTruthy();
    return { client, id: c!.Id };
  }

  /** a command in a person's code-server container with its environment (what its terminal and git UI get) */
  async function execIn(containerId: string, script: string): Promise<string> {
    const exec = await docker.getContainer(containerId).exec({ Cmd: ['sh', '-c', script], AttachStdout: true, AttachStderr: true, Tty: true, WorkingDir: '/workspace' });
    const chunks: Buffer[] = [];
    for await (const c of await exec.start({ Tty: true })) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('latin1').replace(/\r/g, '');
  }

  /** what git's credential helper in a container asks Berth */
  function askCredential(handle: string) {
    const repo = new URL(fake.getRepo(O, R)!.cloneUrl);
    return new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: berth.port, method: 'POST', path: '/__berth/git-credential' }, (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      });
      req.on('error', reject);
      req.end(`handle=${handle}\nprotocol=http\nhost=${repo.host}\npath=${repo.pathname.slice(1)}\n`);
    });
  }

  const handleOf = async (containerId: string) =>
    ((await docker.getContainer(containerId).inspect()).Config.Env ?? []).find((e) => e.startsWith('BERTH_GIT_HANDLE='))!.slice('BERTH_GIT_HANDLE='.length);

  async function running() {
    return waitFor(
      'the workspace and its VS Code to run',
      async () => {
        const now = await berth.db.workspace.findUnique({ where: { id: ws.id } });
        if (now?.state === 'failed') throw new Error(`workspace failed: ${now.stateReason}`);
        if (now?.ideState === 'unavailable') throw new Error('VS Code did not start');
        return now?.state === 'running' && now.ideState === 'running' ? now : null;
      },
      300_000,
      500,
    );
  }

  beforeAll(async () => {
    await promisify(execFile)('bash', ['scripts/install-code-server.sh'], { timeout: 300_000 });
    await ensureGitImage();
    fake = await startFakeGitHub({ listenHost: dockerBridgeAddress() });
    installationId = fake.addInstallation({ login: O, type: 'Organization' }).id;
    fake.createRepo(O, R, { installationId, private: true });
    bob = fake.addUser('bob', { name: 'Bob Builder' });
    alice = fake.addUser('alice', { name: 'Alice Author' });
    fake.setPermission(O, R, 'bob', 'write');
    fake.setPermission(O, R, 'alice', 'write');
    // bob's private dotfiles: only his token can clone them
    fake.createRepo('bob', 'dotfiles', { installationId: null, private: true });
    fake.setPermission('bob', 'dotfiles', 'bob', 'admin');
    await fake.pushFiles('bob', 'dotfiles', 'main', { 'install.sh': 'echo "dotfiles of $(git config user.name 2>/dev/null || echo bob)" > "$HOME/dotfiles-marker"\necho installed-by-install-sh\n' });
    berth = await startTestBerth(fake);
    const sha = await fake.pushFiles(O, R, BRANCH, sampleAppFiles({ Dockerfile: `FROM ${GIT_IMAGE_TAG}\nWORKDIR /workspace\nCOPY . /workspace\nCMD ["node","server.js"]\n`, '.github/berth.yml': BERTH_YML }));
    const res = await sendWebhook(berth.webhookUrl, 'push', pushPayload({ fake, owner: O, repo: R, branch: BRANCH, after: sha, installationId }), fake.webhookSecret);
    expect(res.status).toBeLessThan(300);
    ws = await waitFor('the workspace', async () => berth.db.workspace.findFirst({ where: { branch: BRANCH } }), 60_000, 500);
    await running();
  }, 480_000);

  afterAll(async () => {
    if (berth) {
      for (const w of await berth.db.workspace.findMany()) await berth.queues.enqueueWorkspace('delete', { workspaceId: w.id, actor: 'test', force: true } as never);
      await waitFor('workspaces to be deleted', async () => (await berth.db.workspace.count({ where: { state: { not: 'deleted' } } })) === 0, 60_000).catch(() => {});
    }
    await berth?.close();
    await fake?.close();
  }, 120_000);

  it('bob sets his dotfiles, opens VS Code: his own container, his identity, a push as bob, his install.sh ran', async () => {
    // Your settings: a dotfiles repository elsewhere than GitHub is refused, his is kept
    fake.setOAuthUser('bob');
    const client = new CookieClient();
    const form = await client.get(`${berth.config.berthUrl}/settings`, { follow: true });
    expect(form.status).toBe(200);
    const csrf = /name="_csrf" value="([^"]+)"/.exec(form.body)![1]!;
    const bad = await client.post(`${berth.config.berthUrl}/settings`, { _csrf: csrf, dotfiles: 'https://evil.example/bob/dotfiles' });
    expect(bad.status).toBe(400);
    expect(bad.body).toContain('must be on');
    const dotfilesUrl = fake.getRepo('bob', 'dotfiles')!.cloneUrl;
    const saved = await client.post(`${berth.config.berthUrl}/settings`, { _csrf: csrf, dotfiles: dotfilesUrl });
    expect(saved.status).toBe(303);
    expect((await client.get(`${berth.config.berthUrl}/settings`)).body).toContain(dotfilesUrl);

    const code = await openVsCode('bob');
    const env = ((await docker.getContainer(code.id).inspect()).Config.Env ?? []).join('\n');
    expect(env).toContain('GIT_AUTHOR_NAME=Bob Builder');
    expect(env).not.toMatch(/ghu_|ghr_/); // a handle, never a token

    const out = await execIn(code.id, 'printf "from bob in VS Code\\n" > bob-vscode.txt && git add bob-vscode.txt && git commit -q -m "Bob in VS Code" && git push -q origin HEAD 2>&1; echo "head=$(git rev-parse HEAD)"');
    const head = /head=([0-9a-f]{40})/.exec(out)?.[1];
    expect(head, out).toBeTruthy();
    const pushes = fake.pushes(O, R);
    expect(pushes.at(-1)?.login, out).toBe('bob');
    expect(pushes.at(-1)!.updates).toEqual([expect.objectContaining({ ref: `refs/heads/${BRANCH}`, after: head })]);
    expect(fake.commitInfo(O, R, head!)!.author).toMatchObject({ name: 'Bob Builder', email: `${bob.id}+bob@users.noreply.github.com` });

    // his dotfiles, cloned with his token in his container, install.sh run there
    const marker = await waitFor('bob’s dotfiles marker', async () => {
      const text = await execIn(code.id, 'cat "$HOME/dotfiles-marker" 2>/dev/null; cat "$HOME/.dotfiles.log" 2>/dev/null');
      if (text.includes('could not clone')) throw new Error(text);
      return text.includes('dotfiles of') ? text : null;
    }, 60_000, 500);
    expect(marker).toContain('installed-by-install-sh');
  });

  it('alice’s VS Code is another container with her identity', async () => {
    const bobs = await openVsCode('bob');
    const alices = await openVsCode('alice');
    expect(alices.id).not.toBe(bobs.id);
    expect(await execIn(alices.id, 'git var GIT_AUTHOR_IDENT')).toContain(`Alice Author <${alice.id}+alice@users.noreply.github.com>`);
    expect(await execIn(bobs.id, 'git var GIT_AUTHOR_IDENT')).toContain(`Bob Builder <${bob.id}+bob@users.noreply.github.com>`);
    // alice has no dotfiles: nothing was installed for her
    expect(await execIn(alices.id, 'test -e "$HOME/dotfiles-marker" && echo yes || echo no')).toContain('no');
  });

  it('a VS Code setting bob writes survives a stop and start; alice’s settings are her own', async () => {
    const before = await openVsCode('bob');
    // what VS Code writes when he changes a setting: his User/settings.json
    await execIn(before.id, 'f="$HOME/settings.json"; sed -i "s/^{/{\\n  \\"editor.fontSize\\": 19,/" "$f" && cat "$f"');
    expect(await execIn(before.id, 'cat "$HOME/settings.json"')).toContain('"editor.fontSize": 19');
    const oldHandle = await handleOf(before.id);
    expect((await askCredential(oldHandle)).status).toBe(200);
    await berth.queues.enqueueWorkspace('stop', { workspaceId: ws.id, actor: 'test' });
    await waitFor('the stop', async () => (await berth.db.workspace.findUniqueOrThrow({ where: { id: ws.id } })).state === 'stopped', 120_000, 500);
    // every person's VS Code stops with the workspace
    await waitFor('every VS Code of the workspace to go', async () => (await docker.listContainers({ all: true, filters: { label: [`berth.workspace=${ws.id}`, 'berth.role=ide'] } })).length === 0, 60_000, 250);
    // the handle of his stopped VS Code gives nothing any more, though his sign-in lives on
    const stale = await askCredential(oldHandle);
    expect(stale.status).toBe(403);
    expect(stale.body).not.toContain('password');
    await berth.queues.enqueueWorkspace('start', { workspaceId: ws.id, actor: 'test' });
    await running();
    const after = await openVsCode('bob');
    expect(after.id).not.toBe(before.id);
    const settings = await execIn(after.id, 'cat "$HOME/settings.json"');
    expect(settings).toContain('"editor.fontSize": 19');
    // the workspace's first settings are there too (no walkthrough)
    expect(settings).toContain('workbench.startupEditor');
    const alices = await openVsCode('alice');
    expect(await execIn(alices.id, 'cat "$HOME/settings.json"')).not.toContain('editor.fontSize');
  });
});
