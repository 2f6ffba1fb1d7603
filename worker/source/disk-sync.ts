import type { Runtime, WorkspaceRunSpec } from '../runtime/types.js';

export type SyncResult =
  | { result: 'up-to-date' | 'updated' }
  | { result: 'local-changes' | 'diverged' | 'not-a-repository' | 'failed'; detail: string };

/** exit codes of SYNC_SCRIPT */
const EXIT = { upToDate: 0, updated: 20, notARepository: 10, localChanges: 11, diverged: 12 } as const;

/**
 * Runs on the workspace disk (Runtime.runDiskGit: a sealed container, never the host). `$1` is
 * the commit; Berth's clone holding it is at /src. Only a fast-forward of a clean tree: people
 * edit code on that disk, and Berth must never throw their work away.
 *
 * The commit is pushed from /src rather than fetched into /workspace: a fetch reads the URL
 * through the workspace's config, whose `url.<x>.insteadOf` can point "/src" anywhere; a push
 * is addressed by Berth's config in /src, and receive-pack's hooks are off (core.hooksPath).
 */
const SYNC_SCRIPT = `
sha="$1"
# git clears its -c settings for the other end of a local transport: receive-pack, which runs
# in /workspace, gets them on its command line
RECEIVE_PACK='git -c core.hooksPath=/dev/null -c core.fsmonitor=false -c core.alternateRefsCommand=true -c safe.directory=/workspace receive-pack'
head=$(git rev-parse --verify -q 'HEAD^{commit}') || { echo '/workspace holds no git checkout'; exit ${EXIT.notARepository}; }
[ "$head" = "$sha" ] && exit ${EXIT.upToDate}
changes=$(git status --porcelain --untracked-files=no) || exit 1
if [ -n "$changes" ]; then printf '%s\\n' "$changes"; exit ${EXIT.localChanges}; fi
git -C /src push -q --receive-pack="$RECEIVE_PACK" /workspace "+$sha:refs/berth/incoming" || exit 1
if ! git merge-base --is-ancestor HEAD "$sha"; then git update-ref -d refs/berth/incoming; exit ${EXIT.diverged}; fi
git merge -q --ff-only "$sha" 2>&1 || { git update-ref -d refs/berth/incoming; exit 1; }
git update-ref -d refs/berth/incoming
exit ${EXIT.updated}
`;

/** the files `git status --porcelain` names, for the PR comment */
function changedFiles(output: string): string {
  const files = output.split('\n').filter((l) => /^.. ./.test(l)).map((l) => l.slice(3));
  return files.slice(0, 5).join(', ') + (files.length > 5 ? ` and ${files.length - 5} more` : '');
}

/**
 * Moves the checkout on a workspace disk to `sha`, fetched from `sourceGitDir` (the `.git` of a
 * clone Berth made on the host), only as a fast-forward of a clean working tree.
 */
export async function fastForwardCheckout(
  runtime: Runtime,
  spec: WorkspaceRunSpec,
  req: { sourceGitDir: string; sha: string; branch: string; timeoutMs?: number },
): Promise<SyncResult> {
  let run: Awaited<ReturnType<Runtime['runDiskGit']>>;
  try {
    run = await runtime.runDiskGit(spec, { script: SYNC_SCRIPT, args: [req.sha], sourceGitDir: req.sourceGitDir, timeoutMs: req.timeoutMs });
  } catch (err) {
    // e.g. an engine on another host, which cannot mount Berth's clone: the services still
    // start on the new images, and the comment says to pull by hand (an engine that is down
    // fails the next step, and the start waits for it there)
    return { result: 'failed', detail: `the Docker engine could not run git against it: ${(err as Error).message}` };
  }
  const last = run.output.trim().split('\n').slice(-3).join(' ').slice(0, 300);
  if (run.timedOut) return { result: 'failed', detail: 'git on the workspace disk did not finish in time' };
  switch (run.exitCode) {
    case EXIT.upToDate:
      return { result: 'up-to-date' };
    case EXIT.updated:
      return { result: 'updated' };
    case EXIT.notARepository:
      return { result: 'not-a-repository', detail: '/workspace holds no git checkout' };
    case EXIT.localChanges:
      return { result: 'local-changes', detail: `local changes in ${changedFiles(run.output)}` };
    case EXIT.diverged:
      return { result: 'diverged', detail: `the checkout has commits that are not on ${req.branch}` };
    default:
      return { result: 'failed', detail: `git exited with code ${run.exitCode}${last ? `: ${last}` : ''}` };
  }
}
