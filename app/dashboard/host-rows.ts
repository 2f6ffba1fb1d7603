import { isReachable, sinceText } from '../../lib/hosts/health.js';
import type { HostRoom } from '../../lib/hosts/placement.js';

export interface HostRow {
  name: string;
  url: string | null;
  labels: string[];
  health: 'healthy' | 'unreachable';
  lastHeartbeat: string;
  lastHeartbeatAt: string;
  draining: boolean;
  running: number;
  maxRunning: number;
  workspaces: number;
  memory: string;
  diskFree: string;
}

/** the hosts page's rows, healthy first, then by name */
export function hostRows(hosts: HostRoom[], extra: Map<string, { url: string | null; memoryTotal: number; workspaces: number }>, now: Date): HostRow[] {
  return hosts
    .map((h) => {
      const more = extra.get(h.id);
      return {
        name: h.name,
        url: more?.url ?? null,
        labels: h.labels,
        health: isReachable(h, now) ? ('healthy' as const) : ('unreachable' as const),
        lastHeartbeat: sinceText(h.lastHeartbeatAt, now),
        lastHeartbeatAt: h.lastHeartbeatAt.toISOString(),
        draining: h.draining,
        running: h.running,
        maxRunning: h.maxRunning,
        workspaces: more?.workspaces ?? 0,
        memory: `${gib(h.memoryFree)} free of ${gib(more?.memoryTotal ?? 0)}`,
        diskFree: `${gib(h.diskFree)} free`,
      };
    })
    .sort((a, b) => (a.health === b.health ? a.name.localeCompare(b.name) : a.health === 'healthy' ? -1 : 1));
}

const gib = (bytes: number) => `${(bytes / 1024 ** 3).toFixed(1)} GiB`;

export interface WorkspaceHostView {
  name: string;
  unreachable: boolean;
  lastHeartbeat: string;
}

/**
 * A workspace row with its host (issue 18): a host that stopped heartbeating makes its workspaces
 * unreachable on the dashboard, whatever state they were in (not failed, not deleted: the disk is there).
 */
export function withHost<T extends { state: string }>(row: T, hostId: string | null, hosts: Array<{ id: string; name: string; lastHeartbeatAt: Date }>, now: Date): T & { host: WorkspaceHostView | null } {
  const h = hostId ? hosts.find((x) => x.id === hostId) : undefined;
  if (!h) return { ...row, host: null };
  return { ...row, host: { name: h.name, unreachable: row.state !== 'deleted' && !isReachable(h, now), lastHeartbeat: sinceText(h.lastHeartbeatAt, now) } };
}
