import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { StepFailedError } from '../../lib/errors.js';
import { redact } from '../../lib/redact.js';

const exec = promisify(execFile);

/**
 * Runs git in `dir` with the installation token in an HTTP header passed through git's
 * environment (GIT_CONFIG_*): never in a URL, a command line or .git/config, so nothing
 * on disk or in `ps` holds it. No shell: every value from a payload is its own argument.
 */
export function gitIn(dir: string, token: string | undefined, signal?: AbortSignal) {
  // Only for directories Berth made (a clone in its temp dir): never a workspace disk, whose
  // .git is the workspace's to write (git there runs in a container, Runtime.runDiskGit).
  // Hooks and fsmonitor stay off all the same.
  const config: Array<[string, string]> = [['safe.directory', dir], ['core.hooksPath', '/dev/null'], ['core.fsmonitor', 'false']];
  if (token) config.push(['http.extraHeader', `Authorization: Basic ${Buffer.from(`x-access-token:${token}`).toString('base64')}`]);
  const env: NodeJS.ProcessEnv = { ...hostEnv(), GIT_TERMINAL_PROMPT: '0', GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_COUNT: String(config.length) };
  config.forEach(([k, v], i) => {
    env[`GIT_CONFIG_KEY_${i}`] = k;
    env[`GIT_CONFIG_VALUE_${i}`] = v;
  });
  return async (args: string[], step = 'clone'): Promise<string> => {
    try {
      const { stdout } = await exec('git', args, { cwd: dir, env, signal, maxBuffer: 16 * 1024 * 1024 });
      return stdout;
    } catch (err) {
      const e = err as { stderr?: string; message: string; name?: string };
      if (e.name === 'AbortError') throw err;
      const detail = redact(e.stderr || e.message, token ? [token] : []).trim().split('\n').slice(-5).join('\n');
      throw new StepFailedError(step, `git ${args[0]} failed: ${detail}`);
    }
  };
}

/**
 * What git needs of the worker's environment: the PATH, a home for the operator's git config
 * (a CA bundle, a proxy for GitHub Enterprise) and proxy settings. Not Berth's secrets
 * (PRIVATE_KEY, DATABASE_URL, …): nothing git starts ever needs them.
 */
function hostEnv(): NodeJS.ProcessEnv {
  const keep = /^(PATH|HOME|LANG|LC_[A-Z]+|TZ|TMPDIR|(HTTPS?|NO|ALL)_PROXY|GIT_SSL_CAINFO|GIT_SSL_CAPATH|SSL_CERT_FILE|SSL_CERT_DIR)$/i;
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => keep.test(k)));
}
