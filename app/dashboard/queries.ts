import type { Auth, RepoAccess, SessionUser } from '../auth/types.js';
import type { AppDeps } from '../deps.js';
import type { Queues } from '../../lib/queue.js';
import type { ListFilters, State } from './presenters.js';
import { poolCounts } from '../../lib/warm-pool.js';

/** The database reads of the dashboard, with the access checks that decide what a user sees. */

export interface RepoWithAccess {
  id: bigint;
  owner: string;
  name: string;
  fullName: string;
  htmlUrl: string | null;
  installationId: bigint;
  access: RepoAccess;
}

/** Parallel permission look-ups: enough to be quick, few enough not to hammer GitHub. */
const ACCESS_CONCURRENCY = 8;
/** A dashboard shows at most this many workspaces at once; filters narrow it down. */
export const LIST_LIMIT = 500;

/**
 * Repositories Berth knows that the user can at least read, with their access, and the names
 * of those whose access GitHub could not tell right now (left out, and said so on the page).
 */
export async function readableRepositories(deps: AppDeps, auth: Auth, user: SessionUser): Promise<{ repos: RepoWithAccess[]; unchecked: string[] }> {
  const repos = await deps.db.repository.findMany({
    where: { removed: false },
    select: { id: true, owner: true, name: true, fullName: true, htmlUrl: true, installationId: true },
    orderBy: { fullName: 'asc' },
  });
  const withAccess = await mapLimit(repos, ACCESS_CONCURRENCY, async (r) => ({ ...r, access: await accessOrNull(auth, user, r) }));
  return {
    repos: withAccess.filter((r): r is RepoWithAccess => r.access !== null && r.access !== 'none'),
    unchecked: withAccess.filter((r) => r.access === null).map((r) => r.fullName),
  };
}

/** The user's access to one repository, or null when GitHub could not be asked. */
export async function accessOrNull(auth: Auth, user: SessionUser, repo: { owner: string; name: string; installationId: bigint }): Promise<RepoAccess | null> {
  try {
    return await auth.access(user, repo);
  } catch {
    return null;
  }
}

export async function listWorkspaces(deps: AppDeps, repos: RepoWithAccess[], filters: ListFilters) {
  const repoIds = repos.filter((r) => !filters.repo || r.fullName === filters.repo).map((r) => r.id);
  if (repoIds.length === 0) return [];
  const state =
    filters.state === 'all' ? undefined : filters.state === 'active' ? { not: 'deleted' as State } : (filters.state as State);
  return deps.db.workspace.findMany({
    where: {
      repositoryId: { in: repoIds },
      // warm pool members are nobody's branch: each repository shows its pool as counts (warmPools)
      poolMember: false,
      ...(state ? { state } : {}),
      ...(filters.q ? { branch: { contains: filters.q, mode: 'insensitive' as const } } : {}),
    },
    include: { repository: { select: { id: true, fullName: true, htmlUrl: true } } },
    orderBy: [{ updatedAt: 'desc' }],
    take: LIST_LIMIT,
  });
}

/**
 * Each repository's warm pool (berth.yml `workspace: { warm: N }`, lib/warm-pool.ts): the size its
 * default branch's newest successful build asks for, and its members ready, filling and failed.
 * Only repositories that ask for a pool or still have members (draining).
 */
export async function warmPools(deps: AppDeps, repos: Array<{ id: bigint; fullName: string }>): Promise<Map<string, { wanted: number } & ReturnType<typeof poolCounts>>> {
  const out = new Map<string, { wanted: number } & ReturnType<typeof poolCounts>>();
  if (!repos.length) return out;
  const members = await deps.db.workspace.findMany({ where: { repositoryId: { in: repos.map((r) => r.id) }, poolMember: true, state: { not: 'deleted' } }, select: { repositoryId: true, state: true } });
  const defaults = await deps.db.repository.findMany({
    where: { id: { in: repos.map((r) => r.id) } },
    select: { id: true, fullName: true, defaultBranch: true, workspaces: { where: { poolMember: false, state: { not: 'deleted' } }, select: { branch: true, id: true } } },
  });
  for (const repo of defaults) {
    const main = repo.workspaces.find((w) => w.branch === repo.defaultBranch);
    const build = main ? await deps.db.build.findFirst({ where: { workspaceId: main.id, state: 'succeeded' }, orderBy: { createdAt: 'desc' }, select: { config: true } }) : null;
    const wanted = (build?.config as { workspace?: { warm?: number } } | null)?.workspace?.warm ?? 0;
    const mine = members.filter((m) => m.repositoryId === repo.id);
    if (wanted > 0 || mine.length) out.set(repo.fullName, { wanted, ...poolCounts(mine) });
  }
  return out;
}

/** A workspace with its repository, or null. */
export function findWorkspace(deps: AppDeps, id: string) {
  return deps.db.workspace.findUnique({ where: { id }, include: { repository: true } });
}

export async function workspaceDetails(deps: AppDeps, workspaceId: string) {
  const [events, builds] = await Promise.all([
    deps.db.workspaceEvent.findMany({ where: { workspaceId }, orderBy: { id: 'desc' }, take: 200 }),
    deps.db.build.findMany({
      where: { workspaceId },
      orderBy: { createdAt: 'desc' },
      take: 30,
      select: { id: true, sha: true, state: true, step: true, error: true, trigger: true, createdAt: true, startedAt: true, finishedAt: true, config: true },
    }),
  ]);
  return { events, builds };
}

/**
 * Jobs waiting or running on the workspaces queue, by workspace: lets the pages say
 * "stopping…" between a click and the worker's state change. Best effort: an unreachable
 * Redis only hides the hint.
 */
export async function pendingWorkspaceJobs(queues: Queues): Promise<Map<string, string[]>> {
  const byWorkspace = new Map<string, string[]>();
  try {
    const jobs = await queues.workspaces.getJobs(['waiting', 'active', 'delayed', 'prioritized'], 0, 500);
    for (const job of jobs) {
      const id = job?.data?.workspaceId;
      if (!id) continue;
      byWorkspace.set(id, [...(byWorkspace.get(id) ?? []), job.name]);
    }
  } catch {
    // no hint then
  }
  return byWorkspace;
}

async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  });
  await Promise.all(workers);
  return out;
}
