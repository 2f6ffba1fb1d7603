import { readdir, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The build's checkout, handed to the start that follows it, so that a workspace's first disk
 * is not cloned a second time (a third of a second on the push-to-preview path, more for big
 * repositories). At most one per workspace, named after its commit: a start of another commit,
 * or on another worker host, finds none and clones as before.
 */
const PREFIX = 'berth-checkout-';
const dirOf = (workspaceId: string, sha: string) => join(tmpdir(), `${PREFIX}${workspaceId}-${sha}`);

/** Moves `dir` (a checkout of `sha`) aside for the workspace's next start; replaces an older one. */
export async function keepCheckout(workspaceId: string, sha: string, dir: string): Promise<void> {
  await dropCheckout(workspaceId);
  await rename(dir, dirOf(workspaceId, sha));
}

/** The kept checkout of `sha`, which the caller now owns (and removes with `cleanup`). */
export async function takeCheckout(workspaceId: string, sha: string): Promise<{ dir: string; cleanup: () => Promise<void> } | null> {
  const dir = dirOf(workspaceId, sha);
  const exists = await stat(dir).then((s) => s.isDirectory(), () => false);
  return exists ? { dir, cleanup: () => rm(dir, { recursive: true, force: true }) } : null;
}

/** Removes whatever checkout is kept for the workspace (a newer build, a deletion). */
export async function dropCheckout(workspaceId: string): Promise<void> {
  const names = await readdir(tmpdir()).catch(() => [] as string[]);
  const mine = names.filter((n) => n.startsWith(`${PREFIX}${workspaceId}-`));
  await Promise.all(mine.map((n) => rm(join(tmpdir(), n), { recursive: true, force: true })));
}
