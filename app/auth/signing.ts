import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Tamper-proof small values for cookies: `base64url(json).base64url(hmac)`. The payload is
 * readable by whoever holds the cookie, so it must never carry secrets (session ids are
 * random and only mean something together with Redis).
 */
export class Signer {
  constructor(private readonly key: Buffer) {}

  sign(payload: object): string {
    const body = Buffer.from(JSON.stringify(payload)).toString('base64url');
    return `${body}.${this.mac(body)}`;
  }

  /** the payload, or null when the value was not made by `sign` with this key */
  verify<T>(value: string | undefined): T | null {
    if (!value) return null;
    const dot = value.lastIndexOf('.');
    if (dot <= 0) return null;
    const body = value.slice(0, dot);
    if (!safeEqual(value.slice(dot + 1), this.mac(body))) return null;
    try {
      return JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as T;
    } catch {
      return null;
    }
  }

  /** a keyed digest of `text`, for values derived from a session (CSRF tokens) */
  mac(text: string): string {
    return createHmac('sha256', this.key).update(text).digest('base64url');
  }
}

/** constant-time string comparison (a plain === leaks how many leading bytes matched) */
export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
