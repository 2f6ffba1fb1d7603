/**
 * The idle timer, decided in one place (pure, with the clock passed in): when a running
 * workspace's idle stop is due, and whether it is due now. The reaper, the stop job, the
 * dashboard, the PR comment and the gateways' scheduling of the stop all ask this, so what
 * the comment announces is what the worker does.
 */
export interface IdleFields {
  state: string;
  lastActivityAt: Date;
  idleTimeoutSec: number;
}

/** When the idle timer stops the workspace: its last activity plus its timeout; null when it is not running. */
export function idleDeadline(ws: IdleFields): Date | null {
  if (ws.state !== 'running') return null;
  return new Date(ws.lastActivityAt.getTime() + ws.idleTimeoutSec * 1000);
}

/** Whether the idle stop is due at `now`. */
export function idleStopDue(ws: IdleFields, now: Date): boolean {
  const at = idleDeadline(ws);
  return at !== null && at.getTime() <= now.getTime();
}

/**
 * The job id of the idle stop scheduled for one recorded activity: each newer activity schedules
 * its own (the older one then finds the workspace in use and does nothing), and repeating a
 * schedule for the same activity is a no-op.
 */
export const idleStopJobId = (workspaceId: string, lastActivityAt: Date) => `idle-stop:${workspaceId}:${lastActivityAt.getTime()}`;

/** "idle for 15 s": the reason a stop for being idle gives */
export function idleStopReason(idleTimeoutSec: number): string {
  const s = idleTimeoutSec;
  const text = s % 3600 === 0 ? `${s / 3600} h` : s % 60 === 0 ? `${s / 60} min` : `${s} s`;
  return `idle for ${text}`;
}
