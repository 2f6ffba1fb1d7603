import { createHash, randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { fromRoot } from '../paths.js';

/**
 * Applies pending `prisma/migrations/<name>/migration.sql` files, recording them in Prisma's
 * own `_prisma_migrations` table with Prisma's checksum (sha256 of the file), so that
 * `prisma migrate deploy` and this function agree on what is applied. Prisma's migrate
 * commands need a native engine that cannot be downloaded on every machine; Berth must
 * start without it.
 */
export async function applyMigrations(
  connectionString: string,
  migrationsDir = fromRoot('prisma/migrations'),
): Promise<string[]> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    // Several processes may start at once; one migrates, the others wait for it.
    await client.query('SELECT pg_advisory_lock(72921001)');
    await client.query(`CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
      "id" VARCHAR(36) PRIMARY KEY NOT NULL,
      "checksum" VARCHAR(64) NOT NULL,
      "finished_at" TIMESTAMPTZ,
      "migration_name" VARCHAR(255) NOT NULL,
      "logs" TEXT,
      "rolled_back_at" TIMESTAMPTZ,
      "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
      "applied_steps_count" INTEGER NOT NULL DEFAULT 0)`);
    const done = await client.query<{ migration_name: string; checksum: string; finished_at: Date | null }>(
      'SELECT migration_name, checksum, finished_at FROM "_prisma_migrations" WHERE rolled_back_at IS NULL',
    );
    const applied = new Map(done.rows.map((r) => [r.migration_name, r]));
    const names = (await readdir(migrationsDir, { withFileTypes: true }))
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .sort();
    const ran: string[] = [];
    for (const name of names) {
      const sql = await readFile(join(migrationsDir, name, 'migration.sql'), 'utf8');
      const checksum = createHash('sha256').update(sql).digest('hex');
      const row = applied.get(name);
      if (row) {
        if (!row.finished_at) {
          throw new Error(`migration ${name} started earlier but did not finish; fix the database by hand, then mark it with "prisma migrate resolve"`);
        }
        continue;
      }
      const id = randomUUID();
      await client.query('BEGIN');
      try {
        await client.query(
          'INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at) VALUES ($1, $2, $3, now())',
          [id, checksum, name],
        );
        await client.query(sql);
        await client.query(
          'UPDATE "_prisma_migrations" SET finished_at = now(), applied_steps_count = 1 WHERE id = $1',
          [id],
        );
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK');
        throw new Error(`migration ${name} failed: ${(err as Error).message}`);
      }
      ran.push(name);
    }
    return ran;
  } finally {
    await client.query('SELECT pg_advisory_unlock(72921001)').catch(() => {});
    await client.end();
  }
}
