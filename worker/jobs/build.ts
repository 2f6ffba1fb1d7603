import type { Job } from 'bullmq';
import { stringify } from 'yaml';
import type { WorkerDeps } from '../deps.js';
import type { BuildJob } from '../../lib/queue.js';
import { LOCAL_HOST } from '../../lib/hosts/health.js';
import { transition } from '../../lib/workspaces.js';
import { cloneToken } from '../../lib/github-app.js';
import { BerthError, StepFailedError, SupersededError } from '../../lib/errors.js';
import { CONFIG_PATH, previewIsPrivate } from '../../lib/repo-config.js';
import { BuildLog, pruneWorkspaceHistory } from '../build-log.js';
import { explainDiskFull } from '../failure-reason.js';
import type { Repository, Workspace } from '../../lib/db/client.js';
import { cloneAt } from '../source/clone.js';
import { readRepoConfig } from '../source/repo-config.js';
import { assertExtendsAllowed } from '../source/config-extends.js';
import { buildContextInside } from '../source/inside-clone.js';
import { keepCheckout } from '../source/checkout-handover.js';
import { BASE_DISK_PRIORITY } from './base-disk.js';
import { imageTag } from '../runtime/image-tags.js';
import { keepServingAfterBuildFailure } from '../kept-version.js';
import { assertVariablesSet, buildArgs } from '../variables.js';

/**
 * Builds the images of a workspace's newest commit, then asks for a start. The job builds
 * whatever commit is the workspace's current build when it runs, so pushes that arrived
 * while it waited collapse into one build, and it stops as soon as a newer push makes it
 * obsolete.
 */
export async function buildJob(deps: WorkerDeps, job: Job<BuildJob>): Promise<void> {
  const { db, queues } = deps;
  // From here on a new push must queue its own build instead of being deduplicated away.
  await queues.releaseBuild(job.data.workspaceId, deps.host?.name ?? LOCAL_HOST);
  const ws = await db.workspace.findUnique({ where: { id: job.data.workspaceId }, include: { repository: true } });
  if (!ws || ws.state === 'deleted' || !ws.currentBuildId) return;
  const build = await db.build.findUnique({ where: { id: ws.currentBuildId } });
  // 'running' too: a job whose worker died mid-build comes back through stalled-job recovery
  if (!build || (build.state !== 'queued' && build.state !== 'running')) return;
  await cancelOlderBuilds(deps, ws.id, build.id);
  // older builds' logs and the oldest history go, so a workspace pushed to for months stays small
  await pruneWorkspaceHistory(db, ws.id).catch((err) => deps.log(`pruning the history of ${ws.id} failed: ${(err as Error).message}`));

  const log = new BuildLog(db, build.id);
  const abort = new AbortController();
  const watcher = setInterval(async () => {
    const now = await db.workspace.findUnique({ where: { id: ws.id }, select: { currentBuildId: true, state: true } }).catch(() => null);
    if (now && (now.currentBuildId !== build.id || now.state === 'deleted')) abort.abort(new SupersededError(build.sha));
  }, 1000);
  const step = async (name: string) => {
    log.line(`==> ${name}`);
    await db.build.update({ where: { id: build.id }, data: { step: name } });
    await queues.enqueueReport({ workspaceId: ws.id, buildId: build.id });
  };
  let cleanup: (() => Promise<void>) | undefined;
  try {
    await db.build.update({ where: { id: build.id }, data: { state: 'running', startedAt: new Date() } });
    await transition(db, queues, ws.id, 'building', `building ${build.sha.slice(0, 7)}`, 'worker');
    await step('cloning');
    // one repository, contents: read: the clone runs with the repository's own hostile files around
    const token = await cloneToken(deps.probot, Number(ws.repository.installationId), Number(ws.repository.id));
    log.addSecret(token);
    const checkout = await cloneAt({ ...sourceOf(ws), token, sha: build.sha, signal: abort.signal });
    cleanup = checkout.cleanup;
    log.line(`checked out ${build.sha}`);

    await step('reading configuration');
    const config = await readRepoConfig(checkout.dir, async (raw) => {
      assertExtendsAllowed(raw, ws.repository.owner);
      const octokit = await deps.probot.auth(Number(ws.repository.installationId));
      const { config: merged } = await octokit.config.get({ owner: ws.repository.owner, repo: ws.repository.name, path: CONFIG_PATH, branch: build.sha });
      return stringify(merged);
    }, { repoName: ws.repository.name });
    log.line(`configuration from ${config.source}: services ${config.services.map((s) => s.name).join(', ')}`);
    // compose and devcontainer.json: what Berth made of them, and what it ignored and why
    for (const line of config.plan ?? []) log.line(`  ${line}`);
    // names only: every required or referenced variable has a value for this branch (issue 16);
    // the values reach the running services at the start, never this build
    await assertVariablesSet(deps, ws, build.sha, config);
    const variableArgs = await buildArgs(deps, ws);

    const images: Record<string, string> = {};
    for (const service of config.services) {
      if (abort.signal.aborted) throw abort.signal.reason;
      if (service.build) {
        await step(`building service ${service.name}`);
        images[service.name] = await deps.runtime.buildImage({
          // resolved for real: a committed symbolic link must not lead the build out of the clone
          contextDir: await buildContextInside(checkout.dir, service.build.context, service.build.dockerfile),
          dockerfile: service.build.dockerfile,
          target: service.build.target,
          args: { ...variableArgs, ...service.build.args },
          tag: imageTag(ws.slug, service.name, build.sha),
          // Each label is one more build step, and one that differs per build or branch is never
          // cached (~70 ms each): the tag says whose image it is, the runtime adds its instance.
          labels: {},
          noCache: build.noCache,
          signal: abort.signal,
          timeoutMs: deps.config.BERTH_BUILD_TIMEOUT,
          service: service.name,
          memoryBytes: deps.config.memoryLimitBytes,
          cpus: deps.config.BERTH_CPU_LIMIT,
          onLog: log.write,
        });
      } else {
        await step(`preparing image of service ${service.name}`);
        await deps.runtime.ensureImage(service.image!, { timeoutMs: deps.config.BERTH_PULL_TIMEOUT });
        images[service.name] = service.image!;
      }
    }
    if (abort.signal.aborted) throw abort.signal.reason;
    log.line('==> build finished');
    await log.flush();
    await db.build.update({
      where: { id: build.id },
      data: { state: 'succeeded', step: 'built', finishedAt: new Date(), images, config: config as never },
    });
    await db.workspace.update({
      where: { id: ws.id },
      data: {
        ide: config.workspace.ide,
        previewPrivate: previewIsPrivate(config.preview, ws.repository.private),
        ...(config.workspace.idleTimeoutMs ? { idleTimeoutSec: Math.round(Math.min(config.workspace.idleTimeoutMs, deps.config.BERTH_MAX_IDLE_TIMEOUT) / 1000) } : { idleTimeoutSec: Math.round(deps.config.BERTH_IDLE_TIMEOUT / 1000) }),
      },
    });
    if (config.services.some((s) => s.build || s.checkoutMount !== undefined)) {
      // the start copies this checkout onto a new disk, or fast-forwards the disk's checkout
      // from it, instead of cloning again
      await keepCheckout(ws.id, build.sha, checkout.dir);
      cleanup = undefined;
    }
    await queues.enqueueWorkspace('start', { workspaceId: ws.id, actor: 'worker', reason: `build of ${build.sha.slice(0, 7)} succeeded` });
    // the default branch's disk, prepared once in the background: new branches start from a copy (issue 17)
    if (ws.branch === ws.repository.defaultBranch && !ws.forkRepo) {
      await queues.enqueueWorkspace('base-disk', { workspaceId: ws.id, actor: 'worker', buildId: build.id }, { priority: BASE_DISK_PRIORITY, jobId: `base-disk-${build.id}` });
    }
    // the default branch's images and config are what its warm pool is prepared from (lib/warm-pool.ts)
    if (ws.branch === ws.repository.defaultBranch) await queues.enqueueWarm(ws.repositoryId);
  } catch (err) {
    const superseded = abort.signal.aborted || err instanceof SupersededError;
    const message = superseded ? new SupersededError(build.sha).message : explainDiskFull(userMessage(err), err instanceof StepFailedError ? err.logTail : undefined, { during: 'build' });
    if (!superseded) log.line(`error: ${message}`);
    await log.flush();
    await db.build.update({
      where: { id: build.id },
      data: { state: superseded ? 'canceled' : 'failed', error: message, finishedAt: new Date() },
    });
    if (superseded) await queues.enqueueReport({ workspaceId: ws.id, buildId: build.id });
    // a workspace serving an older commit keeps serving it (issue 13); the check run of this one fails
    else if (await keepServingAfterBuildFailure(deps, ws.id, build, message, (text) => log.redact(text))) await queues.enqueueReport({ workspaceId: ws.id, buildId: build.id });
    else await transition(db, queues, ws.id, 'failed', message, 'worker');
    if (!superseded && !(err instanceof BerthError)) deps.log(`build ${build.id} failed: ${(err as Error).stack}`);
  } finally {
    clearInterval(watcher);
    await cleanup?.();
  }
}

async function cancelOlderBuilds(deps: WorkerDeps, workspaceId: string, keep: string) {
  const older = await deps.db.build.findMany({ where: { workspaceId, id: { not: keep }, state: 'queued' } });
  for (const b of older) {
    await deps.db.build.update({ where: { id: b.id }, data: { state: 'canceled', error: 'a newer commit was pushed before this one was built', finishedAt: new Date() } });
    await deps.queues.enqueueReport({ workspaceId, buildId: b.id });
  }
}

/**
 * Where a workspace's code comes from. A fork's pull request is fetched from the base
 * repository's `refs/pull/<n>/head`, which the installation token can read even when the
 * fork itself is not part of the installation.
 */
export function sourceOf(ws: Workspace & { repository: Repository }): { cloneUrl: string; branch: string; ref?: string } {
  const cloneUrl = ws.repository.cloneUrl;
  if (!cloneUrl) throw new BerthError(`Berth does not know the clone URL of ${ws.repository.fullName} yet: push a commit to it`);
  if (ws.forkRepo && ws.prNumber) return { cloneUrl, branch: ws.forkBranch ?? ws.branch, ref: `refs/pull/${ws.prNumber}/head` };
  // a warm pool member is prepared from the default branch (its own branch is a placeholder)
  if (ws.poolMember) return { cloneUrl, branch: ws.repository.defaultBranch };
  return { cloneUrl, branch: ws.branch };
}

export function userMessage(err: unknown): string {
  if (err instanceof BerthError) return err.message;
  return `internal error: ${(err as Error).message ?? String(err)}`;
}
