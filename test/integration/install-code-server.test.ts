import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const SCRIPT = resolve('scripts/install-code-server.sh');
const REAL_NODE = process.execPath;

/** Runs the script; resolves with its exit code and output whatever the code. */
async function script(args: string[], env: NodeJS.ProcessEnv) {
  try {
    const { stdout, stderr } = await run('bash', [SCRIPT, ...args], { env, timeout: 20 * 60_000 });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

/**
 * scripts/install-code-server.sh (VS Code in the browser): installs with the machine's Node,
 * and on a Node it cannot use says why and what to do (npm start then falls back to the
 * terminal IDE). Other Nodes are played by a `node` first on PATH that reports another version.
 */
describe('scripts/install-code-server.sh', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-cs-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** a PATH whose `node` says it is `version`; `delegate`: anything else goes to the real node */
  async function fakeNode(version: string, delegate: boolean) {
    const bin = join(dir, `node-${version}`, 'bin');
    await mkdir(bin, { recursive: true });
    const body = delegate ? `if [ "$1" = "--version" ]; then echo ${version}; exit 0; fi\nexec ${REAL_NODE} "$@"` : `echo ${version}`;
    await writeFile(join(bin, 'node'), `#!/bin/sh\n${body}\n`);
    await chmod(join(bin, 'node'), 0o755);
    const home = join(dir, `home-${version}`);
    await mkdir(home, { recursive: true });
    // a HOME of its own: no ~/.npmrc nodedir, no node-gyp cache unless the test makes one
    return { PATH: `${bin}:${process.env.PATH}`, HOME: home, XDG_CACHE_HOME: join(home, '.cache') };
  }

  it('installs (or finds installed) code-server for the machine\'s Node, with a node that matches it', async () => {
    const target = join(resolve('.data'), 'code-server');
    const res = await script([target], { ...process.env });
    expect(res.code, res.out).toBe(0);
    expect(res.out).toMatch(/\[code-server\] (already installed|installed)/);
    expect(readFileSync(join(target, '.berth-installed'), 'utf8')).toContain(`node ${process.version}`);
    expect(existsSync(join(target, 'node_modules/code-server/out/node/entry.js'))).toBe(true);
    const { stdout } = await run(join(target, 'node'), ['--version']);
    expect(stdout.trim()).toBe(process.version);
    // what it uses, found as node-gyp would
    const check = await script(['--check'], { ...process.env });
    expect(check.code, check.out).toBe(0);
    expect(check.out).toMatch(new RegExp(`node ${process.version.replace(/\./g, '\\.')} .*code-server \\d+\\.\\d+\\.\\d+, headers in /\\S+/include/node, node-gyp /\\S+node-gyp\\.js`));
  });

  it('says clearly that it cannot use a Node other than 20, 22 or 24', async () => {
    const env = await fakeNode('v18.19.1', false);
    const res = await script([join(dir, 'never')], env);
    expect(res.code).toBe(1);
    expect(res.out).toContain('ERROR: code-server is built for Node 20, 22 or 24');
    expect(res.out).toContain('v18.19.1');
    expect(res.out).toContain('VS Code IDEs fall back to the terminal');
    expect(existsSync(join(dir, 'never'))).toBe(false);
  });

  it('picks the release built for Node 22 and says which headers are missing when only another version\'s are there', async () => {
    const env = await fakeNode('v22.11.0', true);
    const res = await script(['--check'], env);
    expect(res.code).toBe(1);
    expect(res.out).toContain('the headers of node v22.11.0 (include/node/node.h), needed to build code-server 4.117.0\'s native modules, were not found');
    expect(res.out).toContain(`${env.XDG_CACHE_HOME}/node-gyp/22.11.0`); // where node-gyp keeps downloaded headers
    if (existsSync('/usr/include/node/node_version.h')) expect(res.out).toMatch(/found only other versions: .*\/usr \(node \d+\.\d+\.\d+\)/);
    expect(res.out).toContain('VS Code IDEs fall back to the terminal');
  });

  it('finds Node 24\'s headers in node-gyp\'s cache, as node-gyp would', async () => {
    const env = await fakeNode('v24.3.0', true);
    const headers = join(env.XDG_CACHE_HOME, 'node-gyp', '24.3.0', 'include', 'node');
    await mkdir(headers, { recursive: true });
    await writeFile(join(headers, 'node.h'), '/* test */\n');
    await writeFile(join(headers, 'node_version.h'), '#define NODE_MAJOR_VERSION 24\n#define NODE_MINOR_VERSION 3\n#define NODE_PATCH_VERSION 0\n');
    const res = await script(['--check'], env);
    expect(res.code, res.out).toBe(0);
    expect(res.out).toContain('node v24.3.0');
    expect(res.out).toMatch(/code-server 4\.\d+\.\d+, headers in .*node-gyp\/24\.3\.0\/include\/node/);
  });
});
