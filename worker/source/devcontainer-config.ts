import fs from 'node:fs/promises';
import path from 'node:path';
import { DEVCONTAINER_PATHS, devcontainerConfig, parseDevcontainer } from '../../lib/devcontainer/translate.js';
import type { RepoConfig } from '../../lib/repo-config.js';
import { readFileInside, realPathInside } from './inside-clone.js';

/** reads exactly the given compose files of a checkout (readComposeConfig's `files` form) */
export type ComposeReader = (dir: string, files: string[]) => Promise<RepoConfig | undefined>;

/**
 * The workspace definition from the checkout's devcontainer.json (`.devcontainer/devcontainer.json`,
 * else `.devcontainer.json`), or undefined when it has none. A compose-based one reads its compose
 * files with `readCompose`.
 */
export async function readDevcontainerConfig(
  dir: string,
  opts: { readCompose?: ComposeReader; repoName?: string } = {},
): Promise<RepoConfig | undefined> {
  for (const file of DEVCONTAINER_PATHS) {
    const text = await readFileInside(dir, file, 'the file');
    if (text === undefined) continue;
    const parsed = parseDevcontainer(text, file);
    const compose = parsed.composeFiles && opts.readCompose ? await opts.readCompose(dir, parsed.composeFiles) : undefined;
    const vsixFiles = await vsixNextTo(dir, path.posix.dirname(file));
    return devcontainerConfig(parsed, { compose, vsixFiles, repoName: opts.repoName });
  }
  return undefined;
}

/** .vsix files (regular files, not links) in the devcontainer.json's folder, as repository paths */
async function vsixNextTo(dir: string, folder: string): Promise<string[]> {
  const root = await fs.realpath(dir);
  const real = await realPathInside(root, folder, 'the folder');
  if (!real) return [];
  const entries = await fs.readdir(real, { withFileTypes: true });
  return entries
    .filter((e) => e.isFile() && e.name.toLowerCase().endsWith('.vsix'))
    .map((e) => path.posix.join(folder, e.name))
    .sort();
}
