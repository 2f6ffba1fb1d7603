import { describe, expect, it } from 'vitest';
import { nginxConfig, type NativeRoute } from '../../app/gateway/nginx-config.js';
import { routesOf } from '../../app/gateway/native-routes.js';

const base = {
  listenHost: '0.0.0.0',
  listenPort: 3000,
  berthAddress: '127.0.0.1',
  berthPort: 40000,
  dir: '/srv/berth/.data/native-proxy/3000',
  tempDir: '/tmp/berth-nginx-abc',
  previewDomain: 'example-preview.net',
  berthHostname: 'berth.example.com',
};
const route = (r: Partial<NativeRoute>): NativeRoute => ({ label: 'feature-a-shop-1234abcd', address: '172.18.0.5', port: 3000, private: false, workspaceId: 'cm1abc', ...r });

describe('the native proxy’s nginx configuration', () => {
  it('routes a running workspace’s hosts to their containers with keep-alive upstreams, private ones behind auth_request', () => {
    const conf = nginxConfig({ ...base, routes: [route({}), route({ label: 'api--feature-a-shop-1234abcd', port: 4000 }), route({ label: 'secret-vault-99', address: '172.18.0.9', private: true })] });
    expect(conf).toContain('feature-a-shop-1234abcd.example-preview.net ws_172_18_0_5_3000;');
    expect(conf).toContain('api--feature-a-shop-1234abcd.example-preview.net ws_172_18_0_5_4000;');
    expect(conf).toMatch(/upstream ws_172_18_0_5_3000 \{\s+server 172\.18\.0\.5:3000;\s+keepalive 64;/);
    // the private host's server block asks Berth; the public one does not
    const privateBlock = conf.slice(conf.indexOf('private hosts'));
    expect(privateBlock).toContain('server_name secret-vault-99.example-preview.net;');
    expect(privateBlock).toContain('auth_request /__berth/native-auth;');
    expect(conf.slice(conf.indexOf('public hosts'), conf.indexOf('private hosts'))).not.toContain('auth_request');
    expect(conf).toContain('listen 0.0.0.0:3000 default_server;');
    expect(conf).toContain('server 127.0.0.1:40000;');
  });

  it('leaves out any route whose host, address or port is not what Berth makes: nothing can be injected', () => {
    const hostile = [
      route({ label: 'x; } server { listen 80; location / { root /; } } #' }),
      route({ label: 'a.b' }),
      route({ label: '-bad' }),
      route({ label: 'ok-label', address: '172.18.0.5; include /etc/passwd' }),
      route({ label: 'ok-label', address: 'evil.example.com' }),
      route({ label: 'ok-label', port: 0 }),
      route({ label: 'ok-label', port: 3000.5 }),
      route({ label: 'ok-label', workspaceId: 'a b' }),
    ];
    const conf = nginxConfig({ ...base, routes: hostile });
    for (const bad of ['passwd', 'root /', 'evil', 'a.b.example', 'ok-label', '-bad']) expect(conf).not.toContain(bad);
    expect(conf).not.toMatch(/server_name /);
  });

  it('never routes BERTH_URL’s own host to a workspace', () => {
    const conf = nginxConfig({ ...base, previewDomain: 'example.com', routes: [route({ label: 'berth' })] });
    expect(conf).not.toContain('berth.example.com');
  });

  it('refuses folders and addresses it cannot write safely (Berth then serves without nginx)', () => {
    expect(() => nginxConfig({ ...base, dir: '/srv/my berth/x', routes: [] })).toThrow(/cannot take/);
    expect(() => nginxConfig({ ...base, dir: '/srv/x;y', routes: [] })).toThrow(/cannot take/);
    expect(() => nginxConfig({ ...base, listenHost: 'localhost', routes: [] })).toThrow(/IPs/);
  });

  it('a workspace’s routes: its preview and each service’s own host, only while it has an address', () => {
    const ws = { id: 'cm1abc', slug: 'feature-a-shop-1234abcd', previewHost: '172.18.0.5', previewPort: 3000, previewPrivate: true, idleTimeoutSec: 60, serviceEndpoints: [{ service: 'api', label: 'api', port: 4000, host: '172.18.0.6' }] };
    expect(routesOf(ws).map((r) => [r.label, r.address, r.port, r.private])).toEqual([
      ['feature-a-shop-1234abcd', '172.18.0.5', 3000, true],
      ['api--feature-a-shop-1234abcd', '172.18.0.6', 4000, true],
    ]);
    expect(routesOf({ ...ws, previewHost: null })).toEqual([]);
    // a devcontainer without forwarded ports: no preview route (Berth's page says why)
    expect(routesOf({ ...ws, previewPort: null, serviceEndpoints: [] })).toEqual([]);
  });
});
