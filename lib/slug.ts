import { createHash } from 'node:crypto';

const MAX_LABEL = 63;

function sanitize(text: string): string {
  return text
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '') // strip accents left by NFKD
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
}

export function shortHash(text: string, length = 6): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length);
}

/**
 * A DNS label (RFC 1123: ≤ 63 chars, a-z 0-9 and inner hyphens) naming a workspace,
 * built from branch and repository name. Whenever the readable part loses information
 * (characters replaced, or truncated) a hash of the exact repository and branch is
 * appended, so two branches that sanitise alike still get different slugs.
 * `salt` > 0 forces a hash, for the rare collision the database reports.
 * A slug never contains `--` (sanitize makes every run of other characters one `-`, and the
 * parts are joined by one): `--` marks a service's own host, `<service>--<slug>`
 * (lib/preview-domain.ts), so the two can never be mistaken for each other.
 */
export function workspaceSlug(repoFullName: string, branch: string, salt = 0): string {
  const repoName = repoFullName.split('/').pop() ?? repoFullName;
  const readable = [sanitize(branch), sanitize(repoName)].filter(Boolean).join('-') || 'workspace';
  const lossless = `${branch}-${repoName}`.toLowerCase() === readable && readable.length <= MAX_LABEL;
  if (lossless && salt === 0) return readable;
  const hash = shortHash(`${repoFullName}\0${branch}\0${salt}`, 8);
  const room = MAX_LABEL - hash.length - 1;
  const head = readable.slice(0, room).replace(/-+$/, '');
  // A label must start with a letter or digit; `head` does, since sanitize trims hyphens.
  return head ? `${head}-${hash}` : `w-${hash}`;
}

export function isValidDnsLabel(label: string): boolean {
  return /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(label);
}
