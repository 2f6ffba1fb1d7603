import type { PrismaClient } from '../../lib/db/client.js';

/** Reports of a fork's head kept per workspace: enough to answer any approval comment in flight. */
const KEEP = 50;

/**
 * Records that GitHub reported `sha` as the head of a fork's pull request at `reportedAt` (the
 * payload's pull_request.updated_at: GitHub's clock, the same one that stamps comments, and
 * never earlier than the push it reports). A redelivered webhook records nothing new. Without
 * a time Berth records nothing, and an approval that needs it asks for the commit instead.
 */
export async function recordForkHead(db: PrismaClient, workspaceId: string, sha: string, reportedAt: string | undefined): Promise<void> {
  const seenAt = reportedAt ? new Date(reportedAt) : null;
  if (!seenAt || Number.isNaN(seenAt.getTime())) return;
  await db.forkHead.createMany({ data: [{ workspaceId, sha, seenAt }], skipDuplicates: true });
  const old = await db.forkHead.findMany({ where: { workspaceId }, orderBy: { seenAt: 'desc' }, skip: KEEP, select: { id: true } });
  if (old.length) await db.forkHead.deleteMany({ where: { id: { in: old.map((h) => h.id) } } });
}
