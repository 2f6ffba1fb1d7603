import { mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { composeToRepoConfig, composeDuration } from '../../lib/compose/translate.js';
import { interpolate } from '../../lib/compose/interpolate.js';
import { shellWords } from '../../lib/compose/shell-words.js';
import { RepoConfigError } from '../../lib/errors.js';
import { readComposeConfig } from '../../worker/source/compose-config.js';
import type { RepoConfig } from '../../lib/repo-config.js';

/** a typical app: web built from the repository, a database, a cache, a migration one-shot */
const typical = `services:
  web:
    build:
      context: .
      args: { NODE_VERSION: "20" }
    command: npm run dev
    ports: ["8080:3000"]
    environment:
      DATABASE_URL: postgres://app:\${DB_PASSWORD}@db/app
      API_KEY: \${API_KEY:?the payment sandbox key}
      LOG_LEVEL: \${LOG_LEVEL:-info}
      - ignored
    volumes:
      - .:/app
      - /app/node_modules
    working_dir: /app
    depends_on:
      db: { condition: service_healthy }
      cache: { condition: service_started }
      migrate: { condition: service_completed_successfully }
  migrate:
    build: .
    command: ["node", "migrate.js"]
    restart: "no"
    depends_on:
      db: { condition: service_healthy }
  db:
    image: postgres:16
    ports: ["5432:5432"]
    environment: [POSTGRES_PASSWORD=dev, POSTGRES_USER]
    volumes: [dbdata:/var/lib/postgresql/data]
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -U app"]
      interval: 1s
      timeout: 500ms
      retries: 30
      start_period: 1m30s
    privileged: true
  cache:
    image: redis:7
    expose: ["6379"]
  debug:
    image: busybox
    profiles: [debug]
volumes:
  dbdata: {}
`.replace('      - ignored\n', '');

function files(main: string, override?: string, env?: string) {
  return {
    files: [{ file: 'compose.yaml', text: main }, ...(override ? [{ file: 'compose.override.yaml', text: override }] : [])],
    dotEnv: env === undefined ? undefined : { file: '.env', text: env },
    readFile: async () => undefined,
  };
}

async function errorOf(p: Promise<unknown>): Promise<RepoConfigError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof RepoConfigError) return err;
    throw err;
  }
  throw new Error('expected a RepoConfigError');
}

const service = (c: RepoConfig, name: string) => c.services.find((s) => s.name === name)!;

describe('compose to RepoConfig', () => {
  it('translates a typical app with a database, a cache and a migration service', async () => {
    const c = await composeToRepoConfig(files(typical, undefined, 'DB_PASSWORD=s3cret\n'));
    expect(c.source).toBe('compose');
    expect(c.file).toBe('compose.yaml');
    expect(c.services.map((s) => s.name)).toEqual(['web', 'migrate', 'db', 'cache']);
    expect(c.preview).toEqual({ service: 'web', visibility: 'default' });
    const web = service(c, 'web');
    expect(web.port).toBe(3000);
    expect(web.build).toEqual({ context: '.', dockerfile: 'Dockerfile', args: { NODE_VERSION: '20' } });
    expect(web.args).toEqual(['npm', 'run', 'dev']);
    expect(web.command).toBeUndefined();
    expect(web.checkoutMount).toBe('/app');
    expect(web.workingDir).toBe('/app');
    expect(web.volumes).toEqual([{ name: expect.stringMatching(/^web-anon-[0-9a-f]{8}$/), target: '/app/node_modules' }]);
    expect(web.env).toEqual({ DATABASE_URL: 'postgres://app:s3cret@db/app', API_KEY: '${{ secrets.API_KEY }}', LOG_LEVEL: 'info' });
    expect(web.dependsOn).toEqual({ db: 'service_healthy', cache: 'service_started', migrate: 'service_completed_successfully' });
    expect(c.required).toEqual(['API_KEY']);
    expect(service(c, 'migrate').oneShot).toBe(true);
    expect(service(c, 'migrate').args).toEqual(['node', 'migrate.js']);
    const db = service(c, 'db');
    expect(db.image).toBe('postgres:16');
    expect(db.port).toBeUndefined();
    expect(db.env).toEqual({ POSTGRES_PASSWORD: 'dev', POSTGRES_USER: '${{ secrets.POSTGRES_USER }}' });
    expect(db.volumes).toEqual([{ name: 'dbdata', target: '/var/lib/postgresql/data' }]);
    expect(db.healthcheck).toEqual({ test: ['CMD-SHELL', 'pg_isready -U app'], intervalMs: 1000, timeoutMs: 500, retries: 30, startPeriodMs: 90_000 });
    const plan = c.plan!.join('\n');
    expect(plan).toContain('Preview: web on port 3000');
    expect(plan).toContain('Migrate: migrate runs to completion (exit 0) before web starts');
    expect(plan).toContain('Not started: debug (profiles debug');
    expect(plan).toContain('volume dbdata at /var/lib/postgresql/data, kept on the workspace disk');
    expect(plan).toContain('the workspace checkout (what the IDE edits) is mounted at /app');
    expect(plan).toContain('Ignored: db: privileged: a workspace never runs privileged');
    expect(plan).toMatch(/Ignored: web: published ports \(8080:3000\)/);
    expect(plan).toContain('web starts once db is healthy');
  });

  it('merges the override file: environment by name, ports joined, command replaced', async () => {
    const override = `services:
  web:
    command: npm run dev:watch
    environment: [LOG_LEVEL=debug, EXTRA=1]
    ports: ["9229:9229"]
`;
    const c = await composeToRepoConfig(files(typical, override, 'DB_PASSWORD=x\nAPI_KEY=k\n'));
    const web = service(c, 'web');
    expect(web.args).toEqual(['npm', 'run', 'dev:watch']);
    expect(web.env.LOG_LEVEL).toBe('debug');
    expect(web.env.EXTRA).toBe('1');
    expect(web.env.API_KEY).toBe('k');
    expect(web.port).toBe(3000);
    expect(c.required).toBeUndefined();
    expect(c.plan![0]).toBe('From compose.yaml + compose.override.yaml: services web, migrate, db, cache');
  });

  it('x-berth picks the preview, its port and health, and adds migrate and seed', async () => {
    const c = await composeToRepoConfig(
      files(`services:
  api:
    build: ./api
    ports: ["4000"]
  front:
    build: { context: ./front, dockerfile: dev.Dockerfile, target: dev }
    expose: [5173]
    x-berth: { preview: { visibility: public }, health: /ready, migrate: npm run db:migrate, seed: npm run db:seed }
x-berth:
  workspace: { ide: terminal, idle_timeout: 10m }
`),
    );
    expect(c.preview).toEqual({ service: 'front', visibility: 'public' });
    const front = service(c, 'front');
    expect(front.port).toBe(5173);
    expect(front.health).toBe('/ready');
    expect(front.migrate).toBe('npm run db:migrate');
    expect(front.seed).toBe('npm run db:seed');
    expect(front.build).toEqual({ context: 'front', dockerfile: 'dev.Dockerfile', target: 'dev', args: {} });
    // not the preview, but a web port: a URL of its own (BERTH_URL_API), not waited for at start
    expect(service(c, 'api')).toMatchObject({ port: 4000, portOptional: true });
    expect(c.plan).toContain('URL: api on port 4000 at a host of its own (BERTH_URL_API), from ports: 4000');
    expect(c.workspace).toEqual({ ide: 'terminal', idleTimeoutMs: 600_000 });
  });

  it('skips database and cache ports when choosing the preview', async () => {
    const c = await composeToRepoConfig(files(`services:
  db: { image: mysql:8, ports: ["3306:3306"] }
  admin: { image: redis:7, ports: ["8081:8081"] }
  app: { build: ., ports: ["5000:5000"] }
`));
    expect(c.preview.service).toBe('app');
    expect(service(c, 'app').port).toBe(5000);
  });

  it('interpolates $$, ${VAR-default} and nested defaults outside environment', async () => {
    const c = await composeToRepoConfig(
      files(
        `services:
  web:
    image: node:\${NODE_TAG-20}
    command: sh -c 'echo $$HOME \${GREETING:-\${FALLBACK:-hi}}'
    ports: ["\${PORT:-3000}"]
`,
        undefined,
        'PORT=4000\n',
      ),
    );
    const web = service(c, 'web');
    expect(web.image).toBe('node:20');
    expect(web.args).toEqual(['sh', '-c', 'echo $HOME hi']);
    expect(web.port).toBe(4000);
  });

  it('reads env_file inside the repository, environment wins', async () => {
    const c = await composeToRepoConfig({
      ...files(`services:
  web:
    build: .
    ports: ["3000"]
    env_file: [config/dev.env, { path: config/local.env, required: false }]
    environment: { B: from-environment }
`),
      readFile: async (rel) => (rel === 'config/dev.env' ? 'A=1\nB=from-file\n# comment\n' : undefined),
    });
    expect(service(c, 'web').env).toEqual({ A: '1', B: 'from-environment' });
  });
});

describe('compose errors name file, line and reason', () => {
  it('${VAR:?} without a value outside environment', async () => {
    const e = await errorOf(composeToRepoConfig(files(`services:\n  web:\n    image: "registry.local/app:\${TAG:?set TAG to the image tag}"\n    ports: ["3000"]\n`)));
    expect(e.message).toBe("compose.yaml:3: services.web.image: TAG is required (set TAG to the image tag) but has no value: set it in the repository's .env file");
  });

  it('an unknown key, by the Compose Specification', async () => {
    const e = await errorOf(composeToRepoConfig(files(`services:\n  web:\n    build: .\n    ports: ["3000"]\n    portz: ["3000"]\n`)));
    expect(e.file).toBe('compose.yaml');
    expect(e.line).toBe(5);
    expect(e.message).toContain('services.web.portz: unknown key "portz"');
  });

  it('a wrong value, by the Compose Specification, in the override file', async () => {
    const e = await errorOf(
      composeToRepoConfig(files(`services:\n  web:\n    build: .\n    ports: ["3000"]\n`, `services:\n  web:\n    depends_on:\n      db: { condition: when_ready }\n`)),
    );
    expect(e.file).toBe('compose.override.yaml');
    expect(e.line).toBe(4);
    expect(e.message).toMatch(/depends_on\.db\.condition: must be one of "service_started", "service_healthy", "service_completed_successfully"/);
  });

  it('host networking is refused', async () => {
    const e = await errorOf(composeToRepoConfig(files(`services:\n  web:\n    build: .\n    ports: ["3000"]\n    network_mode: host\n`)));
    expect(e.message).toMatch(/^compose\.yaml:5: services\.web\.network_mode: network_mode: host cannot run in Berth/);
  });

  it('host paths outside the repository and other unsupported keys are ignored with the reason', async () => {
    const c = await composeToRepoConfig(
      files(`services:
  web:
    build: .
    ports: ["3000"]
    container_name: myapp
    cap_add: [NET_ADMIN]
    devices: ["/dev/kvm:/dev/kvm"]
    pid: host
    volumes:
      - /var/run/docker.sock:/var/run/docker.sock
      - ../secrets:/secrets
      - ./src:/app/src
`),
    );
    const plan = c.plan!.join('\n');
    expect(plan).toContain('Ignored: web: container_name: each workspace names its own containers');
    expect(plan).toContain('Ignored: web: cap_add: a workspace keeps a fixed set of capabilities');
    expect(plan).toContain('Ignored: web: devices: a workspace gets no host devices');
    expect(plan).toContain('Ignored: web: pid: a workspace shares no process namespace');
    expect(plan).toContain("Ignored: web: volume /var/run/docker.sock:/var/run/docker.sock: /var/run/docker.sock is a path on the host, outside the repository");
    expect(plan).toContain('Ignored: web: volume ../secrets:/secrets: ../secrets is a path on the host');
    expect(plan).toContain('Ignored: web: volume ./src:/app/src: only the whole repository can be mounted');
    expect(service(c, 'web').checkoutMount).toBe('/workspace');
  });

  it('a berth/… image and an image ID are refused like in berth.yml', async () => {
    const e1 = await errorOf(composeToRepoConfig(files(`services:\n  web:\n    image: berth/other-branch/web:abc\n    ports: ["3000"]\n`)));
    expect(e1.message).toMatch(/^compose\.yaml:3: services\.web\.image: berth\/… images are the builds of workspaces/);
    const e2 = await errorOf(composeToRepoConfig(files(`services:\n  web:\n    image: sha256:${'a'.repeat(64)}\n    ports: ["3000"]\n`)));
    expect(e2.message).toMatch(/^compose\.yaml:3: services\.web\.image: an image ID is not an image name/);
  });

  it('a build context outside the repository, a dependency on a missing service, a cycle', async () => {
    expect((await errorOf(composeToRepoConfig(files(`services:\n  web:\n    build: ../elsewhere\n    ports: ["3000"]\n`)))).message).toBe(
      'compose.yaml:3: services.web.build: the build context ../elsewhere is outside the repository',
    );
    expect((await errorOf(composeToRepoConfig(files(`services:\n  web:\n    build: .\n    ports: ["3000"]\n    depends_on: [db]\n`)))).message).toBe(
      'compose.yaml:5: services.web.depends_on.db: no service named "db"',
    );
    const cycle = await errorOf(composeToRepoConfig(files(`services:\n  a:\n    build: .\n    ports: ["3000"]\n    depends_on: [b]\n  b:\n    build: .\n    depends_on: [a]\n`)));
    expect(cycle.message).toMatch(/depends_on goes round in a circle: a -> b -> a/);
  });

  it('no web port anywhere, an unknown x-berth key, a bad service name, invalid YAML', async () => {
    expect((await errorOf(composeToRepoConfig(files(`services:\n  worker:\n    build: .\n`)))).message).toMatch(/^compose\.yaml:1: services: no service to preview/);
    expect((await errorOf(composeToRepoConfig(files(`services:\n  web:\n    build: .\n    ports: ["3000"]\n    x-berth: { migrat: x }\n`)))).message).toMatch(
      /^compose\.yaml:5: services\.web\.x-berth\.migrat: unknown key "migrat"/,
    );
    expect((await errorOf(composeToRepoConfig(files(`services:\n  my_app:\n    build: .\n    ports: ["3000"]\n`)))).message).toMatch(/^compose\.yaml:2: services\.my_app: service name "my_app"/);
    expect((await errorOf(composeToRepoConfig(files(`services:\n  web: [\n`)))).message).toMatch(/^compose\.yaml:\d+: invalid YAML/);
  });
});

describe('compose extends', () => {
  it('a service extends another of the project; from another file is refused', async () => {
    const c = await composeToRepoConfig(
      files(`services:
  base:
    build: .
    environment: { A: "1", B: "base" }
  web:
    extends: base
    environment: { B: "web" }
    ports: ["3000"]
`),
    );
    expect(service(c, 'web').env).toEqual({ A: '1', B: 'web' });
    expect(service(c, 'web').build).toEqual({ context: '.', dockerfile: 'Dockerfile', args: {} });
    const e = await errorOf(composeToRepoConfig(files(`services:\n  web:\n    extends: { file: common.yml, service: app }\n    ports: ["3000"]\n`)));
    expect(e.message).toMatch(/^compose\.yaml:3: services\.web\.extends\.file: extends from another file is not supported/);
  });
});

describe('compose helpers', () => {
  it('shell words and durations', () => {
    expect(shellWords(`npm run "dev server" -- --port='3000' a\\ b`)).toEqual(['npm', 'run', 'dev server', '--', '--port=3000', 'a b']);
    expect(composeDuration('1m30s')).toBe(90_000);
    expect(composeDuration('250ms')).toBe(250);
    expect(composeDuration('ten')).toBeUndefined();
  });

  it('interpolation never reads Berth\'s own environment', () => {
    process.env.BERTH_TEST_SECRET = 'from-berth';
    const events = { missingRequired: () => { throw new Error('x'); }, required: () => {}, unset: () => {}, invalid: () => { throw new Error('y'); } };
    expect(interpolate('a${BERTH_TEST_SECRET}b', {}, 'other', events as never)).toBe('ab');
    expect(interpolate('${BERTH_TEST_SECRET}', {}, 'environment', events as never)).toBe('${{ secrets.BERTH_TEST_SECRET }}');
    delete process.env.BERTH_TEST_SECRET;
  });
});

describe('readComposeConfig', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('finds docker-compose.yml with its override and .env; undefined without a compose file', async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-compose-'));
    expect(await readComposeConfig(dir)).toBeUndefined();
    await writeFile(join(dir, 'docker-compose.yml'), 'services:\n  web:\n    build: .\n    ports: ["${PORT}"]\n');
    await writeFile(join(dir, 'docker-compose.override.yml'), 'services:\n  web:\n    environment: [MODE=override]\n');
    await writeFile(join(dir, '.env'), 'PORT=3100\n');
    const c = (await readComposeConfig(dir))!;
    expect(c.file).toBe('docker-compose.yml');
    expect(service(c, 'web').port).toBe(3100);
    expect(service(c, 'web').env).toEqual({ MODE: 'override' });
  });

  it('reads exactly the files given (a devcontainer.json\'s dockerComposeFile), paths relative to the first', async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-compose-'));
    await mkdir(join(dir, '.devcontainer'));
    await writeFile(join(dir, '.devcontainer/docker-compose.yml'), 'services:\n  app:\n    build: { context: .., dockerfile: .devcontainer/Dockerfile }\n    volumes: ["..:/workspaces/app"]\n    ports: ["3000"]\n');
    const c = (await readComposeConfig(dir, ['.devcontainer/docker-compose.yml']))!;
    expect(service(c, 'app').build).toEqual({ context: '.', dockerfile: '.devcontainer/Dockerfile', args: {} });
    expect(service(c, 'app').checkoutMount).toBe('/workspaces/app');
    const missing = await errorOf(readComposeConfig(dir, ['.devcontainer/nope.yml']));
    expect(missing.message).toContain('.devcontainer/nope.yml');
  });

  it('never follows a link out of the clone, for the compose file or an env_file', async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-compose-'));
    await symlink('/etc/passwd', join(dir, 'compose.yaml'));
    await expect(readComposeConfig(dir)).rejects.toThrow(/leads outside the repository/);
    await rm(join(dir, 'compose.yaml'));
    await writeFile(join(dir, 'compose.yaml'), 'services:\n  web:\n    build: .\n    ports: ["3000"]\n    env_file: host.env\n');
    await symlink('/etc/hostname', join(dir, 'host.env'));
    await expect(readComposeConfig(dir)).rejects.toThrow(/host\.env leads outside the repository/);
  });
});
