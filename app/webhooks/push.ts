import type { Context } from 'probot';
import type { AppDeps } from '../deps.js';
import { firstDelivery, upsertRepository } from './record.js';
import { queueBuild } from '../actions.js';

/**
 * push: record the commit as the branch's newest and enqueue its build. Nothing slow
 * happens here: Probot answers GitHub only after this returns.
 */
export async function onPush(deps: AppDeps, context: Context<'push'>): Promise<void> {
  const p = context.payload;
  if (!p.ref.startsWith('refs/heads/') || p.deleted || !p.installation) return;
  if (/^0+$/.test(p.after)) return;
  if (!(await firstDelivery(deps.db, context))) return;
  const branch = p.ref.slice('refs/heads/'.length);
  const repo = await upsertRepository(deps.db, p.installation as never, p.repository as never);
  await queueBuild(deps, repo, branch, p.after, 'push', `push of ${p.after.slice(0, 7)} by ${p.sender?.login ?? 'someone'}`);
}
