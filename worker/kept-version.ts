import type { WorkerDeps } from './deps.js';
import type { Build } from '../lib/db/client.js';
import { transition } from '../lib/workspaces.js';
import { scheduleIdleStop } from '../lib/idle-stop.js';

/**
 * A new commit that failed to build, migrate or start on a workspace that serves an older one
 * (issue 13): the older version keeps serving, the workspace stays `running`, and its notice
 * (sticky comment, dashboard) says which commit runs and why the new one does not.
 */
export function keptVersionNotice(failed: string, running: string, what: 'build' | 'start', message: string): string {
  return `Commit ${failed.slice(0, 7)} did not ${what} (${message}), so ${running.slice(0, 7)} keeps running. ${KEPT_TAIL}`;
}

/** how every such notice ends: a later version that runs clears it by this */
const KEPT_TAIL = 'Push a fix, or comment `/berth refresh`.';

/** A version that reached `running`: an earlier commit's failure no longer describes it. */
export async function clearKeptVersionNotice(deps: WorkerDeps, workspaceId: string): Promise<void> {
  await deps.db.workspace.updateMany({ where: { id: workspaceId, notice: { endsWith: KEPT_TAIL } }, data: { notice: null } });
}

/**
 * After a failed build: when the workspace still serves an older commit, back to `running` on it
 * with the notice (true); otherwise false and the caller marks the workspace failed.
 */
export async function keepServingAfterBuildFailure(deps: WorkerDeps, workspaceId: string, build: Build, message: string, redact: (text: string) => string): Promise<boolean> {
  const ws = await deps.db.workspace.findUnique({ where: { id: workspaceId } });
  if (!ws?.previewHost || !ws.runningSha || ws.runningSha === build.sha || ws.currentBuildId !== build.id) return false;
  const old = ws.runningSha.slice(0, 7);
  const notice = redact(keptVersionNotice(build.sha, ws.runningSha, 'build', message)).slice(0, 2000);
  await deps.db.workspace.update({ where: { id: ws.id }, data: { notice } });
  const back = await transition(deps.db, deps.queues, ws.id, 'running', `running ${old}: ${build.sha.slice(0, 7)} failed to build`, 'worker', {}, { from: ['building', 'queued'] });
  if (!back) return false;
  await scheduleIdleStop(deps.queues, back);
  return true;
}
