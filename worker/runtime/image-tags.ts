/**
 * The tags of the images Berth builds, `berth/<slug>/<service>:<first 12 of the commit>`: they
 * say whose image it is (`docker images` reads well) and image retention reads them back.
 */
export function imageTag(slug: string, service: string, sha: string): string {
  return `berth/${slug}/${service}:${sha.slice(0, 12)}`;
}

const TAG = /^berth\/([a-z0-9-]+)\/[^:/]+:([0-9a-f]{12})$/;

/** slug and short commit of a tag imageTag made; undefined for any other tag */
export function parseImageTag(tag: string): { slug: string; shortSha: string } | undefined {
  const m = TAG.exec(tag);
  return m ? { slug: m[1]!, shortSha: m[2]! } : undefined;
}
