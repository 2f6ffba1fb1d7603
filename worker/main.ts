import { Worker, type Job } from 'bullmq';
import type { Probot } from 'probot';
import { loadConfig, type BerthConfig } from '../lib/config.js';
import type { PrismaClient } from '../lib/db/client.js';
import { QUEUE, hostQueueName, type BuildJob, type Queues, type WorkspaceJob } from '../lib/queue.js';
import { bootInfra, loadDotEnv } from '../lib/boot.js';
import { createProbotFor } from '../lib/github-app.js';
import { ConfigurationError, isBackendUnavailable } from '../lib/errors.js';
import { closeOnSignals, runAsMain } from '../lib/process.js';
import type { WorkerDeps } from './deps.js';
import type { Runtime } from './runtime/types.js';
import { DockerRuntime } from './runtime/docker.js';
import { buildJob } from './jobs/build.js';
import { startJob } from './jobs/start.js';
import { deleteJob, stopJob } from './jobs/stop.js';
import { statusJob } from './jobs/status.js';
import { baseDiskJob } from './jobs/base-disk.js';
import { resetJob } from './jobs/reset.js';
import { reapIdleJob } from './jobs/reap-idle.js';
import { reconcileJob } from './jobs/reconcile.js';
import { warmPoolJob } from './jobs/warm-pool.js';
import { KeyedMutex } from './mutex.js';
import { startHostHeartbeat } from './hosts.js';
import { placeJob } from './jobs/place.js';
import { Interrupts } from './interrupts.js';
import { transition } from '../lib/workspaces.js';
import { attachLogger, createLogger, loggerSettingsFromEnv, sentences, type Logger } from '../lib/log.js';
import { logJobs } from './job-log.js';
import { startHostAgent } from './agent/server.js';
import { DockerWorkspaceAccess } from './runtime/docker-access.js';

export interface StartWorkerOptions {
  config: BerthConfig;
  db: PrismaClient;
  queues: Queues;
  probot: Probot;
  runtime?: Runtime;
  log?: (msg: string) => void;
  /** Berth's logger (lib/log.ts); default: one made from LOG_LEVEL / LOG_FORMAT */
  logger?: Logger;
}

/** Consumes the build and workspace queues. Jobs on one workspace run one at a time. */
export async function startWorker(opts: StartWorkerOptions) {
  const runtime = opts.runtime ?? new DockerRuntime(undefined, opts.config.BERTH_QUEUE_PREFIX, { stopGraceMs: opts.config.BERTH_STOP_GRACE });
  try {
    await runtime.ping();
  } catch (err) {
    throw new ConfigurationError(`${(err as Error).message}. Start the Docker engine (dockerd) or set DOCKER_HOST.`);
  }
  const logger = opts.logger ?? createLogger(loggerSettingsFromEnv(process.env, opts.config.LOG_LEVEL));
  attachLogger(opts.db, logger);
  const interrupts = new Interrupts();
  const deps: WorkerDeps = { ...opts, runtime, log: opts.log ?? sentences(logger), interrupts };
  // issue 18: this worker's host in the hosts table, its heartbeat, and the queues it consumes
  const hosting = await startHostHeartbeat(deps, { name: opts.config.BERTH_HOST_NAME, url: opts.config.BERTH_HOST_URL, labels: opts.config.BERTH_HOST_LABELS, maxRunning: opts.config.BERTH_MAX_RUNNING });
  deps.host = hosting.host;
  const mine = opts.queues.forHost(hosting.host.name);
  const queueOf = (base: string) => hostQueueName(base, hosting.host.name);
  const lock = new KeyedMutex();
  const connection = opts.queues.connection;
  const concurrency = opts.config.BERTH_WORKER_CONCURRENCY;
  // A worker that dies stops renewing its jobs' locks; another worker takes them over once the
  // lock expired (BullMQ's stalled-job check), and the job runs again from the start.
  const locking = { lockDuration: opts.config.BERTH_JOB_LOCK_TIMEOUT, stalledInterval: opts.config.BERTH_JOB_LOCK_TIMEOUT };
  const builds = new Worker<BuildJob>(queueOf(QUEUE.builds), (job) => outlastOutage(deps, job, () => buildJob(deps, job)), { connection, concurrency, prefix: opts.queues.prefix, ...locking });
  const workspaces = new Worker<WorkspaceJob>(
    queueOf(QUEUE.workspaces),
    async (job) => {
      if (job.name === 'reap-idle') return void (await reapIdleJob(deps));
      if (job.name === 'reconcile') return void (await reconcileJob(deps));
      const run = { start: startJob, stop: stopJob, delete: deleteJob, status: statusJob, 'base-disk': baseDiskJob, reset: resetJob }[job.name as 'start' | 'stop' | 'delete' | 'status' | 'base-disk' | 'reset'];
      if (!run) return;
      // A stop or delete wins over a start that only waits for VS Code: that wait ends now
      // instead of holding the workspace's lock until the IDE answers (BERTH_IDE_TIMEOUT).
      // Not a delete that may be refused (unsaved work): it leaves the workspace running.
      // a base disk is prepared beside its default branch's workspace, not in its way (one at a time)
      const key = job.name === 'base-disk' ? 'base-disk' : (job.data.workspaceId ?? job.name);
      const interrupting = Boolean(job.data.workspaceId) && ((job.name === 'stop' && job.data.actor !== 'idle') || (job.name === 'delete' && !job.data.refuseIfUnsaved));
      if (interrupting) interrupts.interrupt(key, `the workspace is being ${job.name === 'stop' ? 'stopped' : 'deleted'}`);
      await lock.run(key, () => {
        if (interrupting) interrupts.settle(key);
        return outlastOutage(deps, job, () => run(deps, job));
      });
    },
    { connection, concurrency, prefix: opts.queues.prefix, ...locking },
  );
  // The reaper, the reconciler and idle stops have a worker of their own: however long the
  // workspace jobs take (a migrate up to BERTH_TASK_TIMEOUT, a build up to BERTH_BUILD_TIMEOUT),
  // idle workspaces are stopped and drift is repaired. An idle stop still takes its workspace's lock.
  const maintenance = new Worker<WorkspaceJob>(
    queueOf(QUEUE.maintenance),
    async (job) => {
      if (job.name === 'reap-idle') return void (await reapIdleJob(deps));
      if (job.name === 'reconcile') return void (await reconcileJob(deps));
      if (job.name === 'stop') await lock.run(job.data.workspaceId!, () => outlastOutage(deps, job, () => stopJob(deps, job)));
      if (job.name === 'warm') await warmPoolJob(deps, job);
    },
    { connection, concurrency: MAINTENANCE_CONCURRENCY, prefix: opts.queues.prefix, ...locking },
  );
  // Workspaces with no host yet: every worker places them (worker/jobs/place.ts).
  const placement = new Worker<BuildJob>(QUEUE.placement, (job) => outlastOutage(deps, job, () => placeJob(deps, job)), { connection, concurrency, prefix: opts.queues.prefix, ...locking });
  // Schedulers are idempotent upserts: every worker may declare them, Redis keeps one. A Redis
  // that restarted without its data has forgotten them, so each worker looks now and then and
  // declares a missing one again (not every time: an upsert restarts the schedule's clock).
  const schedules = { 'reap-idle': opts.config.BERTH_REAP_INTERVAL, reconcile: opts.config.BERTH_RECONCILE_INTERVAL };
  const declareSchedulers = async (onlyMissing: boolean) => {
    for (const [name, every] of Object.entries(schedules)) {
      if (onlyMissing && (await mine.maintenance.getJobScheduler(name))) continue;
      await mine.maintenance.upsertJobScheduler(name, { every }, { name, data: {} });
      if (onlyMissing) deps.log(`job scheduler ${name} was gone (Redis lost its data?); declared it again`);
    }
  };
  await declareSchedulers(false);
  // Berth before the maintenance queue scheduled these on the workspaces queue.
  for (const name of Object.keys(schedules)) await opts.queues.workspaces.removeJobScheduler(name).catch(() => false);
  const schedulerCheck = setInterval(() => void declareSchedulers(true).catch(() => {}), Math.min(...Object.values(schedules), 60_000));
  schedulerCheck.unref();
  await mine.maintenance.add('reconcile', {}, { jobId: `reconcile-at-start-${Date.now()}` });
  for (const w of [builds, workspaces, maintenance, placement]) {
    logJobs(w, opts.db, logger);
    w.on('failed', (job, err) => {
      if (job) void failForGood(deps, job, err).catch((e) => deps.log(`could not mark ${job.data.workspaceId} failed: ${(e as Error).message}`));
    });
    // mostly a lost Redis connection: BullMQ reconnects by itself and the jobs wait
    w.on('error', (err) => logger.warn({ component: 'worker', queue: w.name, error: err.message, next: 'reconnects by itself' }, `queue ${w.name}: ${err.message}`));
  }
  // An OOM-killed service fails its workspace at once instead of at the next reconcile.
  const watcher = runtime.watch?.((death) => {
    if (!death.oomKilled) return; // other deaths: the restart policy and the reconciler handle them
    void opts.queues
      .enqueueWorkspace('status', { workspaceId: death.workspaceId, actor: 'reconciler', reason: `service ${death.service} was killed: out of memory` }, { deduplication: { id: `status:${death.workspaceId}` } })
      .catch(() => {});
  }, deps.log);
  // issue 18: this host's agent serves its workspaces (previews, IDE, terminals) to the web
  // process, which cannot reach container addresses on another machine (worker/agent/server.ts)
  const agent = opts.config.BERTH_HOST_URL
    ? await startHostAgent(opts.config.BERTH_HOST_URL, { secret: opts.config.BERTH_HOST_SECRET!, instance: opts.config.BERTH_QUEUE_PREFIX, access: new DockerWorkspaceAccess(), log: deps.log })
    : undefined;
  return {
    async close() {
      await agent?.close();
      clearInterval(schedulerCheck);
      hosting.stop();
      watcher?.close();
      await Promise.all([builds.close(), workspaces.close(), maintenance.close(), placement.close()]);
    },
  };
}

/** the reconciler, the reaper and one idle stop at a time: none waits for another */
const MAINTENANCE_CONCURRENCY = 3;

/** how long a job hit by a PostgreSQL outage waits for it before it fails for good */
const OUTAGE_WAIT_MS = 5 * 60_000;
/** times a job runs again after outages, so one that fails on every run cannot loop */
const OUTAGE_RERUNS = 3;

/**
 * Runs a workspace's job; when it fails because PostgreSQL is restarting (its writes cannot
 * land, so it could not even record a failure), waits for the database and runs the job again
 * from the top, as a worker that died would. BullMQ's own retries are over within seconds
 * (builds get none), and a job failing for good leaves its workspace building or starting
 * until the reconciler gives up on it; a restart of PostgreSQL must cost a user nothing.
 * Redis needs none of this: the worker's connection waits for it (maxRetriesPerRequest null).
 */
async function outlastOutage(deps: WorkerDeps, job: Job<BuildJob | WorkspaceJob>, run: () => Promise<void>): Promise<void> {
  for (let rerun = 0; ; rerun++) {
    try {
      return await run();
    } catch (err) {
      if (rerun >= OUTAGE_RERUNS || !isBackendUnavailable(err)) throw err;
      deps.log(`job ${job.name} ${job.id} of workspace ${job.data.workspaceId}: PostgreSQL is not reachable (${reasonOf(err)}); running it again once it is back`);
      if (!(await databaseBack(deps, OUTAGE_WAIT_MS))) throw err;
      if (job.name === 'start') {
        // A start that got as far as `starting` left the workspace there: the next run takes it
        // from that state (a wake-up would otherwise only start a `stopped` one, and return).
        const now = await deps.db.workspace.findUnique({ where: { id: job.data.workspaceId! }, select: { state: true } });
        if (now?.state === 'starting') job.data = { ...job.data, onlyIf: ['starting'] };
      }
    }
  }
}

async function databaseBack(deps: WorkerDeps, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await deps.db.$queryRaw`SELECT 1`.then(() => true, () => false)) return true;
    await new Promise((r) => setTimeout(r, 1000));
  }
  return false;
}

/** Prisma's messages start with the call that failed and end with why */
const reasonOf = (err: unknown) => String((err as Error)?.message ?? err).trim().split('\n').pop()!.slice(0, 200);

/**
 * A build or start job that BullMQ gave up on (its worker died more often than BullMQ retries
 * stalled jobs, or it threw on its last attempt) must not leave its workspace building or
 * starting forever.
 */
async function failForGood(deps: WorkerDeps, job: Job<BuildJob | WorkspaceJob>, err: Error) {
  const workspaceId = job.data.workspaceId;
  if (!workspaceId || !['build', 'start'].includes(job.name)) return;
  const attempts = job.opts.attempts ?? 1;
  if (job.attemptsMade < attempts && !/stalled/i.test(err.message)) return; // BullMQ retries it
  const why = /stalled/i.test(err.message) ? 'the worker running it stopped responding' : err.message;
  await transition(deps.db, deps.queues, workspaceId, 'failed', `${job.name} did not finish: ${why}; push again or comment /berth refresh`, 'worker', { previewHost: null }, {
    from: job.name === 'build' ? ['queued', 'building'] : ['starting'],
  });
}

async function main() {
  loadDotEnv();
  const config = loadConfig();
  if (!config.appConfigured) throw new ConfigurationError('the worker needs APP_ID, PRIVATE_KEY (or PRIVATE_KEY_PATH) and WEBHOOK_SECRET');
  const logger = createLogger(loggerSettingsFromEnv(process.env, config.LOG_LEVEL));
  const infra = await bootInfra(config, sentences(logger));
  const worker = await startWorker({ config, db: infra.db, queues: infra.queues, probot: createProbotFor(config, undefined, logger), logger });
  logger.info('worker started');
  closeOnSignals(async () => {
    await worker.close();
    await infra.close();
  });
}

runAsMain(import.meta.url, main);
