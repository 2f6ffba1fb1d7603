import type { PrismaClient, Workspace, WorkspaceState } from './db/client.js';
import { canTransition } from './lifecycle.js';
import { idleStopDue } from './idle.js';
import { loggerOf } from './log.js';
import { workspaceSlug } from './slug.js';
import type { Queues } from './queue.js';

/**
 * Moves a workspace to `to` only if its current state allows it, so two racing commands
 * cannot both win: the row is locked (`SELECT … FOR UPDATE`) for the check, the update and
 * the history event, which therefore names the state the workspace really left. Asks the app
 * to show the change on GitHub. Returns the updated workspace, or null if the transition was
 * not legal from the state it was in (or, with `opts.from`, it was not in one of those states;
 * with `opts.onlyIfIdleAt`, it was not idle past its timeout at that time).
 */
export async function transition(
  db: PrismaClient,
  queues: Queues | undefined,
  workspaceId: string,
  to: WorkspaceState,
  reason: string,
  actor: string,
  extra: Partial<Pick<Workspace, 'runningSha' | 'currentBuildId' | 'previewHost' | 'previewPort' | 'seededAt' | 'lastActivityAt' | 'ideState'>> = {},
  opts: { from?: WorkspaceState[]; onlyIfIdleAt?: Date } = {},
): Promise<Workspace | null> {
  const updated = await db.$transaction(async (tx) => {
    const rows = await tx.$queryRaw<Array<{ state: WorkspaceState; lastActivityAt: Date; idleTimeoutSec: number }>>`SELECT "state"::text AS "state", "lastActivityAt", "idleTimeoutSec" FROM "Workspace" WHERE "id" = ${workspaceId} FOR UPDATE`;
    const from = rows[0]?.state;
    if (!from || !canTransition(from, to) || (opts.from && !opts.from.includes(from))) return null;
    // The idle stop decides under the lock: activity written before it commits (an SSH session
    // or a WebSocket that just opened) keeps the workspace running; one written after it finds
    // the workspace stopped and wakes it.
    if (opts.onlyIfIdleAt && !idleStopDue(rows[0]!, opts.onlyIfIdleAt)) return null;
    const ws = await tx.workspace.update({ where: { id: workspaceId }, data: { state: to, stateReason: reason, ...extra } });
    await tx.workspaceEvent.create({ data: { workspaceId, fromState: from, toState: to, reason: reason.slice(0, 2000), actor } });
    return { ws, from };
  }, { maxWait: 15_000, timeout: 15_000 });
  if (!updated) return null;
  await announceStateChange(updated.ws);
  void logStateChange(db, updated.ws, updated.from, reason, actor);
  await queues?.enqueueReport({ workspaceId });
  return updated.ws;
}

/**
 * Told of every state change in this process, after it committed, and awaited (at most a
 * second) before the caller goes on: the native proxy (app/gateway/native-routes.ts) stops
 * routing to a workspace's containers before a stop stops them, so a request in between goes to
 * Berth, which wakes the workspace, rather than to a container on its way out.
 */
export const stateChangeListeners = new Set<(ws: Workspace) => Promise<void> | void>();

async function announceStateChange(ws: Workspace): Promise<void> {
  if (!stateChangeListeners.size) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.all([...stateChangeListeners].map((l) => Promise.resolve().then(() => l(ws)).catch(() => {}))),
    new Promise((r) => (timer = setTimeout(r, 1000))),
  ]).finally(() => clearTimeout(timer));
}

/** Every state change, one line: the history table has it too, but an operator reads the log first. */
async function logStateChange(db: PrismaClient, ws: Workspace, from: WorkspaceState, reason: string, actor: string) {
  const level = ws.state === 'failed' ? 'warn' : 'info';
  const logger = loggerOf(db);
  if (!logger.isLevelEnabled(level)) return;
  const repository = await db.repository.findUnique({ where: { id: ws.repositoryId }, select: { fullName: true } }).then((r) => r?.fullName, () => undefined);
  logger[level](
    { workspace: ws.slug, workspaceId: ws.id, repository, branch: ws.branch, commit: (ws.runningSha ?? ws.headSha)?.slice(0, 12), from, to: ws.state, reason: reason.slice(0, 500), actor },
    `workspace ${ws.slug}: ${from} → ${ws.state} (${reason.slice(0, 200)})`,
  );
}

/**
 * The workspace of a branch, created in state `queued` when missing. Slugs are unique;
 * on the rare collision a salted slug is tried.
 */
export async function upsertWorkspace(
  db: PrismaClient,
  repo: { id: bigint; fullName: string },
  branch: string,
  headSha: string,
  fields: Partial<Pick<Workspace, 'prNumber' | 'forkRepo'>> = {},
): Promise<{ workspace: Workspace; created: boolean }> {
  const existing = await db.workspace.findUnique({ where: { repositoryId_branch: { repositoryId: repo.id, branch } } });
  if (existing) {
    const workspace = await db.workspace.update({ where: { id: existing.id }, data: { headSha, ...fields } });
    return { workspace, created: false };
  }
  for (let salt = 0; salt < 5; salt++) {
    const slug = workspaceSlug(repo.fullName, branch, salt);
    try {
      const workspace = await db.workspace.create({
        data: { repositoryId: repo.id, branch, slug, headSha, state: 'queued', ...fields },
      });
      await db.workspaceEvent.create({ data: { workspaceId: workspace.id, toState: 'queued', reason: 'workspace created', actor: 'push' } });
      return { workspace, created: true };
    } catch (err) {
      if (!isUniqueViolation(err)) throw err;
      const raced = await db.workspace.findUnique({ where: { repositoryId_branch: { repositoryId: repo.id, branch } } });
      if (raced) return { workspace: await db.workspace.update({ where: { id: raced.id }, data: { headSha, ...fields } }), created: false };
    }
  }
  throw new Error(`could not find a free slug for ${repo.fullName}@${branch}`);
}

export function isUniqueViolation(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: string }).code === 'P2002';
}

export function previewUrl(slug: string, previewDomain: string, port: number): string {
  return `http://${slug}.${previewDomain}${port === 80 ? '' : `:${port}`}/`;
}
