import type { Queues } from './queue.js';
import { idleDeadline, idleStopJobId, idleStopReason, type IdleFields } from './idle.js';

/**
 * Schedules the idle stop of a running workspace for its deadline (a delayed job on the
 * maintenance queue), so it stops on time instead of whenever a sweep comes by. Called when it
 * starts running and whenever its activity is recorded; the stop job checks again when it runs,
 * so a schedule made obsolete by later activity does nothing. The reaper's sweep stays as the
 * safety net (a Redis that lost its data).
 */
export async function scheduleIdleStop(queues: Queues, ws: IdleFields & { id: string }, now = new Date()): Promise<void> {
  const at = idleDeadline(ws);
  if (!at) return;
  await queues.enqueueMaintenance(
    'stop',
    { workspaceId: ws.id, actor: 'idle', reason: idleStopReason(ws.idleTimeoutSec) },
    { jobId: idleStopJobId(ws.id, ws.lastActivityAt), delay: Math.max(0, at.getTime() - now.getTime()) },
  );
}
