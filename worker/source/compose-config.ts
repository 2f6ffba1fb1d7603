import { posix } from 'node:path';
import { composeToRepoConfig } from '../../lib/compose/translate.js';
import type { ComposeFileText } from '../../lib/compose/load.js';
import type { RepoConfig } from '../../lib/repo-config.js';
import { RepoConfigError } from '../../lib/errors.js';
import { readFileInside } from './inside-clone.js';

/** compose's own order of names; the first found is the project's file */
export const COMPOSE_FILES = ['compose.yaml', 'compose.yml', 'docker-compose.yaml', 'docker-compose.yml'];

/** `compose.yaml` -> `compose.override.yaml`, `compose.override.yml` */
function overrideNames(file: string): string[] {
  const base = file.replace(/\.ya?ml$/, '');
  return [`${base}.override.yaml`, `${base}.override.yml`];
}

/**
 * The workspace definition a checkout's compose file gives, or undefined when it has none.
 * `files` (repository paths, e.g. a devcontainer.json's `dockerComposeFile`): exactly those,
 * merged in order, and a missing one is an error; otherwise the root compose file and its
 * override file. Every file (`.env` and `env_file:` too) is read inside the clone: a committed
 * symbolic link never leads a read out of it.
 */
export async function readComposeConfig(dir: string, files?: string[]): Promise<RepoConfig | undefined> {
  const read = (rel: string) => readFileInside(dir, rel, 'the file');
  const texts: ComposeFileText[] = [];
  if (files?.length) {
    for (const file of files) {
      const text = await read(file);
      if (text === undefined) {
        throw new RepoConfigError(file, undefined, `the compose file ${file} does not exist in the repository`);
      }
      texts.push({ file, text });
    }
  } else {
    for (const file of COMPOSE_FILES) {
      const text = await read(file);
      if (text === undefined) continue;
      texts.push({ file, text });
      for (const override of overrideNames(file)) {
        const more = await read(override);
        if (more !== undefined) {
          texts.push({ file: override, text: more });
          break;
        }
      }
      break;
    }
    if (texts.length === 0) return undefined;
  }
  const envPath = posix.join(posix.dirname(texts[0]!.file), '.env');
  const envText = await read(envPath);
  return composeToRepoConfig({
    files: texts,
    dotEnv: envText === undefined ? undefined : { file: envPath, text: envText },
    readFile: read,
    // a devcontainer.json's compose files: its forwardPorts say what to preview
    previewOptional: Boolean(files?.length),
  });
}
