import { describe, expect, it } from 'vitest';
import { CryptoBox } from '../../lib/crypto-box.js';
import { sameRepository } from '../../app/ide/git-credentials.js';

describe('CryptoBox (AES-256-GCM, a key per purpose)', () => {
  const secret = Buffer.from('x'.repeat(40));
  const box = new CryptoBox(secret, 'github-user-tokens');

  it('opens what it sealed, and the sealed text does not show the value', () => {
    const sealed = box.seal('ghu_secret-token', 'bob');
    expect(sealed).not.toContain('ghu_');
    expect(box.open(sealed, 'bob')).toBe('ghu_secret-token');
    expect(box.seal('same', 'bob')).not.toBe(box.seal('same', 'bob')); // a fresh IV each time
  });

  it('does not open for another login, another purpose, another secret, or after a change', () => {
    const sealed = box.seal('ghu_secret-token', 'bob');
    expect(box.open(sealed, 'mallory')).toBeNull();
    expect(new CryptoBox(secret, 'other-purpose').open(sealed, 'bob')).toBeNull();
    expect(new CryptoBox(Buffer.from('y'.repeat(40)), 'github-user-tokens').open(sealed, 'bob')).toBeNull();
    const [v, iv, body, tag] = sealed.split('.');
    const flipped = Buffer.from(body!, 'base64url');
    flipped[0] ^= 1;
    expect(box.open([v, iv, flipped.toString('base64url'), tag].join('.'), 'bob')).toBeNull();
    expect(box.open('garbage', 'bob')).toBeNull();
  });
});

describe('git credentials answer only for the workspace’s repository', () => {
  const clone = 'http://172.16.0.1:4567/acme/shop.git';
  it('matches protocol, host with port, and path with or without .git', () => {
    expect(sameRepository(clone, { protocol: 'http', host: '172.16.0.1:4567', path: 'acme/shop.git' })).toBe(true);
    expect(sameRepository(clone, { protocol: 'http', host: '172.16.0.1:4567', path: 'Acme/Shop' })).toBe(true);
  });
  it('refuses another repository, host, port or protocol, and a request without a path', () => {
    expect(sameRepository(clone, { protocol: 'http', host: '172.16.0.1:4567', path: 'acme/other.git' })).toBe(false);
    expect(sameRepository(clone, { protocol: 'http', host: 'evil.example:4567', path: 'acme/shop.git' })).toBe(false);
    expect(sameRepository(clone, { protocol: 'http', host: '172.16.0.1:80', path: 'acme/shop.git' })).toBe(false);
    expect(sameRepository(clone, { protocol: 'https', host: '172.16.0.1:4567', path: 'acme/shop.git' })).toBe(false);
    expect(sameRepository(clone, { protocol: 'http', host: '172.16.0.1:4567' })).toBe(false);
  });
});
