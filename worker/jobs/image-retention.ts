import type { WorkerDeps } from '../deps.js';
import { parseImageTag } from '../runtime/image-tags.js';

/**
 * Removes the images Berth built that no workspace can use any more: those of deleted
 * workspaces, of commits older than a workspace's newest successful build, and those a rebuild
 * of the same commit replaced (left without a tag). Every push tags a new image, so without
 * this the Docker host's disk fills up push by push.
 *
 * Kept: the images of workspaces the database does not know, the images of each live
 * workspace's current build (it may be building or starting) and of its newest successful
 * build (what a start runs), images younger than `graceMs` (a
 * build that has just tagged its image and is about to record it), and images a container
 * still uses (Docker refuses). Removing a tag only untags an image other tags still name (two
 * branches with the same content share one image), and layers shared with kept images stay,
 * so the build cache does. Returns the tags (or ids of untagged images) it removed.
 */
export async function removeUnusedImages(deps: WorkerDeps, graceMs: number): Promise<string[]> {
  const cutoff = Date.now() - graceMs;
  const candidates = (await deps.runtime.listBuiltImages()).filter((i) => i.createdAt.getTime() < cutoff);
  if (!candidates.length) return [];
  const slugs = new Set(candidates.flatMap((i) => i.tags.map((t) => parseImageTag(t)?.slug).filter((s): s is string => Boolean(s))));
  const inUse = await commitsInUse(deps, [...slugs]);
  // Images of a workspace this database has no row for (not even a deleted one) are kept, as
  // its disks are (see removeOrphans): on a wrong or fresh database they are what the right
  // one's workspaces start from.
  const known = new Set((await deps.db.workspace.findMany({ where: { slug: { in: [...slugs] } }, select: { slug: true } })).map((w) => w.slug));
  const removed: string[] = [];
  for (const image of candidates) {
    const refs = image.tags.length
      ? image.tags.filter((t) => {
          const tag = parseImageTag(t);
          return tag && known.has(tag.slug) && !inUse.has(`${tag.slug}:${tag.shortSha}`);
        })
      : [image.id];
    for (const ref of refs) {
      if (await deps.runtime.removeImage(ref)) removed.push(ref);
    }
  }
  return removed;
}

/** `<slug>:<sha12>` of the commits whose images the live workspaces with these slugs may still run */
async function commitsInUse(deps: WorkerDeps, slugs: string[]): Promise<Set<string>> {
  const live = await deps.db.workspace.findMany({
    where: { slug: { in: slugs }, state: { not: 'deleted' } },
    select: { id: true, slug: true, currentBuildId: true },
  });
  const keep = new Set<string>();
  for (const ws of live) {
    const [current, newest] = await Promise.all([
      ws.currentBuildId ? deps.db.build.findUnique({ where: { id: ws.currentBuildId }, select: { sha: true } }) : null,
      deps.db.build.findFirst({ where: { workspaceId: ws.id, state: 'succeeded' }, orderBy: { createdAt: 'desc' }, select: { sha: true } }),
    ]);
    for (const b of [current, newest]) if (b) keep.add(`${ws.slug}:${b.sha.slice(0, 12)}`);
  }
  return keep;
}
