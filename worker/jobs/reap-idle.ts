import type { WorkerDeps } from '../deps.js';
import { hostScope } from '../hosts.js';
import { idleStopDue } from '../../lib/idle.js';
import { scheduleIdleStop } from '../../lib/idle-stop.js';

/**
 * Stops running workspaces whose last preview or IDE request is older than their idle
 * timeout (a sweep behind the stop scheduled for each deadline). Runs on a BullMQ job scheduler; the stop itself is a normal stop job, so it
 * serialises with anything else happening to the workspace. Both run on the maintenance queue,
 * so workspace jobs that take long (a migrate up to its time limit) cannot hold idle stops back.
 */
export async function reapIdleJob(deps: WorkerDeps): Promise<number> {
  const running = await deps.db.workspace.findMany({
    where: { state: 'running', ...hostScope(deps) },
    select: { id: true, state: true, lastActivityAt: true, idleTimeoutSec: true },
  });
  const now = Date.now();
  let stopped = 0;
  for (const ws of running) {
    // Each workspace's stop is scheduled for its deadline (lib/idle-stop.ts); this sweep is the
    // safety net for a schedule Redis lost. Same job id: never a second stop for one activity.
    if (!idleStopDue(ws, new Date(now))) continue;
    await scheduleIdleStop(deps.queues, ws, new Date(now));
    stopped++;
  }
  // Disks kept after their branch or pull request went (work found nowhere else): their time is up.
  const expired = await deps.db.workspace.findMany({ where: { state: 'stopped', keptUntil: { lt: new Date(now) }, ...hostScope(deps) }, select: { id: true } });
  for (const ws of expired) {
    await deps.queues.enqueueWorkspace(
      'delete',
      { workspaceId: ws.id, actor: 'retention', reason: 'the kept disk reached the end of its retention period' },
      { deduplication: { id: `retention:${ws.id}` } },
    );
  }
  if (deps.config.BERTH_STOPPED_MAX_AGE) {
    // Age counts from when it stopped: later writes (a comment id, a notice) do not make it younger.
    const cutoff = new Date(now - deps.config.BERTH_STOPPED_MAX_AGE);
    const resting = await deps.db.workspace.findMany({
      // kept disks have their own deadline (keptUntil), announced on the pull request
      // warm pool members wait stopped on purpose; the warm job replaces stale ones
      where: { state: 'stopped', keptUntil: null, poolMember: false, ...hostScope(deps) },
      select: { id: true, updatedAt: true, events: { where: { toState: 'stopped' }, orderBy: { id: 'desc' }, take: 1, select: { createdAt: true } } },
    });
    for (const ws of resting.filter((w) => (w.events[0]?.createdAt ?? w.updatedAt) < cutoff)) {
      await deps.queues.enqueueWorkspace(
        'delete',
        // work found only on the disk: kept one more period, and the comment and the page list it (issue 14)
        { workspaceId: ws.id, actor: 'retention', reason: `stopped for longer than ${formatDuration(Math.round(deps.config.BERTH_STOPPED_MAX_AGE / 1000))} (BERTH_STOPPED_MAX_AGE)`, keepUnsavedWork: true },
        { deduplication: { id: `retention:${ws.id}` } },
      );
    }
  }
  return stopped;
}

export function formatDuration(seconds: number): string {
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}
