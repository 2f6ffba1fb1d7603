import type { BerthConfig } from '../../lib/config.js';

/** The URLs Berth shows users for a workspace. Preview hosts share BERTH_URL's scheme and port. */
export function workspaceLinks(config: BerthConfig, ws: { id: string; slug: string }) {
  const base = new URL(config.berthUrl);
  const port = base.port ? `:${base.port}` : '';
  return {
    preview: `${base.protocol}//${ws.slug}.${config.BERTH_PREVIEW_DOMAIN}${port}/`,
    ide: `${config.berthUrl}/workspaces/${ws.id}/ide`,
    details: `${config.berthUrl}/workspaces/${ws.id}`,
  };
}
