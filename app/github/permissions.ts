import type { Probot } from 'probot';

type Octokit = Awaited<ReturnType<Probot['auth']>>;
export type Permission = 'admin' | 'maintain' | 'write' | 'triage' | 'read' | 'none';

const WRITERS = new Set<Permission>(['admin', 'maintain', 'write']);
const TTL_MS = 60_000;

/**
 * A user's permission on a repository, asked from GitHub and cached briefly: long enough
 * that a burst of commands asks once, short enough that a revoked collaborator loses access
 * within a minute.
 */
export class PermissionCache {
  private cache = new Map<string, { at: number; permission: Permission }>();

  async permission(octokit: Octokit, owner: string, repo: string, username: string): Promise<Permission> {
    const key = `${owner}/${repo}\0${username}`.toLowerCase();
    const hit = this.cache.get(key);
    if (hit && Date.now() - hit.at < TTL_MS) return hit.permission;
    let permission: Permission = 'none';
    try {
      const { data } = await octokit.rest.repos.getCollaboratorPermissionLevel({ owner, repo, username });
      permission = ((data as { role_name?: string }).role_name as Permission) ?? (data.permission as Permission);
      if (!['admin', 'maintain', 'write', 'triage', 'read'].includes(permission)) permission = data.permission as Permission;
    } catch (err) {
      if ((err as { status?: number }).status !== 404) throw err;
    }
    this.cache.set(key, { at: Date.now(), permission });
    return permission;
  }

  async canWrite(octokit: Octokit, owner: string, repo: string, username: string): Promise<boolean> {
    return WRITERS.has(await this.permission(octokit, owner, repo, username));
  }
}
