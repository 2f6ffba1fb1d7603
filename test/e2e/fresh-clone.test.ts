import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeGitHub, type FakeGitHub } from '../fakes/github.js';
import { removeDockerObjects } from '../helpers/berth.js';
import { waitFor } from '../helpers/http.js';
import { portOpen } from '../../lib/db/embedded.js';

const run = promisify(execFile);
const asRoot = process.getuid?.() === 0;

/**
 * The README's start command as a newcomer runs it on a fresh machine, as root, from a clone
 * in a 0700 home (like /root/berth): the embedded PostgreSQL's `postgres` user can enter
 * neither the clone's node_modules nor its .data, so the binaries are copied to and the
 * database kept in BERTH_SYSTEM_DIR (here a temporary stand-in for /var/lib/berth). A second
 * start after the database folder went away stops with a message instead of an empty database.
 */
describe.skipIf(!asRoot)('npm start from a clone in a 0700 home, as root', () => {
  let fake: FakeGitHub;
  let home: string;
  let system: string;
  let clone: string;
  const port = 30_000 + Math.floor(Math.random() * 20_000);
  const instance = `h3fresh${randomBytes(3).toString('hex')}`;

  beforeAll(async () => {
    fake = await startFakeGitHub();
    home = await mkdtemp('/tmp/h3-root-home-');
    await chmod(home, 0o700); // as /root
    system = await mkdtemp('/tmp/h3-var-lib-berth-');
    await chmod(system, 0o755); // as /var/lib/berth would be made
    clone = join(home, 'berth');
    await run('git', ['clone', '--quiet', process.cwd(), clone]);
    // `npm install` in the clone, without the registry: the same packages, hard-linked where
    // the file system allows (they sit inside the 0700 home either way, which is the point)
    await run('cp', ['-al', join(process.cwd(), 'node_modules'), join(clone, 'node_modules')]).catch(() =>
      run('cp', ['-a', join(process.cwd(), 'node_modules'), join(clone, 'node_modules')]),
    );
  }, 300_000);

  const children: ChildProcess[] = [];

  afterAll(async () => {
    // a failed assertion leaves Berth (and its PostgreSQL) running: stop them as Ctrl-C would
    for (const c of children.filter((c) => c.exitCode === null && c.signalCode === null)) {
      const gone = new Promise((r) => c.once('exit', r));
      process.kill(-c.pid!, 'SIGTERM');
      await gone;
    }
    await waitFor('the embedded PostgreSQL to stop', async () => !(await portOpen(54329)), 30_000).catch(() => {});
    await removeDockerObjects(instance);
    await fake?.close();
    await rm(home, { recursive: true, force: true });
    await rm(system, { recursive: true, force: true });
  }, 60_000);

  function start() {
    const child = spawn('npm', ['start'], {
      cwd: clone,
      env: {
        PATH: process.env.PATH!,
        HOME: home,
        APP_ID: String(fake.appId),
        PRIVATE_KEY: fake.privateKey,
        WEBHOOK_SECRET: fake.webhookSecret,
        GHE_HOST: fake.host,
        GHE_PROTOCOL: 'http',
        PORT: String(port),
        BERTH_QUEUE_PREFIX: instance,
        BERTH_SYSTEM_DIR: system,
        // VS Code as installed for this checkout's tests: the newcomer's first start would fetch it
        BERTH_CODE_SERVER_DIR: join(process.cwd(), '.data', 'code-server'),
        REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // its own process group: SIGTERM reaches npm and Berth as systemd would send it
    });
    children.push(child);
    let output = '';
    child.stdout!.on('data', (d) => (output += d));
    child.stderr!.on('data', (d) => (output += d));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    return { child, output: () => output, exited, stop: () => process.kill(-child.pid!, 'SIGTERM') };
  }

  it('answers, with the embedded PostgreSQL run from a reachable copy and every migration applied; refuses an emptied database folder', async () => {
    expect(await portOpen(54329)).toBe(false); // else another Berth's embedded PostgreSQL would answer for this one
    const berth = start();
    try {
      await waitFor('Berth to answer /healthz', async () => {
        if (berth.child.exitCode !== null) throw new Error(`npm start exited with ${berth.child.exitCode}`);
        return (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => null))?.ok;
      }, 240_000, 500);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${berth.output()}`);
    }
    const copy = (await readdir(system)).find((n) => n.startsWith('pg-'));
    expect(copy, berth.output()).toBeDefined();
    expect(berth.output()).toContain(`copying the PostgreSQL binaries to ${join(system, copy!)}`);
    expect(berth.output()).toContain(`keeping the embedded database in ${join(system, 'postgres')}`);
    expect(existsSync(join(system, 'postgres', 'PG_VERSION'))).toBe(true);
    const marker = JSON.parse(await readFile(join(clone, '.data', 'embedded-postgres.json'), 'utf8'));
    expect(marker.dataDir).toBe(join(system, 'postgres'));

    const migrations = (await readdir(join(clone, 'prisma', 'migrations'), { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name);
    const db = new pg.Client({ connectionString: 'postgresql://berth:berth@127.0.0.1:54329/berth' });
    await db.connect();
    const applied = (await db.query<{ migration_name: string }>('SELECT migration_name FROM "_prisma_migrations" WHERE finished_at IS NOT NULL')).rows.map((r) => r.migration_name);
    await db.end();
    expect(applied.sort()).toEqual(migrations.sort());
    // PostgreSQL, Redis and Docker all answer (each check has 2 s; a busy machine may need a second try)
    let readyz = '';
    await waitFor('/readyz to say ready', async () => {
      const r = await fetch(`http://127.0.0.1:${port}/readyz`);
      readyz = await r.text();
      return r.status === 200;
    }, 20_000, 1_000).catch((err) => {
      throw new Error(`${err.message}: ${readyz}`);
    });

    berth.stop();
    await berth.exited;
    await waitFor('the embedded PostgreSQL to stop', async () => !(await portOpen(54329)), 30_000);

    // The database folder is gone (an unmounted disk, a wiped /var/lib): Berth says so and stops.
    await rename(join(system, 'postgres'), join(system, 'postgres.moved'));
    const again = start();
    expect(await again.exited).not.toBe(0);
    expect(again.output()).toMatch(/holds no database now \(the folder is missing.*Berth does not start on an empty database where one existed/);
    expect(existsSync(join(system, 'postgres', 'PG_VERSION'))).toBe(false);
    expect(await portOpen(54329)).toBe(false);
  }, 600_000);

  it('tells an ordinary user exactly what to install or start, before anything else', async () => {
    // `nobody` can neither install packages nor reach a Docker engine
    const res = await run('runuser', ['-u', 'nobody', '--', 'bash', join(process.cwd(), 'scripts', 'host-setup.sh')], {
      cwd: '/',
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
    }).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('Berth cannot start yet; as nobody (not root) it cannot set up the host itself');
    expect(res.stderr).toMatch(/Docker/);
    expect(res.stderr).toContain('then run npm start again');
  });
});
