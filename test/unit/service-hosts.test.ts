import { describe, expect, it } from 'vitest';
import {
  parsePreviewHost,
  serviceEndpointRecords,
  serviceHostLabel,
  serviceLabels,
  serviceUrl,
  serviceUrlVariable,
  slugFromHost,
} from '../../lib/preview-domain.js';
import { isValidDnsLabel, workspaceSlug } from '../../lib/slug.js';

const config = { berthUrl: 'http://localhost:3000', BERTH_PREVIEW_DOMAIN: 'localhost' };
const id = 'cmiowd2k50000qz3l8f1h9x7a'; // a cuid, as Prisma makes workspace ids

describe('services’ own preview hosts', () => {
  it('parses <service>--<slug> as a service of that workspace, and a plain label as the preview', () => {
    expect(parsePreviewHost('api--feat-x-shop.localhost:3000', 'localhost')).toEqual({ key: 'api--feat-x-shop', service: 'api', slug: 'feat-x-shop' });
    expect(parsePreviewHost('feat-x-shop.localhost:3000', 'localhost')).toEqual({ key: 'feat-x-shop', slug: 'feat-x-shop' });
    expect(parsePreviewHost(`api--feat--${id}.preview.example.com`, 'preview.example.com')).toEqual({ key: `api--feat--${id}`, service: 'api', workspaceId: id });
    expect(slugFromHost('api--feat-x-shop.localhost', 'localhost')).toBeUndefined();
    expect(slugFromHost('FEAT-X-SHOP.localhost', 'localhost')).toBe('feat-x-shop');
  });

  it('refuses what Berth never makes: empty parts, ---, four parts, other domains, IDE hosts', () => {
    for (const host of ['--shop.localhost', 'api--.localhost', 'api---shop.localhost', 'a--b--c--d.localhost', 'api--shop.example.com', 'api--shop.ide.localhost', 'localhost']) {
      expect(parsePreviewHost(host, 'localhost'), host).toBeUndefined();
    }
  });

  it('never collides with a slug: slugs have no --, even from branches full of them', () => {
    for (const branch of ['a--b', 'feature/--x', '--lead', 'x'.repeat(80), 'fix/ünïcödé--name', '__', 'ends-with--', 'UPPER--Case']) {
      const slug = workspaceSlug('acme/shop--app', branch);
      expect(slug, branch).not.toContain('--');
      expect(isValidDnsLabel(slug)).toBe(true);
      expect(parsePreviewHost(`${slug}.localhost`, 'localhost')).toEqual({ key: slug, slug });
      const label = serviceHostLabel('api', { id, slug });
      expect(parsePreviewHost(`${label}.localhost`, 'localhost')?.service).toBe('api');
    }
  });

  it('keeps every host one DNS label of at most 63 characters, long slugs and long service names too', () => {
    const long = workspaceSlug('acme/a-repository-with-a-long-name', 'feature/a-branch-name-that-goes-on-and-on-and-on');
    expect(long.length).toBeGreaterThan(50);
    const labels = serviceLabels(['api', 'a-service-with-a-very-long-name-indeed', 'web']);
    for (const service of labels.values()) {
      for (const slug of ['shop', long]) {
        const host = serviceHostLabel(service, { id, slug });
        expect(host.length, host).toBeLessThanOrEqual(63);
        expect(isValidDnsLabel(host), host).toBe(true);
        const parsed = parsePreviewHost(`${host}.localhost`, 'localhost')!;
        expect(parsed.service).toBe(service);
        // short form finds the workspace by slug, the long one by id
        if (parsed.slug) expect(parsed.slug).toBe(slug);
        else expect(parsed.workspaceId).toBe(id);
      }
    }
    expect(serviceHostLabel('api', { id, slug: long })).toMatch(new RegExp(`^api--${long.slice(0, 10)}.*--${id}$`));
  });

  it('gives services that read alike different labels, never xn (IDNA), and keeps clean names as they are', () => {
    const labels = serviceLabels(['my_api', 'my.api', 'my-api', 'xn', 'API', '___']);
    expect(labels.get('my-api')).toBe('my-api');
    expect(new Set(labels.values()).size).toBe(6);
    for (const l of labels.values()) {
      expect(l).not.toContain('--');
      expect(l.length).toBeLessThanOrEqual(20);
      expect(isValidDnsLabel(l)).toBe(true);
    }
    expect(labels.get('xn')).not.toBe('xn');
    expect(serviceLabels(['web', 'api'])).toEqual(new Map([['web', 'web'], ['api', 'api']]));
  });

  it('builds the URL and variable name people use', () => {
    expect(serviceUrl(config, { id, slug: 'feat-shop' }, 'api')).toBe('http://api--feat-shop.localhost:3000/');
    expect(serviceUrl({ berthUrl: 'https://berth.example.com', BERTH_PREVIEW_DOMAIN: 'p.example.com' }, { id, slug: 's' }, 'api')).toBe('https://api--s.p.example.com/');
    expect(serviceUrlVariable('my-api')).toBe('BERTH_URL_MY_API');
    expect(serviceEndpointRecords([{ name: 'web', port: 3000 }, { name: 'db' }, { name: 'my_api', port: 8080 }], [{ service: 'web', host: '10.0.0.2' }, { service: 'my_api', host: '10.0.0.3' }]))
      .toEqual([
        { service: 'web', label: 'web', port: 3000, host: '10.0.0.2' },
        { service: 'my_api', label: serviceLabels(['web', 'my_api']).get('my_api'), port: 8080, host: '10.0.0.3' },
      ]);
  });
});
