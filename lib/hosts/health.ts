/**
 * A host's health is its worker's heartbeat (issue 18): every HEARTBEAT_MS the worker writes its
 * capacity and the time; three missed beats and the host is unreachable. Its workspaces are then
 * shown as such (not failed, not deleted: their disks are still there) and its jobs wait in its
 * queues until it is back.
 */
export const HEARTBEAT_MS = 5_000;
export const HOST_STALE_MS = 3 * HEARTBEAT_MS;

/** the start of the reason of a workspace no host can take yet (worker/jobs/place.ts) */
export const WAITING_FOR_HOST = 'waiting for a host';

/** the host of a single-machine install: the worker started without BERTH_HOST_NAME */
export const LOCAL_HOST = 'local';

export interface HeartbeatView {
  lastHeartbeatAt: Date;
}

export function isReachable(host: HeartbeatView, now: Date = new Date()): boolean {
  return now.getTime() - host.lastHeartbeatAt.getTime() <= HOST_STALE_MS;
}

/** "12 s ago", "4 min ago": how old a heartbeat is, for pages and messages */
export function sinceText(at: Date, now: Date = new Date()): string {
  const s = Math.max(0, Math.round((now.getTime() - at.getTime()) / 1000));
  if (s < 120) return `${s} s ago`;
  if (s < 7200) return `${Math.round(s / 60)} min ago`;
  if (s < 172_800) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86_400)} days ago`;
}
