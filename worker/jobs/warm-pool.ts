import type { Job } from 'bullmq';
import type { WorkerDeps } from '../deps.js';
import type { WorkspaceJob } from '../../lib/queue.js';
import type { Build, PrismaClient } from '../../lib/db/client.js';
import type { RepoConfig } from '../../lib/repo-config.js';
import { planPool, poolBranch } from '../../lib/warm-pool.js';
import { workspaceSlug } from '../../lib/slug.js';

/** BullMQ priority of a pool member's start: after every start someone is waiting for (those have none) */
export const FILL_PRIORITY = 100;

/**
 * Brings a repository's warm pool to the size its default branch's berth.yml asks for
 * (`workspace: { warm: N }`, lib/warm-pool.ts planPool): makes the missing members and has them
 * filled by the start job at low priority, deletes stale ones (the default branch moved) and
 * those past the size (warm lowered; 0 drains the pool). One run per repository at a time
 * (an advisory lock), so two runs never both make the missing member.
 */
export async function warmPoolJob(deps: WorkerDeps, job: Job<WorkspaceJob>): Promise<void> {
  if (!job.data.repositoryId) return;
  const repositoryId = BigInt(job.data.repositoryId);
  const { db, queues } = deps;
  const decided = await db.$transaction(
    async (tx) => {
      await tx.$queryRaw`SELECT 1 AS "locked" FROM (SELECT pg_advisory_xact_lock(hashtext(${`berth-warm-pool:${repositoryId}`}))) AS l`;
      const repo = await tx.repository.findUnique({ where: { id: repositoryId } });
      if (!repo) return null;
      const source = repo.removed ? null : await defaultBranchSource(tx as unknown as PrismaClient, repositoryId, repo.defaultBranch);
      const want = source ? ((source.build.config as unknown as RepoConfig | null)?.workspace?.warm ?? 0) : 0;
      const members = await tx.workspace.findMany({
        where: { repositoryId, poolMember: true, state: { not: 'deleted' } },
        orderBy: { createdAt: 'asc' },
        select: { id: true, state: true, headSha: true },
      });
      const plan = planPool(want, source?.build.sha ?? null, members.map((m) => ({ id: m.id, state: m.state, sha: m.headSha })));
      const created: string[] = [];
      for (let i = 0; i < plan.create && source; i++) {
        const branch = poolBranch();
        const ws = await tx.workspace.create({
          data: {
            repositoryId,
            branch,
            slug: workspaceSlug(repo.fullName, branch),
            headSha: source.build.sha,
            currentBuildId: source.build.id,
            state: 'queued',
            stateReason: `filling the warm pool from ${source.build.sha.slice(0, 7)}`,
            poolMember: true,
            ide: source.ws.ide,
            idleTimeoutSec: source.ws.idleTimeoutSec,
            previewPrivate: source.ws.previewPrivate,
          },
        });
        await tx.workspaceEvent.create({ data: { workspaceId: ws.id, toState: 'queued', reason: `warm pool member made (${repo.defaultBranch} at ${source.build.sha.slice(0, 7)})`, actor: 'warm-pool' } });
        created.push(ws.id);
      }
      return { plan, created, want, sha: source?.build.sha ?? null };
    },
    { maxWait: 15_000, timeout: 30_000 },
  );
  if (!decided) return;
  for (const id of decided.plan.remove) {
    const why = decided.sha && decided.want > 0 ? 'the default branch moved, or the pool is smaller now' : 'the warm pool is drained (warm: 0, or no build of the default branch)';
    await queues.enqueueWorkspace('delete', { workspaceId: id, actor: 'warm-pool', reason: `warm pool: ${why}` });
  }
  for (const id of decided.created) {
    await queues.enqueueWorkspace('start', { workspaceId: id, actor: 'warm-pool', reason: 'filling the warm pool' }, { priority: FILL_PRIORITY });
  }
  if (decided.plan.remove.length || decided.created.length) {
    deps.log(`warm pool of repository ${repositoryId}: ${decided.want} wanted, ${decided.created.length} made, ${decided.plan.remove.length} removed`);
  }
}

/** the default branch's workspace and its newest successful build: what pool members are prepared from */
async function defaultBranchSource(db: PrismaClient, repositoryId: bigint, branch: string) {
  const ws = await db.workspace.findUnique({ where: { repositoryId_branch: { repositoryId, branch } } });
  if (!ws || ws.state === 'deleted') return null;
  const current = ws.currentBuildId ? await db.build.findUnique({ where: { id: ws.currentBuildId } }) : null;
  const build: Build | null = current?.state === 'succeeded' ? current : await db.build.findFirst({ where: { workspaceId: ws.id, state: 'succeeded' }, orderBy: { createdAt: 'desc' } });
  return build ? { ws, build } : null;
}

/**
 * The reconciler's look at every pool: a repository with members gets a warm run, so a refill
 * or drain whose job was lost (Redis away) still happens, and a failed member of a stale commit goes.
 */
export async function checkWarmPools(deps: WorkerDeps): Promise<void> {
  const repos = await deps.db.workspace.findMany({ where: { poolMember: true, state: { not: 'deleted' } }, distinct: ['repositoryId'], select: { repositoryId: true } });
  for (const r of repos) await deps.queues.enqueueWarm(r.repositoryId);
}
