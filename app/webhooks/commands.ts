import type { Context } from 'probot';
import type { AppDeps } from '../deps.js';
import { firstDelivery } from './record.js';
import { parseCommands } from '../commands/parse.js';

/**
 * issue_comment.created on a pull request: if it holds slash commands, enqueue them.
 * Permission checks, reactions and replies talk to GitHub, so they happen in the job.
 */
export async function onIssueComment(deps: AppDeps, context: Context<'issue_comment'>): Promise<void> {
  const p = context.payload;
  if (p.action !== 'created' || !p.issue.pull_request || !p.installation) return;
  if (p.sender.type === 'Bot' || p.comment.user?.type === 'Bot') return;
  const commands = parseCommands(p.comment.body ?? '');
  if (commands.length === 0) return;
  if (!(await firstDelivery(deps.db, context))) return;
  await deps.queues.enqueueCommand({
    installationId: p.installation.id,
    repositoryId: p.repository.id,
    owner: p.repository.owner.login,
    repo: p.repository.name,
    issueNumber: p.issue.number,
    commentId: p.comment.id,
    commentCreatedAt: p.comment.created_at,
    sender: p.sender.login,
    commands,
  });
}

/** Re-run on GitHub rebuilds the commit; the Stop / Refresh buttons act like the commands. */
export async function onCheckRun(deps: AppDeps, context: Context<'check_run'>): Promise<void> {
  const p = context.payload;
  if (!p.installation || (p.action !== 'rerequested' && p.action !== 'requested_action')) return;
  if (p.check_run.app?.id !== undefined && String(p.check_run.app.id) !== String(deps.config.APP_ID)) return;
  if (!(await firstDelivery(deps.db, context))) return;
  const identifier = p.action === 'rerequested' ? 'rebuild-commit' : (p as { requested_action?: { identifier: string } }).requested_action?.identifier;
  if (!identifier) return;
  await deps.queues.enqueueCommand({
    installationId: p.installation.id,
    repositoryId: p.repository.id,
    owner: p.repository.owner.login,
    repo: p.repository.name,
    sender: p.sender.login,
    buildId: p.check_run.external_id ?? undefined,
    headSha: p.check_run.head_sha,
    commands: [identifier === 'stop' ? { verb: 'stop' } : identifier === 'refresh' ? { verb: 'refresh' } : { verb: 'rerun' }],
  });
}
