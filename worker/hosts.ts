import type { WorkerDeps } from './deps.js';
import { HEARTBEAT_MS } from '../lib/hosts/health.js';
import { heartbeat, markNewlyUnreachable, measureCapacity, onHost, registerHost, type HostIdentity } from '../lib/hosts/registry.js';

/** the host this worker serves (issue 18): its row in the hosts table */
export interface ThisHost {
  id: string;
  name: string;
}

/**
 * The workspaces this worker looks after (reconciler, idle reaper, BERTH_MAX_RUNNING), as a
 * Prisma filter: its host's, or every one when the worker runs without a host (tests that drive
 * jobs directly).
 */
export function hostScope(deps: Pick<WorkerDeps, 'host'>): object {
  return deps.host ? onHost(deps.host.id, deps.host.name) : {};
}

/**
 * Registers this worker's host and heartbeats every HEARTBEAT_MS with its capacity. Each beat
 * also looks for hosts whose heartbeat went stale and refreshes their workspaces' comments (they
 * show as unreachable), and when this host was seen as unreachable, refreshes its own (back).
 */
export async function startHostHeartbeat(deps: Omit<WorkerDeps, 'host'>, me: HostIdentity) {
  const id = await registerHost(deps.db, me, await measureCapacity());
  const host: ThisHost = { id, name: me.name };
  const refresh = async (hostId: string) => {
    const workspaces = await deps.db.workspace.findMany({ where: { hostId, state: { not: 'deleted' } }, select: { id: true } });
    for (const ws of workspaces) await deps.queues.enqueueReport({ workspaceId: ws.id });
  };
  let beating = false;
  const beat = async () => {
    if (beating) return; // a slow database: never two beats at once
    beating = true;
    try {
      const wasAway = await heartbeat(deps.db, id, await measureCapacity());
      if (wasAway) {
        deps.log(`host ${me.name} is reachable again: its workspaces' jobs run`);
        await refresh(id);
      }
      for (const away of await markNewlyUnreachable(deps.db)) {
        deps.log(`host ${away.name} stopped heartbeating: its workspaces show as unreachable and their jobs wait for it`);
        await refresh(away.id);
      }
    } catch (err) {
      // PostgreSQL or Redis away: the next beat tries again (a stale heartbeat is what others see)
      deps.log(`heartbeat of host ${me.name} failed: ${(err as Error).message}`);
    } finally {
      beating = false;
    }
  };
  // at once: a host back from an outage says so before it takes its first job
  await beat();
  const timer = setInterval(() => void beat(), HEARTBEAT_MS);
  timer.unref();
  return {
    host,
    stop() {
      clearInterval(timer);
    },
  };
}
