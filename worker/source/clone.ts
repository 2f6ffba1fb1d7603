import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { StepFailedError } from '../../lib/errors.js';
import { redact } from '../../lib/redact.js';

const exec = promisify(execFile);

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

/**
 * Clones `branch` and checks out `sha` into a new temporary directory. The token travels
 * in an HTTP header passed through git's environment (GIT_CONFIG_*): it is never part of a
 * URL, a command line or .git/config, so nothing on disk or in `ps` holds it. git runs
 * without a shell, with every value from the payload as a separate argument.
 */
export async function cloneAt(req: CloneRequest): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const url = new URL(req.cloneUrl);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new StepFailedError('clone', `refusing to clone from ${url.protocol} URLs`);
  url.username = '';
  url.password = '';
  const dir = await mkdtemp(join(tmpdir(), 'berth-src-'));
  const cleanup = () => rm(dir, { recursive: true, force: true });
  const env = {
    ...process.env,
    GIT_TERMINAL_PROMPT: '0',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_COUNT: '1',
    GIT_CONFIG_KEY_0: 'http.extraHeader',
    GIT_CONFIG_VALUE_0: `Authorization: Basic ${Buffer.from(`x-access-token:${req.token}`).toString('base64')}`,
  };
  const git = async (args: string[]) => {
    try {
      await exec('git', args, { cwd: dir, env, signal: req.signal, maxBuffer: 16 * 1024 * 1024 });
    } catch (err) {
      const e = err as { stderr?: string; message: string; name?: string };
      if (e.name === 'AbortError') throw err;
      const detail = redact(e.stderr || e.message, [req.token]).trim().split('\n').slice(-5).join('\n');
      throw new StepFailedError('clone', `git ${args[0]} failed: ${detail}`);
    }
  };
  try {
    await git(['init', '-q']);
    await git(['remote', 'add', 'origin', '--', url.toString()]);
    const ref = req.ref ?? `refs/heads/${req.branch}`;
    await git(['fetch', '-q', '--no-tags', 'origin', `+${ref}:refs/remotes/origin/${req.branch}`]);
    await git(['checkout', '-q', '-B', req.branch, req.sha, '--']);
    await git(['branch', '-q', `--set-upstream-to=origin/${req.branch}`]);
    return { dir, cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
