/**
 * Whether previews share a site with Berth. Browsers treat every host under one registrable
 * domain as the same site: a preview there can set cookies that reach Berth and send same-site
 * requests with a Berth session. Without the Public Suffix List this reads the domain as the
 * host minus its first label (`berth.example.com` → `example.com`), or the whole host when it has
 * only two labels; `localhost` and IP addresses (development) never count.
 */
export function previewsShareBerthSite(berthHost: string, previewDomain: string): boolean {
  const berth = berthHost.toLowerCase().replace(/\.$/, '');
  const previews = previewDomain.toLowerCase().replace(/\.$/, '');
  if (berth === 'localhost' || berth.endsWith('.localhost') || /^[\d.]+$/.test(berth) || berth.includes(':')) return false;
  const labels = berth.split('.');
  const site = labels.length > 2 ? labels.slice(1).join('.') : berth;
  return previews === site || previews.endsWith(`.${site}`) || site.endsWith(`.${previews}`);
}
