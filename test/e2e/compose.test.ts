import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeGitHub } from '../fakes/github.js';
import { issueCommentPayload, pullRequestPayload, pushPayload } from '../fakes/webhooks.js';
import type { TestBerth } from '../helpers/berth.js';
import { startScenario, stopScenario, webhookSender, type Scenario } from '../helpers/scenario.js';
import { NotYet, waitFor } from '../helpers/http.js';
import { dockerNames } from '../../worker/runtime/docker.js';
import { DockerWorkspaceAccess } from '../../worker/runtime/docker-access.js';
import { containersOf, docker, volumeExists } from './lifecycle.helpers.js';

/**
 * A repository shaped like a real compose project, and no berth.yml: an app built from the
 * repository with the checkout bind-mounted, a "database" (an HTTP key-value store keeping its
 * file on a named volume, with a healthcheck that passes only after a second), a "cache", and a
 * migration service that runs once to completion before the app. Everything is built FROM the
 * local base image: nothing can be pulled here.
 */
const O = 'acme';
const R = 'compose-shop';

const compose = `# the app with its database, cache and migrations, as a team would run them with docker compose
services:
  web:
    build: .
    command: ["node", "web.js"]
    ports: ["8080:3000"]
    working_dir: /app
    volumes:
      - .:/app
    environment:
      GREETING: \${GREETING:-no greeting}
      APP_MODE: base
    depends_on:
      db: { condition: service_healthy }
      cache: { condition: service_started }
      migrate: { condition: service_completed_successfully }
    # what compose cannot say: a seed, on the first start of a disk, once db is healthy
    x-berth: { seed: node seed.js }
  migrate:
    build: .
    command: node migrate.js
    restart: "no"
    depends_on:
      db:
        condition: service_healthy
  db:
    build: { context: ., dockerfile: db.Dockerfile }
    ports: ["5432:5432"]
    volumes: [dbdata:/var/lib/db]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "-", "http://127.0.0.1:5432/health"]
      interval: 300ms
      timeout: 2s
      retries: 50
    container_name: shop-db
  cache:
    build: { context: ., dockerfile: db.Dockerfile }
    command: ["node", "cache.js"]
    expose: ["6379"]
  debug:
    build: .
    profiles: [debug]
volumes:
  dbdata: {}
`;

const override = `services:
  web:
    environment:
      APP_MODE: override
`;

const files: Record<string, string> = {
  'compose.yaml': compose,
  'compose.override.yaml': override,
  '.env': 'GREETING=hello from .env\n',
  // the root Dockerfile is also the app's: compose comes first in the detection order
  Dockerfile: 'FROM berth-base:node20\nWORKDIR /app\nCOPY . /app\nEXPOSE 3000\nCMD ["node", "web.js"]\n',
  'db.Dockerfile': 'FROM berth-base:node20\nWORKDIR /srv\nCOPY db.js cache.js /srv/\nCMD ["node", "db.js"]\n',
  'message.txt': 'Compose shop v1\n',
  // the "database": a JSON file on its volume, ready (health 200) a second after it starts
  'db.js': `const http = require('http'); const fs = require('fs');
const FILE = '/var/lib/db/data.json';
const read = () => { try { return JSON.parse(fs.readFileSync(FILE, 'utf8')); } catch { return {}; } };
let ready = false; setTimeout(() => { ready = true; }, 1000);
http.createServer((req, res) => {
  const u = new URL(req.url, 'http://x');
  if (u.pathname === '/health') { res.writeHead(ready ? 200 : 503); return res.end(ready ? 'ok' : 'starting'); }
  if (!ready) { res.writeHead(503); return res.end('not ready'); }
  const data = read();
  if (u.pathname === '/incr') { const k = u.searchParams.get('key'); data[k] = (data[k] || 0) + 1; fs.writeFileSync(FILE, JSON.stringify(data)); }
  if (u.pathname === '/set') { data[u.searchParams.get('key')] = u.searchParams.get('value'); fs.writeFileSync(FILE, JSON.stringify(data)); }
  res.writeHead(200, { 'content-type': 'application/json' }); res.end(JSON.stringify(data));
}).listen(5432);
`,
  'cache.js': `let hits = 0; require('http').createServer((req, res) => { hits++; res.end(String(hits)); }).listen(6379);
`,
  'migrate.js': `const http = require('http');
const get = (path) => new Promise((ok, fail) => http.get('http://db:5432' + path, (r) => { let b = ''; r.on('data', (c) => (b += c)); r.on('end', () => (r.statusCode === 200 ? ok(b) : fail(new Error(path + ': ' + r.statusCode)))); }).on('error', fail));
get('/set?key=schema&value=v1').then(() => get('/incr?key=migrations')).then((b) => { console.log('migrated: ' + b); process.exit(0); }, (e) => { console.error('migration failed: ' + e.message); process.exit(1); });
`,
  'seed.js': `require('http').get('http://db:5432/incr?key=seeds', (r) => process.exit(r.statusCode === 200 ? 0 : 1)).on('error', (e) => { console.error('seed failed: ' + e.message); process.exit(1); });
`,
  'web.js': `const http = require('http'); const fs = require('fs');
const get = (url) => new Promise((ok, fail) => http.get(url, (r) => { let b = ''; r.on('data', (c) => (b += c)); r.on('end', () => ok(b)); }).on('error', fail));
http.createServer(async (req, res) => {
  if (req.url !== '/') { res.writeHead(404); return res.end(); }
  try {
    const db = JSON.parse(await get('http://db:5432/incr?key=visits'));
    const cache = await get('http://cache:6379/');
    const message = fs.readFileSync('/app/message.txt', 'utf8').trim();
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<p id="message">' + message + '</p><p id="schema">schema ' + db.schema + '</p><p id="visits">visits ' + db.visits + '</p>' +
      '<p id="migrations">migrations ' + db.migrations + '</p><p id="seeds">seeds ' + db.seeds + '</p><p id="cache">cache hits ' + cache + '</p>' +
      '<p id="env">mode ' + process.env.APP_MODE + ', ' + process.env.GREETING + '</p><p id="cwd">cwd ' + process.cwd() + '</p>');
  } catch (e) { res.writeHead(500); res.end('backing service error: ' + e.message); }
}).listen(3000);
`,
};

describe('a compose project comes up with its preview, no berth.yml', () => {
  let s: Scenario;
  let fake: FakeGitHub;
  let berth: TestBerth;
  let installationId: number;

  beforeAll(async () => {
    // public: its preview is public, so the test opens it without signing in
    s = await startScenario({ owner: O, repo: R, people: { wendy: 'write' }, main: { 'README.md': '# compose shop\n' }, baseImage: true });
    ({ fake, berth, installationId } = s);
  });

  afterAll(() => stopScenario(s));

  const hook = webhookSender(() => s);
  const byId = (id: string) => berth.db.workspace.findUniqueOrThrow({ where: { id } });
  /** the page, once the workspace runs; a failed workspace fails the wait at once with its reason */
  const page = (id: string, slug: string, what: string, ok: (body: string) => boolean) =>
    waitFor(
      what,
      async () => {
        const ws = await byId(id);
        if (ws.state === 'failed') throw new Error(`workspace failed: ${ws.stateReason}`);
        if (ws.state !== 'running') throw new NotYet(`workspace is ${ws.state}: ${ws.stateReason ?? ''}`);
        const r = await berth.preview(slug);
        if (r.status !== 200) throw new NotYet(`preview answered ${r.status}: ${r.body.slice(0, 200)}`);
        if (!ok(r.body)) throw new NotYet(`page: ${r.body}`);
        return r.body;
      },
      240_000,
      500,
    );

  it('builds and starts app, database, cache and migration in depends_on order; the named volume survives stop and start', async () => {
    const sha = await fake.pushFiles(O, R, 'feature/compose', files);
    await hook('push', pushPayload({ fake, owner: O, repo: R, branch: 'feature/compose', after: sha, installationId }));
    fake.createPullRequest(O, R, { number: 7, head: 'feature/compose', user: 'wendy' });
    await hook('pull_request', pullRequestPayload('opened', { fake, owner: O, repo: R, number: 7, installationId }));
    const ws = await waitFor('the workspace', () => berth.db.workspace.findFirst({ where: { branch: 'feature/compose' } }));

    const first = await page(ws.id, ws.slug, 'the preview of the compose app', (b) => b.includes('visits'));
    expect(first).toContain('<p id="message">Compose shop v1</p>');
    // the one-shot migration ran before the app, against the healthy database
    expect(first).toContain('schema v1');
    expect(first).toContain('migrations 1');
    // x-berth's seed ran before web, once db was healthy
    expect(first).toContain('seeds 1');
    expect(first).toMatch(/cache hits \d+/);
    // the override file's value wins; .env filled ${GREETING}
    expect(first).toContain('mode override, hello from .env');
    // the repository is mounted at /app (compose's `.:/app`), the app runs there
    expect(first).toContain('cwd /app');
    const visits = Number(/visits (\d+)/.exec(first)![1]);

    // what runs: web, db and cache as services (no published ports, no fixed container name);
    // migrate ran as a task and is gone; the profiled service never started
    const services = await containersOf(ws.id, 'service');
    expect(services.map((c) => c.Labels['berth.service']).sort()).toEqual(['cache', 'db', 'web']);
    for (const c of services) {
      expect(c.Ports.filter((p) => p.PublicPort)).toEqual([]);
      expect(c.Names).not.toContain('/shop-db');
    }
    expect(await containersOf(ws.id, 'task')).toEqual([]);
    const db = services.find((c) => c.Labels['berth.service'] === 'db')!;
    const dbInfo = await docker.getContainer(db.Id).inspect();
    expect(dbInfo.State.Health?.Status).toBe('healthy');
    expect(dbInfo.Mounts.find((m) => m.Destination === '/var/lib/db')?.Name).toBe(dockerNames.namedVolume(ws.slug, 'dbdata'));
    const web = services.find((c) => c.Labels['berth.service'] === 'web')!;
    expect((await docker.getContainer(web.Id).inspect()).Mounts.find((m) => m.Destination === '/app')?.Name).toBe(dockerNames.workspaceVolume(ws.slug));
    // the terminal and SSH open in the app's container, where the checkout is at /workspace too
    expect((await new DockerWorkspaceAccess(docker).mainContainer(ws.id, 'web'))?.id).toBe(web.Id);

    // the plan: in the build log and in the check run
    const build = await berth.db.build.findFirstOrThrow({ where: { workspaceId: ws.id, sha } });
    const log = (await berth.db.buildLogChunk.findMany({ where: { buildId: build.id }, orderBy: { id: 'asc' } })).map((c) => c.text).join('');
    expect(log).toContain('configuration from compose');
    expect(log).toContain('From compose.yaml + compose.override.yaml: services web, migrate, db, cache');
    expect(log).toContain('running migrate to completion');
    expect(log).toContain('migrated: ');
    const check = await waitFor('a successful check run', async () => fake.checkRuns(O, R, sha).find((c) => c.status === 'completed' && c.conclusion === 'success'));
    const text = check.output?.text ?? '';
    expect(text).toContain('What Berth made of compose.yaml');
    expect(text).toContain('Preview: web on port 3000');
    expect(text).toContain('Migrate: migrate runs to completion (exit 0) before web starts, on every start');
    expect(text).toContain('Not started: debug (profiles debug');
    expect(text).toContain('volume dbdata at /var/lib/db, kept on the workspace disk');
    expect(text).toContain('Ignored: db: container_name');
    expect(text).toMatch(/Ignored: web: published ports \(8080:3000\)/);

    // stop keeps the named volume; start brings the data back and migrates again
    const runningBefore = await berth.db.workspaceEvent.count({ where: { workspaceId: ws.id, toState: 'running' } });
    await hook('issue_comment', issueCommentPayload({ fake, owner: O, repo: R, issueNumber: 7, body: '/berth stop', user: 'wendy', installationId }));
    await waitFor('the workspace to stop', async () => (await byId(ws.id)).state === 'stopped');
    // the state changes first, then the containers stop (stopped ones may be kept)
    await waitFor('the services to stop', async () => (await containersOf(ws.id, 'service', false)).length === 0);
    expect(await volumeExists(dockerNames.namedVolume(ws.slug, 'dbdata'))).toBe(true);
    await hook('issue_comment', issueCommentPayload({ fake, owner: O, repo: R, issueNumber: 7, body: '/berth start', user: 'wendy', installationId }));
    await waitFor('running again', async () => (await berth.db.workspaceEvent.count({ where: { workspaceId: ws.id, toState: 'running' } })) > runningBefore);
    const again = await page(ws.id, ws.slug, 'the preview after stop and start', (b) => b.includes('migrations 2'));
    expect(Number(/visits (\d+)/.exec(again)![1])).toBeGreaterThan(visits);
    expect(again).toContain('schema v1');
    expect(again).toContain('seeds 1'); // the seed runs once per disk

    // delete removes the named volume with the disk
    await berth.queues.enqueueWorkspace('delete', { workspaceId: ws.id, actor: 'test' });
    await waitFor('the named volume to go with the workspace', async () => !(await volumeExists(dockerNames.namedVolume(ws.slug, 'dbdata'))));
  });

  it('a one-shot that fails stops the start before the app, with its output', async () => {
    const broken = { ...files, 'migrate.js': 'console.error("migration failed: table exists"); process.exit(3);\n' };
    const sha = await fake.pushFiles(O, R, 'feature/broken-migration', broken);
    await hook('push', pushPayload({ fake, owner: O, repo: R, branch: 'feature/broken-migration', after: sha, installationId }));
    const ws = await waitFor('the workspace', () => berth.db.workspace.findFirst({ where: { branch: 'feature/broken-migration' } }));
    const failed = await waitFor(
      'the start to fail',
      async () => {
        const w = await byId(ws.id);
        if (w.state === 'running') throw new Error('the workspace runs although its migration failed');
        return w.state === 'failed' ? w : null;
      },
      240_000,
      500,
    );
    expect(failed.stateReason).toContain('one-shot service migrate exited with code 3');
    expect(failed.stateReason).toContain('migration failed: table exists');
    expect((await containersOf(ws.id, 'service')).filter((c) => c.Labels['berth.service'] === 'web')).toEqual([]);
  });
});
