import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

/**
 * Small values sealed at rest with AES-256-GCM: `v1.<iv>.<ciphertext>.<tag>` (base64url). The
 * key is derived (HKDF) from a secret of Berth's and a purpose, so a value sealed for one
 * purpose never opens for another. `aad` binds a value to what it belongs to (a login): a
 * sealed value copied under another name does not open.
 */
export class CryptoBox {
  private readonly key: Buffer;

  constructor(secret: Buffer, purpose: string) {
    this.key = Buffer.from(hkdfSync('sha256', secret, 'berth crypto-box', purpose, 32));
  }

  seal(plain: string, aad = ''): string {
    const { iv, body, tag } = gcmSeal(this.key, plain, aad);
    return ['v1', iv, body, tag].join('.');
  }

  /** the plain text, or null when the value was not sealed with this key, purpose and aad (or was altered) */
  open(sealed: string, aad = ''): string | null {
    const [v, iv, body, tag] = sealed.split('.');
    if (v !== 'v1' || !iv || body === undefined || !tag) return null;
    try {
      return gcmOpen(this.key, { iv, body, tag }, aad);
    } catch {
      return null;
    }
  }
}

/** AES-256-GCM parts, each base64url: what every sealed value of Berth's is made of */
export interface GcmParts {
  iv: string;
  body: string;
  tag: string;
}

/** encrypts with a fresh 12-byte IV; `aad` is authenticated, not encrypted */
export function gcmSeal(key: Buffer, plain: string, aad: string): GcmParts {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
  return { iv: iv.toString('base64url'), body: body.toString('base64url'), tag: cipher.getAuthTag().toString('base64url') };
}

/** the plain text; throws when key, aad or any part does not match (altered, or sealed for something else) */
export function gcmOpen(key: Buffer, parts: GcmParts, aad: string): string {
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(parts.iv, 'base64url'));
  decipher.setAAD(Buffer.from(aad, 'utf8'));
  decipher.setAuthTag(Buffer.from(parts.tag, 'base64url'));
  return Buffer.concat([decipher.update(Buffer.from(parts.body, 'base64url')), decipher.final()]).toString('utf8');
}
