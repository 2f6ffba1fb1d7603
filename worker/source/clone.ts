import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StepFailedError } from '../../lib/errors.js';
import { gitIn } from './git.js';

export interface CloneRequest {
  cloneUrl: string;
  token: string;
  /** local branch to check out (the upstream's name) */
  branch: string;
  /** remote ref to fetch; defaults to refs/heads/<branch>. Fork pull requests use refs/pull/<n>/head */
  ref?: string;
  sha: string;
  signal?: AbortSignal;
}

/** The clone URL without credentials; it is what .git/config keeps. */
export function plainUrl(cloneUrl: string): string {
  const url = new URL(cloneUrl);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new StepFailedError('clone', `refusing to clone from ${url.protocol} URLs`);
  url.username = '';
  url.password = '';
  return url.toString();
}

/** Clones `branch` and checks out `sha` into a new temporary directory. */
export async function cloneAt(req: CloneRequest): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const url = plainUrl(req.cloneUrl);
  const dir = await mkdtemp(join(tmpdir(), 'berth-src-'));
  const cleanup = () => rm(dir, { recursive: true, force: true });
  const git = gitIn(dir, req.token, req.signal);
  try {
    await git(['init', '-q']);
    await git(['remote', 'add', 'origin', '--', url]);
    await fetchRef(git, req);
    await git(['checkout', '-q', '-B', req.branch, req.sha, '--']);
    await git(['branch', '-q', `--set-upstream-to=origin/${req.branch}`]);
    return { dir, cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

export function fetchRef(git: ReturnType<typeof gitIn>, req: Pick<CloneRequest, 'branch' | 'ref'>) {
  const ref = req.ref ?? `refs/heads/${req.branch}`;
  return git(['fetch', '-q', '--no-tags', 'origin', `+${ref}:refs/remotes/origin/${req.branch}`]);
}
