import type { WorkerDeps } from '../deps.js';
import { transition } from '../../lib/workspaces.js';

const STUCK_MS = 30 * 60_000;

/**
 * Repairs drift between the database and Docker: removes Docker objects no live workspace
 * owns, marks running workspaces whose containers died or vanished, and fails workspaces
 * stuck half-way (a crash outside any job). Runs at start and on a schedule.
 */
export async function reconcileJob(deps: WorkerDeps): Promise<{ removed: string[]; repaired: string[] }> {
  const removed: string[] = [];
  const repaired: string[] = [];
  const owners = await deps.runtime.listWorkspaceIds();
  if (owners.length) {
    const live = await deps.db.workspace.findMany({ where: { id: { in: owners }, state: { not: 'deleted' } }, select: { id: true } });
    const liveIds = new Set(live.map((w) => w.id));
    for (const id of owners.filter((o) => !liveIds.has(o))) {
      await deps.runtime.removeWorkspace(id);
      removed.push(id);
    }
  }
  for (const ws of await deps.db.workspace.findMany({ where: { state: 'running' }, select: { id: true } })) {
    const containers = await deps.runtime.status(ws.id);
    const dead = containers.filter((c) => c.state !== 'running');
    if (containers.length && !dead.length) continue;
    const oom = dead.find((c) => c.oomKilled);
    if (containers.length === 0) {
      await transition(deps.db, deps.queues, ws.id, 'stopped', 'its containers vanished', 'reconciler', { previewHost: null });
    } else if (oom) {
      await transition(deps.db, deps.queues, ws.id, 'failed', `service ${oom.service} was killed: out of memory`, 'reconciler', { previewHost: null });
    } else {
      // A container that died on its own: try the workspace again once; a start that fails marks it failed.
      await deps.queues.enqueueWorkspace('start', { workspaceId: ws.id, actor: 'reconciler', reason: `service ${dead[0]!.service} had ${dead[0]!.state} (exit code ${dead[0]!.exitCode ?? '?'}); restarting` });
    }
    repaired.push(ws.id);
  }
  const stuck = await deps.db.workspace.findMany({
    where: { state: { in: ['building', 'starting'] }, updatedAt: { lt: new Date(Date.now() - STUCK_MS) } },
    select: { id: true, state: true },
  });
  for (const ws of stuck) {
    await transition(deps.db, deps.queues, ws.id, 'failed', `interrupted while ${ws.state}; push again or comment /berth refresh`, 'reconciler', { previewHost: null });
    repaired.push(ws.id);
  }
  return { removed, repaired };
}
