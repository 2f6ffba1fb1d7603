import type { WorkerDeps } from '../deps.js';

/**
 * Stops running workspaces whose last preview or IDE request is older than their idle
 * timeout. Runs on a BullMQ job scheduler; the stop itself is a normal stop job, so it
 * serialises with anything else happening to the workspace.
 */
export async function reapIdleJob(deps: WorkerDeps): Promise<number> {
  const running = await deps.db.workspace.findMany({
    where: { state: 'running' },
    select: { id: true, lastActivityAt: true, idleTimeoutSec: true },
  });
  const now = Date.now();
  let stopped = 0;
  for (const ws of running) {
    const idleMs = now - ws.lastActivityAt.getTime();
    if (idleMs < ws.idleTimeoutSec * 1000) continue;
    await deps.queues.enqueueWorkspace(
      'stop',
      { workspaceId: ws.id, actor: 'idle', reason: `idle for ${formatDuration(ws.idleTimeoutSec)}` },
      { jobId: `idle-stop:${ws.id}:${ws.lastActivityAt.getTime()}` },
    );
    stopped++;
  }
  if (deps.config.BERTH_STOPPED_MAX_AGE) {
    const cutoff = new Date(now - deps.config.BERTH_STOPPED_MAX_AGE);
    const old = await deps.db.workspace.findMany({ where: { state: 'stopped', updatedAt: { lt: cutoff } }, select: { id: true } });
    for (const ws of old) {
      await deps.queues.enqueueWorkspace('delete', { workspaceId: ws.id, actor: 'retention', reason: 'stopped for longer than BERTH_STOPPED_MAX_AGE' });
    }
  }
  return stopped;
}

export function formatDuration(seconds: number): string {
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}
