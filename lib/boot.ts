import { existsSync } from 'node:fs';
import type { BerthConfig } from './config.js';
import { createPrisma, type PrismaClient } from './db/client.js';
import { startEmbeddedPostgres } from './db/embedded.js';
import { applyMigrations } from './db/migrate.js';
import { Queues } from './queue.js';
import { hostRouter } from './hosts/registry.js';
import { findOrStartLocalRedis } from './redis.js';
import { ConfigurationError } from './errors.js';

export interface Infra {
  db: PrismaClient;
  /** for the worker: waits out a Redis restart */
  queues: Queues;
  /** for the web app: fails at once while Redis is away (see Queues) */
  webQueues: Queues;
  databaseUrl: string;
  redisUrl: string;
  close(): Promise<void>;
}

/** Loads `.env` (written by Probot's setup page) without overriding the real environment. */
export function loadDotEnv(path = '.env') {
  if (existsSync(path)) process.loadEnvFile(path);
}

/**
 * Connects to (or starts) PostgreSQL and Redis and applies pending migrations. Without
 * DATABASE_URL an embedded PostgreSQL under BERTH_DATA_DIR is used; without REDIS_URL a
 * local Redis is found or started.
 */
export async function bootInfra(config: BerthConfig, log: (msg: string) => void = console.log): Promise<Infra> {
  let databaseUrl = config.DATABASE_URL;
  let stopPg: (() => Promise<void>) | undefined;
  if (!databaseUrl) {
    log(`DATABASE_URL is not set: starting an embedded PostgreSQL (data folder recorded in ${config.BERTH_DATA_DIR}/embedded-postgres.json)`);
    const pg = await startEmbeddedPostgres(config.BERTH_DATA_DIR, undefined, log, config.BERTH_SYSTEM_DIR);
    databaseUrl = pg.url;
    stopPg = pg.stop;
  }
  try {
    const ran = await applyMigrations(databaseUrl);
    if (ran.length) log(`applied migrations: ${ran.join(', ')}`);
  } catch (err) {
    throw new ConfigurationError(`cannot prepare the database (${redactUrl(databaseUrl)}): ${(err as Error).message}`);
  }
  let redisUrl = config.REDIS_URL;
  if (!redisUrl) {
    redisUrl = await findOrStartLocalRedis(config.BERTH_DATA_DIR);
    log(`REDIS_URL is not set: using ${redisUrl}`);
  }
  const db = createPrisma(databaseUrl);
  const connection = { url: redisUrl, maxRetriesPerRequest: null };
  const queues = new Queues(connection, config.BERTH_QUEUE_PREFIX);
  const webQueues = new Queues(connection, config.BERTH_QUEUE_PREFIX, { failFast: true });
  // issue 18: each workspace's jobs go to the queues of the host that holds its disk
  for (const q of [queues, webQueues]) q.routeBy(hostRouter(db));
  return {
    db,
    queues,
    webQueues,
    databaseUrl,
    redisUrl,
    async close() {
      await Promise.all([queues.close(), webQueues.close()]);
      await db.$disconnect();
      await stopPg?.();
    },
  };
}

export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
}
