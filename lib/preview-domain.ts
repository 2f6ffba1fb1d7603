import type { BerthConfig } from './config.js';
import { shortHash } from './slug.js';

/**
 * Hosts under BERTH_PREVIEW_DOMAIN (issue 16: a public URL per service with a port). Each is ONE
 * DNS label under the domain, so the one wildcard record and certificate (`*.<domain>`) that
 * serve previews serve these too:
 *
 *   <slug>                     the workspace's preview (its previewed service)
 *   <service>--<slug>          another service of it, when that fits in 63 characters
 *   <service>--<head>--<id>    the same when it does not: `head` is the slug's start (for people
 *                              to read), the workspace's id finds it
 *
 * `--` separates the parts (Netlify's `deploy-preview-42--site` form). Neither slugs
 * (lib/slug.ts) nor service labels (serviceLabels below) contain `--`, so a host is a
 * workspace's preview exactly when its label has none, and never collides with a slug.
 * `<slug>.ide.<domain>` (app/ide/hosts.ts) has two labels and is not parsed here.
 */

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const MAX_LABEL = 63;
/** a service's part of its host: short, so `<service>--<slug>` mostly fits */
const MAX_SERVICE_LABEL = 20;
const SEP = '--';

/** What the start records per service with a port (Workspace.serviceEndpoints). */
export interface ServiceEndpointRecord {
  /** the service's name in berth.yml / compose / devcontainer.json */
  service: string;
  /** its part of the host name (serviceLabels) */
  label: string;
  port: number;
  /** the container's address on the workspace network; only valid while the workspace serves (previewHost set) */
  host: string;
}

export type PreviewHost =
  /** the workspace's preview */
  | { key: string; slug: string; service?: undefined; workspaceId?: undefined }
  /** a service's host, found by slug (short form) or by workspace id (long form) */
  | { key: string; slug?: string; workspaceId?: string; service: string };

function hostLabel(host: string | undefined, previewDomain: string): string | undefined {
  if (!host) return undefined;
  const name = host.replace(/:\d+$/, '').toLowerCase();
  const suffix = `.${previewDomain.toLowerCase()}`;
  if (!name.endsWith(suffix)) return undefined;
  const label = name.slice(0, -suffix.length);
  return LABEL.test(label) ? label : undefined;
}

/**
 * `<label>.<previewDomain>[:port]` → what it names, or undefined when the host is not one of
 * these (another domain, more labels, an empty part). `key` is the label itself: the
 * gateway's cache key and what the workspace's own labels are compared with.
 */
export function parsePreviewHost(host: string | undefined, previewDomain: string): PreviewHost | undefined {
  const key = hostLabel(host, previewDomain);
  return key ? parsePreviewLabel(key) : undefined;
}

/** The same for the host's label alone (the gateway's cache key). */
export function parsePreviewLabel(key: string): PreviewHost | undefined {
  if (!LABEL.test(key)) return undefined;
  const parts = key.split(SEP);
  // a part starting or ending with `-` means `---` somewhere: never a host Berth made
  if (parts.some((p) => !p || p.startsWith('-') || p.endsWith('-'))) return undefined;
  if (parts.length === 1) return { key, slug: key };
  if (parts.length === 2) return { key, service: parts[0]!, slug: parts[1]! };
  if (parts.length === 3) return { key, service: parts[0]!, workspaceId: parts[2]! };
  return undefined;
}

/** `<slug>.<previewDomain>[:port]` → slug, or undefined when the host is not a workspace's preview. */
export function slugFromHost(host: string | undefined, previewDomain: string): string | undefined {
  const parsed = parsePreviewHost(host, previewDomain);
  return parsed && !parsed.service ? parsed.slug : undefined;
}

function sanitize(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
}

/**
 * Each service's part of its host, unique within the workspace: the name lower-cased with
 * other characters as `-` (so never `--`), at most 20 characters; a name that lost anything
 * on the way gets a hash of itself, so `my_api` and `my.api` stay apart. `xn` is avoided:
 * `xn--…` is how IDNA spells a punycode label, and browsers would decode it.
 */
export function serviceLabels(names: string[]): Map<string, string> {
  const labels = new Map<string, string>();
  const taken = new Set<string>();
  for (const name of names) {
    const clean = sanitize(name);
    let label = clean;
    for (let salt = 0; ; salt++) {
      const lossy = clean !== name.toLowerCase() || clean.length > MAX_SERVICE_LABEL || clean === 'xn' || !clean;
      if (salt > 0 || lossy) {
        const hash = shortHash(`${name}\0${salt}`, 4);
        const head = clean.slice(0, MAX_SERVICE_LABEL - hash.length - 1).replace(/-+$/, '');
        label = head ? `${head}-${hash}` : `s-${hash}`;
      }
      if (!taken.has(label)) break;
    }
    taken.add(label);
    labels.set(name, label);
  }
  return labels;
}

/** The host label of a service of a workspace (see the top of this file). */
export function serviceHostLabel(label: string, ws: { id: string; slug: string }): string {
  const short = `${label}${SEP}${ws.slug}`;
  if (short.length <= MAX_LABEL) return short;
  const id = ws.id.toLowerCase();
  const room = MAX_LABEL - label.length - id.length - 2 * SEP.length;
  const head = ws.slug.slice(0, Math.max(room, 0)).replace(/-+$/, '') || 'w';
  return `${label}${SEP}${head}${SEP}${id}`;
}

/** `http(s)://<label>.<domain>[:port]`: BERTH_URL's scheme and port, like every workspace host. */
export function previewOrigin(config: Pick<BerthConfig, 'berthUrl' | 'BERTH_PREVIEW_DOMAIN'>, hostLabel: string): string {
  const base = new URL(config.berthUrl);
  return `${base.protocol}//${hostLabel}.${config.BERTH_PREVIEW_DOMAIN}${base.port ? `:${base.port}` : ''}`;
}

/** The public URL of a service of a workspace: its own host, or the preview's for the previewed service. */
export function serviceUrl(
  config: Pick<BerthConfig, 'berthUrl' | 'BERTH_PREVIEW_DOMAIN'>,
  ws: { id: string; slug: string },
  label: string,
): string {
  return `${previewOrigin(config, serviceHostLabel(label, ws))}/`;
}

/** `BERTH_URL_<SERVICE>`: the name upper-cased, anything but letters and digits as `_`. */
export function serviceUrlVariable(service: string): string {
  return `BERTH_URL_${service.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

/** The recorded endpoints of a workspace row (a JSON column: anything else reads as none). */
export function serviceEndpointsOf(value: unknown): ServiceEndpointRecord[] {
  if (!Array.isArray(value)) return [];
  return value.filter(
    (e): e is ServiceEndpointRecord => Boolean(e) && typeof e.service === 'string' && typeof e.label === 'string' && typeof e.port === 'number' && typeof e.host === 'string',
  );
}

/**
 * The records the start keeps (Workspace.serviceEndpoints): every service with a port, with its
 * label and its container's address. A service whose container has no address is left out.
 */
export function serviceEndpointRecords(
  services: { name: string; port?: number | undefined }[],
  addresses: { service: string; host: string }[],
): ServiceEndpointRecord[] {
  const withPort = services.filter((s) => s.port);
  const labels = serviceLabels(withPort.map((s) => s.name));
  return withPort.flatMap((s) => {
    const host = addresses.find((a) => a.service === s.name)?.host;
    return host ? [{ service: s.name, label: labels.get(s.name)!, port: s.port!, host }] : [];
  });
}
