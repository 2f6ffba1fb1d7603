import type { Probot } from 'probot';
import type { AppDeps } from '../deps.js';
import type { CommandJob } from '../../lib/queue.js';
import type { Repository, Workspace } from '../../lib/db/client.js';
import { queueBuild } from '../actions.js';
import { forkName, prWorkspaceKey } from '../webhooks/pr-key.js';
import type { PermissionCache } from '../github/permissions.js';
import { HELP_TEXT } from './parse.js';
import { decideApproval, refusalText } from './approval.js';
import { workspaceSlug } from '../../lib/slug.js';

type Octokit = Awaited<ReturnType<Probot['auth']>>;

/**
 * Runs slash commands and check-run buttons: 👀 on the comment at once, a permission check
 * (write, maintain or admin), the action, then 🚀 and a reply saying what happened.
 */
export async function runCommands(deps: AppDeps, probot: Probot, permissions: PermissionCache, job: CommandJob): Promise<void> {
  const octokit = await probot.auth(job.installationId);
  const target = { owner: job.owner, repo: job.repo };
  if (job.commentId) {
    await octokit.rest.reactions.createForIssueComment({ ...target, comment_id: job.commentId, content: 'eyes' });
  }
  const reply = async (body: string) => {
    if (job.issueNumber) await octokit.rest.issues.createComment({ ...target, issue_number: job.issueNumber, body });
  };
  const onlyHelp = job.commands.every((c) => 'unknown' in c || c.verb === 'help');
  if (onlyHelp) {
    const unknown = job.commands.find((c) => 'unknown' in c) as { unknown: string } | undefined;
    await reply(`${unknown ? `@${job.sender} \`/berth ${unknown.unknown}\` is not a Berth command.\n\n` : ''}${HELP_TEXT}`);
    return;
  }
  if (!(await permissions.canWrite(octokit, job.owner, job.repo, job.sender))) {
    await reply(`@${job.sender} sorry, only people with write access to ${job.owner}/${job.repo} can control its Berth workspaces. Nothing was changed.`);
    return;
  }
  const repo = await deps.db.repository.findUnique({ where: { id: BigInt(job.repositoryId) } });
  if (!repo) {
    await reply(`Berth does not know ${job.owner}/${job.repo} yet: push a commit to it first.`);
    return;
  }
  const lines: string[] = [];
  for (const command of job.commands) {
    if ('unknown' in command) {
      lines.push(`\`/berth ${command.unknown}\` is not a Berth command (see \`/berth help\`).`);
      continue;
    }
    if (command.verb === 'approve' && command.withSecrets) {
      // secrets are the repository's admins' and maintainers' to hand out, as on the settings page
      const role = await permissions.permission(octokit, job.owner, job.repo, job.sender);
      if (role !== 'admin' && role !== 'maintain') {
        lines.push(`@${job.sender} only maintainers and admins of ${job.owner}/${job.repo} can give a fork's pull request its secrets (\`/berth approve --with-secrets\`). Nothing was approved; \`/berth approve\` approves the commit without them.`);
        continue;
      }
    }
    lines.push(await runOne(deps, octokit, repo, job, command.verb, command.sha, command.withSecrets, command.force, command.beforeMigrate));
  }
  if (job.commentId) await octokit.rest.reactions.createForIssueComment({ ...target, comment_id: job.commentId, content: 'rocket' });
  await reply(lines.join('\n'));
}

async function runOne(deps: AppDeps, octokit: Octokit, repo: Repository, job: CommandJob, verb: string, askedSha?: string, withSecrets = false, force = false, beforeMigrate = false): Promise<string> {
  const by = `@${job.sender}`;
  if (verb === 'help') return HELP_TEXT;
  const ws = await findWorkspace(deps, octokit, repo, job);
  if (!ws) return `There is no workspace for this pull request yet${verb === 'approve' ? '' : '; push a commit to its branch to create one'}.`;
  const enqueue = (name: 'start' | 'stop' | 'delete' | 'status', reason: string) =>
    deps.queues.enqueueWorkspace(name, { workspaceId: ws.id, actor: by, reason });
  switch (verb) {
    case 'stop':
      if (ws.state === 'deleted') return 'The workspace was deleted; there is nothing to stop.';
      await enqueue('stop', `stopped by ${by}`);
      return `⏸️ Stopping the workspace of \`${ws.branch}\` (its disk is kept).`;
    case 'start':
      if (ws.state === 'running') return `The workspace of \`${ws.branch}\` is already running.`;
      if (ws.forkRepo && !ws.approvedSha) return 'This pull request comes from a fork: approve it with `/berth approve` first.';
      await enqueue('start', `started by ${by}`);
      return `▶️ Starting the workspace of \`${ws.branch}\` on its newest successful build.`;
    case 'delete':
      // A disk Berth already kept for its work (the comment listed it) is deleted when asked.
      if (force || ws.keptUntil) {
        await enqueue('delete', `deleted by ${by}`);
        return `🗑️ Deleting the workspace of \`${ws.branch}\`, its containers and its disk.`;
      }
      // The disk is looked at by the worker (git runs only in its sealed container): it deletes,
      // or replies here with what exists only on the disk.
      await deps.queues.enqueueWorkspace('delete', { workspaceId: ws.id, actor: by, reason: `deleted by ${by}`, refuseIfUnsaved: { issueNumber: job.issueNumber } });
      return `🗑️ Deleting the workspace of \`${ws.branch}\`, its containers and its disk, unless the disk holds work found nowhere else: then Berth lists it here and deletes nothing.`;
    case 'reset':
      // the worker copies the data (issue 17) and answers here when it is done, or why not
      if (ws.state === 'deleted') return 'The workspace was deleted; there is nothing to reset.';
      await deps.queues.enqueueWorkspace('reset', { workspaceId: ws.id, actor: by, reason: `reset by ${by}`, beforeMigrate, issueNumber: job.issueNumber });
      return beforeMigrate
        ? `⏪ Putting the data of \`${ws.branch}\` back to the snapshot taken before its newest migrate; its checkout is left alone.`
        : `♻️ Putting the data of \`${ws.branch}\` back to a fresh copy of the base disk; its checkout is left alone.`;
    case 'status':
      await enqueue('status', `status requested by ${by}`);
      return `🔎 Checking what is really running for \`${ws.branch}\`; the Berth comment above will be updated.`;
    case 'refresh':
    case 'rebuild': {
      const sha = await newestCommit(octokit, repo, ws, job);
      // a fork's head may have moved since it was approved: only the approved commit is built
      if (ws.forkRepo && ws.approvedSha !== sha) return notApprovedText(sha);
      const noCache = verb === 'rebuild';
      await queueBuild(deps, repo, ws.branch, sha, by, `${verb} by ${by}`, { noCache, force: true });
      return `🔄 ${noCache ? 'Rebuilding without cache' : 'Building'} \`${sha.slice(0, 7)}\` and restarting the workspace on it; its disk is kept.`;
    }
    case 'rerun': {
      const sha = job.headSha ?? ws.headSha;
      if (ws.forkRepo && ws.approvedSha !== sha) return notApprovedText(sha);
      await queueBuild(deps, repo, ws.branch, sha, by, `re-run by ${by}`, { force: true });
      return `Rebuilding \`${sha.slice(0, 7)}\`.`;
    }
    case 'approve': {
      if (!ws.forkRepo) return 'This pull request does not come from a fork; it needs no approval.';
      const prNumber = ws.prNumber ?? job.issueNumber;
      if (!prNumber) return 'Approve a fork from a comment on its pull request.';
      const { data: pr } = await octokit.rest.pulls.get({ owner: repo.owner, repo: repo.name, pull_number: prNumber });
      if (pr.state !== 'open') return 'This pull request is closed; nothing was approved.';
      const heads = await deps.db.forkHead.findMany({ where: { workspaceId: ws.id }, select: { sha: true, seenAt: true } });
      const commentAt = job.commentCreatedAt ? new Date(job.commentCreatedAt) : undefined;
      const decision = decideApproval({ heads, commentAt: commentAt && !Number.isNaN(commentAt.getTime()) ? commentAt : undefined, currentHead: pr.head.sha, asked: askedSha });
      const fork = forkName(ws.forkRepo);
      if (!decision.ok) return refusalText(decision, fork);
      const sha = decision.sha;
      // the secrets go with this one commit only (worker/variables.ts secretsAllowed)
      await deps.db.workspace.update({ where: { id: ws.id }, data: { approvedSha: sha, approvedSecretsSha: withSecrets ? sha : null } });
      await queueBuild(deps, repo, ws.branch, sha, by, `commit ${sha.slice(0, 7)} of ${fork} approved by ${by}${withSecrets ? ' with secrets' : ''}`, { force: true });
      return `✅ ${by} approved commit \`${sha.slice(0, 7)}\` of ${fork}${withSecrets ? ", with the repository's secrets" : ''}; building it. Only this commit is approved: any later push to the fork needs approval again.`;
    }
    default:
      return `\`/berth ${verb}\` is not a Berth command (see \`/berth help\`).`;
  }
}

/** The workspace a command is about: the check run's build, or the pull request's branch. */
async function findWorkspace(deps: AppDeps, octokit: Octokit, repo: Repository, job: CommandJob): Promise<Workspace | null> {
  if (job.buildId) {
    const build = await deps.db.build.findUnique({ where: { id: job.buildId }, include: { workspace: true } });
    if (build?.workspace) return build.workspace;
  }
  if (!job.issueNumber) return null;
  const known = await deps.db.workspace.findFirst({ where: { repositoryId: repo.id, prNumber: job.issueNumber }, orderBy: { updatedAt: 'desc' } });
  if (known) return known;
  // A pull request opened before Berth was installed: create its workspace from GitHub's view.
  const { data: pr } = await octokit.rest.pulls.get({ owner: repo.owner, repo: repo.name, pull_number: job.issueNumber });
  if (pr.state !== 'open') return null;
  const key = prWorkspaceKey(pr as never, repo.id);
  const existing = await deps.db.workspace.findUnique({ where: { repositoryId_branch: { repositoryId: repo.id, branch: key.branch } } });
  if (existing) return deps.db.workspace.update({ where: { id: existing.id }, data: { prNumber: pr.number } });
  return deps.db.workspace.create({
    data: {
      repositoryId: repo.id,
      branch: key.branch,
      slug: workspaceSlug(repo.fullName, key.branch, 1),
      headSha: pr.head.sha,
      prNumber: pr.number,
      forkRepo: key.forkRepo,
      forkBranch: key.forkBranch,
      state: 'stopped',
      stateReason: 'created by a command',
    },
  });
}

function notApprovedText(sha: string): string {
  const s = sha.slice(0, 7);
  return `This pull request comes from a fork and its head \`${s}\` is not approved; nothing was built. Review it, then comment \`/berth approve ${s}\`.`;
}

/** The newest commit of the workspace's branch (or the pull request's head for forks). */
async function newestCommit(octokit: Octokit, repo: Repository, ws: Workspace, job: CommandJob): Promise<string> {
  const prNumber = ws.prNumber ?? job.issueNumber;
  if (ws.forkRepo && prNumber) {
    const { data } = await octokit.rest.pulls.get({ owner: repo.owner, repo: repo.name, pull_number: prNumber });
    return data.head.sha;
  }
  try {
    const { data } = await octokit.rest.repos.getBranch({ owner: repo.owner, repo: repo.name, branch: ws.branch });
    return data.commit.sha;
  } catch (err) {
    if ((err as { status?: number }).status === 404) return ws.headSha;
    throw err;
  }
}
