import type { Context } from 'probot';
import type { AppDeps } from '../deps.js';
import { firstDelivery, upsertRepository } from './record.js';
import { transition, upsertWorkspace } from '../../lib/workspaces.js';

/**
 * push: record the commit as the branch's newest and enqueue its build. Nothing slow
 * happens here: Probot answers GitHub only after this returns.
 */
export async function onPush(deps: AppDeps, context: Context<'push'>): Promise<void> {
  const p = context.payload;
  if (!p.ref.startsWith('refs/heads/') || p.deleted || !p.installation) return;
  if (/^0+$/.test(p.after)) return;
  if (!(await firstDelivery(deps.db, context))) return;
  const branch = p.ref.slice('refs/heads/'.length);
  const repo = await upsertRepository(deps.db, p.installation as never, p.repository as never);
  await queueBuild(deps, repo, branch, p.after, 'push', `push of ${p.after.slice(0, 7)} by ${p.sender?.login ?? 'someone'}`);
}

/**
 * Marks `sha` as the branch's head, records a build for it and enqueues it. Shared by push,
 * pull request and slash-command handlers.
 */
export async function queueBuild(
  deps: AppDeps,
  repo: { id: bigint; fullName: string },
  branch: string,
  sha: string,
  actor: string,
  reason: string,
  opts: { noCache?: boolean; prNumber?: number; forkRepo?: string | null } = {},
) {
  const fields: { prNumber?: number; forkRepo?: string | null } = {};
  if (opts.prNumber !== undefined) fields.prNumber = opts.prNumber;
  if (opts.forkRepo !== undefined) fields.forkRepo = opts.forkRepo;
  const { workspace } = await upsertWorkspace(deps.db, repo, branch, sha, fields);
  if (workspace.state === 'deleted') {
    // a branch pushed again after its workspace was deleted starts over with a fresh disk
    await deps.db.workspace.update({ where: { id: workspace.id }, data: { state: 'queued', seededAt: null, previewHost: null, runningSha: null } });
    await deps.db.workspaceEvent.create({ data: { workspaceId: workspace.id, fromState: 'deleted', toState: 'queued', reason, actor } });
  }
  const build = await deps.db.build.create({
    data: { repositoryId: repo.id, workspaceId: workspace.id, sha, noCache: Boolean(opts.noCache), trigger: actor },
  });
  await deps.db.workspace.update({ where: { id: workspace.id }, data: { currentBuildId: build.id } });
  if (workspace.state !== 'deleted') await transition(deps.db, deps.queues, workspace.id, 'queued', reason, actor);
  else await deps.queues.enqueueReport({ workspaceId: workspace.id });
  await deps.queues.enqueueBuild({ workspaceId: workspace.id, buildId: build.id });
  return { workspace, build };
}
