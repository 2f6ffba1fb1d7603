import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPrisma, type PrismaClient } from '../../lib/db/client.js';
import { applyMigrations } from '../../lib/db/migrate.js';
import { BuildLog, KEEP_BUILD_LOGS, pruneWorkspaceHistory } from '../../worker/build-log.js';
import { logPage } from '../../app/dashboard/log-pages.js';
import { createTestDatabase } from '../helpers/database.js';

/**
 * Build logs on the real PostgreSQL: a log that floods keeps its head and its tail and says
 * what was cut, across the jobs that write to it; a workspace pushed to for months keeps the
 * logs of its newest builds and a bounded history.
 */
describe('build logs are capped and pruned', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let db: PrismaClient;
  let n = 0;

  beforeAll(async () => {
    database = await createTestDatabase();
    await applyMigrations(database.url);
    db = createPrisma(database.url);
    await db.installation.create({ data: { id: 1n, accountLogin: 'acme', accountType: 'Organization' } });
    await db.repository.create({ data: { id: 2n, installationId: 1n, owner: 'acme', name: 'shop', fullName: 'acme/shop' } });
  });

  afterAll(async () => {
    await db?.$disconnect();
    await database?.drop();
  });

  async function workspace() {
    n++;
    return db.workspace.create({ data: { repositoryId: 2n, branch: `h2-log-${n}`, slug: `h2-log-${n}`, headSha: 'a'.repeat(40), state: 'running' } });
  }
  const storedText = async (buildId: string) => (await db.buildLogChunk.findMany({ where: { buildId }, orderBy: { id: 'asc' } })).map((c) => c.text).join('');

  it('a flood keeps its first and last lines, says how much was cut, and stays within the cap', async () => {
    const ws = await workspace();
    const build = await db.build.create({ data: { repositoryId: 2n, workspaceId: ws.id, sha: 'a'.repeat(40) } });
    const limits = { head: 20_000, tail: 20_000 };
    const log = new BuildLog(db, build.id, [], limits);
    // 200,000 lines (~1.5 MB), written the way docker output arrives: in bursts, flushed now and then
    for (let i = 1; i <= 200_000; i++) {
      log.line(`line ${i}`);
      if (i % 10_000 === 0) await log.flush();
    }
    await log.flush();
    const text = await storedText(build.id);
    expect(text.length).toBeLessThan(limits.head + limits.tail + 200);
    expect(text.startsWith('line 1\nline 2\n')).toBe(true);
    expect(text.endsWith('line 199999\nline 200000\n')).toBe(true);
    const cut = /\[Berth cut this log here: (\d+) characters left out/.exec(text);
    expect(cut).not.toBeNull();
    const total = Array.from({ length: 200_000 }, (_, i) => `line ${i + 1}\n`).join('').length;
    // what was cut and what was kept add up to what was written
    expect(Number(cut![1]) + text.length - cut![0].length).toBeGreaterThan(total - 200);

    // a later start job appends to the same build: the cap still holds and the tail moves on
    const later = new BuildLog(db, build.id, [], limits);
    for (let i = 0; i < 5_000; i++) later.line(`start output ${i}`);
    later.line('==> running');
    await later.flush();
    const after = await storedText(build.id);
    expect(after.length).toBeLessThan(limits.head + limits.tail + 200);
    expect(after.startsWith('line 1\n')).toBe(true);
    expect(after.endsWith('==> running\n')).toBe(true);
    expect(after.match(/Berth cut this log here/g)).toHaveLength(1);
    // the dashboard's log page shows the cut like any other line
    expect((await logPage(db, build.id)).text).toContain('==> running');
  });

  it('a workspace keeps the logs of its newest builds and a bounded history', async () => {
    const ws = await workspace();
    const builds = [];
    for (let i = 0; i < KEEP_BUILD_LOGS + 3; i++) {
      const b = await db.build.create({ data: { repositoryId: 2n, workspaceId: ws.id, sha: String(i).padStart(40, '0'), state: 'succeeded', createdAt: new Date(Date.now() - (100 - i) * 60_000) } });
      await db.buildLogChunk.create({ data: { buildId: b.id, text: `log of build ${i}\n` } });
      builds.push(b);
    }
    // the workspace still runs the oldest build: its log stays
    await db.workspace.update({ where: { id: ws.id }, data: { currentBuildId: builds[0]!.id } });
    for (let i = 0; i < 30; i++) await db.workspaceEvent.create({ data: { workspaceId: ws.id, toState: 'running', reason: `event ${i}`, actor: 'test' } });

    await pruneWorkspaceHistory(db, ws.id, { builds: KEEP_BUILD_LOGS, events: 10 });
    await pruneWorkspaceHistory(db, ws.id, { builds: KEEP_BUILD_LOGS, events: 10 }); // idempotent

    expect(await storedText(builds[0]!.id)).toBe('log of build 0\n');
    for (const i of [1, 2]) expect(await storedText(builds[i]!.id)).toMatch(/^\[Berth removed this log: a workspace keeps the logs of its newest \d+ builds\.\]\n$/);
    for (let i = 3; i < builds.length; i++) expect(await storedText(builds[i]!.id)).toBe(`log of build ${i}\n`);
    const events = await db.workspaceEvent.findMany({ where: { workspaceId: ws.id }, orderBy: { id: 'asc' } });
    expect(events.map((e) => e.reason)).toEqual(Array.from({ length: 10 }, (_, i) => `event ${20 + i}`));
  });
});
