import type { WorkerDeps } from '../deps.js';
import { hostScope } from '../hosts.js';
import { LOCAL_HOST } from '../../lib/hosts/health.js';
import type { Workspace } from '../../lib/db/client.js';
import type { RepoConfig } from '../../lib/repo-config.js';
import type { ContainerStatus } from '../runtime/types.js';
import { checkWarmPools } from './warm-pool.js';
import { transition } from '../../lib/workspaces.js';
import { removeUnusedImages } from './image-retention.js';
import { explainWorkspaceFailure } from '../failure-reason.js';
import { serviceEndpointsOf, type ServiceEndpointRecord } from '../../lib/preview-domain.js';

/** a workspace building or starting with no job left to finish it is failed after this long */
const STUCK_GRACE_MS = 2 * 60_000;
/** a queued workspace whose build has no job after this long gets its build job again */
const QUEUED_GRACE_MS = 10_000;
/** builds older than this are not started again by the reconciler (failed instead): push again */
const REQUEUE_MAX_AGE_MS = 60 * 60_000;
/** restarts by the reconciler within RESTART_WINDOW_MS before a workspace whose service keeps dying is failed */
const MAX_RESTARTS = 3;
const RESTART_WINDOW_MS = 15 * 60_000;
/** restarts by the engine's restart policy after which a service counts as crash-looping */
const CRASH_LOOP_RESTARTS = 10;
/**
 * A service that stopped less than this long ago is left to the engine for now: while dockerd
 * shuts down it still answers and shows its containers exited, and it starts them again itself
 * when it comes back (restart policy unless-stopped).
 */
const DEAD_GRACE_MS = 10_000;
const LIVE_JOB_STATES = ['active', 'waiting', 'delayed', 'prioritized', 'waiting-children'] as const;

/** when each stopped workspace's branch was last looked up on GitHub (see BERTH_BRANCH_CHECK_INTERVAL) */
const branchChecked = new Map<string, number>();

type RunningWorkspace = Pick<Workspace, 'id' | 'slug' | 'state' | 'previewHost' | 'previewService' | 'currentBuildId'> & Partial<Pick<Workspace, 'serviceEndpoints'>>;

/** What a running workspace needs, judged from what the engine runs. */
export type Diagnosis =
  | { action: 'none' }
  | { action: 'refresh'; previewHost: string; serviceEndpoints?: ServiceEndpointRecord[]; reason: string }
  | { action: 'stop'; reason: string }
  | { action: 'fail'; reason: string }
  | { action: 'restart'; reason: string };

/**
 * Repairs drift between the database and Docker: removes Docker objects of deleted workspaces
 * and the containers of unknown ones, keeping (and reporting) unknown workspaces' disks; finds
 * running workspaces whose containers died, vanished, were OOM-killed or came back on another
 * IP (a dockerd restart) and has the `status` job repair them (it runs under the workspace's
 * lock, so it cannot interleave with a start or stop); gives builds whose job
 * was lost (Redis down or restarted without its data) their job again, and fails workspaces
 * stuck starting with no job left to finish; deletes stopped workspaces whose branch is
 * gone; removes images no workspace can use any more. Runs at start and on a schedule
 * (BERTH_RECONCILE_INTERVAL).
 */
export async function reconcileJob(deps: WorkerDeps): Promise<{ removed: string[]; repaired: string[] }> {
  const removed = await removeOrphans(deps);
  const repaired: string[] = [];
  // issue 18: this host's workspaces only; another host's containers are not on this engine
  const running = await deps.db.workspace.findMany({
    where: { state: 'running', ...hostScope(deps) },
    select: { id: true, slug: true, state: true, previewHost: true, previewService: true, currentBuildId: true, serviceEndpoints: true },
  });
  for (const ws of running) {
    const diagnosis = await diagnose(deps, ws);
    if (diagnosis.action === 'none') continue;
    await deps.queues.enqueueWorkspace(
      'status',
      { workspaceId: ws.id, actor: 'reconciler', reason: diagnosis.reason },
      { deduplication: { id: `status:${ws.id}` } },
    );
    repaired.push(ws.id);
  }
  // stopped (or failed) in the database but running in Docker: a stop that the engine did not finish
  const runningIds = await deps.runtime.runningWorkspaceIds();
  if (runningIds.length) {
    const resting = await deps.db.workspace.findMany({ where: { id: { in: runningIds }, state: { in: ['stopped', 'failed'] } }, select: { id: true } });
    for (const ws of resting) {
      await deps.queues.enqueueWorkspace('status', { workspaceId: ws.id, actor: 'reconciler', reason: 'containers still running' }, { deduplication: { id: `status:${ws.id}` } });
      repaired.push(ws.id);
    }
  }
  repaired.push(...(await repairStuck(deps)));
  await deleteWhereBranchIsGone(deps);
  await checkWarmPools(deps);
  // two rounds of grace: a build records its image well within one reconcile interval
  removed.push(...(await removeUnusedImages(deps, Math.max(10_000, 2 * deps.config.BERTH_RECONCILE_INTERVAL))));
  return { removed, repaired };
}

/** unknown volumes already named in the log by this process (one line each, not one per round) */
const reportedVolumes = new Set<string>();

/**
 * Docker objects labelled with this Berth's instance whose workspace is not live.
 *
 * A workspace the database records as deleted loses everything, disk included: its deletion
 * was decided (and its delete job may have failed half-way, or ran on another engine).
 * A workspace the database does not know at all loses its containers and network only: they
 * hold nothing a start does not create again. Its volumes are kept and reported (log line,
 * UnknownVolume rows for /readyz and the dashboard): an unknown workspace most likely means a
 * wrong, restored or fresh database, not a deletion, and removing them would wipe every disk.
 */
async function removeOrphans(deps: WorkerDeps): Promise<string[]> {
  const owners = await deps.runtime.listWorkspaceIds();
  const rows = owners.length ? await deps.db.workspace.findMany({ where: { id: { in: owners } }, select: { id: true, state: true } }) : [];
  const known = new Map(rows.map((w) => [w.id, w.state]));
  // base disks (issue 17) own Docker objects too: a ready or preparing one is live; a failed or
  // retired one's objects go like a deleted workspace's (its job could not remove them)
  const bases = owners.length ? await deps.db.baseDisk.findMany({ where: { id: { in: owners } }, select: { id: true, state: true } }) : [];
  for (const b of bases) known.set(b.id, b.state === 'ready' || b.state === 'preparing' ? 'stopped' : 'deleted');
  const removed: string[] = [];
  for (const id of owners) {
    const state = known.get(id);
    if (state !== 'deleted' && state !== undefined) continue;
    try {
      if (state === 'deleted') {
        // read again just before: a push may have brought the workspace back since the query above
        const now = (await deps.db.workspace.findUnique({ where: { id }, select: { state: true } })) ?? (bases.some((b) => b.id === id) ? { state: 'deleted' } : null);
        if (now?.state !== 'deleted') continue;
        deps.log(`reconciler: removing Docker objects of deleted workspace ${id}, its disk included`);
        await deps.runtime.removeWorkspace(id);
      } else {
        // stopping these is no data loss: every start creates a workspace's containers afresh
        await deps.runtime.removeWorkspace(id, undefined, { keepVolumes: true });
      }
      removed.push(id);
    } catch (err) {
      // e.g. a network another container still uses: the next round tries again; the others go on
      deps.log(`reconciler: could not remove Docker objects of workspace ${id}: ${(err as Error).message}`);
    }
  }
  await recordUnknownVolumes(deps, new Set(owners.filter((id) => !known.has(id))), [...known.keys()]);
  return removed;
}

/**
 * Keeps the UnknownVolume rows in step with the engine: every volume of `unknown` workspaces
 * is (still) there; rows of volumes that went away (an operator removed them) or whose
 * workspace is known by now are dropped after a few rounds, so that another worker on another
 * engine sharing this database keeps its own rows.
 */
async function recordUnknownVolumes(deps: WorkerDeps, unknown: Set<string>, known: string[]): Promise<void> {
  const volumes = (await deps.runtime.listWorkspaceVolumes()).filter((v) => unknown.has(v.workspaceId));
  const now = new Date();
  for (const v of volumes) {
    await deps.db.unknownVolume.upsert({
      where: { name: v.name },
      create: { name: v.name, workspaceId: v.workspaceId, slug: v.slug ?? null, firstSeenAt: now, lastSeenAt: now },
      update: { lastSeenAt: now, workspaceId: v.workspaceId },
    });
    if (reportedVolumes.has(v.name)) continue;
    reportedVolumes.add(v.name);
    deps.log(
      `reconciler: keeping Docker volume ${v.name} of workspace ${v.workspaceId}${v.slug ? ` (${v.slug})` : ''}, which this database does not know ` +
        `(a different DATABASE_URL, a restored backup or a new embedded database?). Berth removes a disk only when its database recorded the workspace's deletion: ` +
        `point Berth at the database that knows it, or remove the volume yourself (docker volume rm ${v.name})`,
    );
  }
  const stale = new Date(now.getTime() - 3 * Math.max(deps.config.BERTH_RECONCILE_INTERVAL, 10_000));
  await deps.db.unknownVolume.deleteMany({
    where: { OR: [{ name: { notIn: volumes.map((v) => v.name) }, lastSeenAt: { lt: stale } }, { workspaceId: { in: known } }] },
  });
  if (reportedVolumes.size > 10_000) reportedVolumes.clear();
}

export async function diagnose(deps: WorkerDeps, ws: RunningWorkspace): Promise<Diagnosis> {
  const containers = (await deps.runtime.status(ws.id)).filter((c) => c.service);
  if (containers.length === 0) return { action: 'stop', reason: 'its containers vanished' };
  const oom = containers.find((c) => c.oomKilled);
  if (oom) return { action: 'fail', reason: `service ${oom.service} was killed: out of memory (limit ${deps.config.BERTH_MEMORY_LIMIT} per container)` };
  const looping = containers.find((c) => c.state === 'crash-looping' && (c.restartCount ?? 0) >= CRASH_LOOP_RESTARTS);
  if (looping) {
    const reason = `service ${looping.service} keeps crashing (restarted ${looping.restartCount} times)`;
    return { action: 'fail', reason: await explainWorkspaceFailure(deps.runtime, ws.slug, 'service', reason, await deps.runtime.containerLogTail(looping.containerId)) };
  }
  const expected = await expectedServices(deps, ws.currentBuildId);
  const missing = expected.filter((name) => !containers.some((c) => c.service === name));
  if (missing.length) return { action: 'restart', reason: `the container of service ${missing[0]} vanished` };
  const dead = containers.find((c) => isDead(c) && (c.state === 'gone' || !c.finishedAt || Date.now() - Date.parse(c.finishedAt) >= DEAD_GRACE_MS));
  if (dead) {
    const reason = `service ${dead.service} ${dead.state === 'gone' ? 'vanished' : 'has exited'}${dead.exitCode !== undefined ? ` (exit code ${dead.exitCode})` : ''}`;
    const tail = dead.state === 'gone' ? '' : await deps.runtime.containerLogTail(dead.containerId);
    return { action: 'restart', reason: await explainWorkspaceFailure(deps.runtime, ws.slug, 'service', reason, tail) };
  }
  const preview = containers.find((c) => c.service === ws.previewService);
  // the services' own hosts (issue 16) follow their containers like the preview does
  const recorded = serviceEndpointsOf(ws.serviceEndpoints);
  const serviceEndpoints = recorded.map((e) => ({ ...e, host: containers.find((c) => c.service === e.service)?.ip || e.host }));
  const movedService = serviceEndpoints.find((e, i) => e.host !== recorded[i]!.host);
  if ((preview?.ip && preview.ip !== ws.previewHost) || movedService) {
    const moved = preview?.ip && preview.ip !== ws.previewHost ? { service: preview.service, ip: preview.ip } : { service: movedService!.service, ip: movedService!.host };
    return { action: 'refresh', previewHost: preview?.ip || ws.previewHost!, ...(movedService ? { serviceEndpoints } : {}), reason: `service ${moved.service} moved to ${moved.ip}` };
  }
  return { action: 'none' };
}

function isDead(c: ContainerStatus): boolean {
  return c.state === 'exited' || c.state === 'gone';
}

async function expectedServices(deps: WorkerDeps, buildId: string | null): Promise<string[]> {
  if (!buildId) return [];
  const build = await deps.db.build.findUnique({ where: { id: buildId }, select: { config: true } });
  return ((build?.config as unknown as RepoConfig | null)?.services ?? []).map((s) => s.name);
}

/**
 * Acts on a diagnosis of a workspace that is `running` (call it under the workspace's lock).
 * A service that died is restarted through a start job (migrate included, as any start);
 * one that keeps dying is failed.
 */
export async function repairRunning(deps: WorkerDeps, ws: RunningWorkspace, actor: string): Promise<Diagnosis> {
  const d = await diagnose(deps, ws);
  switch (d.action) {
    case 'none':
      break;
    case 'refresh':
      await deps.db.workspace.updateMany({ where: { id: ws.id, state: 'running' }, data: { previewHost: d.previewHost, ...(d.serviceEndpoints ? { serviceEndpoints: d.serviceEndpoints as never } : {}) } });
      deps.log(`workspace ${ws.id}: ${d.reason}`);
      break;
    case 'stop':
      if (await transition(deps.db, deps.queues, ws.id, 'stopped', d.reason, actor, { previewHost: null }, { from: ['running'] })) {
        await deps.runtime.stopServices(ws.id); // the IDE container may still be there
      }
      break;
    case 'fail':
      if (await transition(deps.db, deps.queues, ws.id, 'failed', d.reason, actor, { previewHost: null }, { from: ['running'] })) {
        await deps.runtime.stopServices(ws.id);
      }
      break;
    case 'restart': {
      const since = new Date(Date.now() - RESTART_WINDOW_MS);
      const restarts = await deps.db.workspaceEvent.count({ where: { workspaceId: ws.id, actor: 'reconciler', toState: 'starting', createdAt: { gte: since } } });
      if (restarts >= MAX_RESTARTS) {
        const reason = `${d.reason}; it was restarted ${restarts} times in the last ${RESTART_WINDOW_MS / 60_000} minutes, so Berth gave up`;
        if (await transition(deps.db, deps.queues, ws.id, 'failed', reason, actor, { previewHost: null }, { from: ['running'] })) {
          await deps.runtime.stopServices(ws.id);
        }
        return { action: 'fail', reason };
      }
      await deps.queues.enqueueWorkspace(
        'start',
        { workspaceId: ws.id, actor: 'reconciler', reason: `${d.reason}; restarting`, onlyIf: ['running'] },
        { deduplication: { id: `repair-start:${ws.id}` } },
      );
      break;
    }
  }
  return d;
}

/** What a queued, building or starting workspace that no job is working on needs. */
export type StuckAction = 'wait' | 'requeue-build' | 'start' | 'fail';

/**
 * `since`: when the workspace entered its state (its last history event; `updatedAt` moves
 * with every request to its preview). A build that never got its job (Redis was away when it
 * was pushed) or lost it (Redis restarted without its data) is built after all, unless it is
 * old; a finished build whose start was lost is started; anything else is failed after a
 * while, so a user can act.
 */
export function stuckAction(
  ws: { state: string },
  since: Date,
  build: { state: string; createdAt: Date; startedAt: Date | null; finishedAt: Date | null } | null,
  now = Date.now(),
): StuckAction {
  if (ws.state !== 'starting' && build) {
    if (build.state === 'queued' || build.state === 'running') {
      if (now - build.createdAt.getTime() > REQUEUE_MAX_AGE_MS) return 'fail';
      return now - (build.startedAt ?? build.createdAt).getTime() > QUEUED_GRACE_MS ? 'requeue-build' : 'wait';
    }
    if (build.state === 'succeeded' && ws.state === 'building') {
      return now - (build.finishedAt ?? build.createdAt).getTime() > QUEUED_GRACE_MS ? 'start' : 'wait';
    }
  }
  if (ws.state === 'queued') return 'wait'; // e.g. a fork's pull request waiting for /berth approve
  return now - since.getTime() > STUCK_GRACE_MS ? 'fail' : 'wait';
}

/** Queued, building or starting, but no job in the queues will ever finish it: see stuckAction. */
async function repairStuck(deps: WorkerDeps): Promise<string[]> {
  const suspects = await deps.db.workspace.findMany({
    where: { state: { in: ['queued', 'building', 'starting'] }, ...hostScope(deps) },
    select: { id: true, state: true, currentBuildId: true, updatedAt: true },
  });
  if (!suspects.length) return [];
  const mine = deps.queues.forHost(deps.host?.name ?? LOCAL_HOST);
  const jobs = [
    ...(await mine.builds.getJobs([...LIVE_JOB_STATES])),
    ...(await mine.workspaces.getJobs([...LIVE_JOB_STATES])),
    // a workspace waiting for a host (worker/jobs/place.ts) has its job here
    ...(await deps.queues.placement.getJobs([...LIVE_JOB_STATES])),
  ];
  const busy = new Set(jobs.map((j) => j?.data?.workspaceId).filter(Boolean));
  const repaired: string[] = [];
  for (const ws of suspects.filter((s) => !busy.has(s.id))) {
    const [build, entered] = await Promise.all([
      ws.currentBuildId ? deps.db.build.findUnique({ where: { id: ws.currentBuildId } }) : null,
      deps.db.workspaceEvent.findFirst({ where: { workspaceId: ws.id }, orderBy: { id: 'desc' }, select: { createdAt: true } }),
    ]);
    const action = stuckAction(ws, entered?.createdAt ?? ws.updatedAt, build);
    if (action === 'wait') continue;
    if (action === 'requeue-build') {
      await deps.queues.enqueueBuild({ workspaceId: ws.id, buildId: build!.id });
      deps.log(`reconciler: build ${build!.id} of workspace ${ws.id} had no job (Redis away?); queued it again`);
    } else if (action === 'start') {
      await deps.queues.enqueueWorkspace('start', { workspaceId: ws.id, actor: 'reconciler', reason: `build of ${build!.sha.slice(0, 7)} succeeded` });
    } else {
      const reason = `interrupted while ${ws.state} and no job is left to finish it; push again or comment /berth refresh`;
      if (!(await transition(deps.db, deps.queues, ws.id, 'failed', reason, 'reconciler', { previewHost: null }, { from: [ws.state] }))) continue;
    }
    repaired.push(ws.id);
  }
  return repaired;
}

/**
 * Retention: a stopped (or failed) workspace whose branch no longer exists on GitHub is
 * deleted, disk included. The `delete` webhook does this at once; this catches deletions
 * Berth missed (it was down, the delivery failed). Only GitHub's definite "Branch not found"
 * counts; any other answer keeps the workspace. Each workspace is looked up at most every
 * BERTH_BRANCH_CHECK_INTERVAL. Forks' pull requests are left to the pull request's `closed`.
 */
async function deleteWhereBranchIsGone(deps: WorkerDeps): Promise<void> {
  const now = Date.now();
  const candidates = await deps.db.workspace.findMany({
    // a kept disk's branch is already gone: it waits for its own deadline (keptUntil)
    // a warm pool member's branch is a placeholder (lib/warm-pool.ts): the warm job decides about it
    where: { state: { in: ['stopped', 'failed'] }, forkRepo: null, keptUntil: null, poolMember: false, repository: { removed: false }, ...hostScope(deps) },
    select: { id: true, branch: true, repository: { select: { owner: true, name: true, installationId: true } } },
  });
  for (const ws of candidates) {
    if (now - (branchChecked.get(ws.id) ?? 0) < deps.config.BERTH_BRANCH_CHECK_INTERVAL) continue;
    branchChecked.set(ws.id, now);
    try {
      const octokit = await deps.probot.auth(Number(ws.repository.installationId));
      await octokit.rest.repos.getBranch({ owner: ws.repository.owner, repo: ws.repository.name, branch: ws.branch });
    } catch (err) {
      const e = err as { status?: number; response?: { data?: { message?: string } } };
      if (e.status !== 404 || !/branch not found/i.test(e.response?.data?.message ?? '')) continue;
      await deps.queues.enqueueWorkspace(
        'delete',
        { workspaceId: ws.id, actor: 'retention', reason: `branch ${ws.branch} no longer exists on GitHub`, keepUnsavedWork: true },
        { deduplication: { id: `retention:${ws.id}` } },
      );
    }
  }
  if (branchChecked.size > 10_000) branchChecked.clear();
}
