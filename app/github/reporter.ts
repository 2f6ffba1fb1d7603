import { Worker, type Job } from 'bullmq';
import type { Probot } from 'probot';
import type { AppDeps } from '../deps.js';
import { QUEUE, type CommandJob, type ReportJob } from '../../lib/queue.js';
import { isBackendUnavailable } from '../../lib/errors.js';
import { runCommands } from '../commands/run.js';
import { PermissionCache } from './permissions.js';
import type { Build, Repository, Workspace } from '../../lib/db/client.js';
import { render } from '../views.js';
import { startedFromText } from '../../lib/start-steps.js';
import { workspaceLinks } from './links.js';
import { previewLinkOf } from './preview-link.js';
import { STATE_EMOJI, checkViewFor, tail } from './presenter.js';
import { forkName } from '../webhooks/pr-key.js';
import { isReachable, sinceText } from '../../lib/hosts/health.js';
import { redact } from '../../lib/redact.js';
import { idleDeadline } from '../../lib/idle.js';

type Octokit = Awaited<ReturnType<Probot['auth']>>;
type WorkspaceWithRepo = Workspace & { repository: Repository };

export const CHECK_NAME = 'Berth';
export const commentMarker = (ws: { repositoryId: bigint; branch: string }) => `<!-- berth:sticky ${ws.repositoryId}:${encodeURIComponent(ws.branch)} -->`;

/**
 * The only code that writes to GitHub. It runs report jobs (one at a time, so edits of one
 * comment never interleave) and reads the current state from the database each time, so a
 * late or repeated job still shows the truth. A GitHub error fails the job, which BullMQ
 * retries with backoff; the build itself is never affected.
 */
export class Reporter {
  readonly worker: Worker<ReportJob | CommandJob>;
  readonly permissions = new PermissionCache();

  constructor(
    private deps: AppDeps,
    private probot: Probot,
  ) {
    this.worker = new Worker<ReportJob | CommandJob>(
      QUEUE.reports,
      (job) =>
        job.name === 'command'
          ? runCommands(deps, probot, this.permissions, job.data as CommandJob)
          : this.process(job as Job<ReportJob>),
      {
      connection: deps.queues.connection,
      prefix: deps.queues.prefix,
      concurrency: 1,
      },
    );
    // a failed write to GitHub says what happens next: BullMQ tries again with a backoff, and
    // after the last attempt the next state change of the workspace writes it all again
    this.worker.on('failed', (job, err) => {
      const attempts = job?.opts.attempts ?? 1;
      const retry = !!job && job.attemptsMade < attempts;
      const next = retry
        ? `tries again (attempt ${job!.attemptsMade + 1} of ${attempts})`
        : job?.name === 'command'
          ? 'the command is not run again: comment it again'
          : 'gives up on this update; the next change of the workspace writes the check run and comment again';
      probot.log[retry ? 'warn' : 'error']({ err, job: job?.name, workspaceId: (job?.data as { workspaceId?: string } | undefined)?.workspaceId, next }, `writing to GitHub failed: ${err.message}`);
    });
    // BullMQ reconnects by itself. Without a listener it printed every failed reconnect to
    // stderr, stack and all, for as long as Redis was away; /readyz reports that outage.
    this.worker.on('error', (err) => {
      if (isBackendUnavailable(err)) probot.log.debug({ err }, 'GitHub reports wait for Redis');
      else probot.log.error({ err }, 'GitHub reports: worker error');
    });
  }

  async process(job: Job<ReportJob>) {
    const ws = await this.deps.db.workspace.findUnique({ where: { id: job.data.workspaceId }, include: { repository: true } });
    // a warm pool member is nobody's branch yet: its build is the default branch's, whose check run is its own
    if (!ws || ws.poolMember) return;
    const octokit = await this.probot.auth(Number(ws.repository.installationId));
    if (job.data.reply) {
      await octokit.rest.issues.createComment({ owner: ws.repository.owner, repo: ws.repository.name, issue_number: job.data.reply.issueNumber, body: job.data.reply.body });
    }
    const buildId = job.data.buildId ?? ws.currentBuildId;
    const build = buildId ? await this.deps.db.build.findUnique({ where: { id: buildId } }) : null;
    if (build) await this.updateCheckRun(octokit, ws, build);
    if (ws.prNumber) await this.updateComment(octokit, ws);
  }

  private async updateCheckRun(octokit: Octokit, ws: WorkspaceWithRepo, build: Build) {
    // a commit that failed to roll out leaves the workspace running its older commit: its log tail too
    const rolledBack = ws.currentBuildId === build.id && ws.state === 'running' && ws.runningSha !== null && ws.runningSha !== build.sha;
    const logTail = build.state === 'failed' || ws.state === 'failed' || rolledBack ? await this.logTail(build.id) : '';
    const view = checkViewFor(ws, build, logTail);
    // check runs of a public repository are public: the failure reason is redacted like the log tail
    view.headline = redact(view.headline);
    const links = workspaceLinks(this.deps.config, ws);
    const showLinks = view.conclusion === 'success' || view.status !== 'completed';
    const output = {
      title: view.title,
      // where the disk came from and how long each step took, once this build's start got that far (issue 17)
      summary: render('github/check-summary.njk', { view, links, ws, build, showLinks, preview: previewLinkOf(build.config), startedFrom: ws.runningSha === build.sha ? startedFromText(ws.diskOrigin, ws.startSteps) : null }).slice(0, 65_000),
      text: render('github/check-text.njk', { view, build }).slice(0, 65_000) || undefined,
    };
    const common = {
      owner: ws.repository.owner,
      repo: ws.repository.name,
      details_url: links.details,
      external_id: build.id,
      status: view.status,
      output,
      ...(view.status === 'completed' ? { conclusion: view.conclusion, completed_at: new Date().toISOString() } : {}),
      actions:
        ws.state === 'deleted'
          ? []
          : [
              { label: 'Stop', description: 'Stop the workspace, keep its disk', identifier: 'stop' },
              { label: 'Refresh', description: 'Build the newest commit and restart', identifier: 'refresh' },
            ],
    };
    if (build.checkRunId) {
      await octokit.rest.checks.update({ ...common, check_run_id: Number(build.checkRunId) });
      return;
    }
    const { data } = await octokit.rest.checks.create({ ...common, name: CHECK_NAME, head_sha: build.sha, started_at: new Date().toISOString() });
    await this.deps.db.build.update({ where: { id: build.id }, data: { checkRunId: BigInt(data.id) } });
  }

  private async updateComment(octokit: Octokit, ws: WorkspaceWithRepo) {
    const links = workspaceLinks(this.deps.config, ws);
    const marker = commentMarker(ws);
    const idleStop = idleDeadline(ws)?.toISOString().replace(/\.\d+Z$/, 'Z');
    // A fork's new commit waits for approval, whatever the workspace runs meanwhile.
    const needsApproval = Boolean(ws.forkRepo) && ws.approvedSha !== ws.headSha;
    const head = ws.headSha.slice(0, 7);
    const approvalText =
      `This pull request comes from ${forkName(ws.forkRepo ?? '')}. Berth builds a fork only at a commit someone with write access approved: ` +
      `review \`${head}\`, then comment \`/berth approve ${head}\` to build it.` +
      (ws.approvedSha ? ` The last approved commit was \`${ws.approvedSha.slice(0, 7)}\`.` : '');
    // the running build's: a devcontainer without forwardPorts has no preview to link to
    const current = ws.currentBuildId ? await this.deps.db.build.findUnique({ where: { id: ws.currentBuildId }, select: { config: true } }) : null;
    // issue 18: a host that stopped heartbeating: its workspaces are unreachable, not failed or gone
    const host = ws.hostId ? await this.deps.db.host.findUnique({ where: { id: ws.hostId }, select: { name: true, lastHeartbeatAt: true } }) : null;
    const unreachable = host && ws.state !== 'deleted' && !isReachable(host) ? { host: host.name, since: sinceText(host.lastHeartbeatAt) } : null;
    const body = render('github/comment.njk', {
      preview: previewLinkOf(current?.config),
      // the comment is as public as the repository: no secret-looking text from a failure reason
      ws: { ...ws, stateReason: ws.stateReason && redact(ws.stateReason), ...(needsApproval && ws.state === 'queued' ? { state: 'awaiting_approval' } : {}) },
      links,
      marker,
      emoji: STATE_EMOJI[unreachable ? 'unreachable' : ws.state] ?? '',
      unreachable,
      idleStop,
      notice: [needsApproval && ws.state !== 'queued' ? approvalText : null, ws.notice ? redact(ws.notice) : null].filter(Boolean).join('\n>\n> '),
      approvalText,
      approved: ws.forkRepo ? (ws.approvedSha ? ws.approvedSha.slice(0, 7) : 'none yet') : null,
      startedFrom: ws.state === 'running' ? startedFromText(ws.diskOrigin, ws.startSteps) : null,
    });
    const target = { owner: ws.repository.owner, repo: ws.repository.name };
    const commentId = ws.commentId ?? (await this.findComment(octokit, target, ws.prNumber!, marker));
    if (commentId) {
      try {
        await octokit.rest.issues.updateComment({ ...target, comment_id: Number(commentId), body });
        if (!ws.commentId) await this.deps.db.workspace.update({ where: { id: ws.id }, data: { commentId } });
        return;
      } catch (err) {
        if ((err as { status?: number }).status !== 404) throw err;
        // someone deleted the comment: post a new one below
      }
    }
    const { data } = await octokit.rest.issues.createComment({ ...target, issue_number: ws.prNumber!, body });
    await this.deps.db.workspace.update({ where: { id: ws.id }, data: { commentId: BigInt(data.id) } });
  }

  /** Finds the sticky comment by its hidden marker, so a lost database row never duplicates it. */
  private async findComment(octokit: Octokit, target: { owner: string; repo: string }, issue: number, marker: string): Promise<bigint | null> {
    for await (const page of octokit.paginate.iterator(octokit.rest.issues.listComments, { ...target, issue_number: issue, per_page: 100 })) {
      const found = page.data.find((c) => c.body?.includes(marker) && c.user?.type === 'Bot');
      if (found) return BigInt(found.id);
    }
    return null;
  }

  private async logTail(buildId: string): Promise<string> {
    const chunks = await this.deps.db.buildLogChunk.findMany({ where: { buildId }, orderBy: { id: 'desc' }, take: 50 });
    return tail(chunks.reverse().map((c) => c.text).join(''), 30);
  }

  close() {
    return this.worker.close();
  }
}
