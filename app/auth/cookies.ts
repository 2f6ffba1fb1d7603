import type { IncomingHttpHeaders, ServerResponse } from 'node:http';

/**
 * Berth's cookies. Every name starts with `berth_` (or `__Host-berth_` over HTTPS, which
 * browsers only accept host-only, Secure and on Path=/, so a workspace on a sibling host
 * cannot plant one). The prefix is what the gateway strips from requests it forwards to a
 * workspace, so new cookies must keep it.
 */
const BERTH_COOKIE = /^(__Host-)?berth_/;

export const COOKIE = {
  session: 'berth_session',
  oauthState: 'berth_oauth',
  /** on a workspace host: access to that workspace's IDE or private preview */
  workspace: 'berth_ws',
} as const;

export function isBerthCookie(name: string): boolean {
  return BERTH_COOKIE.test(name.trim());
}

/** The name to use: `__Host-` prefixed when the site is served over HTTPS. */
export function cookieName(base: string, secure: boolean): string {
  return secure ? `__Host-${base}` : base;
}

/** Every value of cookie `name` in the request (a browser may send several with one name). */
export function readCookies(req: { headers: IncomingHttpHeaders }, name: string): string[] {
  const header = req.headers.cookie;
  if (!header) return [];
  const out: string[] = [];
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    const raw = part.slice(eq + 1).trim();
    try {
      out.push(decodeURIComponent(raw));
    } catch {
      // not ours: Berth only writes URI-safe values
    }
  }
  return out;
}

export interface CookieOptions {
  maxAgeS?: number;
  path?: string;
  secure: boolean;
  sameSite?: 'Lax' | 'Strict';
}

/**
 * A Set-Cookie value: always HttpOnly (no script on any host may read Berth's cookies) and
 * never with a Domain, so the cookie stays on the exact host that set it.
 */
export function serializeCookie(name: string, value: string, opts: CookieOptions): string {
  const parts = [`${name}=${encodeURIComponent(value)}`, `Path=${opts.path ?? '/'}`, 'HttpOnly', `SameSite=${opts.sameSite ?? 'Lax'}`];
  if (opts.maxAgeS !== undefined) parts.push(`Max-Age=${Math.max(0, Math.floor(opts.maxAgeS))}`);
  if (opts.secure) parts.push('Secure');
  return parts.join('; ');
}

export function appendSetCookie(res: ServerResponse, cookie: string) {
  const prev = res.getHeader('set-cookie');
  const list = prev === undefined ? [] : Array.isArray(prev) ? prev.map(String) : [String(prev)];
  res.setHeader('set-cookie', [...list, cookie]);
}

/**
 * The Cookie header without Berth's cookies, or undefined when nothing is left. Used on every
 * request forwarded to a workspace: its code must never see a Berth session.
 */
export function stripBerthCookies(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const kept = header
    .split(';')
    .map((p) => p.trim())
    .filter((p) => p && !isBerthCookie(cookieNameOf(p)));
  return kept.length ? kept.join('; ') : undefined;
}

/** A workspace response's raw headers ([name, value, …]) minus Set-Cookies of Berth's names. */
export function withoutBerthSetCookies(raw: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() === 'set-cookie' && isBerthCookie(cookieNameOf(raw[i + 1]!))) continue;
    out.push(raw[i]!, raw[i + 1]!);
  }
  return out;
}

/** `name` of `name=value; attributes` (a pair without `=` is all name, as browsers read it) */
function cookieNameOf(pair: string): string {
  const eq = pair.indexOf('=');
  return eq < 0 ? pair : pair.slice(0, eq);
}

/** Request headers for a workspace: Berth's cookies removed (other cookies are the app's own). */
export function forwardableHeaders(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const out = { ...headers };
  const cookie = stripBerthCookies(headers.cookie);
  if (cookie === undefined) delete out.cookie;
  else out.cookie = cookie;
  return out;
}

/** Raw header pairs ([name, value, name, value, …]) for a forwarded upgrade, minus Berth's cookies. */
export function forwardableRawHeaders(raw: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    let value = raw[i + 1]!;
    if (name.toLowerCase() === 'cookie') {
      const kept = stripBerthCookies(value);
      if (kept === undefined) continue;
      value = kept;
    }
    out.push(name, value);
  }
  return out;
}
