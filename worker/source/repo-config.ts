import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CONFIG_PATH, configFromDockerfile, parseRepoConfig, type RepoConfig } from '../../lib/repo-config.js';
import { RepoConfigError } from '../../lib/errors.js';

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * The workspace definition of a checkout: `.github/berth.yml`, else a root Dockerfile.
 * `loadExtended` resolves `_extends` (Probot's config loader reads the base file from GitHub).
 */
export async function readRepoConfig(
  dir: string,
  loadExtended?: (raw: string) => Promise<string>,
): Promise<RepoConfig> {
  const raw = await readOptional(join(dir, CONFIG_PATH));
  if (raw !== undefined) {
    const text = loadExtended && /^_extends\s*:/m.test(raw) ? await loadExtended(raw) : raw;
    return parseRepoConfig(text);
  }
  const dockerfile = await readOptional(join(dir, 'Dockerfile'));
  if (dockerfile !== undefined) return configFromDockerfile(dockerfile);
  throw new RepoConfigError('Dockerfile', undefined, `no ${CONFIG_PATH} and no Dockerfile at the repository root: add one of them to build a workspace`);
}
