import { Worker } from 'bullmq';
import type { Probot } from 'probot';
import { loadConfig, type BerthConfig } from '../lib/config.js';
import type { PrismaClient } from '../lib/db/client.js';
import { QUEUE, type BuildJob, type Queues, type WorkspaceJob } from '../lib/queue.js';
import { bootInfra, loadDotEnv } from '../lib/boot.js';
import { createProbotFor } from '../lib/github-app.js';
import { BerthError, ConfigurationError } from '../lib/errors.js';
import type { WorkerDeps } from './deps.js';
import type { Runtime } from './runtime/types.js';
import { DockerRuntime } from './runtime/docker.js';
import { buildJob } from './jobs/build.js';
import { startJob } from './jobs/start.js';
import { deleteJob, stopJob } from './jobs/stop.js';
import { statusJob } from './jobs/status.js';
import { reapIdleJob } from './jobs/reap-idle.js';
import { reconcileJob } from './jobs/reconcile.js';
import { KeyedMutex } from './mutex.js';

export interface StartWorkerOptions {
  config: BerthConfig;
  db: PrismaClient;
  queues: Queues;
  probot: Probot;
  runtime?: Runtime;
  log?: (msg: string) => void;
}

/** Consumes the build and workspace queues. Jobs on one workspace run one at a time. */
export async function startWorker(opts: StartWorkerOptions) {
  const runtime = opts.runtime ?? new DockerRuntime(undefined, opts.config.BERTH_QUEUE_PREFIX);
  try {
    await runtime.ping();
  } catch (err) {
    throw new ConfigurationError(`no Docker engine reachable (${process.env.DOCKER_HOST ?? '/var/run/docker.sock'}): ${(err as Error).message}. Start dockerd or set DOCKER_HOST.`);
  }
  const deps: WorkerDeps = { ...opts, runtime, log: opts.log ?? console.log };
  const lock = new KeyedMutex();
  const connection = opts.queues.connection;
  const concurrency = opts.config.BERTH_WORKER_CONCURRENCY;
  const builds = new Worker<BuildJob>(QUEUE.builds, (job) => buildJob(deps, job), { connection, concurrency, prefix: opts.queues.prefix });
  const workspaces = new Worker<WorkspaceJob>(
    QUEUE.workspaces,
    async (job) => {
      if (job.name === 'reap-idle') return void (await reapIdleJob(deps));
      if (job.name === 'reconcile') return void (await reconcileJob(deps));
      const run = { start: startJob, stop: stopJob, delete: deleteJob, status: statusJob }[job.name as 'start' | 'stop' | 'delete' | 'status'];
      if (!run) return;
      await lock.run(job.data.workspaceId ?? job.name, () => run(deps, job));
    },
    { connection, concurrency, prefix: opts.queues.prefix },
  );
  // Schedulers are idempotent upserts: every worker may declare them, Redis keeps one.
  await opts.queues.workspaces.upsertJobScheduler('reap-idle', { every: opts.config.BERTH_REAP_INTERVAL }, { name: 'reap-idle', data: {} });
  await opts.queues.workspaces.upsertJobScheduler('reconcile', { every: opts.config.BERTH_RECONCILE_INTERVAL }, { name: 'reconcile', data: {} });
  await opts.queues.enqueueWorkspace('reconcile', {}, { jobId: `reconcile-at-start-${Date.now()}` });
  for (const w of [builds, workspaces]) {
    w.on('failed', (job, err) => deps.log(`job ${job?.name} ${job?.id} failed: ${err.message}`));
    w.on('error', (err) => deps.log(`worker error: ${err.message}`));
  }
  return {
    async close() {
      await Promise.all([builds.close(), workspaces.close()]);
    },
  };
}

async function main() {
  loadDotEnv();
  const config = loadConfig();
  if (!config.appConfigured) throw new ConfigurationError('the worker needs APP_ID, PRIVATE_KEY (or PRIVATE_KEY_PATH) and WEBHOOK_SECRET');
  const infra = await bootInfra(config);
  const worker = await startWorker({ config, db: infra.db, queues: infra.queues, probot: createProbotFor(config) });
  console.log('[berth] worker started');
  const stop = async () => {
    await worker.close();
    await infra.close();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err) => {
    console.error(err instanceof BerthError ? `[berth] ${err.message}` : err);
    process.exit(1);
  });
}
