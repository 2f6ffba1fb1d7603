import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';

/**
 * What a signed value is for. Each purpose signs with a key of its own (derived from the one
 * secret), so a value made for one purpose never verifies for another: a workspace host's
 * cookie presented to the dashboard is not a session, an IDE cookie does not open a private
 * preview, a CSRF token is not an OAuth state.
 */
export type Purpose = 'session' | 'ide-host' | 'preview-host' | 'csrf' | 'oauth-state';

export type Signers = Record<Purpose, Signer>;

/** One signer per purpose, from Berth's one secret (HKDF, the purpose as the context). */
export function purposeSigners(secret: Buffer): Signers {
  const signer = (purpose: Purpose) => new Signer(Buffer.from(hkdfSync('sha256', secret, 'berth cookies', purpose, 32)));
  return {
    session: signer('session'),
    'ide-host': signer('ide-host'),
    'preview-host': signer('preview-host'),
    csrf: signer('csrf'),
    'oauth-state': signer('oauth-state'),
  };
}

/**
 * Tamper-proof small values for cookies: `base64url(json).base64url(hmac)`. The payload is
 * readable by whoever holds the cookie, so it must never carry secrets (session ids are
 * random and only mean something together with Redis).
 */
export class Signer {
  /** `key`: a purpose's own key (purposeSigners), never the secret itself */
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
