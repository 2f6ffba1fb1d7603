import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DEVCONTAINER_SERVICE, KEEP_ALIVE, devcontainerConfig, parseDevcontainer } from '../../lib/devcontainer/translate.js';
import { RepoConfigError } from '../../lib/errors.js';
import type { RepoConfig } from '../../lib/repo-config.js';
import { readRepoConfig } from '../../worker/source/repo-config.js';

const FILE = '.devcontainer/devcontainer.json';

function translate(text: string, opts: Parameters<typeof devcontainerConfig>[1] = {}, file = FILE): RepoConfig {
  return devcontainerConfig(parseDevcontainer(text, file), opts);
}

function errorOf(text: string, opts: Parameters<typeof devcontainerConfig>[1] = {}): RepoConfigError {
  try {
    translate(text, opts);
  } catch (err) {
    if (err instanceof RepoConfigError) return err;
    throw err;
  }
  throw new Error('expected a RepoConfigError');
}

// as VS Code writes them: comments of both kinds, trailing commas
const typical = `// For format details, see https://aka.ms/devcontainer.json
{
  "name": "Node app",
  /* built from the folder's Dockerfile */
  "build": {
    "dockerfile": "Dockerfile",
    "context": "..",
    "args": { "NODE_VERSION": "20", "FOLDER": "\${containerWorkspaceFolder}" },
  },
  "workspaceFolder": "/workspaces/\${localWorkspaceFolderBasename}",
  "forwardPorts": [3000, 9229],
  "portsAttributes": { "3000": { "label": "Web app", "onAutoForward": "openBrowser" } },
  "containerEnv": { "NODE_ENV": "development", "WS": "\${containerWorkspaceFolder}" },
  "remoteEnv": { "EDITOR": "code", "HOME_HINT": "\${localEnv:HOME:/home/node}", "NODE_ENV": "test" },
  "onCreateCommand": "echo created",
  "postCreateCommand": ["npm", "install"],
  "updateContentCommand": "npm install",
  "postStartCommand": { "server": "nohup npm run dev &", "log": ["echo", "started"] },
  "postAttachCommand": "echo attached",
  "features": { "ghcr.io/devcontainers/features/github-cli:1": {} },
  "customizations": {
    "vscode": {
      "extensions": ["dbaeumer.vscode-eslint", "esbenp.prettier-vscode"],
      "settings": { "editor.tabSize": 2, },
    },
    "codespaces": {},
  },
  "runArgs": ["--privileged"],
  "initializeCommand": "rm -rf ~",
}
`;

describe('devcontainer.json translation', () => {
  it('reads JSON with comments and trailing commas into one service with the checkout, env, preview and lifecycle', () => {
    const c = translate(typical, { repoName: 'shop', vsixFiles: ['.devcontainer/esbenp.prettier-vscode-10.1.0.vsix'] });
    expect(c.source).toBe('devcontainer');
    expect(c.file).toBe(FILE);
    expect(c.services).toHaveLength(1);
    const s = c.services[0]!;
    expect(s.name).toBe(DEVCONTAINER_SERVICE);
    // dockerfile relative to the json's folder, context relative to it too
    expect(s.build).toEqual({ context: '.', dockerfile: '.devcontainer/Dockerfile', args: { NODE_VERSION: '20', FOLDER: '/workspaces/shop' } });
    expect(s.checkoutMount).toBe('/workspaces/shop');
    expect(s.workingDir).toBe('/workspaces/shop');
    expect(s.command).toBe(KEEP_ALIVE);
    expect(s.port).toBe(3000);
    expect(s.portOptional).toBe(true);
    expect(s.env).toEqual({ NODE_ENV: 'test', WS: '/workspaces/shop', EDITOR: 'code', HOME_HINT: '/home/node' });
    expect(c.preview).toEqual({ service: DEVCONTAINER_SERVICE, visibility: 'default', label: 'Web app' });
    expect(c.lifecycle).toEqual({
      create: [
        { service: DEVCONTAINER_SERVICE, command: 'echo created' },
        { service: DEVCONTAINER_SERVICE, command: ['npm', 'install'] },
      ],
      update: [{ service: DEVCONTAINER_SERVICE, command: 'npm install' }],
      start: [
        { service: DEVCONTAINER_SERVICE, command: 'nohup npm run dev &' },
        { service: DEVCONTAINER_SERVICE, command: ['echo', 'started'] },
      ],
      attach: [{ service: DEVCONTAINER_SERVICE, command: 'echo attached' }],
    });
    expect(c.vscode).toEqual({
      extensions: ['dbaeumer.vscode-eslint', 'esbenp.prettier-vscode'],
      settings: { 'editor.tabSize': 2 },
      vsix: ['.devcontainer/esbenp.prettier-vscode-10.1.0.vsix'],
    });
    const plan = c.plan!.join('\n');
    expect(plan).toMatch(/preview: port 3000 of devcontainer, labelled "Web app"/);
    expect(plan).toMatch(/not previewed: 9229/);
    expect(plan).toMatch(/features not installed \(line 20\): ghcr\.io\/devcontainers\/features\/github-cli:1\. Features are downloaded from a container registry/);
    expect(plan).toMatch(/VS Code extensions not installed: dbaeumer\.vscode-eslint\. The IDE installs extensions from the marketplace, which this Berth cannot reach/);
    expect(plan).toMatch(/VS Code extensions installed from the repository: \.devcontainer\/esbenp\.prettier-vscode-10\.1\.0\.vsix/);
    expect(plan).toMatch(/ignored: runArgs \(line 28\): Berth creates the containers itself/);
    expect(plan).toMatch(/ignored: initializeCommand \(line 29\) runs on the machine that starts the container/);
    expect(plan).toMatch(/ignored: customizations\.codespaces \(line 26\)/);
    expect(plan).toMatch(/not available: \$\{localEnv:HOME\}/);
  });

  it('an image, no forwardPorts: the IDE and no preview, said in the plan', () => {
    const c = translate('{ "image": "node:20" }', {}, '.devcontainer.json');
    expect(c.services).toEqual([{ name: DEVCONTAINER_SERVICE, image: 'node:20', env: {}, checkoutMount: '/workspace', workingDir: '/workspace', command: KEEP_ALIVE, entrypoint: [''] }]);
    expect(c.services[0]!.port).toBeUndefined();
    expect(c.preview).toEqual({ service: DEVCONTAINER_SERVICE, visibility: 'default' });
    expect(c.plan!.join('\n')).toMatch(/preview: none\. forwardPorts is empty, so this workspace has an IDE and no preview/);
  });

  it('overrideCommand: false runs the image\'s own command, and the start waits for the preview port', () => {
    const c = translate('{ "image": "node:20", "overrideCommand": false, "forwardPorts": ["localhost:8080"] }');
    expect(c.services[0]!.command).toBeUndefined();
    expect(c.services[0]!.entrypoint).toBeUndefined();
    expect(c.services[0]!.port).toBe(8080);
    expect(c.services[0]!.portOptional).toBeUndefined();
  });

  it('the older spelling: dockerFile and context at the top level', () => {
    const c = translate('{ "dockerFile": "../Dockerfile", "context": ".." }');
    expect(c.services[0]!.build).toMatchObject({ context: '.', dockerfile: 'Dockerfile' });
  });

  it('a compose-based devcontainer works in its service, with runServices and "service:port"', () => {
    const compose: RepoConfig = {
      source: 'compose',
      file: '.devcontainer/docker-compose.yml',
      services: [
        { name: 'app', build: { context: '.', dockerfile: '.devcontainer/Dockerfile', args: {} }, env: { A: '1' }, checkoutMount: '/workspaces', command: 'sleep infinity', dependsOn: { db: 'service_started' } },
        { name: 'db', image: 'postgres:16', env: {}, port: 5432 },
        { name: 'web', build: { context: '.', dockerfile: 'Dockerfile', args: {} }, env: {}, port: 8000 },
        { name: 'docs', image: 'nginx', env: {} },
      ],
      preview: { service: 'web', visibility: 'default' },
      workspace: { ide: 'vscode' },
      plan: ['services: app, db, web, docs'],
    };
    const text = `{
      "dockerComposeFile": ["docker-compose.yml"],
      "service": "app",
      "runServices": ["app", "web"],
      "workspaceFolder": "/workspaces/\${localWorkspaceFolderBasename}",
      "forwardPorts": ["web:8000", "db:5432"],
      "portsAttributes": { "web:8000": { "label": "Site" } },
      "containerEnv": { "B": "2" },
      "postCreateCommand": "make setup",
    }`;
    const parsed = parseDevcontainer(text, FILE);
    expect(parsed.composeFiles).toEqual(['.devcontainer/docker-compose.yml']);
    const c = devcontainerConfig(parsed, { compose, repoName: 'shop' });
    expect(c.services.map((s) => s.name)).toEqual(['app', 'db', 'web']); // db comes along: app depends on it
    const app = c.services.find((s) => s.name === 'app')!;
    expect(app).toMatchObject({ checkoutMount: '/workspaces', workingDir: '/workspaces/shop', command: 'sleep infinity', env: { A: '1', B: '2' } });
    expect(c.services.find((s) => s.name === 'db')!.port).toBeUndefined(); // only the preview's port is waited for
    expect(c.preview).toEqual({ service: 'web', visibility: 'default', label: 'Site' });
    expect(c.lifecycle).toEqual({ create: [{ service: 'app', command: 'make setup' }] });
    expect(c.plan).toContain('services: app, db, web, docs');
    expect(c.plan!.join('\n')).toMatch(/not started \(not in runServices\): docs/);
  });

  it('"service:port" of another service after the first gives it a URL of its own (BERTH_URL_API); a database port does not', () => {
    const compose: RepoConfig = {
      source: 'compose',
      file: 'compose.yml',
      services: [
        { name: 'app', build: { context: '.', dockerfile: 'Dockerfile', args: {} }, env: {}, command: 'npm run dev' },
        { name: 'api', build: { context: 'api', dockerfile: 'Dockerfile', args: {} }, env: {} },
        { name: 'db', image: 'postgres:16', env: {} },
      ],
      preview: { service: 'app', visibility: 'default' },
      workspace: { ide: 'vscode' },
      plan: [],
    };
    const c = translate('{ "dockerComposeFile": "compose.yml", "service": "app", "forwardPorts": ["app:3000", "api:4000", "db:5432", 9229] }', { compose });
    expect(c.preview.service).toBe('app');
    expect(c.services.find((s) => s.name === 'app')).toMatchObject({ port: 3000 });
    expect(c.services.find((s) => s.name === 'api')).toMatchObject({ port: 4000, portOptional: true });
    expect(c.services.find((s) => s.name === 'db')!.port).toBeUndefined();
    expect(c.plan).toContain('URL: api on port 4000 at a host of its own (BERTH_URL_API), from forwardPorts');
    expect(c.plan!.join('\n')).toMatch(/not previewed: db:5432, 9229/);
  });

  it('a compose-based devcontainer with overrideCommand: true idles in its service', () => {
    const compose: RepoConfig = {
      source: 'compose',
      services: [{ name: 'app', image: 'node:20', env: {}, args: ['npm', 'start'] }],
      preview: { service: 'app', visibility: 'default' },
      workspace: { ide: 'vscode' },
    };
    const c = translate('{ "dockerComposeFile": "compose.yml", "service": "app", "overrideCommand": true, "forwardPorts": [3000] }', { compose });
    expect(c.services[0]).toMatchObject({ command: KEEP_ALIVE, checkoutMount: '/workspace', port: 3000, portOptional: true });
    expect(c.services[0]!.args).toBeUndefined();
  });
});

describe('devcontainer.json errors name the file, the line and the reason', () => {
  const cases: [string, string, number, RegExp][] = [
    ['a syntax error', '{\n  "image": "node:20"\n  "forwardPorts": [3000]\n}', 3, /invalid JSON: a comma was expected/],
    ['an unclosed comment', '{\n  "image": "node:20" /* oops\n}', 2, /invalid JSON: a comment is not closed/],
    ['not an object', '[1, 2]', 1, /expected an object/],
    ['no image, build or compose', '{\n  "name": "x"\n}', 1, /needs one of "image", "build": \{ "dockerfile" \} or "dockerComposeFile"/],
    ['image and build together', '{\n  "image": "node:20",\n  "build": { "dockerfile": "Dockerfile" }\n}', 3, /"image" and "build" are both given/],
    ['an image of a Berth build', '{\n\n  "image": "berth/other/web:abc"\n}', 3, /image: berth\/… images are the builds of workspaces/],
    ['a context outside the repository', '{\n  "build": {\n    "dockerfile": "Dockerfile",\n    "context": "../.."\n  }\n}', 4, /\.\.\/\.\. is outside the repository/],
    ['a Dockerfile outside the context', '{\n  "build": {\n    "dockerfile": "../Dockerfile"\n  }\n}', 3, /the Dockerfile Dockerfile is outside the build context \.devcontainer; set "context"/],
    ['a bad port', '{\n  "image": "node:20",\n  "forwardPorts": [\n    70000\n  ]\n}', 4, /forwardPorts\.0: a port is 1 to 65535/],
    ['a port of an unknown service', '{\n  "image": "node:20",\n  "forwardPorts": ["db:5432"]\n}', 3, /"db:5432" names service db, which does not exist \(this devcontainer has one container: use the port alone/],
    ['an env name', '{\n  "image": "node:20",\n  "containerEnv": {\n    "BAD-NAME": "1"\n  }\n}', 4, /containerEnv\.BAD-NAME: not a valid environment variable name/],
    ['an empty command', '{\n  "image": "node:20",\n  "postStartCommand": []\n}', 3, /postStartCommand/],
    ['a relative workspaceFolder', '{\n  "image": "node:20",\n  "workspaceFolder": "src"\n}', 3, /workspaceFolder: src is not an absolute path/],
    ['compose without service', '{\n  "dockerComposeFile": "compose.yml"\n}', 2, /"service" is missing/],
    ['a compose file outside', '{\n  "dockerComposeFile": ["ok.yml", "../../x.yml"],\n  "service": "a"\n}', 2, /\.\.\/\.\.\/x\.yml is outside the repository/],
    ['a duplicate key', '{\n  "image": "node:20",\n  "image": "node:18"\n}', 3, /"image" is given twice/],
  ];
  for (const [what, text, line, reason] of cases) {
    it(what, () => {
      const err = errorOf(text);
      expect(err.file).toBe(FILE);
      expect(err.line).toBe(line);
      expect(err.reason).toMatch(reason);
      expect(err.message).toBe(`${FILE}:${line}: ${err.reason}`);
    });
  }

  it('a compose service that is not in the compose files', () => {
    const compose: RepoConfig = { source: 'compose', services: [{ name: 'web', image: 'x', env: {} }], preview: { service: 'web', visibility: 'default' }, workspace: { ide: 'vscode' } };
    const err = errorOf('{\n  "dockerComposeFile": "compose.yml",\n  "service": "app"\n}', { compose });
    expect(err.line).toBe(3);
    expect(err.reason).toMatch(/service: no service named "app" in \.devcontainer\/compose\.yml \(it has web\)/);
  });

  it('compose files that do not exist', () => {
    const err = errorOf('{\n  "dockerComposeFile": "compose.yml",\n  "service": "app"\n}');
    expect(err.line).toBe(2);
    expect(err.reason).toMatch(/no compose file found at \.devcontainer\/compose\.yml/);
  });
});

describe('detection order (readRepoConfig, from the checkout)', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await fs.rm(dir, { recursive: true, force: true });
    dir = undefined;
  });
  async function repo(files: Record<string, string>): Promise<string> {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-detect-'));
    for (const [rel, text] of Object.entries(files)) {
      await fs.mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
      await fs.writeFile(path.join(dir, rel), text);
    }
    return dir;
  }
  const berthYml = 'services:\n  web:\n    build: .\n    port: 3000\n';
  const dc = '{ "image": "node:20" }';

  it('berth.yml wins over everything', async () => {
    const c = await readRepoConfig(await repo({ '.github/berth.yml': berthYml, '.devcontainer/devcontainer.json': dc, '.devcontainer.json': dc, Dockerfile: 'FROM x' }));
    expect(c.source).toBe('berth.yml');
  });
  it('.devcontainer/devcontainer.json before .devcontainer.json and the root Dockerfile', async () => {
    const c = await readRepoConfig(await repo({ '.devcontainer/devcontainer.json': '{ "image": "a:1" }', '.devcontainer.json': '{ "image": "b:1" }', Dockerfile: 'FROM x' }));
    expect(c).toMatchObject({ source: 'devcontainer', file: '.devcontainer/devcontainer.json', services: [{ image: 'a:1' }] });
  });
  it('devcontainer.json before a compose file', async () => {
    const c = await readRepoConfig(await repo({ '.devcontainer.json': '{ "image": "b:1" }', 'compose.yaml': 'services:\n  web:\n    image: nginx\n    ports: ["80"]\n', Dockerfile: 'FROM x' }));
    expect(c.source).toBe('devcontainer');
  });
  it('a compose file before the root Dockerfile', async () => {
    const c = await readRepoConfig(await repo({ 'compose.yaml': 'services:\n  web:\n    image: nginx\n    ports: ["80"]\n', Dockerfile: 'FROM x' }));
    expect(c.source).toBe('compose');
  });
  it('.devcontainer.json before the root Dockerfile', async () => {
    const c = await readRepoConfig(await repo({ '.devcontainer.json': '{ "image": "b:1" }', Dockerfile: 'FROM x' }));
    expect(c).toMatchObject({ source: 'devcontainer', file: '.devcontainer.json', services: [{ image: 'b:1' }] });
  });
  it('the root Dockerfile last', async () => {
    const c = await readRepoConfig(await repo({ Dockerfile: 'FROM x\nEXPOSE 8080\n' }));
    expect(c.source).toBe('Dockerfile');
  });
  it('a devcontainer.json that is a link out of the clone is refused, not read', async () => {
    const d = await repo({ Dockerfile: 'FROM x' });
    await fs.mkdir(path.join(d, '.devcontainer'));
    await fs.symlink('/etc/hostname', path.join(d, '.devcontainer/devcontainer.json'));
    await expect(readRepoConfig(d)).rejects.toThrow(/\.devcontainer\/devcontainer\.json leads outside the repository/);
  });
  it('a bad devcontainer.json fails with its line, it does not fall back to the Dockerfile', async () => {
    const d = await repo({ '.devcontainer/devcontainer.json': '{\n  "image": 5\n}', Dockerfile: 'FROM x' });
    await expect(readRepoConfig(d)).rejects.toThrow(/^\.devcontainer\/devcontainer\.json:2: image: /);
  });
});
