import type { Probot } from 'probot';
import { PermissionCache, type Permission } from '../github/permissions.js';
import { AccessCheckError } from './errors.js';
import type { RepoAccess } from './types.js';

export interface RepoRef {
  owner: string;
  name: string;
  installationId: bigint;
}

/**
 * A user's access to a repository, asked from GitHub as the app's installation (it can read
 * any collaborator's permission on the repositories it is installed on, so Berth never has
 * to keep users' tokens) and cached for a minute by PermissionCache: revoking someone on
 * GitHub takes effect within a minute everywhere, IDE and private previews included.
 */
export class AccessChecker {
  private readonly permissions = new PermissionCache();

  constructor(private readonly probot: Probot) {}

  async access(login: string, repo: RepoRef): Promise<RepoAccess> {
    let permission: Permission;
    try {
      const octokit = await this.probot.auth(Number(repo.installationId));
      permission = await this.permissions.permission(octokit, repo.owner, repo.name, login);
    } catch (err) {
      throw new AccessCheckError(`GitHub could not be asked about your access to ${repo.owner}/${repo.name} (${(err as Error).message}); try again in a moment`);
    }
    return accessOf(permission);
  }
}

export function accessOf(permission: Permission): RepoAccess {
  if (permission === 'admin' || permission === 'maintain' || permission === 'write') return 'write';
  if (permission === 'triage' || permission === 'read') return 'read';
  return 'none';
}

/** true when `have` is at least `need` */
export function sufficient(have: RepoAccess, need: Exclude<RepoAccess, 'none'>): boolean {
  const rank = { none: 0, read: 1, write: 2 } as const;
  return rank[have] >= rank[need];
}
