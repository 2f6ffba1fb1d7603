import type { Job } from 'bullmq';
import type { WorkerDeps } from '../deps.js';
import type { WorkspaceJob } from '../../lib/queue.js';
import { transition } from '../../lib/workspaces.js';

/**
 * `/berth status`: compares what the database says with what Docker runs and repairs the
 * record, then shows the result on GitHub.
 */
export async function statusJob(deps: WorkerDeps, job: Job<WorkspaceJob>): Promise<void> {
  const ws = await deps.db.workspace.findUnique({ where: { id: job.data.workspaceId! } });
  if (!ws) return;
  const containers = (await deps.runtime.status(ws.id)).filter((c) => c.service);
  const dead = containers.filter((c) => c.state !== 'running');
  const actor = job.data.actor ?? 'reconciler';
  if (ws.state === 'running' && (containers.length === 0 || dead.length > 0)) {
    const oom = dead.find((c) => c.oomKilled);
    const reason = oom
      ? `service ${oom.service} was killed: out of memory`
      : containers.length === 0
        ? 'its containers are gone'
        : `service ${dead[0]!.service} is ${dead[0]!.state}${dead[0]!.exitCode !== undefined ? ` (exit code ${dead[0]!.exitCode})` : ''}`;
    if (oom || dead.length) await transition(deps.db, deps.queues, ws.id, 'failed', reason, actor, { previewHost: null });
    else await transition(deps.db, deps.queues, ws.id, 'stopped', reason, actor, { previewHost: null });
    return;
  }
  if (ws.state === 'stopped' && containers.some((c) => c.state === 'running')) {
    await deps.runtime.stopServices(ws.id);
  }
  await deps.queues.enqueueReport({ workspaceId: ws.id });
}
