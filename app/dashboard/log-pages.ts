import type { ServerResponse } from 'node:http';
import type { PrismaClient } from '../../lib/db/client.js';

/**
 * Build logs are stored as chunks in arrival order (BuildLogChunk, by id). A long log is shown
 * newest page first: a page is a run of whole chunks holding at least PAGE_LINES lines, read
 * backwards from the end (or from `before`), so a page costs a few small indexed queries no
 * matter how long the log is. Chunk ids are the page cursors, also for the live stream.
 */
export const PAGE_LINES = 2000;
/** A page never holds more text than this, however few newlines it has. */
const PAGE_CHARS = 1_000_000;
const BATCH = 200;

export interface LogPage {
  text: string;
  /** first and last chunk ids on the page; null for an empty log */
  firstId: bigint | null;
  lastId: bigint | null;
  /** chunks exist before this page */
  hasEarlier: boolean;
  /** chunks exist after this page (when paging back) */
  hasLater: boolean;
}

export async function logPage(db: PrismaClient, buildId: string, opts: { before?: bigint; lines?: number } = {}): Promise<LogPage> {
  const wantLines = opts.lines ?? PAGE_LINES;
  const chunks: Array<{ id: bigint; text: string }> = [];
  let lines = 0;
  let chars = 0;
  let cursor = opts.before;
  let exhausted = false;
  while (lines < wantLines && chars < PAGE_CHARS) {
    const batch = await db.buildLogChunk.findMany({
      where: { buildId, ...(cursor !== undefined ? { id: { lt: cursor } } : {}) },
      orderBy: { id: 'desc' },
      take: BATCH,
      select: { id: true, text: true },
    });
    for (const c of batch) {
      chunks.push(c);
      lines += countLines(c.text);
      chars += c.text.length;
      cursor = c.id;
      if (lines >= wantLines || chars >= PAGE_CHARS) break;
    }
    if (batch.length < BATCH && !(lines >= wantLines || chars >= PAGE_CHARS)) {
      exhausted = true;
      break;
    }
  }
  chunks.reverse();
  const firstId = chunks[0]?.id ?? null;
  const lastId = chunks[chunks.length - 1]?.id ?? null;
  const hasEarlier = !exhausted && firstId !== null && (await db.buildLogChunk.findFirst({ where: { buildId, id: { lt: firstId } }, select: { id: true } })) !== null;
  const hasLater = opts.before !== undefined && (await db.buildLogChunk.findFirst({ where: { buildId, id: { gte: opts.before } }, select: { id: true } })) !== null;
  return { text: chunks.map((c) => c.text).join(''), firstId, lastId, hasEarlier, hasLater };
}

/** Chunks after `afterId`, oldest first: what the live stream sends next. */
export function chunksAfter(db: PrismaClient, buildId: string, afterId: bigint, take = 200) {
  return db.buildLogChunk.findMany({
    where: { buildId, id: { gt: afterId } },
    orderBy: { id: 'asc' },
    take,
    select: { id: true, text: true },
  });
}

/** The whole log as plain text, streamed in batches so a huge log never sits in memory. */
export async function streamWholeLog(db: PrismaClient, buildId: string, res: ServerResponse): Promise<void> {
  res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
  let after = -1n;
  for (;;) {
    const batch = await chunksAfter(db, buildId, after, BATCH);
    for (const c of batch) {
      if (!res.write(c.text)) await new Promise((r) => res.once('drain', r));
    }
    if (batch.length < BATCH) break;
    after = batch[batch.length - 1]!.id;
  }
  res.end();
}

function countLines(text: string): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) n++;
  return n;
}
