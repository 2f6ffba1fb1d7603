import type { Job } from 'bullmq';
import type { WorkerDeps } from '../deps.js';
import type { WorkspaceJob } from '../../lib/queue.js';
import type { RepoConfig } from '../../lib/repo-config.js';
import { transition } from '../../lib/workspaces.js';
import { BerthError } from '../../lib/errors.js';
import type { Repository, Workspace } from '../../lib/db/client.js';
import { formatMs } from '../../lib/start-steps.js';
import { baseDiskSpec, readyBaseDisk } from '../base-disk.js';
import { hasDataVolumes, snapshotSpec } from '../data-snapshot.js';
import type { WorkspaceRunSpec } from '../runtime/types.js';
import { userMessage } from './build.js';
import { runSpec } from './start.js';

/**
 * `/berth reset` (and the dashboard's Reset button): the workspace's data volumes (services'
 * `data:`, compose named volumes) go back to a fresh copy of the repository's base disk, or with
 * `--before-migrate` to the snapshot taken before the newest migrate. The checkout volume, and
 * with it the code and any uncommitted work, is not touched. A running workspace is stopped for
 * the copy (nothing may write its data meanwhile) and started again: from the base disk its
 * migrate runs as on every start (the branch's own migrations apply); back before a migrate it
 * starts without migrating, or the migration being undone would run again at once.
 */
export async function resetJob(deps: WorkerDeps, job: Job<WorkspaceJob>): Promise<void> {
  const { db, queues } = deps;
  const ws = await db.workspace.findUnique({ where: { id: job.data.workspaceId! }, include: { repository: true } });
  if (!ws || ws.state === 'deleted') return;
  const actor = job.data.actor ?? 'worker';
  const what = job.data.beforeMigrate ? 'the snapshot taken before its newest migrate' : 'a fresh copy of the base disk';
  const reply = async (body: string) => {
    if (job.data.issueNumber) await queues.enqueueReport({ workspaceId: ws.id, reply: { issueNumber: job.data.issueNumber, body } });
  };
  try {
    if (!['running', 'stopped', 'failed'].includes(ws.state)) {
      throw new BerthError(`the workspace is ${ws.state}; reset it once it is running or stopped`);
    }
    if (!deps.runtime.copyDisk) throw new BerthError('this Berth\'s container runtime cannot copy disks');
    const build = await db.build.findFirst({ where: { workspaceId: ws.id, state: 'succeeded' }, orderBy: { createdAt: 'desc' } });
    if (!build) throw new BerthError('the workspace has no successful build yet, so Berth does not know its data volumes');
    const spec = runSpec(deps, ws, build, build.config as unknown as RepoConfig);
    if (!hasDataVolumes(spec)) {
      throw new BerthError("the workspace keeps no data outside its checkout (no service's `data:` and no compose volume), so there is nothing to reset; its checkout is never reset");
    }
    const source = await resetSource(deps, ws, spec, Boolean(job.data.beforeMigrate));
    const wasRunning = ws.state === 'running';
    // nothing may write the data while it is replaced: the services stop, the disk stays
    await transition(db, queues, ws.id, 'stopped', `resetting its data to ${what} (by ${actor})`, actor, { previewHost: null });
    await deps.runtime.stopServices(ws.id);
    const copy = await deps.runtime.copyDisk(source.spec, spec, { part: 'data', replace: true, timeoutMs: deps.config.BERTH_TASK_TIMEOUT });
    await db.workspace.update({ where: { id: ws.id }, data: { notice: null, stateReason: `data reset to ${source.label} by ${actor}` } });
    const volumes = `${copy.volumes} data volume${copy.volumes === 1 ? '' : 's'}`;
    if (wasRunning) {
      await queues.enqueueWorkspace('start', { workspaceId: ws.id, actor, reason: `data reset to ${source.label}`, onlyIf: ['stopped'], ...(job.data.beforeMigrate ? { skipMigrate: true } : {}) });
    }
    await queues.enqueueReport({ workspaceId: ws.id, ...(ws.currentBuildId ? { buildId: ws.currentBuildId } : {}) });
    await reply(
      `♻️ The data of \`${ws.branch}\` is back to ${source.label} (${volumes} in ${formatMs(copy.durationMs)}); its checkout and uncommitted work were left alone. ` +
        (wasRunning ? (job.data.beforeMigrate ? 'Starting it again without migrating.' : 'Starting it again (its migrate runs as on every start).') : 'It starts on it next time.'),
    );
  } catch (err) {
    const message = userMessage(err);
    await reply(`The data of \`${ws.branch}\` was not reset: ${message}`);
    if (!(err instanceof BerthError)) deps.log(`reset of ${ws.id} failed: ${(err as Error).stack}`);
  }
}

async function resetSource(deps: WorkerDeps, ws: Workspace & { repository: Repository }, spec: WorkspaceRunSpec, beforeMigrate: boolean): Promise<{ spec: WorkspaceRunSpec; label: string }> {
  if (beforeMigrate) {
    if (!ws.snapshotSha) throw new BerthError('there is no snapshot yet: Berth takes one before the migrate of each new commit on an existing disk');
    return { spec: snapshotSpec(spec), label: `before the migrate of ${ws.snapshotSha.slice(0, 7)}` };
  }
  const base = await readyBaseDisk(deps.db, ws.repositoryId);
  const branch = ws.repository.defaultBranch;
  if (!base) throw new BerthError(`there is no base disk of ${branch} yet (Berth prepares one in the background after ${branch} builds)`);
  // as for a new disk (mayCopyBaseDisk): a fork gets data the repository's secrets made only with --with-secrets
  if (ws.forkRepo && base.withSecrets && ws.approvedSecretsSha !== (ws.runningSha ?? ws.headSha)) {
    throw new BerthError("the base disk was prepared with the repository's secrets, which a fork's pull request gets only with `/berth approve --with-secrets`");
  }
  // whatever the branch's history: its migrate, on the next start, brings the data forward
  return { spec: baseDiskSpec(base, spec), label: `the base disk of ${branch} (${base.sha.slice(0, 7)})` };
}
