import type { Probot } from 'probot';
import type { AppDeps } from '../deps.js';
import type { Repository, Workspace } from '../../lib/db/client.js';
import type { SessionUser } from '../auth/types.js';
import { queueBuild } from '../actions.js';
import type { ActionName } from './presenters.js';

export type WorkspaceWithRepo = Workspace & { repository: Repository };

export interface ActionResult {
  /** what to tell the user on the next page */
  message: string;
}

/**
 * The dashboard's buttons, doing what the slash commands do (app/commands/run.ts): they only
 * enqueue work for the worker or queue a build, so a click answers at once and the pages show
 * the state changing. The caller has checked CSRF and write access.
 */
export async function runDashboardAction(
  deps: AppDeps,
  probot: Probot,
  ws: WorkspaceWithRepo,
  action: ActionName,
  user: SessionUser,
  /** delete: even when the disk holds work found nowhere else (otherwise the worker looks first and keeps it) */
  opts: { force?: boolean; beforeMigrate?: boolean } = {},
): Promise<ActionResult> {
  const actor = `@${user.login}`;
  const by = `${actor} from the dashboard`;
  const enqueue = (name: 'start' | 'stop' | 'delete' | 'status', reason: string) =>
    deps.queues.enqueueWorkspace(name, { workspaceId: ws.id, actor, reason });
  if (ws.state === 'deleted') return { message: `The workspace of ${ws.branch} was deleted; push to the branch to create it again.` };
  switch (action) {
    case 'stop':
      if (ws.state === 'stopped') return { message: `The workspace of ${ws.branch} is already stopped.` };
      await enqueue('stop', `stopped by ${by}`);
      return { message: `Stopping the workspace of ${ws.branch}; its disk is kept.` };
    case 'start':
      if (ws.state === 'running') return { message: `The workspace of ${ws.branch} is already running.` };
      if (ws.forkRepo && !ws.approvedSha) return { message: `${ws.branch} comes from a fork: approve it with /berth approve on the pull request first.` };
      await enqueue('start', `started by ${by}`);
      return { message: `Starting the workspace of ${ws.branch} on its newest successful build.` };
    case 'delete':
      if (opts.force || ws.keptUntil) {
        await enqueue('delete', `deleted by ${by}`);
        return { message: `Deleting the workspace of ${ws.branch}, its containers and its disk.` };
      }
      await deps.queues.enqueueWorkspace('delete', { workspaceId: ws.id, actor, reason: `deleted by ${by}`, refuseIfUnsaved: {} });
      return { message: `Deleting the workspace of ${ws.branch}, its containers and its disk, unless the disk holds work found nowhere else: then its page lists it and nothing is deleted.` };
    case 'refresh':
      return refresh(deps, probot, ws, actor, by, enqueue);
    case 'reset':
      // the worker copies the data back (worker/jobs/reset.ts); the page shows the restart
      await deps.queues.enqueueWorkspace('reset', { workspaceId: ws.id, actor, reason: `reset by ${by}`, beforeMigrate: Boolean(opts.beforeMigrate) });
      return { message: `Putting the data of ${ws.branch} back to ${opts.beforeMigrate ? 'the snapshot taken before its newest migrate' : 'a fresh copy of the base disk'}; its checkout is left alone.` };
  }
}

/**
 * Refresh (seed 000's menu): resync the record with what really runs, and when the branch has
 * moved past the running commit, build the newest one (the workspace moves to it, disk kept).
 */
async function refresh(
  deps: AppDeps,
  probot: Probot,
  ws: WorkspaceWithRepo,
  actor: string,
  by: string,
  enqueue: (name: 'status', reason: string) => Promise<unknown>,
): Promise<ActionResult> {
  await enqueue('status', `refresh by ${by}`);
  let newest: string;
  try {
    newest = await newestCommit(probot, ws);
  } catch {
    return { message: `Checking what runs for ${ws.branch}. GitHub could not be asked for its newest commit; try again in a moment.` };
  }
  const current = ws.runningSha ?? null;
  if (newest === current && ws.state !== 'failed') {
    return { message: `${ws.branch} is up to date at ${newest.slice(0, 7)}; checking that its containers really run.` };
  }
  if (ws.forkRepo && ws.approvedSha !== newest) {
    return { message: `${ws.branch} comes from a fork: approve commit ${newest.slice(0, 7)} with /berth approve on the pull request first.` };
  }
  const { duplicate } = await queueBuild(deps, ws.repository, ws.branch, newest, actor, `refresh by ${by}`);
  return {
    message: duplicate
      ? `${newest.slice(0, 7)} of ${ws.branch} is already being built.`
      : `Building ${newest.slice(0, 7)} of ${ws.branch}; the workspace moves to it when it is built, its disk is kept.`,
  };
}

/** The branch's newest commit on GitHub (the pull request's head for forks), asked as the installation. */
async function newestCommit(probot: Probot, ws: WorkspaceWithRepo): Promise<string> {
  const octokit = await probot.auth(Number(ws.repository.installationId));
  const target = { owner: ws.repository.owner, repo: ws.repository.name };
  if (ws.forkRepo && ws.prNumber) {
    const { data } = await octokit.rest.pulls.get({ ...target, pull_number: ws.prNumber });
    return data.head.sha;
  }
  try {
    const { data } = await octokit.rest.repos.getBranch({ ...target, branch: ws.branch });
    return data.commit.sha;
  } catch (err) {
    // a branch deleted on GitHub: its deletion webhook removes the workspace; keep what we know
    if ((err as { status?: number }).status === 404) return ws.headSha;
    throw err;
  }
}
