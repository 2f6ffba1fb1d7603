import type { AppDeps } from './deps.js';
import type { Workspace } from '../lib/db/client.js';
import { transition, upsertWorkspace } from '../lib/workspaces.js';
import { claimWarmWorkspace, mayClaim } from '../lib/warm-pool.js';

/**
 * Marks `sha` as the branch's head, records a build for it and enqueues it. Shared by push,
 * pull request, slash-command and check-run handlers. Without `force`, a commit that is
 * already queued, building or built for this workspace is not built again (a push and the
 * pull request's synchronize arrive for the same commit).
 */
export async function queueBuild(
  deps: AppDeps,
  repo: { id: bigint; fullName: string },
  branch: string,
  sha: string,
  actor: string,
  reason: string,
  opts: { noCache?: boolean; force?: boolean; prNumber?: number; forkRepo?: string | null } = {},
) {
  const fields: { prNumber?: number; forkRepo?: string | null } = {};
  if (opts.prNumber !== undefined) fields.prNumber = opts.prNumber;
  if (opts.forkRepo !== undefined) fields.forkRepo = opts.forkRepo;
  const { workspace } = (await claimFromPool(deps, repo, branch, sha, actor, fields)) ?? (await upsertWorkspace(deps.db, repo, branch, sha, fields));
  if (!opts.force && workspace.state !== 'deleted' && workspace.state !== 'failed') {
    const same = await deps.db.build.findFirst({
      where: { workspaceId: workspace.id, sha, state: { in: ['queued', 'running', 'succeeded'] } },
      orderBy: { createdAt: 'desc' },
    });
    if (same && (same.state !== 'succeeded' || workspace.runningSha === sha)) {
      await deps.queues.enqueueReport({ workspaceId: workspace.id });
      return { workspace, build: same, duplicate: true };
    }
  }
  if (workspace.state === 'deleted') {
    // a branch pushed again after its workspace was deleted starts over with a fresh disk
    await deps.db.workspace.update({ where: { id: workspace.id }, data: { state: 'queued', stateReason: reason, seededAt: null, previewHost: null, runningSha: null, commentId: null } });
    await deps.db.workspaceEvent.create({ data: { workspaceId: workspace.id, fromState: 'deleted', toState: 'queued', reason, actor } });
  }
  const build = await deps.db.build.create({
    data: { repositoryId: repo.id, workspaceId: workspace.id, sha, noCache: Boolean(opts.noCache), trigger: actor },
  });
  // A kept disk (its branch or pull request went, work was on it) is back in use: no deadline.
  const unkeep = workspace.keptUntil ? { keptUntil: null, notice: null } : {};
  await deps.db.workspace.update({ where: { id: workspace.id }, data: { currentBuildId: build.id, ...unkeep } });
  const moved = workspace.state !== 'deleted' && (await transition(deps.db, deps.queues, workspace.id, 'queued', reason, actor));
  if (!moved) await deps.queues.enqueueReport({ workspaceId: workspace.id });
  await deps.queues.enqueueBuild({ workspaceId: workspace.id, buildId: build.id });
  return { workspace, build, duplicate: false };
}

/** when the pool refills after a claim whose start did not reach `running` (failed, or still going) */
const REFILL_FALLBACK_MS = 5 * 60_000;

/**
 * A new branch's workspace from the repository's warm pool (lib/warm-pool.ts), when it has a
 * ready member: only the atomic claim happens here (the webhook records and enqueues); the start
 * checks the branch's commit out on the member's disk, and the warm job refills the pool.
 */
async function claimFromPool(
  deps: AppDeps,
  repo: { id: bigint; fullName: string },
  branch: string,
  sha: string,
  actor: string,
  fields: { prNumber?: number; forkRepo?: string | null },
): Promise<{ workspace: Workspace } | null> {
  const repository = await deps.db.repository.findUnique({ where: { id: repo.id }, select: { defaultBranch: true } });
  if (!repository || !mayClaim({ branch, defaultBranch: repository.defaultBranch, forkRepo: fields.forkRepo, actor })) return null;
  if (await deps.db.workspace.findUnique({ where: { repositoryId_branch: { repositoryId: repo.id, branch } }, select: { id: true } })) return null;
  const claimed = await claimWarmWorkspace(deps.db, repo, branch, sha);
  if (!claimed) return null;
  const workspace = Object.keys(fields).length ? await deps.db.workspace.update({ where: { id: claimed.id }, data: fields }) : claimed;
  // the refill is asked for when the claimed workspace serves (worker/jobs/start.ts), so it does
  // not compete with that start for the CPU; this later one covers a start that never gets there
  await deps.queues.enqueueWarm(repo.id, { delayMs: REFILL_FALLBACK_MS });
  return { workspace };
}
