import type { Context } from 'probot';
import type { AppDeps } from '../deps.js';
import { firstDelivery, upsertRepository } from './record.js';
import { queueBuild } from '../actions.js';
import { upsertWorkspace } from '../../lib/workspaces.js';
import { prWorkspaceKey } from './pr-key.js';
import { recordForkHead } from './fork-heads.js';

/**
 * opened / reopened / synchronize build the head commit (forks wait for `/berth approve`);
 * closed deletes the workspace, disk included.
 */
export async function onPullRequest(deps: AppDeps, context: Context<'pull_request'>): Promise<void> {
  const p = context.payload as Omit<Context<'pull_request.opened'>['payload'], 'action'> & { action: string; pull_request: { merged?: boolean | null } };
  if (!p.installation || !['opened', 'reopened', 'synchronize', 'closed'].includes(p.action)) return;
  if (!(await firstDelivery(deps.db, context))) return;
  const repo = await upsertRepository(deps.db, p.installation as never, p.repository as never);
  const pr = p.pull_request;
  const key = prWorkspaceKey(pr as never, repo.id);
  if (p.action === 'closed') {
    const ws = await deps.db.workspace.findUnique({ where: { repositoryId_branch: { repositoryId: repo.id, branch: key.branch } } });
    if (ws && ws.state !== 'deleted') {
      await deps.db.workspace.update({ where: { id: ws.id }, data: { prNumber: pr.number } });
      const reason = pr.merged ? `pull request #${pr.number} was merged` : `pull request #${pr.number} was closed`;
      await deps.queues.enqueueWorkspace('delete', { workspaceId: ws.id, actor: 'pull_request', reason, keepUnsavedWork: true });
    }
    return;
  }
  if (key.forkRepo) {
    const { workspace } = await upsertWorkspace(deps.db, repo, key.branch, pr.head.sha, { prNumber: pr.number, forkRepo: key.forkRepo });
    await deps.db.workspace.update({ where: { id: workspace.id }, data: { forkBranch: key.forkBranch } });
    await recordForkHead(deps.db, workspace.id, pr.head.sha, (pr as { updated_at?: string }).updated_at);
    if (workspace.approvedSha === pr.head.sha) {
      await queueBuild(deps, repo, key.branch, pr.head.sha, 'pull_request', `approved commit ${pr.head.sha.slice(0, 7)} of fork ${key.forkRepo}`);
    } else {
      // Never build code from a fork on our machines before someone with write access looked at it.
      await deps.queues.enqueueReport({ workspaceId: workspace.id });
    }
    return;
  }
  await queueBuild(deps, repo, key.branch, pr.head.sha, 'pull_request', `pull request #${pr.number} ${p.action}`, { prNumber: pr.number, forkRepo: null });
}

/** A deleted branch takes its workspace with it. */
export async function onDelete(deps: AppDeps, context: Context<'delete'>): Promise<void> {
  const p = context.payload;
  if (p.ref_type !== 'branch' || !p.installation) return;
  if (!(await firstDelivery(deps.db, context))) return;
  const repo = await deps.db.repository.findUnique({ where: { id: BigInt(p.repository.id) } });
  if (!repo) return;
  const ws = await deps.db.workspace.findUnique({ where: { repositoryId_branch: { repositoryId: repo.id, branch: p.ref } } });
  if (ws && ws.state !== 'deleted') {
    await deps.queues.enqueueWorkspace('delete', { workspaceId: ws.id, actor: 'push', reason: `branch ${p.ref} was deleted`, keepUnsavedWork: true });
  }
}
