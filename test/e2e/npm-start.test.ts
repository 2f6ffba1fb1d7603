import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
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

/** A JSON log line of Berth (pino), or null for anything else on its output. */
type LogLine = Record<string, unknown> & { msg: string; level: number };
const logLines = (output: string): LogLine[] =>
  output.split('\n').flatMap((l) => {
    if (!l.startsWith('{')) return [];
    try {
      return [JSON.parse(l) as LogLine];
    } catch {
      return [];
    }
  });

/** Command lines of the processes in a process group (npm and what it started). */
const processGroup = (pgid: number) =>
  readdirSync('/proc').flatMap((pid) => {
    if (!/^\d+$/.test(pid)) return [];
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const group = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
      return group === pgid ? [readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim()] : [];
    } catch {
      return [];
    }
  });

/**
 * `npm start` as a newcomer runs it: the compiled dist/ (built when missing or stale), no
 * DATABASE_URL (embedded PostgreSQL under the data folder), web app and worker in one
 * process, migrations applied at start, JSON log lines when its output is not a terminal.
 */
describe('npm start', () => {
  let fake: FakeGitHub;
  let dataDir: string;
  const children: ChildProcess[] = [];
  const port = 30_000 + Math.floor(Math.random() * 20_000);

  beforeAll(async () => {
    // what `npm start` does first (scripts/ensure-build.mjs): here, so its minute of tsc is not the test's
    const build = spawn('node', ['scripts/ensure-build.mjs'], { stdio: 'inherit' });
    expect(await new Promise((r) => build.once('exit', r))).toBe(0);
    fake = await startFakeGitHub();
    dataDir = await mkdtemp(join(tmpdir(), 'berth-data-'));
    await chmod(dataDir, 0o755); // like a folder in a clone; PostgreSQL runs as its own user
  }, 600_000);

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

  it('runs the built dist/ with an embedded PostgreSQL, builds a pushed branch, logs it as JSON, and stops cleanly on SIGTERM', async () => {
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
      LOG_LEVEL: process.env.NPMSTART_LOG ?? 'info',
    });
    await waitFor('Berth to answer /healthz', () => notYetWhileUnreachable(async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).ok), 240_000, 500).catch((err) => {
      throw new Error(`${err.message}\n${run.output()}`);
    });
    // the compiled code runs, not TypeScript through tsx (in a tree others edit meanwhile, npm start may have built again)
    const commands = processGroup(run.child.pid!);
    expect(commands.some((c) => /^node .*dist\/app\/main\.js$/.test(c) || c === 'node dist/app/main.js'), commands.join('\n')).toBe(true);
    expect(commands.some((c) => c.includes('tsx')), commands.join('\n')).toBe(false);
    // its output is a pipe: every line Berth writes is JSON (Probot's included)
    const boot = logLines(run.output());
    expect(boot.map((l) => l.msg)).toEqual(expect.arrayContaining([expect.stringContaining('embedded PostgreSQL'), expect.stringContaining('applied migrations: 20261122000000_init')]));
    for (const l of boot) expect(typeof l.time === 'string' && typeof l.level === 'number', JSON.stringify(l)).toBe(true);

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

    // the log of the push: each job's start and end with workspace, repository, branch, commit,
    // step, duration and outcome, and every state change
    const slug = `main-${repo}`;
    const about = { workspace: slug, repository: `acme/${repo}`, branch: 'main', commit: sha.slice(0, 12) };
    const jobEnd = (job: string): LogLine | undefined => logLines(run.output()).find((l) => l.job === job && l.outcome === 'succeeded' && l.workspace === slug);
    const buildEnd = await waitFor('the build job\'s last line', async () => jobEnd('build'), 30_000);
    const startEnd = await waitFor('the start job\'s last line', async () => jobEnd('start'), 30_000);
    for (const line of [buildEnd, startEnd]) {
      expect(line).toMatchObject(about);
      expect(line.durationMs).toEqual(expect.any(Number));
      expect(line.step).toEqual(expect.any(String));
      expect(line.msg).toMatch(/finished/);
    }
    expect(buildEnd.durationMs as number).toBeGreaterThan(0);
    expect(logLines(run.output()).find((l) => l.job === 'build' && l.outcome === 'started')).toMatchObject(about);
    const changes = logLines(run.output()).filter((l) => l.workspace === slug && l.to).map((l) => `${l.from}→${l.to}`);
    expect(changes).toEqual(expect.arrayContaining(['queued→building', 'building→starting', 'starting→running']));
    expect(logLines(run.output()).find((l) => l.to === 'running' && l.workspace === slug)).toMatchObject({ ...about, actor: expect.any(String), reason: expect.any(String) });
    // nothing secret in the log
    expect(run.output()).not.toContain(fake.webhookSecret);
    expect(run.output()).not.toContain(fake.privateKey.split('\n')[1]!);

    stop(run.child);
    await run.exited;
    await waitFor('the embedded PostgreSQL to stop', async () => !(await portOpen(54329)), 20_000);
  }, 600_000);
});
