import type { Job } from 'bullmq';
import type { WorkerDeps } from '../deps.js';
import type { WorkspaceJob } from '../../lib/queue.js';
import { transition } from '../../lib/workspaces.js';
import { idleStopDue } from '../../lib/idle.js';
import { dropCheckout } from '../source/checkout-handover.js';
import { describeUnsavedWork, findUnsavedWork } from '../source/unsaved-work.js';
import type { Workspace } from '../../lib/db/client.js';
import type { RepoConfig } from '../../lib/repo-config.js';
import type { WorkspaceRunSpec } from '../runtime/types.js';
import { runSpec } from './start.js';

/** how long a disk with work found nowhere else is kept when BERTH_STOPPED_MAX_AGE is not set */
export const DEFAULT_KEEP_MS = 7 * 24 * 3600_000;

/** Stops the containers and keeps the disk. */
export async function stopJob(deps: WorkerDeps, job: Job<WorkspaceJob>): Promise<void> {
  const ws = await deps.db.workspace.findUnique({ where: { id: job.data.workspaceId! } });
  if (!ws || ws.state === 'deleted' || ws.state === 'stopped') return;
  const idle = job.data.actor === 'idle';
  // Someone used it between the schedule (or the reaper's look) and now: it is not idle any more.
  if (idle && !idleStopDue(ws, new Date())) return;
  // The state first (conditionally), so the gateway stops sending traffic and a racing start
  // cannot report `running` on containers that are about to go. An idle stop checks idleness
  // again under the row lock: activity recorded since the read above (a session that just
  // opened) wins, and the containers are left alone.
  const stopped = await transition(deps.db, deps.queues, ws.id, 'stopped', job.data.reason ?? 'stopped', job.data.actor ?? 'worker', { previewHost: null }, idle ? { onlyIfIdleAt: new Date() } : {});
  if (idle && !stopped) return;
  await deps.runtime.stopServices(ws.id);
}

/** Removes containers, network and disk. Deletion is the only thing that destroys the disk. */
export async function deleteJob(deps: WorkerDeps, job: Job<WorkspaceJob>): Promise<void> {
  const ws = await deps.db.workspace.findUnique({ where: { id: job.data.workspaceId! } });
  if (!ws || ws.state === 'deleted') return;
  if (job.data.keepUnsavedWork && (await keptForUnsavedWork(deps, ws, job.data))) return;
  if (job.data.refuseIfUnsaved && (await refusedForUnsavedWork(deps, ws, job.data))) return;
  await deps.runtime.removeWorkspace(ws.id, ws.diskSlug ?? ws.slug);
  await dropCheckout(ws.id);
  const deleted = await transition(deps.db, deps.queues, ws.id, 'deleted', job.data.reason ?? 'deleted', job.data.actor ?? 'worker', { previewHost: null, seededAt: null, runningSha: null });
  if (deleted?.keptUntil) await deps.db.workspace.update({ where: { id: ws.id }, data: { keptUntil: null, notice: null } });
}

/**
 * A deletion GitHub caused (branch deleted, pull request closed or merged) must not destroy
 * work that exists only on the disk: then the workspace is stopped and kept until the
 * retention period ends, and the comment and dashboard say so and how to delete it now.
 * When Berth cannot tell (the check failed), it keeps the disk too: a wrong "keep" costs
 * disk space for a week, a wrong "delete" costs someone's work.
 */
async function keptForUnsavedWork(deps: WorkerDeps, ws: Workspace, data: WorkspaceJob): Promise<boolean> {
  if (ws.keptUntil) {
    // already kept by an earlier deletion: keep the original deadline, just make sure it is stopped
    if (ws.state !== 'stopped') await stopKept(deps, ws, data, ws.keptUntil, ws.notice ?? '');
    return true;
  }
  const spec = await diskSpec(deps, ws);
  const check = await findUnsavedWork(deps.runtime, spec, [ws.runningSha, ws.headSha]);
  if (check.kind === 'none') return false;
  const keepMs = deps.config.BERTH_STOPPED_MAX_AGE ?? DEFAULT_KEEP_MS;
  const until = new Date(Date.now() + keepMs);
  const what = check.kind === 'found' ? `it holds work that is not on GitHub: ${describeUnsavedWork(check.work)}` : `Berth could not tell whether it holds work that is not on GitHub (${check.reason})`;
  const notice =
    `${data.reason ?? 'Deleted on GitHub'}, but Berth kept this workspace's disk: ${what}. ` +
    `It stays stopped until ${until.toISOString().slice(0, 16).replace('T', ' ')} UTC, then it is deleted. ` +
    'To save the work, open the IDE (it starts the workspace) and push it; to delete it now, comment `/berth delete` or use Delete on the workspace page.';
  await stopKept(deps, ws, data, until, notice);
  deps.log(`workspace ${ws.id} (${ws.slug}) kept instead of deleted: ${what}`);
  return true;
}

/**
 * `/berth delete` (without `--force`) of a disk with work found nowhere else: nothing happens,
 * and the pull request gets the list and how to delete anyway. When Berth cannot tell, it
 * says so and deletes nothing either.
 */
async function refusedForUnsavedWork(deps: WorkerDeps, ws: Workspace, data: WorkspaceJob): Promise<boolean> {
  const check = await findUnsavedWork(deps.runtime, await diskSpec(deps, ws), [ws.runningSha, ws.headSha]);
  if (check.kind === 'none') return false;
  const what = check.kind === 'found' ? `its disk holds work that is not on GitHub: ${describeUnsavedWork(check.work)}` : `Berth could not tell whether its disk holds work that is not on GitHub (${check.reason})`;
  const body =
    `⚠️ The workspace of \`${ws.branch}\` was not deleted: ${what}. ` +
    'Push it from the IDE first, or comment `/berth delete --force` to delete the workspace and its disk anyway.';
  // the workspace page shows it (a later start replaces it with the checkout's news)
  await deps.db.workspace.update({
    where: { id: ws.id },
    data: { notice: `Not deleted: ${what}. Push it from the IDE, or delete anyway (tick “Delete even work that exists only on this disk”, or comment /berth delete --force).`.slice(0, 2000) },
  });
  const issueNumber = data.refuseIfUnsaved?.issueNumber;
  if (issueNumber) await deps.queues.enqueueReport({ workspaceId: ws.id, reply: { issueNumber, body } });
  deps.log(`workspace ${ws.id} (${ws.slug}) not deleted: ${what}`);
  return true;
}

async function stopKept(deps: WorkerDeps, ws: Workspace, data: WorkspaceJob, until: Date, notice: string) {
  await deps.db.workspace.update({ where: { id: ws.id }, data: { keptUntil: until, notice } });
  if (ws.state === 'stopped') {
    await deps.queues.enqueueReport({ workspaceId: ws.id });
  } else {
    const reason = `${data.reason ?? 'deleted on GitHub'}: kept stopped, the disk holds work found nowhere else`;
    await transition(deps.db, deps.queues, ws.id, 'stopped', reason, data.actor ?? 'worker', { previewHost: null });
  }
  await deps.runtime.stopServices(ws.id);
}

/** What the disk check needs: the workspace's disk, and the images of its newest build when it has one. */
async function diskSpec(deps: WorkerDeps, ws: Workspace): Promise<WorkspaceRunSpec> {
  const build = ws.currentBuildId ? await deps.db.build.findUnique({ where: { id: ws.currentBuildId } }) : null;
  if (build?.state === 'succeeded' && build.config) return runSpec(deps, ws, build, build.config as unknown as RepoConfig);
  return { workspaceId: ws.id, slug: ws.diskSlug ?? ws.slug, services: [], memoryBytes: deps.config.memoryLimitBytes, cpus: deps.config.BERTH_CPU_LIMIT };
}
