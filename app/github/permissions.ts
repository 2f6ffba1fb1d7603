import { LRUCache } from 'lru-cache';
import type { Probot } from 'probot';

type Octokit = Awaited<ReturnType<Probot['auth']>>;
export type Permission = 'admin' | 'maintain' | 'write' | 'triage' | 'read' | 'none';

const WRITERS = new Set<Permission>(['admin', 'maintain', 'write']);
const KNOWN = new Set<string>(['admin', 'maintain', 'write', 'triage', 'read']);
/** Long enough that a burst of page loads or commands asks once, short enough that a revoked collaborator loses access within a minute. */
export const PERMISSION_TTL_MS = 60_000;
/**
 * "No access" grants nothing, so forgetting it sooner protects nobody: it is kept longer, which
 * bounds what a stranger signed in with a fresh GitHub account costs per repository Berth
 * knows. A collaborator who was just added sees the repository within this time.
 */
export const NO_ACCESS_TTL_MS = 5 * 60_000;
/** Users × repositories remembered at once; the oldest are forgotten first, so memory stays bounded whoever signs in. */
export const PERMISSION_CACHE_MAX = 5_000;

/**
 * A user's permission on a repository, asked from GitHub as the installation and cached per
 * user and repository. Every dashboard page, private preview request and slash command asks
 * here, and each GitHub call spends the installation's rate limit (5,000 an hour by default),
 * so: answers are kept for PERMISSION_TTL_MS (a 404 "no access" for NO_ACCESS_TTL_MS); concurrent
 * requests for the same user and repository share one call; the cache is bounded (LRU). A
 * failed call is not cached, so GitHub's outage does not outlive itself.
 */
export class PermissionCache {
  private readonly cache: LRUCache<string, Permission, { octokit: Octokit; owner: string; repo: string; username: string }>;

  constructor(opts: { ttlMs?: number; noAccessTtlMs?: number; max?: number } = {}) {
    const noAccessTtl = opts.noAccessTtlMs ?? Math.max(NO_ACCESS_TTL_MS, opts.ttlMs ?? PERMISSION_TTL_MS);
    this.cache = new LRUCache({
      max: opts.max ?? PERMISSION_CACHE_MAX,
      ttl: opts.ttlMs ?? PERMISSION_TTL_MS,
      // a stale entry is never served: revocation must take effect within the TTL
      allowStale: false,
      fetchMethod: async (_key, _stale, { context, options }) => {
        const permission = await ask(context.octokit, context.owner, context.repo, context.username);
        if (permission === 'none') options.ttl = noAccessTtl;
        return permission;
      },
    });
  }

  async permission(octokit: Octokit, owner: string, repo: string, username: string): Promise<Permission> {
    const key = `${owner}/${repo}\0${username}`.toLowerCase();
    const permission = await this.cache.fetch(key, { context: { octokit, owner, repo, username } });
    return permission ?? 'none';
  }

  async canWrite(octokit: Octokit, owner: string, repo: string, username: string): Promise<boolean> {
    return WRITERS.has(await this.permission(octokit, owner, repo, username));
  }
}

async function ask(octokit: Octokit, owner: string, repo: string, username: string): Promise<Permission> {
  try {
    const { data } = await octokit.rest.repos.getCollaboratorPermissionLevel({ owner, repo, username });
    const role = (data as { role_name?: string }).role_name;
    return (role && KNOWN.has(role) ? role : data.permission) as Permission;
  } catch (err) {
    if ((err as { status?: number }).status === 404) return 'none';
    throw err;
  }
}
