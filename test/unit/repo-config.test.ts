import { describe, expect, it } from 'vitest';
import { configFromDockerfile, parseRepoConfig } from '../../lib/repo-config.js';
import { RepoConfigError } from '../../lib/errors.js';

const full = `services:
  web:
    build: .
    port: 3000
    command: npm run dev
    migrate: npm run migrate
    seed: npm run seed
    health: /health
    env: { NODE_ENV: development, DEBUG: 1 }
  db:
    image: postgres:16
    env: { POSTGRES_PASSWORD: dev }
    data: /var/lib/postgresql/data
preview: web
workspace:
  ide: vim
  idle_timeout: 45m
`;

function errorOf(text: string): RepoConfigError {
  try {
    parseRepoConfig(text);
  } catch (err) {
    if (err instanceof RepoConfigError) return err;
    throw err;
  }
  throw new Error('expected a RepoConfigError');
}

describe('parseRepoConfig', () => {
  it('reads the documented format', () => {
    const c = parseRepoConfig(full);
    expect(c.services.map((s) => s.name)).toEqual(['web', 'db']);
    expect(c.services[0]).toMatchObject({ build: { context: '.', dockerfile: 'Dockerfile' }, port: 3000, command: 'npm run dev', env: { NODE_ENV: 'development', DEBUG: '1' } });
    expect(c.services[1]).toMatchObject({ image: 'postgres:16', data: '/var/lib/postgresql/data' });
    expect(c.preview).toEqual({ service: 'web', visibility: 'default' });
    expect(c.workspace).toEqual({ ide: 'vim', idleTimeoutMs: 45 * 60_000 });
  });

  it('accepts the long forms of build and preview', () => {
    const c = parseRepoConfig(`services:
  app:
    build: { context: api, dockerfile: Dockerfile.dev, target: dev, args: { V: 2 } }
    port: 8080
preview: { service: app, visibility: private }
`);
    expect(c.services[0]!.build).toEqual({ context: 'api', dockerfile: 'Dockerfile.dev', target: 'dev', args: { V: '2' } });
    expect(c.preview).toEqual({ service: 'app', visibility: 'private' });
  });

  it('reports invalid YAML with its line', () => {
    const e = errorOf('services:\n  web:\n    build: .\n   port: [3000\n');
    expect(e.file).toBe('.github/berth.yml');
    expect(e.line).toBeGreaterThanOrEqual(3);
    expect(e.reason).toMatch(/invalid YAML/);
  });

  it('reports a wrong type with file, line and reason', () => {
    const e = errorOf('services:\n  web:\n    build: .\n    port: "three thousand"\n');
    expect(e.line).toBe(4);
    expect(e.message).toMatch(/^\.github\/berth\.yml:4: services\.web\.port: /);
  });

  it('reports an unknown key at its line', () => {
    const e = errorOf('services:\n  web:\n    build: .\n    port: 3000\n    comand: npm start\n');
    expect(e.line).toBe(5);
    expect(e.reason).toMatch(/unknown key "comand"/);
  });

  it('reads workspace.warm (0 to 10) and reports a wrong one at its line', () => {
    const base = 'services:\n  web:\n    build: .\n    port: 3000\nworkspace:\n  ide: terminal\n';
    expect(parseRepoConfig(`${base}  warm: 2\n`).workspace).toEqual({ ide: 'terminal', warm: 2 });
    expect(parseRepoConfig(`${base}  warm: 0\n`).workspace.warm).toBe(0);
    expect(parseRepoConfig(base).workspace.warm).toBeUndefined();
    for (const [value, reason] of [['11', /at most 10/], ['-1', /negative/], ['1.5', /whole number/], ['lots', /number of workspaces from 0 to 10/]] as const) {
      const e = errorOf(`${base}  warm: ${value}\n`);
      expect(e.line).toBe(7);
      expect(e.message).toMatch(/^\.github\/berth\.yml:7: workspace\.warm: /);
      expect(e.reason).toMatch(reason);
    }
  });

  it('reads workspace.host_labels (issue 18) and reports a wrong one with file and line', () => {
    const base = 'services:\n  web:\n    build: .\n    port: 3000\nworkspace:\n';
    expect(parseRepoConfig(`${base}  host_labels: [GPU, ssd, gpu]\n`).workspace).toEqual({ ide: 'vscode', hostLabels: ['gpu', 'ssd'] });
    expect(parseRepoConfig(`${base}  host_labels: []\n`).workspace.hostLabels).toBeUndefined();
    for (const [value, line, reason] of [['gpu', 6, /expected a list of host labels/], ['["gpu box"]', 6, /a host label is letters, digits/], ['[1]', 6, /a host label is a word/]] as const) {
      const e = errorOf(`${base}  host_labels: ${value}\n`);
      expect(e.line).toBe(line);
      expect(e.message).toMatch(/^\.github\/berth\.yml:6: workspace\.host_labels/);
      expect(e.reason).toMatch(reason);
    }
  });

  it('reports a preview that names no service', () => {
    const e = errorOf('services:\n  web:\n    build: .\n    port: 3000\npreview: api\n');
    expect(e.line).toBe(5);
    expect(e.reason).toMatch(/no service named "api"/);
  });

  it('rejects a service with both build and image, and paths outside the repository', () => {
    expect(errorOf('services:\n  web:\n    build: .\n    image: x\n    port: 1\n').reason).toMatch(/exactly one of build or image/);
    expect(errorOf('services:\n  web:\n    build: ../..\n    port: 1\n').reason).toMatch(/inside the repository/);
  });

  it("refuses another workspace's build as an image: (berth/… or an image ID), at its line", () => {
    const berth = errorOf('services:\n  web:\n    build: .\n    port: 3000\n  db:\n    image: berth/acme-shop-main/web:0123456789ab\n');
    expect(berth.line).toBe(6);
    expect(berth.message).toMatch(/^\.github\/berth\.yml:6: services\.db\.image: berth\/… images are the builds of workspaces/);
    const id = errorOf(`services:\n  db:\n    image: sha256:${'a'.repeat(64)}\n    port: 5432\n`);
    expect(id.line).toBe(3);
    expect(id.reason).toMatch(/an image ID is not an image name/);
    expect(parseRepoConfig('services:\n  db:\n    image: registry.example.com/berth/pg:16\n    port: 5432\n').services[0]!.image).toBe('registry.example.com/berth/pg:16');
  });

  it('rejects an empty file and a list', () => {
    expect(errorOf('').line).toBe(1);
    expect(errorOf('- a\n- b\n').reason).toMatch(/mapping/);
  });
});

describe('configFromDockerfile', () => {
  it('takes the port from EXPOSE', () => {
    expect(configFromDockerfile('FROM x\nEXPOSE 8080\nCMD ["node"]').services[0]!.port).toBe(8080);
  });
  it('defaults to port 3000 and the image CMD', () => {
    const c = configFromDockerfile('FROM x\n');
    expect(c.services[0]!.port).toBe(3000);
    expect(c.services[0]!.command).toBeUndefined();
  });
});
