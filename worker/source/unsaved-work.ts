import type { Runtime, WorkspaceRunSpec } from '../runtime/types.js';

/**
 * Work on a workspace disk that exists nowhere else: files changed or added and not covered
 * by `.gitignore`, commits on local branches that no remote-tracking branch (and no commit
 * Berth built) contains, and stashes. A branch deletion or a closed pull request must not
 * destroy it (issue "Safe to install", 6).
 */
export interface UnsavedWork {
  /** paths from `git status`, at most a few */
  files: string[];
  fileCount: number;
  unpushedCommits: number;
  /** the newest few of them: abbreviated sha and subject */
  commits?: string[];
  stashes: number;
}

const SHA = /^[0-9a-f]{40}$/;

/**
 * Runs in the disk's own git container (Runtime.runDiskGit: no network, no token, no host
 * git). Known commits arrive as arguments: a stale remote-tracking ref must not make work
 * Berth itself built look unpushed. Sections are marked so the output parses unambiguously.
 */
const SCRIPT = `
if [ ! -d .git ]; then echo '@@norepo'; exit 0; fi
echo '@@status'
git status --porcelain --untracked-files=normal || exit 3
known=''
for sha in "$@"; do
  if git cat-file -e "$sha^{commit}" 2>/dev/null; then known="$known $sha"; fi
done
echo '@@unpushed'
git rev-list --count --branches --not --remotes $known || exit 4
echo '@@stashes'
git rev-list --walk-reflogs --count refs/stash 2>/dev/null || echo 0
echo '@@end'
echo '@@commits'
git log -n 5 --format='%h %s' --branches --not --remotes $known 2>/dev/null
echo '@@commits-end'
`;

export type UnsavedWorkCheck = { kind: 'none' } | { kind: 'found'; work: UnsavedWork } | { kind: 'unknown'; reason: string };

/** Looks at the disk's checkout; `unknown` when it could not tell (then nothing may be destroyed). */
export async function findUnsavedWork(runtime: Runtime, spec: WorkspaceRunSpec, knownShas: Array<string | null | undefined>): Promise<UnsavedWorkCheck> {
  const args = [...new Set(knownShas.filter((s): s is string => typeof s === 'string' && SHA.test(s)))];
  let result;
  try {
    // no disk or no checkout on it (never started, an image-only workspace): nothing to keep
    if (!(await runtime.diskEntryExists(spec, '.git'))) return { kind: 'none' };
    result = await runtime.runDiskGit(spec, { script: SCRIPT, args, timeoutMs: 60_000 });
  } catch (err) {
    return { kind: 'unknown', reason: (err as Error).message };
  }
  if (result.timedOut) return { kind: 'unknown', reason: 'looking at the disk took longer than a minute' };
  if (result.exitCode !== 0) return { kind: 'unknown', reason: `git exited with code ${result.exitCode}: ${lastLine(result.output)}` };
  const parsed = parseUnsavedWorkOutput(result.output);
  if (!parsed) return { kind: 'unknown', reason: `unexpected output: ${lastLine(result.output)}` };
  if (parsed === 'no-repository') return { kind: 'none' };
  return parsed.fileCount || parsed.unpushedCommits || parsed.stashes ? { kind: 'found', work: parsed } : { kind: 'none' };
}

/** Pure: the script's output → what it found; null when the output is not what the script writes. */
export function parseUnsavedWorkOutput(output: string): UnsavedWork | 'no-repository' | null {
  const lines = output.replace(/\r/g, '').split('\n');
  if (lines.some((l) => l === '@@norepo')) return 'no-repository';
  const at = (marker: string) => lines.indexOf(marker);
  const [s, u, st, end] = [at('@@status'), at('@@unpushed'), at('@@stashes'), at('@@end')];
  if (s < 0 || u < s || st < u || end < st) return null;
  const status = lines.slice(s + 1, u).filter((l) => l.length > 3);
  const unpushed = Number(lines.slice(u + 1, st).find((l) => l.trim())?.trim());
  const stashes = Number(lines.slice(st + 1, end).find((l) => l.trim())?.trim());
  if (!Number.isInteger(unpushed) || !Number.isInteger(stashes)) return null;
  // "XY path" or "XY old -> new"; quoted when the name has odd characters (git's own escaping)
  const files = status.map((l) => l.slice(3).split(' -> ').pop()!);
  const c = at('@@commits');
  const commits = c > end ? lines.slice(c + 1, Math.max(c + 1, at('@@commits-end'))).filter((l) => l.trim()).map((l) => l.slice(0, 100)) : [];
  return { files: files.slice(0, 5), fileCount: files.length, unpushedCommits: unpushed, ...(commits.length ? { commits } : {}), stashes };
}

/** "3 changed or new files (a.txt, b/c.ts, …), 2 unpushed commits" */
export function describeUnsavedWork(work: UnsavedWork): string {
  const parts: string[] = [];
  if (work.fileCount) {
    const more = work.fileCount > work.files.length ? ', …' : '';
    parts.push(`${work.fileCount} changed or new ${work.fileCount === 1 ? 'file' : 'files'} (${work.files.join(', ')}${more})`);
  }
  if (work.unpushedCommits) {
    const names = work.commits?.length ? ` (${work.commits.join(', ')}${work.unpushedCommits > work.commits.length ? ', …' : ''})` : '';
    parts.push(`${work.unpushedCommits} unpushed ${work.unpushedCommits === 1 ? 'commit' : 'commits'}${names}`);
  }
  if (work.stashes) parts.push(`${work.stashes} ${work.stashes === 1 ? 'stash' : 'stashes'}`);
  return parts.join(', ');
}

function lastLine(text: string): string {
  return text.trim().split('\n').pop()?.slice(0, 300) ?? '';
}
