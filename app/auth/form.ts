import type { IncomingMessage } from 'node:http';

const MAX_BYTES = 8 * 1024;

/** A small urlencoded form body (sign-out posts one field); anything else reads as empty. */
export async function readSmallForm(req: IncomingMessage): Promise<Record<string, string>> {
  const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BYTES) return {};
    chunks.push(chunk as Buffer);
  }
  if (type !== 'application/x-www-form-urlencoded') return {};
  return Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
}

/**
 * A path on this site to return to after sign-in: `/…` only, never `//host` or `/\host`
 * (browsers read both as another site), so the sign-in cannot become an open redirect.
 */
export function safePath(next: string | null | undefined, fallback = '/'): string {
  if (!next || next.length > 2000) return fallback;
  if (!next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) return fallback;
  if (/[\u0000-\u001f\u007f]/.test(next)) return fallback;
  return next;
}
