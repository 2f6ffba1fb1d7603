import type { Probot } from 'probot';
import type { BerthConfig } from '../lib/config.js';
import type { PrismaClient } from '../lib/db/client.js';
import type { Queues } from '../lib/queue.js';
import type { Runtime } from './runtime/types.js';
import type { ThisHost } from './hosts.js';
import type { Interrupts } from './interrupts.js';

export interface WorkerDeps {
  config: BerthConfig;
  db: PrismaClient;
  queues: Queues;
  probot: Probot;
  runtime: Runtime;
  log: (msg: string) => void;
  /** the host this worker serves (issue 18); unset: jobs driven directly, every workspace is theirs */
  host?: ThisHost;
  /** a stop or delete cuts the workspace's interruptible waits short (the start's wait for VS Code) */
  interrupts?: Interrupts;
}
