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
      this.write(ws.id, now);
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
      if (p) this.write(ws.id, p.at);
    }, last + window - now);
    timer.unref();
    this.pending.set(ws.id, { at: now, timer });
  }

  private write(id: string, at: number) {
    this.written.set(id, at);
    if (this.written.size > 10_000) this.written.delete(this.written.keys().next().value!);
    const lastActivityAt = new Date(at);
    void this.deps.db.workspace
      .update({ where: { id }, data: { lastActivityAt }, select: { id: true, state: true, idleTimeoutSec: true, lastActivityAt: true } })
      .then((ws) => scheduleIdleStop(this.deps.queues, ws))
      .catch(() => {});
  }

  close() {
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
  }
}
