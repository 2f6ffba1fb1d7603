import { IllegalTransitionError } from './errors.js';
import type { WorkspaceState } from './db/client.js';

/**
 * The workspace state machine, pure (no I/O): `queued → building → starting → running ⇄ stopped`,
 * any → failed, any → deleted. Every state change in Berth goes through `canTransition`.
 */
const legal: Record<WorkspaceState, readonly WorkspaceState[]> = {
  queued: ['building', 'starting', 'failed', 'deleted', 'stopped'],
  building: ['starting', 'queued', 'building', 'failed', 'deleted', 'stopped', 'running'],
  starting: ['running', 'failed', 'deleted', 'stopped', 'starting', 'queued', 'building'],
  running: ['stopped', 'starting', 'building', 'queued', 'failed', 'deleted', 'running'],
  stopped: ['starting', 'building', 'queued', 'failed', 'deleted'],
  failed: ['queued', 'building', 'starting', 'deleted', 'stopped', 'failed'],
  deleted: [],
};

export function canTransition(from: WorkspaceState, to: WorkspaceState): boolean {
  return legal[from].includes(to);
}

export function assertTransition(from: WorkspaceState, to: WorkspaceState): void {
  if (!canTransition(from, to)) throw new IllegalTransitionError(from, to);
}

/** States `to` may be entered from; used for race-free conditional updates. */
export function sourcesOf(to: WorkspaceState): WorkspaceState[] {
  return (Object.keys(legal) as WorkspaceState[]).filter((from) => legal[from].includes(to));
}

/** Who caused a change: shown in the workspace history. */
export type Actor = 'push' | 'pull_request' | 'command' | 'idle' | 'reconciler' | 'dashboard' | 'worker' | 'gateway' | string;
