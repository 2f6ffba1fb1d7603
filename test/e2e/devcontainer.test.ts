import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeGitHub } from '../fakes/github.js';
import { issueCommentPayload, pullRequestPayload, pushPayload } from '../fakes/webhooks.js';
import { vsix } from '../fixtures/vsix.js';
import type { TestBerth } from '../helpers/berth.js';
import { startScenario, stopScenario, webhookSender, type Scenario } from '../helpers/scenario.js';
import { NotYet, waitFor } from '../helpers/http.js';
import { containersOf, diskFile, dockerExec, lineCount } from './lifecycle.helpers.js';

/**
 * Repositories that describe their development environment in devcontainer.json, and nothing
 * for Berth: each comes up with what the file says (built FROM the local base image: nothing
 * can be pulled or downloaded here, features and marketplace extensions included).
 */
const O = 'acme';
const R = 'dev-shop';

// the app: started by postStartCommand in the background, as people do in a devcontainer
const server = `const http = require('http'); const fs = require('fs');
http.createServer((req, res) => {
  const created = fs.existsSync('created.log') ? fs.readFileSync('created.log', 'utf8').trim().split('\\n').length : 0;
  res.writeHead(200, { 'content-type': 'text/html' });
  res.end('<p id="message">' + fs.readFileSync('message.txt', 'utf8').trim() + '</p>' +
    '<p id="env">mode ' + process.env.APP_MODE + ', folder ' + process.env.FOLDER + ', greeting ' + process.env.GREETING + '</p>' +
    '<p id="created">created ' + created + '</p><p id="cwd">cwd ' + process.cwd() + '</p>');
}).listen(3000);
`;

const devcontainerJson = `// a devcontainer.json as VS Code writes it: comments and trailing commas
{
  "name": "Shop",
  "build": {
    "dockerfile": "Dockerfile",
    "context": "..",
    "args": { "GREETING": "hello from a build arg" },
  },
  "forwardPorts": [3000, 9229],
  "portsAttributes": {
    "3000": { "label": "Shop front" }, // the preview link's text
  },
  "containerEnv": { "APP_MODE": "devcontainer", "FOLDER": "\${containerWorkspaceFolder}" },
  /* once per disk: writes into the checkout */
  "postCreateCommand": "echo created >> created.log",
  "postStartCommand": "node server.js > /tmp/server.log 2>&1 &",
  "postAttachCommand": ["sh", "-c", "echo attached >> /tmp/attached.log"],
  "features": { "ghcr.io/devcontainers/features/github-cli:1": {} },
  "customizations": {
    "vscode": {
      "extensions": ["acme.shop-helper", "dbaeumer.vscode-eslint"],
      "settings": { "editor.tabSize": 3 },
    },
  },
}
`;

const singleContainer: Record<string, string | Uint8Array> = {
  '.devcontainer/devcontainer.json': devcontainerJson,
  // an ENTRYPOINT that would end the container at once: a devcontainer idles in place of it (overrideCommand)
  '.devcontainer/Dockerfile': 'FROM berth-base:node20\nARG GREETING\nENV GREETING=$GREETING\nENTRYPOINT ["node", "-e", "process.exit(7)"]\n',
  '.devcontainer/acme.shop-helper-0.0.1.vsix': vsix('acme', 'shop-helper', '0.0.1'),
  '.gitignore': 'created.log\n',
  'server.js': server,
  'message.txt': 'Dev shop v1\n',
};

describe('a devcontainer.json comes up with its preview and IDE, no berth.yml', () => {
  let s: Scenario;
  let fake: FakeGitHub;
  let berth: TestBerth;
  let installationId: number;

  beforeAll(async () => {
    // public: its preview is public, so the test opens it without signing in
    s = await startScenario({ owner: O, repo: R, people: { wendy: 'write' }, main: { 'README.md': '# dev shop\n' }, baseImage: true });
    ({ fake, berth, installationId } = s);
  });

  afterAll(() => stopScenario(s));

  const hook = webhookSender(() => s);
  const byId = (id: string) => berth.db.workspace.findUniqueOrThrow({ where: { id } });
  const running = (id: string, what: string) =>
    waitFor(
      what,
      async () => {
        const ws = await byId(id);
        if (ws.state === 'failed') throw new Error(`workspace failed: ${ws.stateReason}`);
        if (ws.state !== 'running') throw new NotYet(`workspace is ${ws.state}: ${ws.stateReason ?? ''}`);
        return ws;
      },
      200_000,
      500,
    );
  /** the page, once the workspace runs; a failed workspace fails the wait at once with its reason */
  const page = (id: string, slug: string, what: string, ok: (body: string) => boolean) =>
    waitFor(
      what,
      async () => {
        await running(id, what);
        const r = await berth.preview(slug);
        if (r.status !== 200) throw new NotYet(`preview answered ${r.status}: ${r.body.slice(0, 200)}`);
        if (!ok(r.body)) throw new NotYet(`page: ${r.body}`);
        return r.body;
      },
      240_000,
      500,
    );
  const buildLog = async (buildId: string) => (await berth.db.buildLogChunk.findMany({ where: { buildId }, orderBy: { id: 'asc' } })).map((c) => c.text).join('');
  const sticky = (pr: number) => fake.issueComments(O, R, pr).find((c) => c.body.includes('Berth workspace'));

  it('build + forwardPorts + label + postCreateCommand (once per disk) + postStartCommand + extensions', async () => {
    const sha = await fake.pushFiles(O, R, 'feature/dev', singleContainer);
    await hook('push', pushPayload({ fake, owner: O, repo: R, branch: 'feature/dev', after: sha, installationId }));
    fake.createPullRequest(O, R, { number: 3, head: 'feature/dev', user: 'wendy' });
    await hook('pull_request', pullRequestPayload('opened', { fake, owner: O, repo: R, number: 3, installationId }));
    const ws = await waitFor('the workspace', () => berth.db.workspace.findFirst({ where: { branch: 'feature/dev' } }));

    // the app that postStartCommand started, in the container built from .devcontainer/Dockerfile
    const first = await page(ws.id, ws.slug, 'the preview of the devcontainer', (b) => b.includes('Dev shop v1'));
    expect(first).toContain('mode devcontainer, folder /workspace, greeting hello from a build arg');
    expect(first).toContain('created 1');
    expect(first).toContain('cwd /workspace');
    expect(await diskFile(ws.slug, 'created.log')).toBe('created\n');

    // the comment links the preview under its label; the check run shows the plan with what was ignored
    const comment = await waitFor('the comment with the labelled preview link', async () => {
      const c = sticky(3);
      if (!c?.body.includes('running')) throw new NotYet(`comment: ${c?.body ?? 'none yet'}`);
      return c.body;
    });
    expect(comment).toMatch(new RegExp(`\\*\\*\\[Preview: Shop front\\]\\(http://${ws.slug}\\.localhost:\\d+/\\)\\*\\*`));
    const check = await waitFor('a successful check run', async () => fake.checkRuns(O, R, sha).find((c) => c.status === 'completed' && c.conclusion === 'success'));
    expect(check.output?.summary).toContain('[Preview: Shop front]');
    const text = check.output?.text ?? '';
    expect(text).toContain('What Berth made of .devcontainer/devcontainer.json');
    expect(text).toMatch(/preview: port 3000 of devcontainer, labelled &quot;Shop front&quot;|preview: port 3000 of devcontainer, labelled "Shop front"/);
    expect(text).toContain('not previewed: 9229');
    expect(text).toContain('features not installed (line 18): ghcr.io/devcontainers/features/github-cli:1. Features are downloaded from a container registry, which this Berth cannot reach');
    expect(text).toContain('VS Code extensions not installed: dbaeumer.vscode-eslint. The IDE installs extensions from the marketplace, which this Berth cannot reach');
    expect(text).toContain('VS Code extensions installed from the repository: .devcontainer/acme.shop-helper-0.0.1.vsix');

    // the IDE: the committed .vsix installed, the settings applied (machine settings), postAttachCommand ran
    await waitFor('the IDE', async () => {
      const w = await byId(ws.id);
      if (w.ideState === 'unavailable') throw new Error('the IDE did not start');
      return w.ideState === 'running';
    }, 120_000);
    const build = await berth.db.build.findFirstOrThrow({ where: { workspaceId: ws.id, sha } });
    await waitFor('the extension install in the log', async () => (await buildLog(build.id)).includes('installed the extension'), 60_000);
    const log = await buildLog(build.id);
    expect(log).toContain('configuration from devcontainer');
    expect(log).toContain('==> IDE: installed the extension /workspace/.devcontainer/acme.shop-helper-0.0.1.vsix');
    expect(log).toContain('VS Code extensions not installed: dbaeumer.vscode-eslint (the marketplace is out of reach');
    const [ide] = await containersOf(ws.id, 'ide');
    expect(await dockerExec(ide!.Id, 'ls /var/lib/berth-ide/extensions')).toContain('acme.shop-helper-0.0.1');
    expect(JSON.parse(await dockerExec(ide!.Id, 'cat /var/lib/berth-ide/data/Machine/settings.json'))).toEqual({ 'editor.tabSize': 3 });
    const [service] = await containersOf(ws.id, 'service');
    await waitFor('postAttachCommand', async () => (await dockerExec(service!.Id, 'cat /tmp/attached.log 2>/dev/null || true')).includes('attached'));

    // stop and start: postCreateCommand does not run again, postStartCommand does (the app is back)
    const runningBefore = await berth.db.workspaceEvent.count({ where: { workspaceId: ws.id, toState: 'running' } });
    await hook('issue_comment', issueCommentPayload({ fake, owner: O, repo: R, issueNumber: 3, body: '/berth stop', user: 'wendy', installationId }));
    await waitFor('the workspace to stop', async () => (await byId(ws.id)).state === 'stopped');
    await hook('issue_comment', issueCommentPayload({ fake, owner: O, repo: R, issueNumber: 3, body: '/berth start', user: 'wendy', installationId }));
    await waitFor('running again', async () => (await berth.db.workspaceEvent.count({ where: { workspaceId: ws.id, toState: 'running' } })) > runningBefore, 240_000);
    const again = await page(ws.id, ws.slug, 'the preview after stop and start', (b) => b.includes('Dev shop v1'));
    expect(again).toContain('created 1');
    expect(lineCount(await diskFile(ws.slug, 'created.log'))).toBe(1);
  }, 600_000);

  it('an image and no forwardPorts: the IDE and no preview, and no dead Preview link', async () => {
    const files = { '.devcontainer.json': '{\n  // no ports: a workspace to code in\n  "image": "berth-base:node20",\n}\n', 'message.txt': 'no preview here\n' };
    const sha = await fake.pushFiles(O, R, 'feature/no-ports', files);
    await hook('push', pushPayload({ fake, owner: O, repo: R, branch: 'feature/no-ports', after: sha, installationId }));
    fake.createPullRequest(O, R, { number: 4, head: 'feature/no-ports', user: 'wendy' });
    await hook('pull_request', pullRequestPayload('opened', { fake, owner: O, repo: R, number: 4, installationId }));
    const ws = await waitFor('the workspace', () => berth.db.workspace.findFirst({ where: { branch: 'feature/no-ports' } }));
    const up = await running(ws.id, 'the workspace without ports to run');
    expect(up.previewPort).toBeNull();

    // the container idles (overrideCommand) with the checkout at /workspace
    const [service] = await containersOf(ws.id, 'service');
    expect((await dockerExec(service!.Id, 'cat /workspace/message.txt')).trim()).toBe('no preview here');

    const comment = await waitFor('the comment of the running workspace', async () => {
      const c = sticky(4);
      if (!c?.body.includes('running')) throw new NotYet(`comment: ${c?.body ?? 'none yet'}`);
      return c.body;
    });
    expect(comment).toContain('No preview (no forwarded port)');
    expect(comment).toContain('[Open IDE]');
    expect(comment).not.toContain('[Preview');
    const check = await waitFor('a successful check run', async () => fake.checkRuns(O, R, sha).find((c) => c.status === 'completed' && c.conclusion === 'success'));
    expect(check.output?.summary).toContain('No preview: this workspace forwards no port');
    expect(check.output?.summary).not.toContain('[Preview');
    expect(check.output?.text).toContain('preview: none. forwardPorts is empty, so this workspace has an IDE and no preview');

    // the preview host says so at once instead of a page that waits for ever
    const r = await berth.preview(ws.slug);
    expect(r.status).toBe(404);
    expect(r.body).toContain('has no preview: its devcontainer.json forwards no port');
  }, 300_000);

  it('a compose-based devcontainer.json works in its service, with the database up for postCreateCommand', async () => {
    const files = {
      '.devcontainer/devcontainer.json': `{
  "dockerComposeFile": ["docker-compose.yml"],
  "service": "app",
  "workspaceFolder": "/workspace",
  "forwardPorts": ["app:3000"],
  // runs once the services are up: the database answers
  "postCreateCommand": "node seed.js",
  "postStartCommand": "node app.js > /tmp/app.log 2>&1 &",
}
`,
      '.devcontainer/docker-compose.yml': `services:
  app:
    build: { context: .., dockerfile: .devcontainer/Dockerfile }
    volumes: ["..:/workspace:cached"]
    command: ["node", "-e", "setInterval(() => {}, 1 << 30)"]
    depends_on: [db]
  db:
    build: { context: .., dockerfile: .devcontainer/Dockerfile }
    command: ["node", "/workspace-db/db.js"]
`,
      '.devcontainer/Dockerfile': 'FROM berth-base:node20\nCOPY .devcontainer/db.js /workspace-db/db.js\n',
      '.devcontainer/db.js': `let value = 'empty'; require('http').createServer((req, res) => { if (req.url.startsWith('/set/')) value = decodeURIComponent(req.url.slice(5)); res.end(value); }).listen(5432);\n`,
      'seed.js': `require('http').get('http://db:5432/set/seeded%20by%20postCreateCommand', (r) => { r.resume(); r.on('end', () => process.exit(0)); }).on('error', (e) => { console.error(e.message); process.exit(1); });\n`,
      'app.js': `const http = require('http'); http.createServer((req, res) => http.get('http://db:5432/', (r) => { let b = ''; r.on('data', (c) => (b += c)); r.on('end', () => res.end('<p id="db">db says ' + b + '</p>')); })).listen(3000);\n`,
    };
    const sha = await fake.pushFiles(O, R, 'feature/compose-dev', files);
    await hook('push', pushPayload({ fake, owner: O, repo: R, branch: 'feature/compose-dev', after: sha, installationId }));
    const ws = await waitFor('the workspace', () => berth.db.workspace.findFirst({ where: { branch: 'feature/compose-dev' } }));
    const body = await page(ws.id, ws.slug, 'the preview of the compose devcontainer', (b) => b.includes('db says'));
    expect(body).toContain('db says seeded by postCreateCommand');
    expect((await containersOf(ws.id, 'service')).map((c) => c.Labels['berth.service']).sort()).toEqual(['app', 'db']);
    const check = await waitFor('a successful check run', async () => fake.checkRuns(O, R, sha).find((c) => c.status === 'completed' && c.conclusion === 'success'));
    expect(check.output?.text).toContain('compose-based (.devcontainer/docker-compose.yml), working in service app');
  }, 300_000);
});
