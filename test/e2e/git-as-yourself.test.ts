import http from 'node:http';
import Dockerode from 'dockerode';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeGitHub, type FakeGitHub, type User } from '../fakes/github.js';
import { issueCommentPayload, pushPayload, sendWebhook } from '../fakes/webhooks.js';
import { sampleAppFiles } from '../fixtures/sample-app.js';
import { ensureGitImage, GIT_IMAGE_TAG } from '../fixtures/git-image.js';
import { startTestBerth, type TestBerth } from '../helpers/berth.js';
import { CookieClient } from '../helpers/cookie-client.js';
import { dockerBridgeAddress } from '../helpers/docker-bridge.js';
import { waitFor } from '../helpers/http.js';

const O = 'acme';
const R = 'shop';
const BRANCH = 'feature/git';
const PR = 41;

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
  '  ide: terminal',
  '',
].join('\n');

/**
 * Issue 14, git part: the person at the keyboard commits and pushes from the workspace's
 * terminal with their own GitHub authority (the fake GitHub records who pushed), the push
 * does not restart the workspace, no token lands on the disk, and a delete of a disk with an
 * unpushed commit asks for --force. The fake listens on docker0's address so that git in the
 * workspace container reaches it; its user tokens expire within Berth's refresh margin, so
 * every credential request refreshes one.
 */
describe('git in a workspace as yourself', () => {
  let fake: FakeGitHub;
  let berth: TestBerth;
  let installationId: number;
  let bob: User;
  let ws: { id: string; slug: string };
  const docker = new Dockerode();
  const ideOrigin = () => `http://${ws.slug}.ide.localhost:${berth.port}`;

  async function hook(event: string, payload: object) {
    const res = await sendWebhook(berth.webhookUrl, event as never, payload as never, fake.webhookSecret);
    expect(res.status).toBeLessThan(300);
  }

  /** a signed-in terminal: `run` types a command and waits for the line it prints last */
  async function terminalOf(login: string) {
    fake.setOAuthUser(login);
    const client = new CookieClient();
    const res = await client.get(`${berth.config.berthUrl}/workspaces/${ws.id}/ide`, { follow: true });
    expect(res.status).toBe(200);
    const socket = new WebSocket(`ws://127.0.0.1:${berth.port}/__berth/terminal?cols=200&rows=50`, {
      headers: { host: `${ws.slug}.ide.localhost:${berth.port}`, origin: ideOrigin(), cookie: client.cookieHeader(new URL(ideOrigin())) },
    });
    let output = '';
    socket.on('message', (d) => (output += d.toString()));
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
    let n = 0;
    const run = async (command: string, timeoutMs = 60_000) => {
      const marker = `done-${++n}-$((40+2))`;
      const seen = `done-${n}-42`;
      const from = output.length;
      socket.send(JSON.stringify({ type: 'input', data: `${command}; echo "${marker} exit=$?"\n` }));
      await waitFor(`"${command.slice(0, 60)}" in ${login}'s terminal`, async () => output.slice(from).includes(seen), timeoutMs, 100);
      const text = output.slice(from);
      return { text, exit: Number(/exit=(\d+)/.exec(text.slice(text.indexOf(seen)))?.[1]) };
    };
    return { client, socket, run, output: () => output };
  }

  const containersOf = async () =>
    (await docker.listContainers({ filters: { label: [`berth.workspace=${ws.id}`, 'berth.role=service'] } })).map((c) => ({ id: c.Id, state: c.State })).sort((a, b) => a.id.localeCompare(b.id));

  async function execIn(containerId: string, script: string): Promise<string> {
    // a TTY: one plain stream, no multiplexing headers
    const exec = await docker.getContainer(containerId).exec({ Cmd: ['sh', '-c', script], AttachStdout: true, AttachStderr: true, Tty: true });
    const chunks: Buffer[] = [];
    for await (const c of await exec.start({ Tty: true })) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('latin1').replace(/\r/g, '');
  }

  beforeAll(async () => {
    await ensureGitImage();
    fake = await startFakeGitHub({ listenHost: dockerBridgeAddress(), userTokenTtlMs: 60_000 });
    installationId = fake.addInstallation({ login: O, type: 'Organization' }).id;
    fake.createRepo(O, R, { installationId, private: true });
    bob = fake.addUser('bob', { name: 'Bob Builder' });
    fake.setPermission(O, R, 'bob', 'write');
    fake.setPermission(O, R, 'rita', 'read');
    berth = await startTestBerth(fake);
    const sha = await fake.pushFiles(O, R, BRANCH, sampleAppFiles({ Dockerfile: `FROM ${GIT_IMAGE_TAG}\nWORKDIR /workspace\nCOPY . /workspace\nCMD ["node","server.js"]\n`, '.github/berth.yml': BERTH_YML }));
    await hook('push', pushPayload({ fake, owner: O, repo: R, branch: BRANCH, after: sha, installationId }));
    ws = await waitFor(
      'the workspace to run',
      async () => {
        const now = await berth.db.workspace.findFirst({ where: { branch: BRANCH } });
        if (now?.state === 'failed') throw new Error(`workspace failed: ${now.stateReason}`);
        return now?.state === 'running' ? now : null;
      },
      300_000,
      500,
    );
    fake.createPullRequest(O, R, { head: BRANCH, number: PR });
  }, 420_000);

  afterAll(async () => {
    if (berth) {
      for (const w of await berth.db.workspace.findMany()) await berth.queues.enqueueWorkspace('delete', { workspaceId: w.id, actor: 'test' });
      await waitFor('workspaces to be deleted', async () => (await berth.db.workspace.count({ where: { state: { not: 'deleted' } } })) === 0, 60_000).catch(() => {});
    }
    await berth?.close();
    await fake?.close();
  }, 120_000);

  it('bob commits and pushes from the terminal as himself; the push does not restart the workspace; no token on the disk', async () => {
    const term = await terminalOf('bob');
    const before = await containersOf();
    expect(before.length).toBe(1);

    const push = await term.run(
      'printf "from bob\\n" > bob.txt && git add bob.txt && git commit -q -m "Bob was here" && git push -q origin HEAD 2>&1; echo "head=$(git rev-parse HEAD)"',
      90_000,
    );
    const head = /head=([0-9a-f]{40})/.exec(push.text)?.[1];
    expect(head, push.text).toBeTruthy();

    // GitHub (the fake) saw bob push, with his token, a commit authored by him
    const pushes = fake.pushes(O, R);
    expect(pushes, push.text).toHaveLength(1);
    expect(pushes[0]!.login).toBe('bob');
    expect(pushes[0]!.updates).toEqual([expect.objectContaining({ ref: `refs/heads/${BRANCH}`, after: head })]);
    const commit = fake.commitInfo(O, R, head!)!;
    expect(commit.author).toMatchObject({ name: 'Bob Builder', email: `${bob.id}+bob@users.noreply.github.com` });
    expect(commit.committer).toMatchObject({ name: 'Bob Builder', email: `${bob.id}+bob@users.noreply.github.com` });
    // his sign-in's token had (nearly) expired: Berth refreshed it to answer git
    expect(fake.refreshes).toContain('bob');

    // GitHub tells Berth about the push: it builds and records the commit, nothing restarts
    await hook('push', pushPayload({ fake, owner: O, repo: R, branch: BRANCH, after: head!, installationId }));
    await waitFor(
      'the check run of the pushed commit',
      async () => {
        const now = await berth.db.workspace.findUniqueOrThrow({ where: { id: ws.id } });
        if (now.state === 'failed') throw new Error(`workspace failed: ${now.stateReason}`);
        const run = fake.checkRuns(O, R, head!).find((c) => c.status === 'completed');
        if (run && run.conclusion !== 'success') throw new Error(`check run: ${run.conclusion} ${JSON.stringify(run.output)}`);
        return run && now.state === 'running' && now.runningSha === head;
      },
      240_000,
      500,
    );
    expect(await containersOf()).toEqual(before);
    // the same shell is still there, in the same checkout
    expect((await term.run('cat bob.txt && git log -1 --format=%s')).text).toContain('Bob was here');
    const build = await berth.db.build.findFirstOrThrow({ where: { workspaceId: ws.id, sha: head! } });
    const log = (await berth.db.buildLogChunk.findMany({ where: { buildId: build.id }, orderBy: { id: 'asc' } })).map((c) => c.text).join('');
    expect(log).toContain('pushed from the workspace');

    // no GitHub token anywhere on the disk (the checkout, .git included) or in the services' environment
    term.socket.close();
    const web = before[0]!.id;
    const found = await execIn(web, 'grep -rl -e ghu_ -e ghr_ -e ghs_ /workspace /root /tmp 2>/dev/null; echo scanned');
    expect(found.trim()).toBe('scanned');
    const env = ((await docker.getContainer(web).inspect()).Config.Env ?? []).join('\n');
    expect(env).not.toMatch(/ghu_|ghr_|BERTH_GIT_HANDLE|GIT_CONFIG/);
  });

  it('two people in one workspace are two identities, each with their own shell history', async () => {
    const wes = fake.addUser('wes', { name: 'Wes Writer' });
    fake.setPermission(O, R, 'wes', 'write');
    const bobs = await terminalOf('bob');
    const wess = await terminalOf('wes');
    try {
      expect((await bobs.run('git var GIT_AUTHOR_IDENT')).text).toContain(`Bob Builder <${bob.id}+bob@users.noreply.github.com>`);
      expect((await wess.run('git var GIT_COMMITTER_IDENT')).text).toContain(`Wes Writer <${wes.id}+wes@users.noreply.github.com>`);
      expect((await bobs.run('echo "$HISTFILE"')).text).toContain('/workspace/.git/berth-history-bob');
    } finally {
      bobs.socket.close();
      wess.socket.close();
    }
  });

  it('rita (read) cannot push; a handle that is not a terminal’s gets nothing', async () => {
    // the fake GitHub's git refuses a reader's own token for a push, and takes a writer's
    const receive = (token: string) =>
      new Promise<number>((resolve, reject) => {
        const url = new URL(`${fake.url}/${O}/${R}.git/info/refs?service=git-receive-pack`);
        http
          .get(url, { headers: { authorization: `Basic ${Buffer.from(`x-access-token:${token}`).toString('base64')}` } }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          })
          .on('error', reject);
      });
    expect(await receive(fake.mintUserToken('rita'))).toBe(403);
    expect(await receive(fake.mintUserToken('bob'))).toBe(200);
    // Berth's credential endpoint answers only a live terminal's handle
    const ask = (body: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port: berth.port, method: 'POST', path: '/__berth/git-credential' }, (res) => {
          let text = '';
          res.on('data', (c) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        });
        req.on('error', reject);
        req.end(body);
      });
    const repo = new URL(fake.getRepo(O, R)!.cloneUrl);
    const request = `protocol=http\nhost=${repo.host}\npath=${repo.pathname.slice(1)}\n`;
    expect((await ask(request)).status).toBe(400);
    const forged = await ask(`handle=${'x'.repeat(43)}\n${request}`);
    expect(forged.status).toBe(403);
    expect(forged.body).not.toContain('password');
  });

  it('/berth delete of a disk with an unpushed commit lists it and deletes nothing; --force deletes', async () => {
    const term = await terminalOf('bob');
    const made = await term.run('printf "draft\\n" > draft.txt && git add draft.txt && git commit -q -m "Work in progress on the disk" && git rev-parse --short HEAD');
    expect(made.exit).toBe(0);
    term.socket.close();
    const short = /\b([0-9a-f]{7,12})\b/.exec(made.text.split('\n').find((l) => /^[0-9a-f]{7,12}\r?$/.test(l.trim())) ?? '')?.[1];
    expect(short, made.text).toBeTruthy();

    await hook('issue_comment', issueCommentPayload({ fake, owner: O, repo: R, issueNumber: PR, body: '/berth delete', user: 'bob', installationId }));
    const reply = await waitFor(
      'the reply that lists the unpushed commit',
      async () => fake.issueComments(O, R, PR).find((c) => c.body?.includes('was not deleted')),
      120_000,
      500,
    );
    expect(reply.body).toContain(`${short} Work in progress on the disk`);
    expect(reply.body).toContain('/berth delete --force');
    expect((await berth.db.workspace.findUniqueOrThrow({ where: { id: ws.id } })).state).toBe('running');

    await hook('issue_comment', issueCommentPayload({ fake, owner: O, repo: R, issueNumber: PR, body: '/berth delete --force', user: 'bob', installationId }));
    await waitFor('the forced deletion', async () => (await berth.db.workspace.findUniqueOrThrow({ where: { id: ws.id } })).state === 'deleted', 120_000, 500);
  });
});
