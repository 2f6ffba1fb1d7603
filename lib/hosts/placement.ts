import { isReachable, sinceText } from './health.js';

/**
 * Where a new workspace goes (issue 18): pure, so every rule is a table test (test/unit/placement.test.ts).
 *
 * A host can take the workspace when its worker heartbeats, it is not draining, it has every label
 * the repository asks for (berth.yml `workspace: { host_labels: [...] }`) and it is above the
 * memory and disk floors. Of those, the one with the most room wins: the most free running slots
 * (BERTH_MAX_RUNNING of that host minus its running and starting workspaces), then the most free
 * memory, then the most free disk. A host whose slots are all taken still qualifies behind the
 * others: its start stops its least recently used workspace to make room (BERTH_MAX_RUNNING's rule
 * since before hosts), which never overloads it.
 *
 * None qualifies: the workspace waits in line with the reason per host, and is placed again when
 * one can take it.
 */
export interface HostRoom {
  id: string;
  name: string;
  labels: string[];
  draining: boolean;
  lastHeartbeatAt: Date;
  maxRunning: number;
  /** its running and starting workspaces */
  running: number;
  memoryFree: number;
  diskFree: number;
}

export interface PlacementNeeds {
  /** labels every candidate host must have */
  labels: string[];
}

export interface Floors {
  memoryBytes: number;
  diskBytes: number;
}

/** below these a host takes no new workspace: a dev server, its build and its disk need some room */
export const FLOORS: Floors = { memoryBytes: 256 * 1024 ** 2, diskBytes: 2 * 1024 ** 3 };

export type Placement = { host: HostRoom } | { host: null; reason: string };

export function placeWorkspace(hosts: HostRoom[], needs: PlacementNeeds, now: Date = new Date(), floors: Floors = FLOORS): Placement {
  if (hosts.length === 0) return { host: null, reason: 'no host is registered: start a worker (npm run start:worker)' };
  const refusals: string[] = [];
  const candidates: HostRoom[] = [];
  for (const host of [...hosts].sort((a, b) => a.name.localeCompare(b.name))) {
    const why = whyNot(host, needs, now, floors);
    if (why) refusals.push(`${host.name}: ${why}`);
    else candidates.push(host);
  }
  if (candidates.length === 0) return { host: null, reason: `no host can take this workspace (${refusals.join('; ')})` };
  candidates.sort((a, b) => freeSlots(b) - freeSlots(a) || b.memoryFree - a.memoryFree || b.diskFree - a.diskFree || a.name.localeCompare(b.name));
  return { host: candidates[0]! };
}

const freeSlots = (h: HostRoom) => Math.max(0, h.maxRunning - h.running);

function whyNot(host: HostRoom, needs: PlacementNeeds, now: Date, floors: Floors): string | null {
  if (!isReachable(host, now)) return `unreachable (last heartbeat ${sinceText(host.lastHeartbeatAt, now)})`;
  if (host.draining) return 'draining';
  const missing = needs.labels.filter((l) => !host.labels.includes(l));
  if (missing.length) return `no label ${missing.join(', ')}`;
  if (host.memoryFree < floors.memoryBytes) return `${mib(host.memoryFree)} memory free (needs ${mib(floors.memoryBytes)})`;
  if (host.diskFree < floors.diskBytes) return `${mib(host.diskFree)} disk free (needs ${mib(floors.diskBytes)})`;
  return null;
}

const mib = (bytes: number) => (bytes >= 1024 ** 3 ? `${(bytes / 1024 ** 3).toFixed(1)} GiB` : `${Math.round(bytes / 1024 ** 2)} MiB`);
