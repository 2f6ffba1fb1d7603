import type { Context } from 'probot';
import type { AppDeps } from '../deps.js';
import { firstDelivery } from './record.js';

/**
 * A repository made private takes its previews private at once: whoever could see its code
 * yesterday should not keep seeing its running app today. Until the next build reads its
 * berth.yml again, even a preview that berth.yml declares `visibility: public` needs sign-in
 * (the safe side); the next build restores it. A repository made public changes nothing until
 * its next build, for the same reason.
 */
export async function onRepository(deps: AppDeps, context: Context<'repository'>): Promise<void> {
  const p = context.payload;
  if (p.action !== 'privatized' && p.action !== 'publicized') return;
  if (!(await firstDelivery(deps.db, context))) return;
  const id = BigInt(p.repository.id);
  const known = await deps.db.repository.findUnique({ where: { id }, select: { id: true } });
  if (!known) return;
  await deps.db.repository.update({ where: { id }, data: { private: p.action === 'privatized' } });
  if (p.action === 'privatized') await deps.db.workspace.updateMany({ where: { repositoryId: id }, data: { previewPrivate: true } });
}
