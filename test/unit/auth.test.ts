import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Signer, purposeSigners, safeEqual, type Purpose } from '../../app/auth/signing.js';
import {
  cookieName,
  forwardableHeaders,
  forwardableRawHeaders,
  readCookies,
  serializeCookie,
  stripBerthCookies,
  withoutBerthSetCookies,
} from '../../app/auth/cookies.js';
import { safePath } from '../../app/auth/form.js';
import { accessOf, sufficient } from '../../app/auth/access.js';
import { sessionSecret } from '../../app/auth/secret.js';
import { ideOrigin, ideSlugFromHost } from '../../app/ide/hosts.js';
import { slugFromHost } from '../../app/gateway/gateway.js';
import { loadConfig } from '../../lib/config.js';

describe('signed cookie values', () => {
  const signer = new Signer(Buffer.from('k'.repeat(32)));

  it('round-trips a payload and refuses any change to it', () => {
    const value = signer.sign({ sid: 'abc', exp: 123 });
    expect(signer.verify(value)).toEqual({ sid: 'abc', exp: 123 });
    const [body, mac] = value.split('.');
    const other = Buffer.from(JSON.stringify({ sid: 'abd', exp: 123 })).toString('base64url');
    expect(signer.verify(`${other}.${mac}`)).toBeNull();
    expect(signer.verify(`${body}.${mac!.slice(0, -1)}A`)).toBeNull();
    expect(signer.verify(`${body}`)).toBeNull();
    expect(signer.verify(undefined)).toBeNull();
    expect(new Signer(Buffer.from('x'.repeat(32))).verify(value)).toBeNull();
  });

  it('signs each purpose with its own key: a value made for one verifies for no other', () => {
    const signers = purposeSigners(Buffer.from('s'.repeat(40)));
    const purposes = Object.keys(signers) as Purpose[];
    expect(purposes.sort()).toEqual(['csrf', 'ide-host', 'oauth-state', 'preview-host', 'session']);
    for (const made of purposes) {
      const value = signers[made].sign({ sid: 'abc', wid: 'w', k: 'ide', exp: 9e15 });
      for (const other of purposes) expect(signers[other].verify(value) !== null).toBe(other === made);
      // nor for the secret itself, as values were signed before purposes
      expect(new Signer(Buffer.from('s'.repeat(40))).verify(value)).toBeNull();
    }
    // the same secret gives the same keys (several web processes, restarts)
    const again = purposeSigners(Buffer.from('s'.repeat(40)));
    expect(again.session.verify(signers.session.sign({ sid: 'x' }))).toEqual({ sid: 'x' });
  });

  it('compares in constant time and tells different lengths apart', () => {
    expect(safeEqual('abc', 'abc')).toBe(true);
    expect(safeEqual('abc', 'abd')).toBe(false);
    expect(safeEqual('abc', 'abcd')).toBe(false);
  });
});

describe('Berth’s cookies and workspace traffic', () => {
  it('strips every berth_ and __Host-berth_ cookie and keeps the app’s own', () => {
    expect(stripBerthCookies('berth_session=a; theme=dark; __Host-berth_session=b; berth_ws=c; berthday=1')).toBe('theme=dark; berthday=1');
    expect(stripBerthCookies('berth_session=a')).toBeUndefined();
    expect(stripBerthCookies(undefined)).toBeUndefined();
    expect(forwardableHeaders({ cookie: 'berth_ws=x', host: 'h' })).toEqual({ host: 'h' });
    expect(forwardableRawHeaders(['Host', 'h', 'Cookie', 'berth_ws=x; a=1', 'Cookie', 'berth_flash=y'])).toEqual(['Host', 'h', 'Cookie', 'a=1']);
  });

  it('drops Set-Cookie lines in which a workspace would set a Berth cookie', () => {
    const raw = ['Content-Type', 'text/html', 'Set-Cookie', 'sid=1; Path=/', 'Set-Cookie', 'berth_ws=evil; Path=/', 'Set-Cookie', '__Host-berth_session=x; Secure'];
    expect(withoutBerthSetCookies(raw)).toEqual(['Content-Type', 'text/html', 'Set-Cookie', 'sid=1; Path=/']);
  });

  it('reads every value a browser sends under one name', () => {
    expect(readCookies({ headers: { cookie: 'a=1; berth_session=x%3Dy; berth_session=z' } }, 'berth_session')).toEqual(['x=y', 'z']);
  });

  it('sets cookies HttpOnly, host-only, SameSite=Lax, and __Host- prefixed over HTTPS', () => {
    expect(serializeCookie('berth_session', 'v', { maxAgeS: 60, secure: false })).toBe('berth_session=v; Path=/; HttpOnly; SameSite=Lax; Max-Age=60');
    expect(serializeCookie(cookieName('berth_session', true), 'v', { secure: true })).toBe('__Host-berth_session=v; Path=/; HttpOnly; SameSite=Lax; Secure');
  });
});

describe('paths to return to after sign-in', () => {
  it('keeps local paths and refuses everything that leaves the site', () => {
    expect(safePath('/workspaces/abc/ide?x=1')).toBe('/workspaces/abc/ide?x=1');
    for (const bad of ['//evil.example/', '/\\evil.example', 'https://evil.example/', 'javascript:alert(1)', '/a\nb', '', null, undefined]) {
      expect(safePath(bad)).toBe('/');
    }
  });
});

describe('repository access', () => {
  it('maps GitHub roles to what Berth needs', () => {
    expect(['admin', 'maintain', 'write'].map((p) => accessOf(p as never))).toEqual(['write', 'write', 'write']);
    expect(accessOf('triage')).toBe('read');
    expect(accessOf('read')).toBe('read');
    expect(accessOf('none')).toBe('none');
    expect(sufficient('write', 'read')).toBe(true);
    expect(sufficient('read', 'write')).toBe(false);
    expect(sufficient('none', 'read')).toBe(false);
  });
});

describe('IDE hosts', () => {
  it('parses <slug>.ide.<domain> and never confuses it with a preview host', () => {
    expect(ideSlugFromHost('feat-x-shop.ide.localhost:3000', 'localhost')).toBe('feat-x-shop');
    expect(ideSlugFromHost('FEAT.IDE.preview.example.com', 'preview.example.com')).toBe('feat');
    expect(ideSlugFromHost('feat.localhost:3000', 'localhost')).toBeUndefined();
    expect(ideSlugFromHost('a.b.ide.localhost', 'localhost')).toBeUndefined();
    expect(ideSlugFromHost('ide.localhost', 'localhost')).toBeUndefined();
    expect(slugFromHost('feat-x-shop.ide.localhost:3000', 'localhost')).toBeUndefined();
  });

  it('builds the IDE origin with BERTH_URL’s scheme and port', () => {
    expect(ideOrigin({ berthUrl: 'http://localhost:3000', BERTH_PREVIEW_DOMAIN: 'localhost' }, 'feat')).toBe('http://feat.ide.localhost:3000');
    expect(ideOrigin({ berthUrl: 'https://berth.example.com', BERTH_PREVIEW_DOMAIN: 'preview.example.com' }, 'feat')).toBe('https://feat.ide.preview.example.com');
  });
});

describe('the session secret', () => {
  it('uses BERTH_SESSION_SECRET, or creates one in the data folder and keeps it', () => {
    expect(sessionSecret({ BERTH_SESSION_SECRET: 's'.repeat(32), BERTH_DATA_DIR: '/nonexistent' }).toString()).toBe('s'.repeat(32));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-secret-'));
    try {
      const first = sessionSecret({ BERTH_SESSION_SECRET: undefined, BERTH_DATA_DIR: dir });
      expect(first.length).toBeGreaterThanOrEqual(32);
      expect(sessionSecret({ BERTH_SESSION_SECRET: undefined, BERTH_DATA_DIR: dir }).equals(first)).toBe(true);
      expect(fs.statSync(path.join(dir, 'session-secret')).mode & 0o077).toBe(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a short BERTH_SESSION_SECRET and resolves the code-server folder', () => {
    expect(() => loadConfig({ BERTH_SESSION_SECRET: 'short' })).toThrow(/BERTH_SESSION_SECRET: must be at least 32 characters/);
    expect(loadConfig({ BERTH_DATA_DIR: '/srv/berth' }).codeServerDir).toBe('/srv/berth/code-server');
    expect(loadConfig({ BERTH_CODE_SERVER_DIR: '/opt/cs' }).codeServerDir).toBe('/opt/cs');
  });
});
