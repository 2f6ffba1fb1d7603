import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyMigrations } from '../../lib/db/migrate.js';
import { createPrisma } from '../../lib/db/client.js';
import { createTestDatabase } from '../helpers/database.js';

/** every committed migration, oldest first (their names sort by time) */
const MIGRATIONS = readdirSync('prisma/migrations', { withFileTypes: true })
  .filter((e) => e.isDirectory())
  .map((e) => e.name)
  .sort();
const checksum = (name: string) => createHash('sha256').update(readFileSync(`prisma/migrations/${name}/migration.sql`, 'utf8')).digest('hex');

describe('applyMigrations on a real PostgreSQL', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await database.drop();
  });

  it('applies every migration once, records it as Prisma does, and the client can use the schema', async () => {
    const first = await applyMigrations(database.url);
    expect(first).toEqual(MIGRATIONS);
    expect(first[0]).toBe('20261122000000_init');
    expect(await applyMigrations(database.url)).toEqual([]);

    const c = new pg.Client({ connectionString: database.url });
    await c.connect();
    const { rows } = await c.query('SELECT migration_name, checksum, finished_at FROM "_prisma_migrations" ORDER BY migration_name');
    await c.end();
    expect(rows).toEqual(MIGRATIONS.map((name) => expect.objectContaining({ migration_name: name, checksum: checksum(name), finished_at: expect.any(Date) })));

    const db = createPrisma(database.url);
    await db.installation.create({ data: { id: 1n, accountLogin: 'acme', accountType: 'Organization' } });
    const repo = await db.repository.create({ data: { id: 2n, installationId: 1n, owner: 'acme', name: 'shop', fullName: 'acme/shop' } });
    const ws = await db.workspace.create({ data: { repositoryId: repo.id, branch: 'main', slug: 'main-shop', headSha: 'a'.repeat(40) } });
    expect(ws.state).toBe('queued');
    await db.$disconnect();
  });

  it('runs safely when two processes start at once', async () => {
    const other = await createTestDatabase();
    try {
      const [a, b] = await Promise.all([applyMigrations(other.url), applyMigrations(other.url)]);
      expect([...a, ...b].sort()).toEqual(MIGRATIONS);
    } finally {
      await other.drop();
    }
  });
});
