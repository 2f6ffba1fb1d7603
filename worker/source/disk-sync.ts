import { fetchRef, type CloneRequest } from './clone.js';
import { gitIn } from './git.js';

export type SyncResult =
  | { result: 'up-to-date' | 'updated' }
  | { result: 'local-changes' | 'diverged' | 'not-a-repository'; detail: string };

/**
 * Moves the checkout on a workspace disk to a new commit, but only as a fast-forward of a
 * clean working tree: people edit code on that disk, and Berth must never throw their work
 * away (seed 000 leaves updating to a manual `git pull`; we do it when it is safe).
 */
export async function fastForwardCheckout(dir: string, req: CloneRequest): Promise<SyncResult> {
  const git = gitIn(dir, req.token, req.signal);
  let head: string;
  try {
    head = (await git(['rev-parse', 'HEAD'], 'update')).trim();
  } catch {
    return { result: 'not-a-repository', detail: '/workspace holds no git checkout' };
  }
  if (head === req.sha) return { result: 'up-to-date' };
  const status = (await git(['status', '--porcelain', '--untracked-files=no'], 'update')).trim();
  if (status) {
    const files = status.split('\n').slice(0, 5).map((l) => l.slice(3));
    return { result: 'local-changes', detail: `local changes in ${files.join(', ')}` };
  }
  await fetchRef(git, req);
  try {
    await git(['merge', '-q', '--ff-only', req.sha], 'update');
  } catch {
    return { result: 'diverged', detail: `the checkout has commits that are not on ${req.branch}` };
  }
  return { result: 'updated' };
}
