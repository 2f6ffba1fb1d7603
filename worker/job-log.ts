import type { Job, Worker } from 'bullmq';
import type { PrismaClient } from '../lib/db/client.js';
import { reasonOf, type Logger } from '../lib/log.js';

/** Jobs that run every few seconds on a schedule: their lines are debug, or they would drown the rest. */
const PERIODIC = new Set(['reap-idle', 'reconcile']);

/**
 * One line when a job starts and one when it ends, for every job of `worker`: which
 * workspace, repository, branch and commit, the step it was at, how long it took and how it
 * ended; a failure says what Berth does next. Written from BullMQ's events, so the job bodies
 * stay free of logging.
 */
export function logJobs(worker: Worker, db: PrismaClient, logger: Logger): void {
  const log = logger.child({ component: 'worker', queue: worker.name });
  const levelOf = (job: Job) => (PERIODIC.has(job.name) ? 'debug' : 'info');
  const report = (job: Job, fields: Record<string, unknown>, message: string, level: 'debug' | 'info' | 'warn' | 'error') => {
    if (!log.isLevelEnabled(level)) return;
    void describe(db, job)
      .catch((err) => ({ lookupFailed: reasonOf(err) }))
      .then((about) => {
        // a build or start that ran to its end may have failed the workspace (a migration that
        // failed, a service that would not start): the log says so, not "succeeded"
        if (fields.outcome === 'succeeded' && ['build', 'start'].includes(job.name) && (about as { state?: string }).state === 'failed') {
          fields = { ...fields, outcome: 'failed', next: 'the workspace stays failed until a push, /berth refresh or /berth rebuild' };
          message = `${job.name} failed the workspace: ${(about as { step?: string }).step ?? ''}`;
          level = 'warn';
        }
        log[level]({ job: job.name, jobId: job.id, attempt: job.attemptsMade + (fields.outcome === 'started' ? 1 : 0), ...about, ...fields }, message);
      });
  };

  worker.on('active', (job) => report(job, { outcome: 'started' }, `${job.name} started`, levelOf(job)));
  worker.on('completed', (job) => report(job, { outcome: 'succeeded', durationMs: durationOf(job) }, `${job.name} finished`, levelOf(job)));
  worker.on('failed', (job, err) => {
    if (!job) return void log.error({ error: reasonOf(err) }, 'a job failed before BullMQ could read it');
    const next = whatNext(job, err);
    report(job, { outcome: next.retry ? 'retrying' : 'failed', durationMs: durationOf(job), error: reasonOf(err), next: next.text }, `${job.name} failed: ${reasonOf(err)}`, next.retry ? 'warn' : 'error');
  });
}

const durationOf = (job: Job) => (job.processedOn ? (job.finishedOn ?? Date.now()) - job.processedOn : undefined);

/** What happens after a failed job: the same rules worker/main.ts applies (BullMQ's retries, then failForGood). */
function whatNext(job: Job, err: Error): { retry: boolean; text: string } {
  const attempts = job.opts.attempts ?? 1;
  const stalled = /stalled/i.test(err.message);
  if (job.attemptsMade < attempts && !stalled) return { retry: true, text: `runs again (attempt ${job.attemptsMade + 1} of ${attempts})` };
  if (['build', 'start'].includes(job.name) && (job.data as { workspaceId?: string }).workspaceId) {
    return { retry: false, text: 'the workspace is marked failed (push again or comment /berth refresh)' };
  }
  if (PERIODIC.has(job.name)) return { retry: false, text: 'runs again on its schedule' };
  return { retry: false, text: 'nothing more; the reconciler compares Docker with the database on its next run' };
}

/** The workspace a job is about, in the words of a person reading the log. */
async function describe(db: PrismaClient, job: Job): Promise<Record<string, unknown>> {
  const data = job.data as { workspaceId?: string; buildId?: string; actor?: string };
  if (!data.workspaceId) return {};
  const ws = await db.workspace.findUnique({
    where: { id: data.workspaceId },
    select: { slug: true, branch: true, state: true, stateReason: true, headSha: true, runningSha: true, repository: { select: { fullName: true } } },
  });
  if (!ws) return { workspaceId: data.workspaceId };
  const build = data.buildId ? await db.build.findUnique({ where: { id: data.buildId }, select: { sha: true, step: true, state: true } }) : null;
  return {
    workspace: ws.slug,
    workspaceId: data.workspaceId,
    repository: ws.repository.fullName,
    branch: ws.branch,
    commit: (build?.sha ?? ws.runningSha ?? ws.headSha)?.slice(0, 12),
    step: build?.step ?? ws.stateReason,
    state: ws.state,
    ...(data.actor ? { actor: data.actor } : {}),
  };
}
