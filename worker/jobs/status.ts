import type { Job } from 'bullmq';
import type { WorkerDeps } from '../deps.js';
import type { WorkspaceJob } from '../../lib/queue.js';
import { repairRunning } from './reconcile.js';

/**
 * `/berth status`, and the reconciler's and the gateway's repair requests: compares what the
 * database says with what the engine runs and repairs the record (a running workspace whose
 * containers vanished is stopped, one that was OOM-killed is failed, a dead service is
 * restarted, a preview service that came back on another IP is followed; a stopped
 * workspace's leftover containers are stopped), then shows the result on GitHub.
 */
export async function statusJob(deps: WorkerDeps, job: Job<WorkspaceJob>): Promise<void> {
  const ws = await deps.db.workspace.findUnique({ where: { id: job.data.workspaceId! } });
  if (!ws) return;
  const actor = job.data.actor ?? 'reconciler';
  if (ws.state === 'running') {
    await repairRunning(deps, ws, actor);
  } else if (ws.state === 'stopped' || ws.state === 'failed') {
    if ((await deps.runtime.status(ws.id)).some((c) => c.state !== 'exited' && c.state !== 'gone')) await deps.runtime.stopServices(ws.id);
  }
  await deps.queues.enqueueReport({ workspaceId: ws.id });
}
