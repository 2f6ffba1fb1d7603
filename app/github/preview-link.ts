import type { RepoConfig } from '../../lib/repo-config.js';

export interface PreviewLink {
  /** false: the workspace has no preview (a devcontainer.json without forwardPorts); no link is shown */
  show: boolean;
  /** the link's text: "Preview", or "Preview: <label>" from devcontainer.json's portsAttributes */
  text: string;
}

/**
 * Whether a build's workspace has a preview to link to, and the link's text. Builds from
 * before RepoConfig was stored, or without one, show the plain link as before.
 */
export function previewLinkOf(config: unknown): PreviewLink {
  const c = config as Partial<RepoConfig> | null | undefined;
  if (!c?.services || !c.preview) return { show: true, text: 'Preview' };
  const service = c.services.find((s) => s.name === c.preview!.service);
  if (!service?.port) return { show: false, text: 'Preview' };
  const label = cleanLabel(c.preview.label);
  return { show: true, text: label ? `Preview: ${label}` : 'Preview' };
}

/** a label from the repository goes into markdown link text: no brackets, links, markup or line breaks */
function cleanLabel(label: string | undefined): string {
  return (label ?? '').replace(/[^\p{L}\p{N} .,+#'-]/gu, ' ').replace(/\s+/g, ' ').trim().slice(0, 60);
}
