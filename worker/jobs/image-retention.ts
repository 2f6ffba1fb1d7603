import type { WorkerDeps } from '../deps.js';

/**
 * Removes the images Berth built that no workspace can use any more: those of deleted
 * workspaces and of builds older than a workspace's newest successful one. Every push tags a
 * new image, so without this the Docker host's disk fills up push by push.
 *
 * Kept: the images of each live workspace's current build (it may be building or starting)
 * and of its newest successful build (what a start runs), images younger than `graceMs` (a
 * build that has just tagged its image and is about to record it), and images a container
 * still uses (Docker refuses). Layers shared with kept images stay, so the build cache does.
 * Returns the tags (or ids of untagged images) it removed.
 */
export async function removeUnusedImages(deps: WorkerDeps, graceMs: number): Promise<string[]> {
  const images = await deps.runtime.listBuiltImages();
  const cutoff = Date.now() - graceMs;
  const candidates = images.filter((i) => i.createdAt.getTime() < cutoff);
  if (!candidates.length) return [];
  const keep = await buildsInUse(deps, [...new Set(candidates.map((i) => i.workspaceId).filter((id): id is string => Boolean(id)))]);
  const removed: string[] = [];
  for (const image of candidates) {
    if (!image.buildId || !image.workspaceId || keep.has(image.buildId)) continue;
    // a rebuild of the same commit takes over the tag: the image it replaced has none left
    for (const ref of image.tags.length ? image.tags : [image.id]) {
      if (await deps.runtime.removeImage(ref)) removed.push(ref);
    }
  }
  return removed;
}

/** ids of the builds whose images the given workspaces may still run */
async function buildsInUse(deps: WorkerDeps, workspaceIds: string[]): Promise<Set<string>> {
  const live = await deps.db.workspace.findMany({
    where: { id: { in: workspaceIds }, state: { not: 'deleted' } },
    select: { id: true, currentBuildId: true },
  });
  const keep = new Set<string>();
  for (const ws of live) {
    if (ws.currentBuildId) keep.add(ws.currentBuildId);
    const newest = await deps.db.build.findFirst({
      where: { workspaceId: ws.id, state: 'succeeded' },
      orderBy: { createdAt: 'desc' },
      select: { id: true },
    });
    if (newest) keep.add(newest.id);
  }
  return keep;
}
