import { CONFIG_PATH, configFromDockerfile, parseRepoConfig, type RepoConfig } from '../../lib/repo-config.js';
import { RepoConfigError } from '../../lib/errors.js';
import { readFileInside } from './inside-clone.js';
import { readDevcontainerConfig } from './devcontainer-config.js';
import { readComposeConfig } from './compose-config.js';

/** a file of the clone, never one a committed symbolic link leads to outside it (that throws) */
function readOptional(dir: string, rel: string): Promise<string | undefined> {
  return readFileInside(dir, rel, 'the file');
}

/**
 * The workspace definition of a checkout (always the pushed commit's), the first found of:
 * `.github/berth.yml`; `.devcontainer/devcontainer.json` or `.devcontainer.json`; `compose.yaml`
 * (or docker-compose.yml, with its override file); a root
 * Dockerfile. `loadExtended` resolves `_extends` (Probot's config loader reads the base file
 * from GitHub); `repoName` is devcontainer.json's `${localWorkspaceFolderBasename}`.
 */
export async function readRepoConfig(
  dir: string,
  loadExtended?: (raw: string) => Promise<string>,
  opts: { repoName?: string } = {},
): Promise<RepoConfig> {
  const raw = await readOptional(dir, CONFIG_PATH);
  if (raw !== undefined) {
    const text = loadExtended && /^_extends\s*:/m.test(raw) ? await loadExtended(raw) : raw;
    return parseRepoConfig(text);
  }
  const devcontainer = await readDevcontainerConfig(dir, { repoName: opts.repoName, readCompose: readComposeConfig });
  if (devcontainer) return devcontainer;
  const compose = await readComposeConfig(dir);
  if (compose) return compose;
  const dockerfile = await readOptional(dir, 'Dockerfile');
  if (dockerfile !== undefined) return configFromDockerfile(dockerfile);
  throw new RepoConfigError('Dockerfile', undefined, `no ${CONFIG_PATH} and no Dockerfile at the repository root, nor a .devcontainer/devcontainer.json: add one of them to build a workspace`);
}
