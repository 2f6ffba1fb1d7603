import { spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Redis } from 'ioredis';
import { ConfigurationError } from './errors.js';
import { portOpen } from './db/embedded.js';

/** BullMQ needs `maxRetriesPerRequest: null` on connections used by workers. */
export function createRedis(url: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: null });
}

/**
 * Without REDIS_URL: use a Redis already answering on localhost:6379, or start
 * `redis-server` with its data under the data folder.
 */
export async function findOrStartLocalRedis(dataDir: string): Promise<string> {
  if (await portOpen(6379)) return 'redis://127.0.0.1:6379';
  const port = 6389;
  if (await portOpen(port)) return `redis://127.0.0.1:${port}`;
  const dir = resolve(dataDir, 'redis');
  await mkdir(dir, { recursive: true });
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes'], {
    stdio: 'ignore',
    detached: true,
  });
  await new Promise<void>((ok, fail) => {
    child.once('error', () =>
      fail(new ConfigurationError('REDIS_URL is not set and redis-server is not installed: install Redis (apt-get install redis-server) or set REDIS_URL')),
    );
    child.once('spawn', () => ok());
  });
  child.unref();
  for (let i = 0; i < 50; i++) {
    if (await portOpen(port)) return `redis://127.0.0.1:${port}`;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new ConfigurationError('started redis-server but it does not answer on 127.0.0.1:6389');
}
