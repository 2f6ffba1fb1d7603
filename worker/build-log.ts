import type { PrismaClient } from '../lib/db/client.js';
import { redact } from '../lib/redact.js';

/**
 * Appends output to a build's log in the database as it arrives, in small batches so the
 * dashboard can stream it without a write per line. Secrets are removed before storing.
 *
 * A log is capped: what a repository's build, migrate or seed prints is its author's choice,
 * and PostgreSQL's disk is Berth's. A build's log keeps its first `head` characters and its
 * last `tail` characters; in between one line says how much was left out. Once the head is
 * full, new output is still written (the live log keeps streaming) and the oldest output after
 * the cut is deleted as the tail grows. The cap holds for the build as a whole: the start jobs
 * that append to the same build's log (every wake of the workspace) continue where it stands.
 */
/** output kept while the database does not take it; beyond this the oldest goes */
const MAX_PENDING = 1024 * 1024;
export const LOG_HEAD_CHARS = 1_000_000;
export const LOG_TAIL_CHARS = 1_000_000;
/** how a cut announces itself; also how a later BuildLog of the same build finds it */
const CUT_PREFIX = '\n[Berth cut this log here: ';
const cutLine = (cut: number, limits: LogLimits) =>
  `${CUT_PREFIX}${cut} characters left out. A build log keeps its first ${limits.head} and its last ${limits.tail} characters.]\n`;

export interface LogLimits {
  head: number;
  tail: number;
}

interface Stored {
  /** characters before the cut (or in total, before there is one) */
  head: number;
  cutId: bigint | null;
  cut: number;
}

export class BuildLog {
  private pending = '';
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private all = '';
  private stored: Stored | null = null;
  /** a write to the database is under way: an early flush would only queue behind it */
  private busy = false;

  constructor(
    private db: PrismaClient,
    private buildId: string,
    private secrets: string[] = [],
    private limits: LogLimits = { head: LOG_HEAD_CHARS, tail: LOG_TAIL_CHARS },
  ) {}

  write = (text: string) => {
    if (!text) return;
    const clean = redact(text, this.secrets);
    this.pending += clean;
    this.all = (this.all + clean).slice(-20_000);
    // a flood of output goes out at once instead of piling up in memory until the timer
    if (this.pending.length > MAX_PENDING && !this.busy) void this.flush().catch(() => {});
    else this.timer ??= setTimeout(() => void this.flush().catch(() => {}), 300);
  };

  line(text: string) {
    this.write(`${text}\n`);
  }

  /** the last `n` lines written by this process */
  tail(n = 30): string {
    return this.all.split('\n').slice(-n - 1).join('\n').trim();
  }

  addSecret(secret: string) {
    this.secrets.push(secret);
  }

  /** `text` with this log's secrets (and token shapes) masked, for what is shown beside the log */
  redact(text: string): string {
    return redact(text, this.secrets);
  }

  /**
   * Writes what is pending. Rejects when the database does not take it (PostgreSQL away):
   * the text is kept and goes with the next flush, so an outage loses no output.
   */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const text = this.pending;
    this.pending = '';
    if (text) {
      // an earlier failed write must not stop this one
      this.busy = true;
      this.flushing = this.flushing.catch(() => {}).then(async () => {
        try {
          await this.store(text);
        } catch (err) {
          this.pending = (text + this.pending).slice(-MAX_PENDING);
          throw err;
        } finally {
          this.busy = false;
        }
      });
    }
    return this.flushing;
  }

  private async store(text: string): Promise<void> {
    const s = (this.stored ??= await this.load());
    const { head, tail } = this.limits;
    let rest = text;
    if (s.cutId === null) {
      const room = head - s.head;
      if (rest.length <= room) {
        await this.append(rest);
        s.head += rest.length;
        return;
      }
      if (room > 0) {
        await this.append(rest.slice(0, room));
        s.head += room;
        rest = rest.slice(room);
      }
      s.cutId = (await this.append(cutLine(0, this.limits))).id;
    }
    if (rest.length > tail) {
      s.cut += rest.length - tail;
      rest = rest.slice(-tail);
    }
    await this.append(rest);
    // the newest chunks after the cut that fit the tail stay; older ones go
    const after = await this.db.$queryRaw<Array<{ id: bigint; len: number }>>`
      SELECT "id", length("text")::int AS "len" FROM "BuildLogChunk"
      WHERE "buildId" = ${this.buildId} AND "id" > ${s.cutId} ORDER BY "id" DESC`;
    let kept = 0;
    const drop: bigint[] = [];
    for (const c of after) {
      if (drop.length === 0 && kept + c.len <= tail) kept += c.len;
      else {
        drop.push(c.id);
        s.cut += c.len;
      }
    }
    if (drop.length) await this.db.buildLogChunk.deleteMany({ where: { id: { in: drop } } });
    await this.db.buildLogChunk.update({ where: { id: s.cutId }, data: { text: cutLine(s.cut, this.limits) } });
  }

  private append(text: string) {
    return this.db.buildLogChunk.create({ data: { buildId: this.buildId, text }, select: { id: true } });
  }

  /** where this build's stored log stands: another job may have written to it before */
  private async load(): Promise<Stored> {
    const cutChunk = await this.db.buildLogChunk.findFirst({ where: { buildId: this.buildId, text: { startsWith: CUT_PREFIX } }, select: { id: true, text: true } });
    const before = cutChunk?.id ?? BigInt(Number.MAX_SAFE_INTEGER);
    const [row] = await this.db.$queryRaw<Array<{ size: number }>>`
      SELECT COALESCE(SUM(length("text")), 0)::int AS "size" FROM "BuildLogChunk"
      WHERE "buildId" = ${this.buildId} AND "id" < ${before}`;
    const cut = cutChunk ? Number(/(\d+) characters left out/.exec(cutChunk.text)?.[1] ?? 0) : 0;
    return { head: row?.size ?? 0, cutId: cutChunk?.id ?? null, cut };
  }
}

/** The newest builds of a workspace whose logs are kept; older builds keep their record, not their log. */
export const KEEP_BUILD_LOGS = 20;
/** State changes kept per workspace (the dashboard's history); the oldest go first. */
export const KEEP_EVENTS = 500;
const PRUNED = `[Berth removed this log: a workspace keeps the logs of its newest ${KEEP_BUILD_LOGS} builds.]\n`;

/**
 * Bounds what a workspace keeps as it is pushed to for months: the logs of its older builds
 * (never the current one) and its oldest state changes. Cheap enough to run on every build.
 */
export async function pruneWorkspaceHistory(db: PrismaClient, workspaceId: string, keep = { builds: KEEP_BUILD_LOGS, events: KEEP_EVENTS }): Promise<void> {
  const ws = await db.workspace.findUnique({ where: { id: workspaceId }, select: { currentBuildId: true } });
  const newest = await db.build.findMany({ where: { workspaceId }, orderBy: { createdAt: 'desc' }, take: keep.builds, select: { id: true } });
  const kept = [...newest.map((b) => b.id), ...(ws?.currentBuildId ? [ws.currentBuildId] : [])];
  const where = { build: { workspaceId, state: { notIn: ['queued' as const, 'running' as const] } }, buildId: { notIn: kept }, NOT: { text: PRUNED } };
  const logs = await db.buildLogChunk.groupBy({ by: ['buildId'], where });
  if (logs.length) {
    await db.buildLogChunk.deleteMany({ where: { ...where, buildId: { in: logs.map((l) => l.buildId) } } });
    await db.buildLogChunk.createMany({ data: logs.map((l) => ({ buildId: l.buildId, text: PRUNED })) });
  }
  const oldest = await db.workspaceEvent.findFirst({ where: { workspaceId }, orderBy: { id: 'desc' }, skip: keep.events, select: { id: true } });
  if (oldest) await db.workspaceEvent.deleteMany({ where: { workspaceId, id: { lte: oldest.id } } });
}
