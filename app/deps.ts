import type { PrismaClient } from '../lib/db/client.js';
import type { BerthConfig } from '../lib/config.js';
import type { Queues } from '../lib/queue.js';

/** What the app's handlers need; built once in server.ts. */
export interface AppDeps {
  config: BerthConfig;
  db: PrismaClient;
  queues: Queues;
}
