/**
 * Waits of a workspace's job that a stop or delete of that workspace cuts short, within this
 * worker process. Jobs of one workspace run one at a time (KeyedMutex), so without this a
 * `/berth stop` would wait behind a start that is still waiting for VS Code to answer (up to
 * BERTH_IDE_TIMEOUT) although the preview already serves.
 */
export class Interrupts {
  private held = new Map<string, Set<AbortController>>();
  /** interrupted, and the job that did it has not run yet: a wait that begins meanwhile ends at once */
  private pending = new Map<string, string>();

  /** a signal aborted by the next `interrupt(key)`; `release` once the wait is over */
  hold(key: string): { signal: AbortSignal; release(): void } {
    const pending = this.pending.get(key);
    if (pending !== undefined) return { signal: AbortSignal.abort(new WaitInterruptedError(pending)), release: () => {} };
    const controller = new AbortController();
    const set = this.held.get(key) ?? new Set<AbortController>();
    set.add(controller);
    this.held.set(key, set);
    return {
      signal: controller.signal,
      release: () => {
        set.delete(controller);
        if (set.size === 0 && this.held.get(key) === set) this.held.delete(key);
      },
    };
  }

  /**
   * aborts every wait held for `key` now, and those that begin before `settle(key)` (a start
   * still before its IDE step when the stop came); true when one was waiting
   */
  interrupt(key: string, reason: string): boolean {
    this.pending.set(key, reason);
    const set = this.held.get(key);
    if (!set?.size) return false;
    for (const controller of set) controller.abort(new WaitInterruptedError(reason));
    this.held.delete(key);
    return true;
  }

  /** the interrupting job runs now: waits that begin from here on are not cut short */
  settle(key: string): void {
    this.pending.delete(key);
  }
}

export class WaitInterruptedError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'WaitInterruptedError';
  }
}
