/**
 * A repository's base ("golden") disk (issue 17): its default branch checked out, migrated and
 * seeded once in the background (worker/jobs/base-disk.ts), kept in Docker volumes of its own
 * (slug `base.<id>`: a dot never appears in a workspace's slug, so no workspace can own them).
 * A new branch's workspace starts from a copy of it (startFromBaseDisk): its own commit checked
 * out on the copied checkout, migrate run (only the branch's new migrations apply), seed skipped
 * because its data came with the copy. `/berth reset` copies its data volumes back.
 */
import type { BaseDisk, Build, PrismaClient, Repository, Workspace } from '../lib/db/client.js';
import { StepFailedError } from '../lib/errors.js';
import type { StepTimer } from '../lib/start-steps.js';
import type { BuildLog } from './build-log.js';
import type { WorkerDeps } from './deps.js';
import type { DiskCopyResult, WorkspaceRunSpec } from './runtime/types.js';
import { cloneToken } from '../lib/github-app.js';
import { cloneAt } from './source/clone.js';
import { gitIn } from './source/git.js';
import { keepCheckout, takeCheckout } from './source/checkout-handover.js';
import { switchCheckout } from './source/branch-switch.js';
import { sourceOf } from './jobs/build.js';
import { join } from 'node:path';

export const baseDiskSlug = (id: string) => `base.${id}`;

/** The base disk as a run spec (its own id and slug, the services of `like`), for Runtime.copyDisk and its preparation. */
export function baseDiskSpec(base: Pick<BaseDisk, 'id'>, like: WorkspaceRunSpec): WorkspaceRunSpec {
  return { ...like, workspaceId: base.id, slug: baseDiskSlug(base.id), services: like.services.map((s) => ({ ...s, env: { ...s.env } })) };
}

/** the newest ready base disk of a repository */
export function readyBaseDisk(db: PrismaClient, repositoryId: bigint): Promise<BaseDisk | null> {
  return db.baseDisk.findFirst({ where: { repositoryId, state: 'ready' }, orderBy: { readyAt: 'desc' } });
}

export type CopyDecision = { copy: true } | { copy: false; why: string };

/**
 * Whether a workspace's new disk may be a copy of the base disk. A base disk holds the default
 * branch's data, so it goes only to branches of its own repository; a fork's pull request gets it
 * only when it holds nothing the repository's secrets made, or its commit was approved with
 * `--with-secrets`. Its commit must be in the branch's history: then the branch has every
 * migration the copied data went through, and its migrate applies only its own new ones.
 */
export function mayCopyBaseDisk(input: {
  base: Pick<BaseDisk, 'sha' | 'withSecrets' | 'repositoryId'> | null;
  ws: Pick<Workspace, 'repositoryId' | 'branch' | 'forkRepo' | 'approvedSecretsSha'>;
  defaultBranch: string;
  sha: string;
  /** whether base.sha is an ancestor of (or is) `sha` */
  baseInHistory: boolean;
  runtimeCanCopy: boolean;
}): CopyDecision {
  const { base, ws } = input;
  if (!input.runtimeCanCopy) return { copy: false, why: 'this runtime cannot copy disks' };
  if (!base) return { copy: false, why: `no base disk of ${input.defaultBranch} is ready yet` };
  if (base.repositoryId !== ws.repositoryId) return { copy: false, why: "the base disk is another repository's" };
  if (!ws.forkRepo && ws.branch === input.defaultBranch) return { copy: false, why: `${input.defaultBranch} prepares the base disk itself` };
  if (ws.forkRepo && base.withSecrets && ws.approvedSecretsSha !== input.sha) {
    return { copy: false, why: "the base disk was prepared with the repository's secrets, which a fork's pull request gets only with `/berth approve --with-secrets`" };
  }
  if (!input.baseInHistory) {
    return { copy: false, why: `the base disk's commit ${base.sha.slice(0, 7)} is not in this branch's history, so its data may hold migrations the branch does not have` };
  }
  return { copy: true };
}

export interface BaseDiskStart {
  base: BaseDisk;
  copy: DiskCopyResult;
}

/**
 * A new workspace disk as a copy of its repository's base disk, with the branch's commit checked
 * out on the copied checkout (through the engine, never host-side git on the disk). Null when it
 * may not or cannot (the log says why): the caller then clones, migrates and seeds as before, and
 * finds the clone made here (checkout-handover).
 */
export async function startFromBaseDisk(
  deps: WorkerDeps,
  ws: Workspace & { repository: Repository },
  build: Build,
  spec: WorkspaceRunSpec,
  log: BuildLog,
  timer: StepTimer,
  progress: (reason: string) => Promise<void>,
): Promise<BaseDiskStart | null> {
  if (!deps.runtime.copyDisk || !spec.services.some((s) => s.mountsWorkspace)) return null;
  const base = await readyBaseDisk(deps.db, ws.repositoryId);
  if (!base) {
    log.line(`==> disk: fresh (no base disk of ${ws.repository.defaultBranch} is ready yet)`);
    return null;
  }
  // a fork: its own branch; a warm pool member: the default branch (its branch is a placeholder)
  const branch = sourceOf(ws).branch;
  const taken = await takeCheckout(ws.id, build.sha);
  const checkout = taken ?? (await cloneFor(deps, ws, build, log));
  let handedBack = false;
  // a fresh start after all: the populate that follows takes this checkout instead of cloning
  // again (the build's kept one stays where it is: keepCheckout would drop it before moving it)
  const handBack = async () => {
    if (!taken) await keepCheckout(ws.id, build.sha, checkout.dir);
    handedBack = true;
  };
  try {
    const baseInHistory = await isAncestor(checkout.dir, base.sha, build.sha);
    const decision = mayCopyBaseDisk({ base, ws, defaultBranch: ws.repository.defaultBranch, sha: build.sha, baseInHistory, runtimeCanCopy: true });
    if (!decision.copy) {
      log.line(`==> disk: fresh (${decision.why})`);
      await handBack();
      return null;
    }
    await progress(`copying the base disk of ${ws.repository.defaultBranch} (${base.sha.slice(0, 7)})`);
    timer.begin('copy');
    const copy = await deps.runtime.copyDisk(baseDiskSpec(base, spec), spec, { part: 'all', timeoutMs: deps.config.BERTH_TASK_TIMEOUT });
    timer.end();
    if (copy.volumes === 0) {
      // its volumes are on another engine (a workspace placed on another host): start fresh
      log.line('==> disk: fresh (the base disk is not on this Docker engine)');
      await handBack();
      return null;
    }
    log.line(`==> disk: a copy of the base disk (${base.sha.slice(0, 7)}): ${copy.volumes} volume${copy.volumes === 1 ? '' : 's'}, ${Math.round(copy.bytes / 1024 / 1024)} MiB by ${copy.method === 'reflink' ? 'reflink (shared blocks)' : 'streaming copy'} in ${copy.durationMs} ms`);
    await progress(`checking out ${branch} at ${build.sha.slice(0, 7)} on the copied disk`);
    timer.begin('checkout');
    const switched = await switchCheckout(deps.runtime, spec, { sourceGitDir: join(checkout.dir, '.git'), sha: build.sha, branch });
    timer.end();
    if (switched.result === 'failed') {
      throw new StepFailedError('checkout', `Berth could not check ${branch} out on the copy of the base disk (${switched.detail}): comment \`/berth delete\` and push again for a fresh disk`);
    }
    return { base, copy };
  } finally {
    if (!handedBack) await checkout.cleanup();
  }
}

async function cloneFor(deps: WorkerDeps, ws: Workspace & { repository: Repository }, build: Build, log: BuildLog) {
  const token = await cloneToken(deps.probot, Number(ws.repository.installationId), Number(ws.repository.id));
  log.addSecret(token);
  return cloneAt({ ...sourceOf(ws), token, sha: build.sha });
}

/** in a clone Berth made on the host (its own files, never a workspace disk): is `ancestor` in `sha`'s history? */
async function isAncestor(dir: string, ancestor: string, sha: string): Promise<boolean> {
  if (!/^[0-9a-f]{40}$/.test(ancestor) || !/^[0-9a-f]{40}$/.test(sha)) return false;
  try {
    await gitIn(dir, undefined)(['merge-base', '--is-ancestor', ancestor, sha]);
    return true;
  } catch {
    return false; // not an ancestor (exit 1), or the commit is not in the clone at all
  }
}
