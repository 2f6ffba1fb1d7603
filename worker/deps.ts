import type { Probot } from 'probot';
import type { BerthConfig } from '../lib/config.js';
import type { PrismaClient } from '../lib/db/client.js';
import type { Queues } from '../lib/queue.js';
import type { Runtime } from './runtime/types.js';

export interface WorkerDeps {
  config: BerthConfig;
  db: PrismaClient;
  queues: Queues;
  probot: Probot;
  runtime: Runtime;
  log: (msg: string) => void;
}
