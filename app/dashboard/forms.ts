import type { IncomingMessage, ServerResponse } from 'node:http';

/** Dashboard forms are a few small fields; anything bigger is not one of ours. */
const MAX_FORM_BYTES = 16 * 1024;

export class FormTooLargeError extends Error {}

/** Reads an `application/x-www-form-urlencoded` body (what HTML forms post without JavaScript). */
export async function readForm(req: IncomingMessage): Promise<Record<string, string>> {
  const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  let size = 0;
  const parts: Buffer[] = [];
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_FORM_BYTES) throw new FormTooLargeError('form too large');
    parts.push(chunk as Buffer);
  }
  if (type !== 'application/x-www-form-urlencoded') return {};
  const form: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(Buffer.concat(parts).toString('utf8'))) form[k] = v;
  return form;
}

const FLASH_COOKIE = 'berth_flash';

/**
 * A one-time message for the page after a form post (Post/Redirect/Get). A cookie rather than
 * a query parameter, so nobody can craft a link that makes Berth say something it did not.
 */
export function setFlash(res: ServerResponse, message: string) {
  const value = encodeURIComponent(message.slice(0, 300));
  appendCookie(res, `${FLASH_COOKIE}=${value}; Path=/; Max-Age=60; HttpOnly; SameSite=Lax`);
}

/** The pending flash message, cleared as it is read. */
export function takeFlash(req: IncomingMessage, res: ServerResponse): string | null {
  const raw = cookie(req, FLASH_COOKIE);
  if (!raw) return null;
  appendCookie(res, `${FLASH_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax`);
  try {
    return decodeURIComponent(raw);
  } catch {
    return null;
  }
}

function cookie(req: IncomingMessage, name: string): string | undefined {
  for (const part of String(req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

/** Adds a Set-Cookie header without dropping one set earlier (e.g. by sign-in). */
function appendCookie(res: ServerResponse, value: string) {
  const existing = res.getHeader('set-cookie');
  const list = Array.isArray(existing) ? existing : existing ? [String(existing)] : [];
  res.setHeader('set-cookie', [...list, value]);
}
