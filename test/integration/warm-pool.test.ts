import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyMigrations } from '../../lib/db/migrate.js';
import { createPrisma, type PrismaClient } from '../../lib/db/client.js';
import { claimWarmWorkspace, poolBranch } from '../../lib/warm-pool.js';
import { workspaceSlug } from '../../lib/slug.js';
import { createTestDatabase } from '../helpers/database.js';

const SHA = 'c'.repeat(40);

/**
 * The claim of a warm pool member on the real PostgreSQL: pushes of new branches racing for
 * the same pool each get a different member, or none, never the same one.
 */
describe('warm pool claims (real PostgreSQL)', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let db: PrismaClient;
  const repo = { id: 2n, fullName: 'acme/shop' };

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

  async function member(state: 'stopped' | 'starting' = 'stopped') {
    const branch = poolBranch();
    return db.workspace.create({ data: { repositoryId: 2n, branch, slug: workspaceSlug(repo.fullName, branch), headSha: SHA, runningSha: SHA, seededAt: new Date(), state, poolMember: true } });
  }

  it('ten pushes racing for three ready members: three claims, each a different member, the rest get none', async () => {
    const members = await Promise.all([member(), member(), member(), member('starting')]);
    const claims = await Promise.all(Array.from({ length: 10 }, (_, i) => claimWarmWorkspace(db, repo, `feature/race-${i}`, `${i}`.repeat(40))));
    const won = claims.filter((c) => c !== null);
    expect(won).toHaveLength(3);
    expect(new Set(won.map((c) => c!.id)).size).toBe(3);
    // only ready (stopped) members are claimed; the one still filling stays in the pool
    expect(won.map((c) => c!.id).sort()).toEqual(members.slice(0, 3).map((m) => m.id).sort());
    for (const c of won) {
      expect(c!.poolMember).toBe(false);
      expect(c!.branch).toMatch(/^feature\/race-\d$/);
      expect(c!.slug).toBe(workspaceSlug(repo.fullName, c!.branch));
      // the disk keeps its names, its seed and its state; nothing of the branch ran yet
      expect(c!.diskSlug).toBe(members.find((m) => m.id === c!.id)!.slug);
      expect(c!.seededAt).not.toBeNull();
      expect(c!.runningSha).toBeNull();
      expect(c!.claimedAt).not.toBeNull();
      expect(c!.headSha).toBe(c!.branch.slice(-1).repeat(40));
    }
    expect(await db.workspace.count({ where: { poolMember: true } })).toBe(1);
  });

  it('a branch that has a workspace already (a racing push of it) leaves the pool alone', async () => {
    await db.workspace.deleteMany({});
    const m = await member();
    await db.workspace.create({ data: { repositoryId: 2n, branch: 'feature/taken', slug: 'feature-taken-shop', headSha: SHA } });
    expect(await claimWarmWorkspace(db, repo, 'feature/taken', SHA)).toBeNull();
    expect((await db.workspace.findUniqueOrThrow({ where: { id: m.id } })).poolMember).toBe(true);
  });

  it('another repository\'s pool is never claimed', async () => {
    await db.workspace.deleteMany({});
    await member();
    await db.repository.create({ data: { id: 3n, installationId: 1n, owner: 'acme', name: 'other', fullName: 'acme/other' } });
    expect(await claimWarmWorkspace(db, { id: 3n, fullName: 'acme/other' }, 'feature/x', SHA)).toBeNull();
  });
});
