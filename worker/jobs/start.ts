import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Job } from 'bullmq';
import type { WorkerDeps } from '../deps.js';
import type { WorkspaceJob } from '../../lib/queue.js';
import type { RepoConfig } from '../../lib/repo-config.js';
import type { Build, Repository, Workspace } from '../../lib/db/client.js';
import { transition } from '../../lib/workspaces.js';
import { hostScope } from '../hosts.js';
import { scheduleIdleStop } from '../../lib/idle-stop.js';
import { cloneToken } from '../../lib/github-app.js';
import { BerthError, StepFailedError } from '../../lib/errors.js';
import { formatDuration } from '../../lib/config.js';
import { StepTimer, type DiskOrigin } from '../../lib/start-steps.js';
import { startFromBaseDisk } from '../base-disk.js';
import { hasDataVolumes, snapshotBeforeMigrate, snapshotSpec } from '../data-snapshot.js';
import { BuildLog } from '../build-log.js';
import { explainWorkspaceFailure } from '../failure-reason.js';
import { cloneAt } from '../source/clone.js';
import { dropCheckout, takeCheckout } from '../source/checkout-handover.js';
import { fastForwardCheckout, type SyncResult } from '../source/disk-sync.js';
import { diskCheckoutAt } from '../source/pushed-from-disk.js';
import { switchCheckout } from '../source/branch-switch.js';
import type { Rollout, TaskResult, WorkspaceRunSpec } from '../runtime/types.js';
import { applyWorkspaceVariables } from '../variables.js';
import { serviceEndpointRecords } from '../../lib/preview-domain.js';
import { sourceOf, userMessage } from './build.js';
import { clearKeptVersionNotice, keptVersionNotice } from '../kept-version.js';
import { ideCustomizations, runAttachLifecycle, runStartLifecycle } from './devcontainer-lifecycle.js';

/**
 * Starts a workspace on the newest successful build of its branch: disk, checkout (first
 * start only), `migrate` on every start, `seed` on the first start of a disk, services, and
 * a health check. Ends `running` or `failed`, never in between.
 */
export async function startJob(deps: WorkerDeps, job: Job<WorkspaceJob>): Promise<void> {
  await start(deps, job.data, 0);
}

/** how long a start waits for a migrate or seed that a dead worker's start left running */
const ORPHAN_TASK_WAIT_MS = 5 * 60_000;

/** how long a start waits for a Docker engine that stopped answering (e.g. dockerd restarting) */
const ENGINE_WAIT_MS = 180_000;

async function start(deps: WorkerDeps, data: WorkspaceJob, attempt: number): Promise<void> {
  const job = { data };
  const { db, queues } = deps;
  const ws = await db.workspace.findUnique({ where: { id: job.data.workspaceId! }, include: { repository: true } });
  if (!ws || ws.state === 'deleted') return;
  // A wake-up (many requests may ask) or a repair only makes sense in the state it was asked in.
  const onlyIf = job.data.onlyIf ?? (job.data.actor === 'gateway' || job.data.actor === 'ide' ? ['stopped'] : undefined);
  if (onlyIf && !onlyIf.includes(ws.state)) return;
  // A newer commit is still queued or building: its build starts the workspace when done.
  // Starting an older build now would also take over currentBuildId and cancel that build.
  if (await buildInFlight(deps, ws)) return;
  const build = await newestSuccessfulBuild(deps, ws);
  if (!build) {
    await transition(db, queues, ws.id, 'failed', `no successful build of branch ${ws.branch} yet: push a commit that builds, then start again`, job.data.actor ?? 'worker');
    return;
  }
  // issue 14: a commit pushed from the workspace itself is recorded, not restarted onto
  if (job.data.actor === 'worker' && (await pushedFromWorkspace(deps, ws, build))) return;
  // issue 13: a new commit of a workspace that serves rolls out next to the running version
  const rolling = rollsOut(deps, ws, build, job.data);
  const started = await transition(
    db,
    queues,
    ws.id,
    'starting',
    job.data.reason && job.data.actor !== 'worker' ? `${job.data.reason}: starting ${build.sha.slice(0, 7)}` : `starting ${build.sha.slice(0, 7)}`,
    job.data.actor ?? 'worker',
    // a rollout keeps the running version's preview (and IDE) until the switch
    rolling ? { currentBuildId: build.id } : { currentBuildId: build.id, previewHost: null, ideState: null },
    onlyIf ? { from: onlyIf as Workspace['state'][] } : {},
  );
  if (!started) return; // a racing stop or delete won
  const log = new BuildLog(db, build.id);
  // how long each step takes, for the check run and the comment (issue 17)
  const timer = new StepTimer();
  const progress = async (reason: string, step?: string) => {
    if (step) timer.begin(step);
    log.line(`==> ${reason}`);
    await db.workspace.update({ where: { id: ws.id }, data: { stateReason: reason } });
    await queues.enqueueReport({ workspaceId: ws.id, buildId: build.id });
  };
  let rollout: Rollout | null = null;
  try {
    if (!(await makeRoom(deps, ws))) {
      await progress('waiting for a free slot: the maximum of running workspaces is reached');
      await queues.enqueueWorkspace('start', job.data, { delay: 10_000 });
      return;
    }
    const config = build.config as unknown as RepoConfig;
    const spec = runSpec(deps, ws, build, config);
    // A migrate or seed left running by a start whose worker died: let it finish (never two at
    // once, never one cut in half), then clear it away. Its seed marks the disk when it succeeds.
    // (independent: the network and volumes are made while leftovers are cleared)
    const [, { created }] = await Promise.all([deps.runtime.removeTasks(ws.id, ORPHAN_TASK_WAIT_MS), deps.runtime.ensureDisk(spec)]);
    let seededAt = created ? null : ws.seededAt;
    let checkoutMoved = false;
    let origin: DiskOrigin | null = null;
    if (created || (await neverPopulated(deps, ws, spec))) {
      // a new branch's disk: a copy of the repository's base disk when it may (issue 17)
      const copied = created ? await startFromBaseDisk(deps, ws, build, spec, log, timer, progress) : null;
      if (copied) {
        origin = 'base-disk';
        checkoutMoved = true;
        // the seed's data came with the copy (and its mark on the disk says so too)
        seededAt = new Date();
        await db.workspace.update({ where: { id: ws.id }, data: { seededAt } });
        log.line(`==> seed skipped: the data of the base disk (${copied.base.sha.slice(0, 7)}) came with the copy`);
      } else {
        origin = 'fresh';
        await progress('cloning the repository onto the workspace disk', 'checkout');
        await populate(deps, ws, build, spec, log);
      }
    } else if (ws.claimedAt && ws.runningSha === null) {
      // a warm pool member this branch claimed: its disk holds the default branch, prepared
      await progress(`checking out ${ws.branch} at ${build.sha.slice(0, 7)} on the disk from the warm pool`, 'checkout');
      checkoutMoved = await switchClaimedCheckout(deps, ws, build, spec, log);
      origin = 'warm-pool';
    } else if (ws.runningSha !== build.sha) {
      await progress(`updating the checkout to ${build.sha.slice(0, 7)}`);
      checkoutMoved = await updateCheckout(deps, ws, build, spec, log);
    }
    // the build's checkout, when neither step needed it (a restart of the same commit)
    await dropCheckout(ws.id);
    // variables and secrets of the layers (issue 16): into the services' env and files into /workspace
    await applyWorkspaceVariables(deps, ws, build, config, spec, log);
    // migrate and seed of a service: before every service starts, or (compose's depends_on, where
    // a migrate needs its database up) right before that service, once its dependencies are up
    const ordered = spec.services.some((s) => s.dependsOn || s.oneShot);
    // `/berth reset --before-migrate` undoes this commit's migrations (worker/data-snapshot.ts)
    const hasMigrate = config.services.some((s) => s.migrate) || spec.services.some((s) => s.oneShot);
    if (snapshotBeforeMigrate({ newDisk: origin !== null, runningSha: ws.runningSha, sha: build.sha, hasMigrate, hasData: hasDataVolumes(spec), canCopy: Boolean(deps.runtime.copyDisk) })) {
      await progress(`snapshot of the data volumes before the migrate of ${build.sha.slice(0, 7)}`, 'snapshot');
      const snap = await deps.runtime.copyDisk!(spec, snapshotSpec(spec), { part: 'data', replace: true, timeoutMs: deps.config.BERTH_TASK_TIMEOUT });
      await db.workspace.update({ where: { id: ws.id }, data: { snapshotSha: build.sha } });
      log.line(`==> snapshot: ${snap.volumes} data volume${snap.volumes === 1 ? '' : 's'} in ${snap.durationMs} ms (\`/berth reset --before-migrate\` brings them back)`);
    }
    const prepare = async (only?: string) => {
      // a new disk whose one service migrates and seeds: both in one task container
      const migrates = config.services.filter((s) => s.migrate && !data.skipMigrate && (only === undefined || s.name === only));
      const seeds = seededAt ? [] : config.services.filter((s) => s.seed && (only === undefined || s.name === only));
      if (created && migrates.length === 1 && seeds.length === 1 && migrates[0] === seeds[0]) {
        const service = spec.services.find((s) => s.name === seeds[0]!.name);
        const mark = service?.mountsWorkspace ? seedMarkCommand(seeds[0]!.name, service.checkoutMount) : undefined;
        return runMigrateAndSeed(deps, spec, seeds[0]!.name, { migrate: seeds[0]!.migrate!, seed: seeds[0]!.seed! }, log, progress, mark);
      }
      if (data.skipMigrate) log.line('==> migrate skipped: the data was just reset to before the newest migrate (`/berth reset --before-migrate`)');
      for (const service of config.services.filter((s) => s.migrate && !data.skipMigrate && (only === undefined || s.name === only))) {
        await progress(`migrating (${service.name})`, 'migrate');
        await runStep(deps, spec, service.name, 'migrate', service.migrate!, log);
      }
      if (seededAt) return;
      for (const service of config.services.filter((s) => s.seed && (only === undefined || s.name === only))) {
        const onDisk = spec.services.find((s) => s.name === service.name)?.mountsWorkspace ?? false;
        // a disk made by this start has no mark (its checkout came from GitHub): no probe of it
        if (onDisk && !created && (await seedMarked(deps, spec, service.name))) {
          log.line(`==> seed of ${service.name} already ran on this disk (in a start that was interrupted)`);
          continue;
        }
        await progress(`seeding (${service.name})`, 'seed');
        const checkoutDir = spec.services.find((s) => s.name === service.name)?.checkoutMount;
        await runStep(deps, spec, service.name, 'seed', service.seed!, log, onDisk ? seedMarkCommand(service.name, checkoutDir) : undefined);
      }
    };
    const markSeeded = async () => {
      if (seededAt) return;
      seededAt = new Date();
      await db.workspace.update({ where: { id: ws.id }, data: { seededAt } });
    };
    const prepareAll = async () => {
      await prepare();
      await markSeeded();
      await progress('starting services', 'services');
    };
    // a rollout's new containers wait for migrate; a start makes them while migrate and seed run
    if (rolling) await prepareAll();
    else if (ordered) await progress('starting services', 'services');
    // compose's depends_on: healthy dependencies and one-shots (a migration service) first
    rollout = rolling ? await deps.runtime.rollOut!(spec) : null;
    const endpoints = rollout ? rollout.endpoints : await deps.runtime.startServices(spec, { healthTimeoutMs: deps.config.BERTH_HEALTH_TIMEOUT, taskTimeoutMs: deps.config.BERTH_TASK_TIMEOUT, onLog: log.write, ...(ordered ? { beforeStart: prepare } : { prepare: prepareAll }) });
    if (ordered) await markSeeded();
    // devcontainer.json: postCreateCommand (once per disk), updateContentCommand, postStartCommand
    await runStartLifecycle(deps, spec, config, checkoutMoved, progress, log);
    // portOptional: a devcontainer's keep-alive serves its forwarded port only once someone starts the app
    for (const service of config.services.filter((s) => s.port && !s.portOptional)) {
      const endpoint = endpoints.find((e) => e.service === service.name)!;
      await progress(`waiting for ${service.name} to answer ${service.health ?? '/'}`, 'health');
      await deps.runtime.waitHealthy(spec, endpoint, service.port!, service.health ?? '/', deps.config.BERTH_HEALTH_TIMEOUT);
    }
    // a warm pool member is prepared now: its containers go, its disk waits for a new branch
    if (ws.poolMember) {
      timer.end();
      await db.workspace.update({ where: { id: ws.id }, data: { startSteps: timer.list() as never, ...(origin ? { diskOrigin: origin } : {}) } });
      return void (await finishFill(deps, ws, build, log));
    }
    const ideService = ideServiceOf(deps, spec, config, log);
    // a rollout leaves a running VS Code alone: its session (open files, terminals) goes on
    const keepsIde = Boolean(rollout && ideService && ws.ideState === 'running');
    const preview = endpoints.find((e) => e.service === config.preview.service)!;
    // none for a devcontainer without forwardPorts: it has an IDE and no preview
    const previewPort = config.services.find((s) => s.name === config.preview.service)!.port ?? null;
    log.line(previewPort ? `==> running: preview service ${preview.service} at ${preview.host}:${previewPort}` : `==> running: no preview (no port to preview), the IDE works in ${preview.service}`);
    await log.flush();
    // every service with a port gets its own host (issue 16); the gateway proxies it while previewHost is set
    const serviceEndpoints = serviceEndpointRecords(config.services, endpoints);
    timer.end();
    await db.workspace.update({ where: { id: ws.id }, data: { startSteps: timer.list() as never, ...(origin ? { diskOrigin: origin } : {}) } });
    await db.workspace.update({ where: { id: ws.id }, data: { lastActivityAt: new Date(), previewService: preview.service, serviceEndpoints: serviceEndpoints as never } });
    // an earlier commit's "did not build/start, so … keeps running" no longer holds
    await clearKeptVersionNotice(deps, ws.id);
    const done = await transition(db, queues, ws.id, 'running', `running ${build.sha.slice(0, 7)}`, job.data.actor ?? 'worker', {
      runningSha: build.sha,
      previewHost: preview.host,
      previewPort,
      ...(keepsIde ? {} : { ideState: ideService ? 'starting' : null }),
    });
    if (!done) await deps.runtime.stopServices(ws.id); // stopped or deleted meanwhile
    else await scheduleIdleStop(queues, done);
    // a claimed pool member serves: now the pool refills (not while this start needs the CPU)
    if (done && origin === 'warm-pool') await queues.enqueueWarm(ws.repositoryId);
    if (done && rollout) {
      // Switched: the gateways proxy to the new version once their lookup (0.25 s) expires;
      // requests already on their way to the old one finish within its stop grace.
      await new Promise((r) => setTimeout(r, ROLLOUT_SWITCH_MS));
      await rollout.retire();
      log.line('==> the previous version stopped');
      await log.flush();
    }
    // After `running`: the preview does not wait for VS Code (about a second and a half).
    if (done && ideService && !keepsIde) await startIde(deps, ws.id, spec, ideService, log, config);
  } catch (err) {
    if (rolling) return keepRunningVersion(deps, ws, build, rollout, err, log);
    if (attempt < 2 && (await engineTrouble(deps, err))) {
      // Not the workspace's fault: wait for the engine, then start again from the top.
      log.line(`==> the Docker engine is not answering (${(err as Error).message}); waiting for it`);
      await log.flush();
      if (await waitForEngine(deps, ENGINE_WAIT_MS)) return start(deps, { ...data, onlyIf: ['starting'] }, attempt + 1);
    }
    const message = await explainWorkspaceFailure(deps.runtime, ws.diskSlug ?? ws.slug, 'start', userMessage(err), err instanceof StepFailedError ? err.logTail : undefined);
    const tail = err instanceof StepFailedError && err.logTail ? `\n${err.logTail}` : '';
    log.line(`error: ${message}${tail}`);
    await log.flush();
    await deps.runtime.stopServices(ws.id).catch(() => {});
    // a migrate that printed a secret before failing: its tail is masked like the build log
    await transition(db, queues, ws.id, 'failed', log.redact(`${message}${tail}`).slice(0, 4000), 'worker', { previewHost: null });
    if (!(err instanceof BerthError)) deps.log(`start of ${ws.id} failed: ${(err as Error).stack}`);
  }
}

/** a rollout waits this long after the switch before it stops the old version (the gateways' lookup cache: 0.25 s) */
const ROLLOUT_SWITCH_MS = 1_000;

/**
 * A new commit rolls out next to the running version (Runtime.rollOut) when the workspace
 * serves one: its build's start, on a runtime that can, for services without compose's
 * depends_on ordering or devcontainer lifecycle commands (those restart the workspace).
 */
function rollsOut(deps: WorkerDeps, ws: Workspace, build: Build, data: WorkspaceJob): boolean {
  if (data.actor !== 'worker' || !deps.runtime.rollOut || !ws.previewHost) return false;
  if (!['running', 'building', 'queued'].includes(ws.state) || ws.runningSha === null) return false;
  const config = build.config as unknown as RepoConfig;
  if (config.lifecycle) return false;
  return !runSpec(deps, ws, build, config).services.some((s) => s.dependsOn || s.oneShot);
}

/**
 * A new commit that failed to roll out (migrate, start, health): its containers go, the running
 * version keeps serving, and the workspace says so.
 */
async function keepRunningVersion(deps: WorkerDeps, ws: Workspace, build: Build, rollout: Rollout | null, err: unknown, log: BuildLog): Promise<void> {
  const message = await explainWorkspaceFailure(deps.runtime, ws.diskSlug ?? ws.slug, 'start', userMessage(err), err instanceof StepFailedError ? err.logTail : undefined);
  const tail = err instanceof StepFailedError && err.logTail ? `\n${err.logTail}` : '';
  log.line(`error: ${message}${tail}`);
  log.line(`==> ${build.sha.slice(0, 7)} did not start; ${ws.runningSha?.slice(0, 7)} keeps running`);
  await log.flush();
  await rollout?.abandon().catch(() => {});
  const notice = log.redact(keptVersionNotice(build.sha, ws.runningSha ?? '', 'start', message)).slice(0, 2000);
  await deps.db.workspace.update({ where: { id: ws.id }, data: { notice } });
  const back = await transition(deps.db, deps.queues, ws.id, 'running', `running ${ws.runningSha?.slice(0, 7)}: ${build.sha.slice(0, 7)} failed to start`, 'worker', {}, { from: ['starting'] });
  if (back) await scheduleIdleStop(deps.queues, back);
  if (!(err instanceof BerthError)) deps.log(`rollout of ${build.sha} on ${ws.id} failed: ${(err as Error).stack}`);
}

/** An unexpected error while the engine is restarting or gone, as opposed to a problem of the workspace. */
async function engineTrouble(deps: WorkerDeps, err: unknown): Promise<boolean> {
  if (err instanceof BerthError) return false;
  const message = String((err as Error)?.message ?? err);
  if (/connect (ENOENT|ECONNREFUSED)|ECONNRESET|EPIPE|socket hang up|database not open|shutting down/i.test(message)) return true;
  return deps.runtime.ping().then(
    () => false,
    () => true,
  );
}

async function waitForEngine(deps: WorkerDeps, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await deps.runtime.ping().then(() => true, () => false)) return true;
    await new Promise((r) => setTimeout(r, 1000));
  }
  return false;
}

/**
 * Enforces BERTH_MAX_RUNNING_PER_REPO and BERTH_MAX_RUNNING: when full, the least recently
 * used running workspace is stopped (its disk is kept). False when every slot is taken by
 * workspaces that are still starting: the caller waits and tries again.
 */
async function makeRoom(deps: WorkerDeps, ws: Workspace): Promise<boolean> {
  // BERTH_MAX_RUNNING is per host (issue 18): only this host's workspaces take its slots
  const active = await deps.db.workspace.findMany({
    where: { state: { in: ['running', 'starting'] }, id: { not: ws.id }, ...hostScope(deps) },
    orderBy: { lastActivityAt: 'asc' },
    select: { id: true, repositoryId: true, state: true, branch: true },
  });
  const sameRepo = active.filter((w) => w.repositoryId === ws.repositoryId);
  const scope =
    sameRepo.length >= deps.config.BERTH_MAX_RUNNING_PER_REPO ? { pool: sameRepo, limit: 'BERTH_MAX_RUNNING_PER_REPO' }
    : active.length >= deps.config.BERTH_MAX_RUNNING ? { pool: active, limit: 'BERTH_MAX_RUNNING' }
    : null;
  if (!scope) return true;
  // filling a warm pool never stops anyone's workspace: it waits for a free slot
  if (ws.poolMember) return false;
  for (const victim of scope.pool.filter((w) => w.state === 'running')) {
    // conditional: a victim that changed state meanwhile (woken, deleted) is left alone
    const stopped = await transition(deps.db, deps.queues, victim.id, 'stopped', `stopped to make room for ${ws.branch} (${scope.limit} reached)`, 'limits', { previewHost: null }, { from: ['running'] });
    if (!stopped) continue;
    await deps.runtime.stopServices(victim.id);
    return true;
  }
  return false;
}

/**
 * Seed once per disk, also when the start that ran it died before it could record that: the
 * seed task itself leaves a mark on the disk, in .git where no `git status` shows it.
 */
const seedMark = (service: string) => `.git/berth-seeded-${service}`;

/** `dir`: where the service sees the checkout (compose may mount it elsewhere than /workspace) */
export function seedMarkCommand(service: string, dir = '/workspace'): string {
  return `{ if [ -d '${dir}/.git' ]; then : > '${dir}/${seedMark(service)}'; fi; }`;
}

/** asked of the engine: nothing on the host reads a workspace disk (its files and links are the workspace's) */
async function seedMarked(deps: WorkerDeps, spec: WorkspaceRunSpec, service: string): Promise<boolean> {
  return deps.runtime.diskEntryExists(spec, seedMark(service));
}

/**
 * A disk created by a start that died before it finished copying the checkout: it exists, so
 * `ensureDisk` does not report it as new, but it never ran and has no checkout.
 */
async function neverPopulated(deps: WorkerDeps, ws: Workspace, spec: WorkspaceRunSpec): Promise<boolean> {
  if (ws.seededAt || ws.runningSha || !spec.services.some((s) => s.mountsWorkspace)) return false;
  return !(await deps.runtime.diskEntryExists(spec, '.git/HEAD'));
}

/**
 * `workspace.ide: vscode`: the service whose image code-server runs in (the preview service
 * when it has the disk), or null when the workspace has no VS Code here (the log says why).
 */
function ideServiceOf(deps: WorkerDeps, spec: WorkspaceRunSpec, config: RepoConfig, log: BuildLog): string | null {
  if ((config.workspace?.ide ?? 'vscode') !== 'vscode') return null;
  const withDisk = spec.services.filter((s) => s.mountsWorkspace);
  const service = withDisk.find((s) => s.name === config.preview.service) ?? withDisk[0];
  if (!service) return null;
  if (!existsSync(join(deps.config.codeServerDir, '.berth-installed'))) {
    log.line(`==> IDE: code-server is not installed in ${deps.config.codeServerDir} (run scripts/install-code-server.sh); the IDE opens a terminal instead`);
    return null;
  }
  return service.name;
}

/**
 * Starts code-server next to the running services. Never fatal: without it the IDE link opens
 * a terminal instead, and the log says why. Until it answers, the IDE host says it is starting.
 */
async function startIde(deps: WorkerDeps, workspaceId: string, spec: WorkspaceRunSpec, service: string, log: BuildLog, config: RepoConfig) {
  let ideState = 'running';
  // A stop or delete of the workspace cuts this wait short (worker/main.ts): the stop must not
  // wait up to BERTH_IDE_TIMEOUT behind a VS Code that is still loading.
  const hold = deps.interrupts?.hold(workspaceId);
  try {
    log.line('==> starting the IDE (VS Code)');
    // devcontainer.json customizations.vscode: settings as machine settings, extensions from .vsix files
    await deps.runtime.startIde(spec, { service, codeServerDir: deps.config.codeServerDir, ...ideCustomizations(config, log), signal: hold?.signal }, deps.config.BERTH_IDE_TIMEOUT);
    hold?.signal.throwIfAborted();
    log.line('==> IDE: VS Code is running');
    await runAttachLifecycle(deps, spec, config, log);
  } catch (err) {
    if (hold?.signal.aborted) {
      // given up for the stop: no VS Code left behind, and the stop says what the workspace is
      log.line(`==> IDE: stopped waiting for VS Code (${(hold.signal.reason as Error).message})`);
      await log.flush().catch(() => {});
      await deps.runtime.stopIde(workspaceId).catch(() => {});
      return;
    }
    ideState = 'unavailable';
    // The usual cause: an image without glibc (alpine, distroless), where the install's node cannot run.
    log.line(`==> IDE: VS Code did not start in ${service}'s image (${(err as Error).message}); it needs a glibc-based image. The IDE opens a terminal instead`);
    if (err instanceof StepFailedError && err.logTail) log.line(err.logTail);
  } finally {
    hold?.release();
  }
  await log.flush().catch(() => {});
  // Only while that start's `running` lasts: a stop or a newer start meanwhile has its own say.
  const updated = await deps.db.workspace
    .updateMany({ where: { id: workspaceId, state: 'running', ideState: 'starting' }, data: { ideState } })
    .catch(() => ({ count: 0 }));
  if (updated.count === 0 && ideState === 'running') {
    const now = await deps.db.workspace.findUnique({ where: { id: workspaceId }, select: { state: true } }).catch(() => null);
    if (now && now.state !== 'running') await deps.runtime.stopIde(workspaceId).catch(() => {});
  }
}

async function buildInFlight(deps: WorkerDeps, ws: Workspace): Promise<boolean> {
  if (!ws.currentBuildId) return false;
  const current = await deps.db.build.findUnique({ where: { id: ws.currentBuildId }, select: { state: true } });
  return current?.state === 'queued' || current?.state === 'running';
}

async function newestSuccessfulBuild(deps: WorkerDeps, ws: Workspace): Promise<Build | null> {
  if (ws.currentBuildId) {
    const current = await deps.db.build.findUnique({ where: { id: ws.currentBuildId } });
    if (current?.state === 'succeeded') return current;
  }
  return deps.db.build.findFirst({ where: { workspaceId: ws.id, state: 'succeeded' }, orderBy: { createdAt: 'desc' } });
}

export function runSpec(deps: WorkerDeps, ws: Workspace, build: Build, config: RepoConfig): WorkspaceRunSpec {
  const images = build.images as Record<string, string>;
  return {
    workspaceId: ws.id,
    // a claimed warm pool member keeps the names its disk and containers were made under
    slug: ws.diskSlug ?? ws.slug,
    memoryBytes: deps.config.memoryLimitBytes,
    cpus: deps.config.BERTH_CPU_LIMIT,
    pidsLimit: deps.config.BERTH_PIDS_LIMIT,
    services: config.services.map((s) => ({
      name: s.name,
      image: images[s.name]!,
      command: s.command,
      env: s.env,
      port: s.port,
      data: s.data,
      health: s.health,
      // built from the repository, or an image with the repository mounted (compose `.:/app`)
      mountsWorkspace: Boolean(s.build) || s.checkoutMount !== undefined,
      entrypoint: s.entrypoint,
      args: s.args,
      workingDir: s.workingDir,
      user: s.user,
      healthcheck: s.healthcheck,
      dependsOn: s.dependsOn,
      volumes: s.volumes,
      checkoutMount: s.checkoutMount,
      oneShot: s.oneShot,
    })),
  };
}

async function populate(deps: WorkerDeps, ws: Workspace & { repository: Repository }, build: Build, spec: WorkspaceRunSpec, log: BuildLog) {
  if (!spec.services.some((s) => s.mountsWorkspace)) return;
  const checkout = (await takeCheckout(ws.id, build.sha)) ?? (await clone(deps, ws, build, log));
  try {
    await deps.runtime.populateWorkspace(spec, checkout.dir);
  } finally {
    await checkout.cleanup();
  }
}

async function clone(deps: WorkerDeps, ws: Workspace & { repository: Repository }, build: Build, log: BuildLog) {
  // one repository, contents: read (see cloneToken)
  const token = await cloneToken(deps.probot, Number(ws.repository.installationId), Number(ws.repository.id));
  log.addSecret(token);
  return cloneAt({ ...sourceOf(ws), token, sha: build.sha });
}

/**
 * Fast-forwards the checkout on an existing disk; leaves people's local changes alone and says so.
 * git runs against the disk inside a sealed container (Runtime.runDiskGit), fetching from a clone
 * Berth made on the host (the build's, else a new one), so no token and nothing of Berth's enters
 * the disk's side, and nothing the workspace wrote into .git runs on the host.
 */
async function updateCheckout(deps: WorkerDeps, ws: Workspace & { repository: Repository }, build: Build, spec: WorkspaceRunSpec, log: BuildLog): Promise<boolean> {
  if (!spec.services.some((s) => s.mountsWorkspace)) return false;
  const checkout = (await takeCheckout(ws.id, build.sha)) ?? (await clone(deps, ws, build, log));
  let sync: SyncResult;
  try {
    sync = await fastForwardCheckout(deps.runtime, spec, { sourceGitDir: join(checkout.dir, '.git'), sha: build.sha, branch: sourceOf(ws).branch });
  } finally {
    await checkout.cleanup();
  }
  log.line(`checkout: ${sync.result}${'detail' in sync ? ` (${sync.detail})` : ''}`);
  let notice: string | null = null;
  if (sync.result === 'local-changes' || sync.result === 'diverged') {
    notice = `The workspace has local changes (${sync.detail}), so Berth left its checkout alone; the services run the images of ${build.sha.slice(0, 7)}. Commit or stash, then run \`git pull\` in the IDE terminal.`;
  } else if (sync.result === 'not-a-repository' || sync.result === 'failed') {
    notice = `Berth could not update the checkout on the workspace disk (${sync.detail}); the services run the images of ${build.sha.slice(0, 7)}. Run \`git pull\` in the IDE terminal.`;
  }
  await deps.db.workspace.update({ where: { id: ws.id }, data: { notice } });
  return sync.result === 'updated';
}

/**
 * The checkout of a claimed warm pool member: the branch's commit checked out on the disk the
 * pool prepared from the default branch (through the engine, never host-side git), so only the
 * branch's own commit is applied; its data, seed mark and images stay.
 */
async function switchClaimedCheckout(deps: WorkerDeps, ws: Workspace & { repository: Repository }, build: Build, spec: WorkspaceRunSpec, log: BuildLog): Promise<boolean> {
  if (!spec.services.some((s) => s.mountsWorkspace)) return false;
  const checkout = (await takeCheckout(ws.id, build.sha)) ?? (await clone(deps, ws, build, log));
  try {
    const switched = await switchCheckout(deps.runtime, spec, { sourceGitDir: join(checkout.dir, '.git'), sha: build.sha, branch: sourceOf(ws).branch });
    if (switched.result === 'failed') {
      throw new StepFailedError('checkout', `Berth could not check ${ws.branch} out on the disk from the warm pool (${switched.detail}): comment \`/berth delete\` and push again for a fresh disk`);
    }
  } finally {
    await checkout.cleanup();
  }
  log.line(`checkout: ${ws.branch} at ${build.sha.slice(0, 7)} on the warm pool's disk`);
  return true;
}

/** A warm pool member's fill ended well: stopped, its disk prepared (migrated, seeded), ready to be claimed. */
async function finishFill(deps: WorkerDeps, ws: Workspace, build: Build, log: BuildLog): Promise<void> {
  log.line(`==> warm pool: prepared from ${build.sha.slice(0, 7)}; its containers stop, its disk waits for a new branch`);
  await log.flush();
  await deps.runtime.stopServices(ws.id);
  await transition(deps.db, deps.queues, ws.id, 'stopped', `warm pool: ready (prepared from ${build.sha.slice(0, 7)})`, 'warm-pool', { runningSha: build.sha, previewHost: null }, { from: ['starting'] });
}

export async function runStep(deps: WorkerDeps, spec: WorkspaceRunSpec, service: string, step: 'migrate' | 'seed', command: string, log: BuildLog, onSuccess?: string) {
  const limit = deps.config.BERTH_TASK_TIMEOUT;
  const result = await deps.runtime.runTask(spec, service, onSuccess ? `(\n${command}\n) && ${onSuccess}` : command, log.write, { timeoutMs: limit });
  assertStepSucceeded(step, service, command, limit, result);
}

/**
 * `migrate` then `seed` of one service on a new disk, in one task container: a container's
 * create, start and removal less on every first start. The log, the progress (migrating, then
 * seeding), the time limit of each step and the failure messages are those of two runStep calls.
 */
async function runMigrateAndSeed(deps: WorkerDeps, spec: WorkspaceRunSpec, service: string, commands: { migrate: string; seed: string }, log: BuildLog, progress: (reason: string, step?: string) => Promise<void>, onSuccess?: string) {
  const limit = deps.config.BERTH_TASK_TIMEOUT;
  await progress(`migrating (${service})`, 'migrate');
  // a line no command prints by chance starts the seed; the runtime keeps it out of the log
  const marker = `berth-seed-begins-${randomBytes(8).toString('hex')}`;
  let step: 'migrate' | 'seed' = 'migrate';
  let seeding = Promise.resolve();
  const script = `(\n${commands.migrate}\n) || exit $?\necho '${marker}'\n(\n${commands.seed}\n)${onSuccess ? ` && ${onSuccess}` : ''}`;
  const result = await deps.runtime.runTask(spec, service, script, log.write, {
    timeoutMs: limit,
    nextStep: {
      marker,
      onStart: () => {
        step = 'seed';
        seeding = progress(`seeding (${service})`, 'seed').catch(() => {});
      },
    },
  });
  await seeding;
  assertStepSucceeded(step, service, commands[step], limit, result);
}

function assertStepSucceeded(step: 'migrate' | 'seed', service: string, command: string, limit: number, result: TaskResult): void {
  if (result.timedOut) {
    throw new StepFailedError(
      step,
      `${step} of service ${service} (${command}) did not finish within ${formatDuration(limit)} (BERTH_TASK_TIMEOUT), so Berth stopped it: make it end on its own (a ${step} command must exit), or ask the operator to raise the limit`,
      result.tail,
    );
  }
  if (result.exitCode !== 0) {
    const why = result.oomKilled ? 'was killed: out of memory' : `exited with code ${result.exitCode}`;
    throw new StepFailedError(step, `${step} of service ${service} (${command}) ${why}`, result.tail);
  }
}

/**
 * A build of the commit the running workspace's checkout already has (someone committed and
 * pushed from its terminal): the build is recorded as the workspace's current one (check run,
 * images for later starts), but its services keep running and its checkout is left as it is.
 */
async function pushedFromWorkspace(deps: WorkerDeps, ws: Workspace, build: Build): Promise<boolean> {
  if (!ws.previewHost || !ws.runningSha || ws.runningSha === build.sha || !['queued', 'building', 'running'].includes(ws.state)) return false;
  const spec = runSpec(deps, ws, build, build.config as unknown as RepoConfig);
  if (!(await diskCheckoutAt(deps.runtime, spec, build.sha))) return false;
  await dropCheckout(ws.id);
  const log = new BuildLog(deps.db, build.id);
  log.line(`==> ${build.sha.slice(0, 7)} is what the workspace's checkout already has (pushed from the workspace): the services keep running, the checkout is left as it is`);
  await log.flush();
  const done = await transition(deps.db, deps.queues, ws.id, 'running', `running ${build.sha.slice(0, 7)} (pushed from the workspace; not restarted)`, 'worker', { currentBuildId: build.id, runningSha: build.sha }, { from: ['queued', 'building', 'running'] });
  return Boolean(done);
}
