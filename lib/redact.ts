/**
 * Removes secrets from text shown to users or logged: known values (installation tokens,
 * env values marked secret) and common token shapes GitHub issues.
 */
const PATTERNS = [
  /gh[pousr]_[A-Za-z0-9]{20,}/g,
  /github_pat_[A-Za-z0-9_]{20,}/g,
  /(x-access-token:)[^@\s]+@/g,
  /(Authorization:\s*(?:Basic|Bearer|token)\s+)\S+/gi,
  /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g,
];

export function redact(text: string, secrets: string[] = []): string {
  let out = text;
  for (const s of secrets) if (s && s.length >= 6) out = out.split(s).join('[redacted]');
  for (const p of PATTERNS) out = out.replace(p, (_m, prefix?: string) => (typeof prefix === 'string' ? `${prefix}[redacted]${_m.endsWith('@') ? '@' : ''}` : '[redacted]'));
  return out;
}

/**
 * A failure reason as pages anyone may see show it (a public preview's "failed" page): its
 * first line only, redacted. The log lines a reason may carry stay on the signed-in workspace
 * page, since a private repository's logs are not for the public even with a public preview.
 */
export function publicSummary(text: string | null | undefined, maxChars = 1500): string {
  const first = (text ?? '').split('\n', 1)[0]!.trim();
  return redact(first).slice(0, maxChars);
}
