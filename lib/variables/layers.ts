/**
 * Which value of a name a workspace gets. Pure: the caller brings the rows of the layers.
 *
 * Layers, from wide to narrow: global (Berth's administrators), global for some branches,
 * the repository, the repository for some branches. The narrowest entry of a name wins; among
 * branch entries of one layer, the most specific pattern (most characters that are not
 * wildcards) wins, so `feature/login` beats `feature/*` beats `*`.
 */

/** a variable or file name: what an environment variable may be called */
export const NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
/** the derived values every service gets (see derivedValues): not for people to set */
export const RESERVED_PREFIX = 'BERTH_';

export interface LayerEntry {
  /** null: the global layer */
  repositoryId: bigint | null;
  name: string;
  /** branch patterns; empty = every branch */
  branches: string[];
  secret: boolean;
}

export type Layer = 'global' | 'repository';

/** How a page names where a value comes from: `repository`, `global`, `repository, branches feature/*`. */
export function layerLabel(entry: Pick<LayerEntry, 'repositoryId' | 'branches'>): string {
  const layer = entry.repositoryId === null ? 'global' : 'repository';
  return entry.branches.length ? `${layer}, branches ${entry.branches.join(', ')}` : layer;
}

/**
 * A branch pattern as GitHub's branch filters write them: `*` matches anything but `/`, `**`
 * anything, every other character itself.
 */
export function branchMatches(pattern: string, branch: string): boolean {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*' && pattern[i + 1] === '*') {
      re += '.*';
      i++;
    } else if (c === '*') re += '[^/]*';
    else re += c.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`${re}$`).test(branch);
}

/** A pattern is a branch name's characters plus `*`; no spaces, no commas (they separate patterns). */
export function validBranchPattern(pattern: string): boolean {
  return pattern.length > 0 && pattern.length <= 255 && /^[^\s,~^:?[\\\u0000-\u001f\u007f]+$/.test(pattern) && !pattern.startsWith('/') && !pattern.includes('..');
}

/** Patterns as stored (one text column, part of the unique key): sorted, unique, comma-joined. */
export function branchesKey(branches: string[]): string {
  return [...new Set(branches.map((b) => b.trim()).filter(Boolean))].sort().join(',');
}

export function branchesOf(key: string): string[] {
  return key ? key.split(',') : [];
}

/** How narrow an entry is for a branch it applies to; higher wins. */
function rank(entry: LayerEntry, branch: string): number {
  const layer = entry.repositoryId === null ? 0 : 2;
  if (!entry.branches.length) return layer * 1000;
  const specific = Math.max(...entry.branches.filter((p) => branchMatches(p, branch)).map((p) => p.replace(/\*/g, '').length));
  return (layer + 1) * 1000 + Math.min(specific, 999);
}

function applies(entry: LayerEntry, branch: string): boolean {
  return !entry.branches.length || entry.branches.some((p) => branchMatches(p, branch));
}

/** For each name, the entry a workspace of `branch` gets. */
export function resolveLayers<T extends LayerEntry>(entries: T[], branch: string): Map<string, T> {
  const best = new Map<string, { entry: T; rank: number }>();
  for (const entry of entries) {
    if (!applies(entry, branch)) continue;
    const r = rank(entry, branch);
    const seen = best.get(entry.name);
    if (!seen || r > seen.rank) best.set(entry.name, { entry, rank: r });
  }
  return new Map([...best].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([name, { entry }]) => [name, entry]));
}

/** `${{ secrets.NAME }}` in a berth.yml env value (and what the compose reader makes of `${NAME}`) */
export const SECRET_REFERENCE = /\$\{\{\s*secrets\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;

/** The names an env value refers to. */
export function referencedNames(value: string): string[] {
  return [...value.matchAll(SECRET_REFERENCE)].map((m) => m[1]!);
}

/** The value with each reference replaced by the named variable's value ('' for a name without one). */
export function substituteReferences(value: string, values: ReadonlyMap<string, string>): string {
  return value.replace(SECRET_REFERENCE, (_m, name: string) => values.get(name) ?? '');
}

/**
 * A file's path inside /workspace: relative, no `..`, no `.git` (git on the disk is Berth's own
 * business), at most 255 characters. Null when fine, else why not.
 */
export function badFilePath(path: string): string | null {
  if (!path || path.length > 255) return 'a file path is 1 to 255 characters';
  if (path.startsWith('/')) return 'a file path is relative to the workspace (/workspace), not absolute';
  if (/[\u0000-\u001f\u007f\\]/.test(path)) return 'a file path may not hold control characters or backslashes';
  const parts = path.split('/');
  if (parts.some((p) => p === '..')) return 'a file path may not leave the workspace (..)';
  if (parts.some((p) => p === '' || p === '.')) return 'a file path has no empty or "." parts';
  if (parts[0] === '.git') return 'a file may not be written into .git';
  return null;
}
