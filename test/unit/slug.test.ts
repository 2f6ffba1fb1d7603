import { describe, expect, it } from 'vitest';
import { isValidDnsLabel, workspaceSlug } from '../../lib/slug.js';

describe('workspaceSlug', () => {
  it('keeps simple names readable', () => {
    expect(workspaceSlug('acme/shop', 'main')).toBe('main-shop');
    expect(workspaceSlug('acme/shop', 'feature-42')).toBe('feature-42-shop');
  });

  it.each([
    ['feature/login'],
    ['Feature/LOGIN'],
    ['ünïcödé/ブランチ'],
    ['😀'],
    ['---'],
    ['a'.repeat(250)],
    ['x/'.repeat(120)],
    ['release/2026.11_rc-1'],
  ])('gives a valid DNS label for %j', (branch) => {
    const slug = workspaceSlug('acme/shop', branch);
    expect(isValidDnsLabel(slug), slug).toBe(true);
    expect(slug.length).toBeLessThanOrEqual(63);
  });

  it('does not collide when branches sanitise alike', () => {
    const names = ['feat/a', 'feat-a', 'FEAT/A', 'feat_a', 'feat.a'];
    const slugs = new Set(names.map((b) => workspaceSlug('acme/shop', b)));
    expect(slugs.size).toBe(names.length);
  });

  it('does not collide for long branches that share a prefix', () => {
    const a = workspaceSlug('acme/shop', `${'x'.repeat(200)}-one`);
    const b = workspaceSlug('acme/shop', `${'x'.repeat(200)}-two`);
    expect(a).not.toBe(b);
  });

  it('differs between repositories with the same name under different owners when lossy', () => {
    expect(workspaceSlug('acme/shop', 'feat/x')).not.toBe(workspaceSlug('other/shop', 'feat/x'));
  });

  it('a salt gives another valid slug', () => {
    const first = workspaceSlug('acme/shop', 'main');
    const salted = workspaceSlug('acme/shop', 'main', 1);
    expect(salted).not.toBe(first);
    expect(isValidDnsLabel(salted)).toBe(true);
  });
});
