/**
 * A copy of a workspace's data volumes (services' `data:`, compose named volumes) taken before
 * the migrate of a new commit, so that `/berth reset --before-migrate` can undo a migration that
 * went wrong (issue 17). One per workspace, replaced by the next; its volumes carry the
 * workspace's labels (slug `<slug>.pre-migrate`), so deleting the workspace deletes them too.
 *
 * It is taken while the previous version may still serve (a rollout keeps it running until the
 * switch): a file-level copy of a live database is what a crash would have left, which
 * PostgreSQL and SQLite recover from; what the app wrote during the copy may be missing.
 */
import type { WorkspaceRunSpec } from './runtime/types.js';

export const snapshotSlug = (slug: string) => `${slug}.pre-migrate`;

/** the snapshot's volumes as a disk of their own (same workspace id, so same owner labels) */
export function snapshotSpec(spec: WorkspaceRunSpec): WorkspaceRunSpec {
  return { ...spec, slug: snapshotSlug(spec.slug) };
}

/** whether the workspace keeps data outside its checkout (what reset and the snapshot copy) */
export function hasDataVolumes(spec: WorkspaceRunSpec): boolean {
  return spec.services.some((s) => s.data || (s.volumes?.length ?? 0) > 0);
}

/**
 * A snapshot is taken when a migrate is about to run a new commit on a disk that already ran an
 * older one: not on a new disk (nothing to undo), not on a restart of the same commit (its
 * migrations ran already), not without data volumes or a migrate.
 */
export function snapshotBeforeMigrate(input: { newDisk: boolean; runningSha: string | null; sha: string; hasMigrate: boolean; hasData: boolean; canCopy: boolean }): boolean {
  return input.canCopy && input.hasData && input.hasMigrate && !input.newDisk && input.runningSha !== null && input.runningSha !== input.sha;
}
