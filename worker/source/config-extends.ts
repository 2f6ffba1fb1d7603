import { LineCounter, parseDocument } from 'yaml';
import { CONFIG_PATH } from '../../lib/repo-config.js';
import { RepoConfigError } from '../../lib/errors.js';

/**
 * `_extends` in a branch's berth.yml makes Berth read another repository's file with the
 * installation's token, which reaches every repository of the installation: a branch (or an
 * approved fork) could pull another team's private files into its configuration and read them
 * back from the errors. So a berth.yml may extend only what GitHub documents for shared
 * configuration: the same owner's `.github` repository, at the same path. Refused otherwise, at
 * its line, before anything is fetched.
 */
export function assertExtendsAllowed(raw: string, owner: string): void {
  const counter = new LineCounter();
  const doc = parseDocument(raw, { lineCounter: counter });
  const node = doc.get('_extends', true) as { value?: unknown; range?: [number, number, number] } | undefined;
  if (node === undefined) return;
  const line = node.range ? counter.linePos(node.range[0]).line : undefined;
  const value = node.value;
  const m = typeof value === 'string' ? /^(?:([^/:]+)\/)?([^/:]+)(?::(.+))?$/.exec(value.trim()) : null;
  const sameOwner = m && (m[1] === undefined || m[1].toLowerCase() === owner.toLowerCase());
  if (m && sameOwner && m[2] === '.github' && (m[3] === undefined || m[3] === CONFIG_PATH)) return;
  throw new RepoConfigError(
    CONFIG_PATH,
    line,
    `_extends: ${JSON.stringify(value)} is not allowed: a berth.yml may extend only the shared configuration of its owner, ` +
      `\`_extends: .github\` (the file ${CONFIG_PATH} of ${owner}/.github)`,
  );
}
