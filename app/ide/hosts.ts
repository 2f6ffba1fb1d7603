import type { BerthConfig } from '../../lib/config.js';

/**
 * IDE hosts: `<slug>.ide.<BERTH_PREVIEW_DOMAIN>[:port]`. A host of its own per workspace
 * keeps the IDE's origin apart from the app's preview (`<slug>.<domain>`) and from Berth, so
 * neither the app's scripts nor its cookies can touch the IDE. The preview parser rejects
 * names with an extra label, so the two never collide; `*.localhost` needs no DNS, and in
 * production one wildcard record (`*.ide.<domain>`) next to `*.<domain>` serves them.
 */
const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export function ideSlugFromHost(host: string | undefined, previewDomain: string): string | undefined {
  if (!host) return undefined;
  const name = host.replace(/:\d+$/, '').toLowerCase();
  const suffix = `.ide.${previewDomain.toLowerCase()}`;
  if (!name.endsWith(suffix)) return undefined;
  const slug = name.slice(0, -suffix.length);
  return LABEL.test(slug) ? slug : undefined;
}

/** `http://<slug>.ide.<domain>:<port>`: same scheme and port as BERTH_URL, like previews. */
export function ideOrigin(config: Pick<BerthConfig, 'berthUrl' | 'BERTH_PREVIEW_DOMAIN'>, slug: string): string {
  const base = new URL(config.berthUrl);
  return `${base.protocol}//${slug}.ide.${config.BERTH_PREVIEW_DOMAIN}${base.port ? `:${base.port}` : ''}`;
}
