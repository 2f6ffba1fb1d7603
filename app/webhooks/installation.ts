import type { Context } from 'probot';
import type { AppDeps } from '../deps.js';
import { upsertRepository } from './record.js';

/** installation.*: keep the mirror of installations and their repositories in sync. */
export async function onInstallation(deps: AppDeps, context: Context<'installation'>): Promise<void> {
  const p = context.payload;
  const id = BigInt(p.installation.id);
  if (p.action === 'deleted') {
    await deps.db.repository.updateMany({ where: { installationId: id }, data: { removed: true } });
    return;
  }
  const account = p.installation.account as { login?: string; type?: string } | null;
  await deps.db.installation.upsert({
    where: { id },
    create: { id, accountLogin: account?.login ?? 'unknown', accountType: account?.type ?? 'User', suspended: p.action === 'suspend' },
    update: { suspended: p.action === 'suspend', accountLogin: account?.login ?? undefined },
  });
  for (const r of p.repositories ?? []) {
    await upsertRepository(deps.db, p.installation as never, { ...r, owner: { login: account?.login } } as never);
  }
}

export async function onInstallationRepositories(deps: AppDeps, context: Context<'installation_repositories'>): Promise<void> {
  const p = context.payload;
  const account = p.installation.account as { login?: string } | null;
  for (const r of p.repositories_added) {
    await upsertRepository(deps.db, p.installation as never, { ...r, owner: { login: account?.login } } as never);
  }
  const removed = p.repositories_removed.map((r) => BigInt(r.id!));
  if (removed.length) await deps.db.repository.updateMany({ where: { id: { in: removed } }, data: { removed: true } });
}
