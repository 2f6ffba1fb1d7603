import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeGitHub, type FakeGitHub } from '../fakes/github.js';
import { pushPayload, sendWebhook } from '../fakes/webhooks.js';
import { sampleAppFiles } from '../fixtures/sample-app.js';
import { getWithHost, notYetWhileUnreachable, waitFor } from '../helpers/http.js';
import { removeDockerObjects } from '../helpers/berth.js';
import { portOpen } from '../../lib/db/embedded.js';

/**
 * `npm start` as a newcomer runs it: no DATABASE_URL (embedded PostgreSQL under the data
 * folder), web app and worker in one process, migrations applied at start.
 */
describe('npm start', () => {
  let fake: FakeGitHub;
  let dataDir: string;
  const children: ChildProcess[] = [];
  const port = 30_000 + Math.floor(Math.random() * 20_000);

  beforeAll(async () => {
    fake = await startFakeGitHub();
    dataDir = await mkdtemp(join(tmpdir(), 'berth-data-'));
    await chmod(dataDir, 0o755); // like a folder in a clone; PostgreSQL runs as its own user
  });

  afterAll(async () => {
    // npm start must shut down cleanly on SIGTERM, embedded PostgreSQL included
    await Promise.all(children.filter((c) => c.exitCode === null && c.signalCode === null).map((c) => new Promise((r) => (c.once('exit', r), stop(c)))));
    // the stopped Berth leaves its workspace behind: remove what carries its instance label
    await removeDockerObjects(`npmstart${port}`);
    await fake?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  const stop = (c: ChildProcess) => process.kill(-c.pid!, 'SIGTERM');

  function start(env: Record<string, string>) {
    const child = spawn('npm', ['start'], {
      env: { PATH: process.env.PATH!, HOME: process.env.HOME!, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      // its own process group, so a signal reaches npm and Berth as Ctrl-C or systemd would send it
      detached: true,
    });
    let output = '';
    child.stdout!.on('data', (d) => (output += d));
    child.stderr!.on('data', (d) => (output += d));
    children.push(child);
    return { child, output: () => output, exited: new Promise<number | null>((r) => child.once('exit', (code) => r(code))) };
  }

  it('says exactly which variable is wrong', async () => {
    const run = start({ APP_ID: '1', PRIVATE_KEY: 'nope', WEBHOOK_SECRET: 'x', PORT: 'eighty' });
    expect(await run.exited).not.toBe(0);
    expect(run.output()).toMatch(/PORT: /);
  });

  it('starts with an embedded PostgreSQL, builds a pushed branch, and stops cleanly on SIGTERM', async () => {
    const installationId = fake.addInstallation({ login: 'acme' }).id;
    const repo = `site${port}`;
    fake.createRepo('acme', repo, { installationId });
    const run = start({
      APP_ID: String(fake.appId),
      PRIVATE_KEY: fake.privateKey,
      WEBHOOK_SECRET: fake.webhookSecret,
      GHE_HOST: fake.host,
      GHE_PROTOCOL: 'http',
      PORT: String(port),
      BERTH_DATA_DIR: dataDir,
      BERTH_QUEUE_PREFIX: `npmstart${port}`,
      REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      LOG_LEVEL: process.env.NPMSTART_LOG ?? 'error',
    });
    await waitFor('Berth to answer /healthz', () => notYetWhileUnreachable(async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).ok), 90_000, 500).catch((err) => {
      throw new Error(`${err.message}\n${run.output()}`);
    });
    expect(run.output()).toContain('embedded PostgreSQL');
    expect(run.output()).toContain('applied migrations: 20261122000000_init');

    const sha = await fake.pushFiles('acme', repo, 'main', sampleAppFiles());
    const res = await sendWebhook(`http://127.0.0.1:${port}/api/github/webhooks`, 'push', pushPayload({ fake, owner: 'acme', repo, branch: 'main', after: sha, installationId }), fake.webhookSecret);
    expect(res.status).toBe(200);
    const page = await waitFor('the preview', async () => {
      const r = await getWithHost(port, `main-${repo}.localhost:${port}`);
      return r.status === 200 ? r : null;
    }).catch((err) => {
      throw new Error(`${err.message}\n${run.output()}`);
    });
    expect(page.body).toContain('Hello from Berth sample v1');

    stop(run.child);
    await run.exited;
    await waitFor('the embedded PostgreSQL to stop', async () => !(await portOpen(54329)), 20_000);
  });
});
