import type { AppDeps } from '../deps.js';
import { scheduleIdleStop } from '../../lib/idle-stop.js';

/** at most one write of a workspace's activity per this long (shorter for short idle timeouts) */
const WRITE_EVERY_MS = 10_000;

/**
 * Records preview and IDE traffic for the idle timer without a database write per request: the
 * first request of a window is written at once, the last one of the window when it ends (so the
 * recorded time is the real last request, and the idle stop is not early), and each write
 * schedules the idle stop for the new deadline.
 */
export class ActivityRecorder {
  private written = new Map<string, number>();
  private pending = new Map<string, { at: number; timer: NodeJS.Timeout }>();

  constructor(private deps: Pick<AppDeps, 'db' | 'queues'>) {}

  touch(ws: { id: string; idleTimeoutSec: number }, now = Date.now()): void {
    const window = Math.min(WRITE_EVERY_MS, (ws.idleTimeoutSec * 1000) / 3);
    const last = this.written.get(ws.id) ?? 0;
    if (now - last >= window) {
      void this.write(ws.id, now);
      return;
    }
    const trailing = this.pending.get(ws.id);
    if (trailing) {
      trailing.at = now;
      return;
    }
    const timer = setTimeout(() => {
      const p = this.pending.get(ws.id);
      this.pending.delete(ws.id);
      if (p) void this.write(ws.id, p.at);
    }, last + window - now);
    timer.unref();
    this.pending.set(ws.id, { at: now, timer });
  }

  /**
   * Activity written now, resolved once it is in the database: a session that is about to use
   * the workspace's containers (an SSH shell) waits for it, so an idle stop that has not
   * committed yet sees it and leaves the workspace running (the stop decides under the row lock,
   * lib/workspaces.ts transition), and one that committed before finds it stopped and wakes it.
   */
  recordNow(ws: { id: string }, now = Date.now()): Promise<void> {
    return this.write(ws.id, now);
  }

  private write(id: string, at: number): Promise<void> {
    this.written.set(id, at);
    if (this.written.size > 10_000) this.written.delete(this.written.keys().next().value!);
    const lastActivityAt = new Date(at);
    // Writes are not awaited one after the other: an older one landing last must not move the
    // activity back (an open session would then look idle).
    return this.deps.db.workspace
      .update({ where: { id, lastActivityAt: { lt: lastActivityAt } }, data: { lastActivityAt }, select: { id: true, state: true, idleTimeoutSec: true, lastActivityAt: true } })
      .then((ws) => scheduleIdleStop(this.deps.queues, ws))
      .catch(() => {}); // not found: a newer activity is already there (or the workspace is gone)
  }

  close() {
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
  }
}
