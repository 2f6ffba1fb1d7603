import { randomBytes } from 'node:crypto';
import type { PrismaClient, Workspace, WorkspaceState } from './db/client.js';
import { workspaceSlug } from './slug.js';

/**
 * Warm pools (issue 17, `workspace: { warm: N }` in berth.yml): N stopped, prepared workspaces
 * of a repository's default branch (its image built, its disk checked out, migrated and
 * seeded, no container running), so that the next push of a new branch starts from one
 * instead of from nothing.
 *
 * A member is an ordinary Workspace row with `poolMember` set, under a placeholder branch that
 * can never be a git ref (it starts with `:`), filled by the normal start job. A push of a new
 * branch claims one by renaming it (claimWarmWorkspace): it keeps its id and its Docker objects
 * (`diskSlug`), and its next start applies only the branch's own commit.
 *
 * The decisions are pure (planPool, mayClaim); the warm job (worker/jobs/warm-pool.ts) and the
 * push's recording act on them.
 */

/** git refuses `:` in a ref name, so no pushed branch can ever be called like a pool member */
export const POOL_BRANCH_PREFIX = ':warm-';

export function poolBranch(): string {
  return `${POOL_BRANCH_PREFIX}${randomBytes(5).toString('hex')}`;
}

export function isPoolBranch(branch: string): boolean {
  return branch.startsWith(POOL_BRANCH_PREFIX);
}

/** the largest pool berth.yml may ask for */
export const MAX_WARM = 10;

export interface PoolMemberView {
  id: string;
  state: WorkspaceState;
  /** the default branch's commit it was (or is being) prepared from */
  sha: string;
}

export interface PoolPlan {
  /** members to make now (each then filled by a start job at low priority) */
  create: number;
  /** members to delete: stale (the default branch moved), or more than asked for */
  remove: string[];
}

/**
 * What to do with a repository's pool: `want` members of the default branch's newest
 * successful build `sha` (null: none yet, so nothing can be prepared).
 * - A member prepared from another commit is stale (the default branch moved): it is discarded
 *   and a new one fills from the new commit, so a claimed workspace never starts behind.
 * - A member that failed to fill stays (counted, not retried) until the default branch moves or
 *   the config changes: a seed that fails would otherwise fail again and again in the background.
 * - More members than wanted (warm lowered, or 0: the pool drains): the ones still filling go
 *   first, then the failed ones, then the oldest ready ones.
 */
export function planPool(want: number, sha: string | null, members: PoolMemberView[]): PoolPlan {
  const live = members.filter((m) => m.state !== 'deleted');
  const stale = sha ? live.filter((m) => m.sha !== sha) : live;
  const current = live.filter((m) => !stale.includes(m));
  const target = sha ? Math.max(0, Math.min(want, MAX_WARM)) : 0;
  const rank = (m: PoolMemberView) => (m.state === 'stopped' ? 2 : m.state === 'failed' ? 1 : 0);
  // stable: among equals the earlier (older) member goes first
  const excess = [...current].map((m, i) => ({ m, i })).sort((a, b) => rank(a.m) - rank(b.m) || a.i - b.i).slice(0, Math.max(0, current.length - target)).map((x) => x.m);
  return {
    create: Math.max(0, target - current.length),
    remove: [...stale, ...excess].map((m) => m.id),
  };
}

/** ready: filled and stopped, waiting to be claimed */
export function poolCounts(members: Array<Pick<PoolMemberView, 'state'>>): { size: number; ready: number; filling: number; failed: number } {
  const live = members.filter((m) => m.state !== 'deleted');
  const ready = live.filter((m) => m.state === 'stopped').length;
  const failed = live.filter((m) => m.state === 'failed').length;
  return { size: live.length, ready, failed, filling: live.length - ready - failed };
}

/**
 * Whether a new workspace may come from the pool: a new branch of the repository itself,
 * pushed, not its default branch (that one is what the pool is prepared from) and not a fork's
 * pull request (a member's disk holds data the repository's own seed made, maybe with its
 * secrets; a fork gets it only through its own approved build, never from a pool).
 */
export function mayClaim(req: { branch: string; defaultBranch: string; forkRepo?: string | null; actor: string }): boolean {
  // a pull request's event claims only when it says it is not a fork's (forkRepo: null)
  const ours = req.actor === 'push' ? !req.forkRepo : req.actor === 'pull_request' && req.forkRepo === null;
  return ours && req.branch !== req.defaultBranch && !isPoolBranch(req.branch);
}

/**
 * Claims a ready member of the repository's pool for `branch`, atomically: one UPDATE whose
 * row is picked with `FOR UPDATE SKIP LOCKED`, so two pushes never get the same member (the
 * second takes the next one, or none). The member becomes the branch's workspace: its branch,
 * slug and head; it keeps its id, its disk and its Docker objects' names (`diskSlug`), its seed
 * mark and its images, and `runningSha` goes (nothing of the branch ran yet; the start checks
 * its commit out on the disk). Null when no member is ready, or the branch or slug is taken
 * meanwhile (the caller then makes a workspace as before).
 */
export async function claimWarmWorkspace(
  db: PrismaClient,
  repo: { id: bigint; fullName: string },
  branch: string,
  headSha: string,
): Promise<Workspace | null> {
  for (let salt = 0; salt < 3; salt++) {
    const slug = workspaceSlug(repo.fullName, branch, salt);
    try {
      const rows = await db.$queryRaw<Array<{ id: string }>>`
        UPDATE "Workspace" SET
          "branch" = ${branch}, "slug" = ${slug}, "diskSlug" = COALESCE("diskSlug", "slug"),
          "poolMember" = false, "claimedAt" = now(), "diskOrigin" = 'warm-pool', "headSha" = ${headSha}, "runningSha" = NULL,
          "previewHost" = NULL, "stateReason" = 'claimed from the warm pool', "lastActivityAt" = now(), "updatedAt" = now()
        WHERE "id" = (
          SELECT "id" FROM "Workspace"
          WHERE "repositoryId" = ${repo.id} AND "poolMember" AND "state" = 'stopped'
          ORDER BY "createdAt" ASC
          LIMIT 1
          FOR UPDATE SKIP LOCKED
        ) AND "poolMember" AND "state" = 'stopped'
        RETURNING "id"`;
      const id = rows[0]?.id;
      if (!id) return null;
      await db.workspaceEvent.create({ data: { workspaceId: id, fromState: 'stopped', toState: 'stopped', reason: `claimed from the warm pool by branch ${branch}`.slice(0, 2000), actor: 'push' } });
      return db.workspace.findUnique({ where: { id } });
    } catch (err) {
      // `slug` taken (try a salted one), or the branch got its workspace meanwhile (a racing
      // push of the same branch): the member stays in the pool
      if (!/unique constraint|P2002|23505/i.test(`${(err as { code?: string }).code ?? ''} ${(err as Error).message}`)) throw err;
      if (await db.workspace.findUnique({ where: { repositoryId_branch: { repositoryId: repo.id, branch } } })) return null;
    }
  }
  return null;
}
