import type { Runtime, WorkspaceRunSpec } from '../runtime/types.js';

const SHA = /^[0-9a-f]{40}$/;

/**
 * Whether the workspace disk's checkout is already at `sha`: the commit was made (and pushed)
 * from the workspace itself, so the build it caused must not restart its services or touch
 * its checkout. Asked of the disk in Berth's sealed git container (Runtime.runDiskGit), never
 * on the host; any doubt (no checkout, git failing, a time-out) answers false, which means an
 * ordinary restart.
 */
export async function diskCheckoutAt(runtime: Runtime, spec: WorkspaceRunSpec, sha: string): Promise<boolean> {
  if (!SHA.test(sha)) return false;
  try {
    const result = await runtime.runDiskGit(spec, { script: 'git rev-parse --verify -q "HEAD^{commit}"', timeoutMs: 30_000 });
    return !result.timedOut && result.exitCode === 0 && result.output.trim().split('\n').pop()?.trim() === sha;
  } catch {
    return false;
  }
}
