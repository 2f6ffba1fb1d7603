import type { Job } from 'bullmq';
import type { WorkerDeps } from '../deps.js';
import type { WorkspaceJob } from '../../lib/queue.js';
import type { RepoConfig } from '../../lib/repo-config.js';
import { BerthError, StepFailedError } from '../../lib/errors.js';
import { StepTimer } from '../../lib/start-steps.js';
import { cloneToken } from '../../lib/github-app.js';
import { BuildLog } from '../build-log.js';
import { cloneAt } from '../source/clone.js';
import { applyWorkspaceVariables } from '../variables.js';
import { baseDiskSpec } from '../base-disk.js';
import { sourceOf, userMessage } from './build.js';
import { runSpec, runStep, seedMarkCommand } from './start.js';

/** a BullMQ priority: after every start, stop and build waiting on the same queue (jobs without one come first) */
export const BASE_DISK_PRIORITY = 100;

/**
 * Prepares the repository's base disk from a successful build of its default branch (issue 17),
 * in the background at low priority: a disk of its own, the checkout, migrate, seed, nothing left
 * running. When it is ready, older base disks of the repository are removed. A build superseded
 * by a newer one of the default branch prepares nothing: the newer one's job does.
 *
 * Its output goes to the default branch's build log under "base disk:" lines; a failure is
 * recorded on the BaseDisk row and in that log, and new branches keep starting fresh.
 */
export async function baseDiskJob(deps: WorkerDeps, job: Job<WorkspaceJob>): Promise<void> {
  const { db } = deps;
  if (!job.data.buildId || !deps.runtime.copyDisk) return;
  const build = await db.build.findUnique({ where: { id: job.data.buildId }, include: { workspace: { include: { repository: true } } } });
  const ws = build?.workspace;
  if (!build || !ws || build.state !== 'succeeded' || ws.state === 'deleted') return;
  if (ws.forkRepo || ws.branch !== ws.repository.defaultBranch || (ws as { poolMember?: boolean }).poolMember) return;
  const newer = await db.build.findFirst({ where: { workspaceId: ws.id, state: 'succeeded', createdAt: { gt: build.createdAt } }, select: { id: true } });
  if (newer) return;
  const existing = await db.baseDisk.findFirst({ where: { repositoryId: ws.repositoryId, sha: build.sha, state: { in: ['preparing', 'ready'] } } });
  if (existing) return;
  const config = build.config as unknown as RepoConfig;
  // worth a disk of its own only when a start would do more than a checkout
  const hasData = config.services.some((s) => s.migrate || s.seed || s.data || s.volumes?.length);
  if (!hasData || !config.services.some((s) => s.build || s.checkoutMount !== undefined)) return;
  const secrets = await db.variable.count({ where: { secret: true, OR: [{ scope: 'global' }, { repositoryId: ws.repositoryId }] } });
  const base = await db.baseDisk.create({ data: { repositoryId: ws.repositoryId, sha: build.sha, buildId: build.id, withSecrets: secrets > 0 } });
  const spec = baseDiskSpec(base, runSpec(deps, ws, build, config));
  const log = new BuildLog(db, build.id);
  const timer = new StepTimer();
  try {
    log.line(`==> base disk: preparing the base disk of ${ws.branch} at ${build.sha.slice(0, 7)} in the background (new branches start from a copy of it)`);
    timer.begin('checkout');
    await deps.runtime.ensureDisk(spec);
    const token = await cloneToken(deps.probot, Number(ws.repository.installationId), Number(ws.repository.id));
    log.addSecret(token);
    const checkout = await cloneAt({ ...sourceOf(ws), token, sha: build.sha });
    try {
      await deps.runtime.populateWorkspace(spec, checkout.dir);
    } finally {
      await checkout.cleanup();
    }
    // the default branch's variables, as its own workspace gets them (withSecrets records it)
    await applyWorkspaceVariables(deps, ws, build, config, spec, log);
    const prepare = async (only?: string) => {
      for (const service of config.services.filter((s) => s.migrate && (only === undefined || s.name === only))) {
        log.line(`==> base disk: migrating (${service.name})`);
        timer.begin('migrate');
        await runStep(deps, spec, service.name, 'migrate', service.migrate!, log);
      }
      for (const service of config.services.filter((s) => s.seed && (only === undefined || s.name === only))) {
        const run = spec.services.find((s) => s.name === service.name);
        log.line(`==> base disk: seeding (${service.name})`);
        timer.begin('seed');
        // the seed mark travels with every copy: a start from it skips the seed by itself
        await runStep(deps, spec, service.name, 'seed', service.seed!, log, run?.mountsWorkspace ? seedMarkCommand(service.name, run.checkoutMount) : undefined);
      }
    };
    if (spec.services.some((s) => s.dependsOn || s.oneShot)) {
      // compose's depends_on: a migrate may need its database up; everything stops afterwards
      timer.begin('services');
      try {
        await deps.runtime.startServices(spec, { healthTimeoutMs: deps.config.BERTH_HEALTH_TIMEOUT, taskTimeoutMs: deps.config.BERTH_TASK_TIMEOUT, onLog: log.write, beforeStart: prepare });
      } finally {
        await deps.runtime.stopServices(base.id);
      }
    } else {
      await prepare();
    }
    timer.end();
    const steps = timer.list();
    const done = await db.baseDisk.updateMany({ where: { id: base.id, state: 'preparing' }, data: { state: 'ready', readyAt: new Date(), steps: steps as never } });
    if (done.count === 0) throw new BerthError('the base disk was removed while it was being prepared');
    log.line(`==> base disk: ready (${steps.map((s) => `${s.step} ${s.ms} ms`).join(', ')})`);
    await log.flush();
    await retireOlder(deps, ws.repositoryId, base.id);
  } catch (err) {
    const message = userMessage(err);
    const tail = err instanceof StepFailedError && err.logTail ? `\n${err.logTail}` : '';
    log.line(`==> base disk: not prepared (${message}); new branches start fresh until a build of ${ws.branch} prepares one${tail}`);
    await log.flush();
    await db.baseDisk.update({ where: { id: base.id }, data: { state: 'failed', error: log.redact(message).slice(0, 2000) } });
    await deps.runtime.removeWorkspace(base.id).catch(() => {});
    if (!(err instanceof BerthError)) deps.log(`base disk ${base.id} of ${ws.repository.fullName} failed: ${(err as Error).stack}`);
  }
}

/**
 * Older base disks of the repository go once a newer one is ready: marked retired first (no new
 * copy starts from them), then their volumes removed. The engine refuses to remove a volume a
 * copy is still reading: then the reconciler removes it on a later round (a retired base disk's
 * objects are orphans to it).
 */
async function retireOlder(deps: WorkerDeps, repositoryId: bigint, keep: string): Promise<void> {
  const older = await deps.db.baseDisk.findMany({ where: { repositoryId, id: { not: keep }, state: { in: ['ready', 'failed'] } }, select: { id: true } });
  for (const b of older) {
    await deps.db.baseDisk.update({ where: { id: b.id }, data: { state: 'retired' } });
    await deps.runtime.removeWorkspace(b.id).catch((err) => deps.log(`could not remove the volumes of base disk ${b.id}: ${(err as Error).message}; the reconciler tries again`));
  }
}
