/**
 * Which workspace a pull request belongs to. A pull request whose head is the base repository
 * itself uses the branch's workspace (the same one a push to that branch builds); any other
 * head is a fork and gets its own workspace `pr/<number>`, built only after approval.
 *
 * "Any other" includes a head repository GitHub no longer shows (`head.repo: null`: the fork
 * was deleted or made inaccessible). Mapping that to the base repository's branch of the same
 * name would let a stranger open a pull request from a fork branch called `main`, delete the
 * fork and close the pull request: Berth would delete the base repository's `main` workspace.
 * The head is compared by repository id, not name, so a rename cannot confuse it either.
 */
export const UNKNOWN_FORK = '(deleted fork)';

export interface PullRequestHeadRef {
  number: number;
  head: { ref: string; repo: { id: number | string; full_name: string } | null };
}

export interface PullRequestKey {
  branch: string;
  /** full name of the fork, UNKNOWN_FORK when GitHub no longer shows it, null for same-repository pull requests */
  forkRepo: string | null;
  forkBranch: string | null;
}

export function prWorkspaceKey(pr: PullRequestHeadRef, baseRepoId: bigint | number): PullRequestKey {
  const head = pr.head.repo;
  const sameRepository = head !== null && head.id !== undefined && head.id !== null && BigInt(head.id) === BigInt(baseRepoId);
  if (sameRepository) return { branch: pr.head.ref, forkRepo: null, forkBranch: null };
  return { branch: `pr/${pr.number}`, forkRepo: head?.full_name ?? UNKNOWN_FORK, forkBranch: pr.head.ref };
}

/** How replies and comments name a fork: its full name, or what is known of a deleted one. */
export function forkName(forkRepo: string): string {
  return forkRepo === UNKNOWN_FORK ? 'a fork GitHub no longer shows (deleted or made private)' : `the fork \`${forkRepo}\``;
}
