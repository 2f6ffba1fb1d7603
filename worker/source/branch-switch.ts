import type { Runtime, WorkspaceRunSpec } from '../runtime/types.js';

/**
 * Runs on the workspace disk (Runtime.runDiskGit: a sealed container, never the host). `$1` is
 * the commit, `$2` the branch; Berth's clone of that branch is at /src. For a disk prepared for
 * another branch that nobody has worked on (a warm pool member, lib/warm-pool.ts): the commit is
 * pushed in as the branch's remote-tracking ref (a push is addressed by Berth's config in /src,
 * not the disk's, see disk-sync.ts), then the branch is checked out there and tracks it.
 * Changes the preparation left in tracked files (a seed that rewrites a fixture) are carried
 * over when git can, else dropped: the disk held nobody's work yet.
 */
const SWITCH_SCRIPT = `
sha="$1"; branch="$2"
RECEIVE_PACK='git -c core.hooksPath=/dev/null -c core.fsmonitor=false -c core.alternateRefsCommand=true -c safe.directory=/workspace receive-pack'
git check-ref-format --branch "$branch" >/dev/null || { echo "not a branch name: $branch"; exit 2; }
git rev-parse --verify -q 'HEAD^{commit}' >/dev/null || { echo '/workspace holds no git checkout'; exit 10; }
git -C /src push -q --receive-pack="$RECEIVE_PACK" /workspace "+$sha:refs/remotes/origin/$branch" || exit 1
git checkout -q -B "$branch" "$sha" -- 2>/dev/null || git checkout -q -f -B "$branch" "$sha" -- || exit 1
git branch -q --set-upstream-to="origin/$branch" || exit 1
exit 0
`;

export type SwitchResult = { result: 'switched' } | { result: 'failed'; detail: string };

/** Checks out `branch` at `sha` (fetched from `sourceGitDir`, the `.git` of a clone Berth made) on the disk. */
export async function switchCheckout(
  runtime: Runtime,
  spec: WorkspaceRunSpec,
  req: { sourceGitDir: string; sha: string; branch: string; timeoutMs?: number },
): Promise<SwitchResult> {
  try {
    const run = await runtime.runDiskGit(spec, { script: SWITCH_SCRIPT, args: [req.sha, req.branch], sourceGitDir: req.sourceGitDir, timeoutMs: req.timeoutMs });
    if (run.timedOut) return { result: 'failed', detail: 'git on the workspace disk did not finish in time' };
    if (run.exitCode === 0) return { result: 'switched' };
    const last = run.output.trim().split('\n').slice(-3).join(' ').slice(0, 300);
    return { result: 'failed', detail: `git exited with code ${run.exitCode}${last ? `: ${last}` : ''}` };
  } catch (err) {
    return { result: 'failed', detail: `the Docker engine could not run git against it: ${(err as Error).message}` };
  }
}
