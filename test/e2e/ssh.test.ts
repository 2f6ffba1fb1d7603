import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeGitHub, type FakeGitHub } from '../fakes/github.js';
import { assertDocumentedRequests, assertDocumentedResponses } from '../fakes/openapi-check.js';
import { pushPayload, sendWebhook } from '../fakes/webhooks.js';
import { SAMPLE_MESSAGE, sampleAppFiles } from '../fixtures/sample-app.js';
import { startTestBerth, type TestBerth } from '../helpers/berth.js';
import { CookieClient } from '../helpers/cookie-client.js';
import { NotYet, waitFor } from '../helpers/http.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** a port nobody listens on now */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

function run(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: opts.timeoutMs ?? 60_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0, stdout, stderr });
    });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
  });
}

/**
 * SSH into workspaces end to end (issue 14): Debian's openssh-client against Berth's SSH server
 * on a real workspace of the sample app (real Docker), people signed in through the fake GitHub
 * whose SSH keys the fake lists at GET /users/{u}/keys.
 */
describe('ssh into a workspace', () => {
  let fake: FakeGitHub;
  let berth: TestBerth;
  let sshPort: number;
  let dir: string;
  let ws: { id: string; slug: string };
  const key = (who: string) => path.join(dir, `${who}_key`);

  const sshArgs = (who: string) => [
    '-i', key(who),
    '-p', String(sshPort),
    '-o', 'StrictHostKeyChecking=no',
    '-o', 'UserKnownHostsFile=/dev/null',
    '-o', 'IdentitiesOnly=yes',
    '-o', 'BatchMode=yes',
    '-o', 'LogLevel=ERROR',
    '-o', 'ConnectTimeout=20',
  ];
  const ssh = (who: string, user: string, command: string[], opts: { input?: string; timeoutMs?: number } = {}) =>
    run('ssh', [...sshArgs(who), `${user}@127.0.0.1`, ...command], { timeoutMs: opts.timeoutMs ?? 240_000, input: opts.input ?? '' });

  async function signIn(login: string, start: string) {
    fake.setOAuthUser(login);
    const client = new CookieClient();
    const res = await client.get(start, { follow: true });
    return { client, res };
  }

  async function workspaceIn(state: string) {
    return waitFor(
      `the workspace to be ${state}`,
      async () => {
        const row = await berth.db.workspace.findUnique({ where: { id: ws.id } });
        if (row?.state === 'failed') throw new Error(`workspace failed: ${row.stateReason}`);
        if (row?.state !== state) throw new NotYet(`it is ${row?.state}`);
        return row;
      },
      240_000,
      500,
    );
  }

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-ssh-'));
    for (const who of ['bob', 'rita', 'mallory', 'stranger']) {
      const made = await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${who}@test`, '-f', key(who)]);
      expect(made.code, made.stderr).toBe(0);
    }
    fake = await startFakeGitHub();
    const installationId = fake.addInstallation({ login: 'acme', type: 'Organization' }).id;
    fake.createRepo('acme', 'shop', { installationId, private: true });
    fake.setPermission('acme', 'shop', 'bob', 'write');
    fake.setPermission('acme', 'shop', 'rita', 'read');
    for (const who of ['bob', 'rita', 'mallory', 'stranger']) fake.addSshKey(who, await fs.readFile(`${key(who)}.pub`, 'utf8'));
    sshPort = await freePort();
    berth = await startTestBerth(fake, { BERTH_SSH_PORT: String(sshPort) });
    const sha = await fake.pushFiles('acme', 'shop', 'feature/ssh', sampleAppFiles());
    const res = await sendWebhook(berth.webhookUrl, 'push', pushPayload({ fake, owner: 'acme', repo: 'shop', branch: 'feature/ssh', after: sha, installationId }), fake.webhookSecret);
    expect(res.status).toBeLessThan(300);
    const row = await waitFor('the workspace', async () => berth.db.workspace.findFirst({ where: { branch: 'feature/ssh' } }), 30_000);
    ws = { id: row.id, slug: row.slug };
    await workspaceIn('running');
    // bob, rita and mallory signed in to Berth once; the stranger never did
    for (const who of ['bob', 'rita', 'mallory']) await signIn(who, `${berth.config.berthUrl}/login`);
  }, 420_000);

  afterAll(async () => {
    if (berth) {
      for (const w of await berth.db.workspace.findMany()) await berth.queues.enqueueWorkspace('delete', { workspaceId: w.id, actor: 'test' });
      await waitFor('workspaces to be deleted', async () => (await berth.db.workspace.count({ where: { state: { not: 'deleted' } } })) === 0, 60_000).catch(() => {});
      await berth.close();
    }
    await fake?.close();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  }, 120_000);

  it('runs a command in /workspace with bob’s key, as bob, and forwards its exit status; the page shows the command and the host key', async () => {
    const cat = await ssh('bob', ws.slug, ['cat', '/workspace/message.txt']);
    expect(cat.stderr).toBe('');
    expect(cat.code).toBe(0);
    expect(cat.stdout.trim()).toBe(SAMPLE_MESSAGE);

    const who = await ssh('bob', ws.slug, ['pwd; echo "$GIT_AUTHOR_NAME <$GIT_AUTHOR_EMAIL>"; echo oops >&2; exit 7']);
    expect(who.code).toBe(7);
    const [pwd, identity] = who.stdout.trim().split('\n');
    expect(pwd).toBe('/workspace');
    expect(identity).toMatch(/^bob <\d+\+bob@users\.noreply\.github\.com>$/);
    expect(who.stderr.trim()).toBe('oops'); // stderr apart from stdout without a TTY

    // stdin reaches the command, and its end ends the command's input
    const echo = await ssh('bob', ws.slug, ['wc', '-l'], { input: 'a\nb\nc\n' });
    expect(echo.stdout.trim()).toBe('3');

    // a TTY when asked for one
    const tty = await ssh('bob', ws.slug, ['-tt', 'tty']);
    expect(tty.stdout).toMatch(/\/dev\/pts\/\d+/);

    // the workspace page: a copyable command, the VS Code link, and the host key ssh sees
    const { res } = await signIn('bob', `${berth.config.berthUrl}/workspaces/${ws.id}`);
    expect(res.status).toBe(200);
    expect(res.body).toContain(`ssh -p ${sshPort} ${ws.slug}@localhost`);
    expect(res.body).toContain(`vscode://vscode-remote/ssh-remote+${ws.slug}@localhost:${sshPort}/workspace`);
    const scanned = await run('sh', ['-c', `ssh-keyscan -p ${sshPort} -t ed25519 127.0.0.1 2>/dev/null | ssh-keygen -lf -`]);
    const fingerprint = /SHA256:[A-Za-z0-9+/]+/.exec(scanned.stdout)?.[0];
    expect(fingerprint).toBeTruthy();
    expect(res.body).toContain(`<code id="ssh-fingerprint">${fingerprint}</code>`);
  });

  it('gives git in the session bob’s own GitHub authority, through the credential helper, for this repository only', async () => {
    const fakeHost = new URL(fake.url).host;
    // what git does with `credential.helper=!…`: sh -c '<helper> "$@"' helper get, the request on stdin
    const askAs = (path: string) =>
      ssh('bob', ws.slug, [`sh -c "\${GIT_CONFIG_VALUE_1#!}"' "\$@"' helper get; echo "exit=$?"; env | grep -c ghu_ || true`], {
        input: `protocol=http\nhost=${fakeHost}\npath=${path}\n\n`,
      });
    const answer = await askAs('acme/shop.git');
    const token = /^password=(\S+)$/m.exec(answer.stdout)?.[1];
    expect(answer.stdout).toContain('username=x-access-token');
    expect(token).toMatch(/^ghu_/);
    // the token is nowhere in the session's environment, only in git's answer
    expect(answer.stdout.trim().split('\n').pop()).toBe('0');
    const me = await fetch(`${fake.url}/api/v3/user`, { headers: { authorization: `token ${token}` } });
    expect(((await me.json()) as { login: string }).login).toBe('bob');
    // another repository gets nothing
    const other = await askAs('acme/other.git');
    expect(other.stdout).not.toContain('password=');
  });

  it('refuses mallory (no access), rita (read), a key nobody signed in with and an unknown workspace alike, and logs why', async () => {
    const refusals = await Promise.all([
      ssh('mallory', ws.slug, ['cat', '/workspace/message.txt']),
      ssh('rita', ws.slug, ['cat', '/workspace/message.txt']),
      ssh('stranger', ws.slug, ['cat', '/workspace/message.txt']),
      ssh('bob', 'no-such-workspace', ['cat', '/workspace/message.txt']),
    ]);
    for (const r of refusals) {
      expect(r.code).toBe(255);
      expect(r.stdout).toBe('');
      // the same answer for every reason: nothing tells a workspace that exists from one that does not
      expect(r.stderr.trim()).toBe(`${r.stderr.includes('no-such-workspace') ? 'no-such-workspace' : ws.slug}@127.0.0.1: Permission denied (publickey).`);
    }
    const logged = berth.logs.filter((l) => l.startsWith('SSH connection refused')).join('\n');
    expect(logged).toContain('mallory has none access to acme/shop, not write');
    expect(logged).toContain('rita has read access to acme/shop, not write');
    expect(logged).toContain('the key belongs to nobody who signed in to Berth');
    expect(logged).toContain('no such workspace');
  });

  it('forwards a local port to the app (ssh -L) and to nothing outside the workspace', async () => {
    const local = await freePort();
    const outside = await freePort();
    const tunnel: ChildProcess = spawn('ssh', [...sshArgs('bob'), '-N', '-o', 'ExitOnForwardFailure=yes', '-L', `${local}:localhost:3000`, '-L', `${outside}:127.0.0.1:${berth.port}`, `${ws.slug}@127.0.0.1`], { stdio: 'ignore' });
    try {
      const page = await waitFor(
        'the app through the tunnel',
        async () => {
          const r = await fetch(`http://127.0.0.1:${local}/`).catch((e: Error) => {
            throw new NotYet(e.message);
          });
          return r.text();
        },
        30_000,
        250,
      );
      expect(page).toContain(SAMPLE_MESSAGE);
      // "localhost" is the workspace, so Berth's own port on the host is out of reach
      const refused = await fetch(`http://127.0.0.1:${outside}/healthz`, { signal: AbortSignal.timeout(10_000) }).then(
        (r) => r.status,
        () => 'refused',
      );
      expect(refused).toBe('refused');
    } finally {
      tunnel.kill();
    }
  });

  it('forwards to a server that listens on the container’s own loopback only (as VS Code’s server does)', async () => {
    const server = spawn('ssh', [...sshArgs('bob'), `${ws.slug}@127.0.0.1`, `node -e 'require("http").createServer((q, r) => r.end("inside-only")).listen(4555, "127.0.0.1", () => console.log("listening"))'`], { stdio: ['ignore', 'pipe', 'ignore'] });
    const local = await freePort();
    let tunnel: ChildProcess | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        server.stdout!.on('data', (d: Buffer) => d.toString().includes('listening') && resolve());
        server.once('exit', (code) => reject(new Error(`the server's session ended: ${code}`)));
      });
      tunnel = spawn('ssh', [...sshArgs('bob'), '-N', '-o', 'ExitOnForwardFailure=yes', '-L', `${local}:localhost:4555`, `${ws.slug}@127.0.0.1`], { stdio: 'ignore' });
      const body = await waitFor(
        'the loopback server through the tunnel',
        async () => (await fetch(`http://127.0.0.1:${local}/`).catch((e: Error) => {
          throw new NotYet(e.message);
        })).text(),
        30_000,
        250,
      );
      expect(body).toBe('inside-only');
    } finally {
      tunnel?.kill();
      server.kill();
    }
  });

  it('serves SFTP: sftp lists the workspace, fetches a file and uploads one', async () => {
    await fs.writeFile(path.join(dir, 'upload.txt'), 'sent over sftp\n');
    const batch = path.join(dir, 'batch');
    await fs.writeFile(batch, ['pwd', 'ls -l', `get message.txt ${path.join(dir, 'got.txt')}`, `put ${path.join(dir, 'upload.txt')} uploaded.txt`, ''].join('\n'));
    const r = await run('sftp', ['-b', batch, '-i', key('bob'), '-P', String(sshPort), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'IdentitiesOnly=yes', '-o', 'LogLevel=ERROR', `${ws.slug}@127.0.0.1`]);
    expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toMatchObject({ code: 0, stdout: expect.stringContaining('Remote working directory: /workspace') });
    expect(r.stdout).toMatch(/-rw-r--r-- .* message\.txt/);
    expect((await fs.readFile(path.join(dir, 'got.txt'), 'utf8')).trim()).toBe(SAMPLE_MESSAGE);
    expect((await ssh('bob', ws.slug, ['cat', '/workspace/uploaded.txt'])).stdout).toBe('sent over sftp\n');
  });

  it('keeps the workspace awake while a session is open, even a silent one', async () => {
    // an idle timeout of 6 s: the reaper (every 15 s) would stop it during a silent 20 s session
    await berth.db.workspace.update({ where: { id: ws.id }, data: { idleTimeoutSec: 6 } });
    try {
      const silent = await ssh('bob', ws.slug, ['sleep', '20']);
      expect(silent.code).toBe(0);
      const row = await berth.db.workspace.findUniqueOrThrow({ where: { id: ws.id } });
      expect(row.state).toBe('running');
      expect(Date.now() - row.lastActivityAt.getTime()).toBeLessThan(6_000);
    } finally {
      await berth.db.workspace.update({ where: { id: ws.id }, data: { idleTimeoutSec: 1800 } });
    }
  });

  it('wakes a stopped workspace on connect, saying so', async () => {
    await berth.queues.enqueueWorkspace('stop', { workspaceId: ws.id, actor: 'test', reason: 'stopped by test' });
    await workspaceIn('stopped');
    const woken = await ssh('bob', ws.slug, ['cat', '/workspace/message.txt']);
    expect(woken.stderr).toContain('waking the workspace…');
    expect(woken.code).toBe(0);
    expect(woken.stdout.trim()).toBe(SAMPLE_MESSAGE);
    const events = await berth.db.workspaceEvent.findMany({ where: { workspaceId: ws.id, toState: 'starting' }, orderBy: { id: 'desc' }, take: 1 });
    expect(events[0]?.reason).toContain('woken by an SSH connection of bob');
  });

  it('asks GitHub only documented questions', async () => {
    expect((await ssh('bob', ws.slug, ['true'])).code).toBe(0);
    expect(fake.requests.some((r) => r.route === 'GET /users/{username}/keys')).toBe(true);
    assertDocumentedRequests(fake.requests);
    assertDocumentedResponses(fake.requests.filter((r) => r.route === 'GET /users/{username}/keys'));
  });
});
