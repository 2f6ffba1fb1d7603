import type { Context } from 'probot';
import type { PrismaClient } from '../../lib/db/client.js';
import { isUniqueViolation } from '../../lib/workspaces.js';

/**
 * Records a delivery id; false when it was seen before. GitHub redelivers on timeouts and
 * users can redeliver by hand: a delivery must act once.
 */
export async function firstDelivery(db: PrismaClient, context: Context): Promise<boolean> {
  try {
    const action = (context.payload as { action?: string }).action;
    await db.webhookDelivery.create({ data: { id: context.id, event: context.name, action } });
    return true;
  } catch (err) {
    if (isUniqueViolation(err)) {
      context.log.info({ delivery: context.id }, 'duplicate delivery ignored');
      return false;
    }
    throw err;
  }
}

/** Undoes firstDelivery when the delivery could not be handled; best effort (the database may be what failed). */
export async function forgetDelivery(db: PrismaClient, id: string): Promise<void> {
  await db.webhookDelivery.deleteMany({ where: { id } }).catch(() => {});
}

interface RepoPayload {
  id: number;
  name: string;
  full_name: string;
  private: boolean;
  default_branch?: string;
  master_branch?: string;
  clone_url?: string;
  html_url?: string;
  owner: { login?: string; name?: string | null } | null;
}

/** Mirrors the installation and repository named in a payload; returns the repository row. */
export async function upsertRepository(
  db: PrismaClient,
  installation: { id: number; account?: { login?: string; type?: string } | null },
  repo: RepoPayload,
) {
  const owner = repo.owner?.login ?? repo.owner?.name ?? repo.full_name.split('/')[0]!;
  await db.installation.upsert({
    where: { id: BigInt(installation.id) },
    create: {
      id: BigInt(installation.id),
      accountLogin: installation.account?.login ?? owner,
      accountType: installation.account?.type ?? 'User',
    },
    update: {},
  });
  const data = {
    installationId: BigInt(installation.id),
    owner,
    name: repo.name,
    fullName: repo.full_name,
    private: repo.private,
    ...(repo.default_branch || repo.master_branch ? { defaultBranch: repo.default_branch ?? repo.master_branch } : {}),
    // installation payloads carry no URLs; keep the ones a push brought
    ...(repo.clone_url ? { cloneUrl: repo.clone_url } : {}),
    ...(repo.html_url ? { htmlUrl: repo.html_url } : {}),
    removed: false,
  };
  return db.repository.upsert({ where: { id: BigInt(repo.id) }, create: { id: BigInt(repo.id), ...data }, update: data });
}
