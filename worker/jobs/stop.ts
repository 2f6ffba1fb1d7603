import type { Job } from 'bullmq';
import type { WorkerDeps } from '../deps.js';
import type { WorkspaceJob } from '../../lib/queue.js';
import { transition } from '../../lib/workspaces.js';
import { dropCheckout } from '../source/checkout-handover.js';

/** Stops the containers and keeps the disk. */
export async function stopJob(deps: WorkerDeps, job: Job<WorkspaceJob>): Promise<void> {
  const ws = await deps.db.workspace.findUnique({ where: { id: job.data.workspaceId! } });
  if (!ws || ws.state === 'deleted' || ws.state === 'stopped') return;
  if (job.data.actor === 'idle') {
    // Someone used it between the reaper's look and now: it is not idle any more.
    if (ws.state !== 'running' || Date.now() - ws.lastActivityAt.getTime() < ws.idleTimeoutSec * 1000) return;
  }
  // The state first (conditionally), so the gateway stops sending traffic and a racing start
  // cannot report `running` on containers that are about to go.
  await transition(deps.db, deps.queues, ws.id, 'stopped', job.data.reason ?? 'stopped', job.data.actor ?? 'worker', { previewHost: null });
  await deps.runtime.stopServices(ws.id);
}

/** Removes containers, network and disk. Deletion is the only thing that destroys the disk. */
export async function deleteJob(deps: WorkerDeps, job: Job<WorkspaceJob>): Promise<void> {
  const ws = await deps.db.workspace.findUnique({ where: { id: job.data.workspaceId! } });
  if (!ws || ws.state === 'deleted') return;
  await deps.runtime.removeWorkspace(ws.id, ws.slug);
  await dropCheckout(ws.id);
  await transition(deps.db, deps.queues, ws.id, 'deleted', job.data.reason ?? 'deleted', job.data.actor ?? 'worker', { previewHost: null, seededAt: null, runningSha: null });
}
