/**
 * git against a workspace disk (Runtime.runDiskGit, worker/source/disk-sync.ts) on the real
 * Docker engine: the checkout moves on, and nothing the workspace wrote into /workspace/.git
 * (fsmonitor, hooks, a rewritten remote, url rewrites) runs on the host or reaches the network.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerRuntime, LABELS } from '../../worker/runtime/docker.js';
import type { WorkspaceRunSpec } from '../../worker/runtime/types.js';
import { fastForwardCheckout } from '../../worker/source/disk-sync.js';
import { BASE_IMAGE_TAG, ensureBaseImage } from '../fixtures/base-image.js';

const exec = promisify(execFile);
const docker = new Dockerode();
const runtime = new DockerRuntime(docker, 'berth-test-h1');
const RUN = randomBytes(3).toString('hex');
let tmp: string;

function spec(name: string): WorkspaceRunSpec {
  return {
    workspaceId: `test-h1dg-${RUN}-${name}`,
    slug: `h1dg-${RUN}-${name}`,
    memoryBytes: 0,
    cpus: 0,
    services: [{ name: 'web', image: BASE_IMAGE_TAG, env: {}, mountsWorkspace: true }],
  };
}

/** A clone the way Berth makes one on the host: its .git is Berth's. */
async function hostRepo(name: string): Promise<{ dir: string; commit: (files: Record<string, string>) => Promise<string> }> {
  const dir = path.join(tmp, name);
  await fs.mkdir(dir, { recursive: true });
  const git = (...args: string[]) => exec('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', ...args], { cwd: dir }).then((r) => r.stdout.trim());
  await git('init', '-q', '-b', 'main');
  return {
    dir,
    async commit(files) {
      for (const [rel, content] of Object.entries(files)) {
        await fs.mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
        await fs.writeFile(path.join(dir, rel), content);
      }
      await git('add', '-A');
      await git('commit', '-q', '-m', 'c');
      return git('rev-parse', 'HEAD');
    },
  };
}

/** runs `command` on the disk as the workspace would (its own image, root in it) */
async function inWorkspace(ws: WorkspaceRunSpec, command: string): Promise<string> {
  const r = await runtime.runTask(ws, 'web', command);
  expect(r.exitCode, r.tail).toBe(0);
  return r.tail;
}

async function exists(p: string): Promise<boolean> {
  return fs.access(p).then(() => true, () => false);
}

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-h1-disk-git-'));
  await ensureBaseImage(docker);
}, 180_000);

afterAll(async () => {
  for (const name of ['attack', 'states', 'mixed', 'probe']) await runtime.removeWorkspace(spec(name).workspaceId).catch(() => undefined);
  const left = await docker.listContainers({ all: true, filters: { label: [`${LABELS.instance}=berth-test-h1`] } });
  await Promise.all(left.filter((c) => c.Labels[LABELS.workspace]?.includes(RUN)).map((c) => docker.getContainer(c.Id).remove({ force: true })));
  await fs.rm(tmp, { recursive: true, force: true });
});

describe('git on a workspace disk', () => {
  it('updates a checkout whose .git the workspace booby-trapped, and nothing of it runs on the host or goes out', async () => {
    const ws = spec('attack');
    const repo = await hostRepo('attack');
    await repo.commit({ 'app.txt': 'one\n' });
    await runtime.ensureDisk(ws);
    await runtime.populateWorkspace(ws, repo.dir);
    // the workspace's files belong to its user, as an app image running as uid 1000 leaves them
    await inWorkspace(ws, 'chown -R 1000:1000 /workspace');

    // A thief listening where the rewritten remote points, on the host.
    let stolen = 0;
    const thief = http.createServer((req, res) => {
      stolen++;
      res.end();
    });
    await new Promise<void>((r) => thief.listen(0, '127.0.0.1', r));
    const thiefUrl = `http://127.0.0.1:${(thief.address() as { port: number }).port}/loot.git`;
    const hostMarker = path.join(tmp, 'pwned');
    // relative paths and .git/hooks: they would work wherever git runs, the host included
    const trap = `#!/bin/sh\ntouch ${hostMarker}; echo ran > trap-ran\n`;
    await inWorkspace(
      ws,
      [
        `printf '%s' '${trap}' > /workspace/.git/hooks/post-merge`,
        'cp /workspace/.git/hooks/post-merge /workspace/.git/hooks/reference-transaction',
        'cp /workspace/.git/hooks/post-merge /workspace/trap.sh',
        'chmod +x /workspace/.git/hooks/* /workspace/trap.sh',
        `cat >> /workspace/.git/config <<'EOF'
[core]
\tfsmonitor = ./trap.sh
[remote "origin"]
\turl = ${thiefUrl}
[url "${thiefUrl}"]
\tinsteadOf = /src
EOF`,
      ].join('\n'),
    );

    const sha = await repo.commit({ 'app.txt': 'two\n' });
    const sync = await fastForwardCheckout(runtime, ws, { sourceGitDir: path.join(repo.dir, '.git'), sha, branch: 'main' });

    expect(sync).toEqual({ result: 'updated' });
    expect(await inWorkspace(ws, 'cat /workspace/app.txt; stat -c %u /workspace/app.txt; ls /workspace')).toMatch(/^two\n1000\n/);
    expect(await inWorkspace(ws, 'ls /workspace')).not.toContain('trap-ran'); // not even in its own box
    expect(await exists(hostMarker)).toBe(false);
    expect(stolen).toBe(0);
    thief.close();
  }, 120_000);

  it('reports up-to-date, local changes, diverged and no checkout, and keeps people\'s work', async () => {
    const ws = spec('states');
    const repo = await hostRepo('states');
    const first = await repo.commit({ 'a.txt': 'a\n', 'b.txt': 'b\n' });
    await runtime.ensureDisk(ws);
    const sync = (sha: string) => fastForwardCheckout(runtime, ws, { sourceGitDir: path.join(repo.dir, '.git'), sha, branch: 'feature/x' });

    expect(await sync(first)).toEqual({ result: 'not-a-repository', detail: '/workspace holds no git checkout' });
    await runtime.populateWorkspace(ws, repo.dir);
    expect(await sync(first)).toEqual({ result: 'up-to-date' });

    await inWorkspace(ws, 'echo mine >> /workspace/b.txt');
    const second = await repo.commit({ 'a.txt': 'a2\n' });
    expect(await sync(second)).toEqual({ result: 'local-changes', detail: 'local changes in b.txt' });
    expect(await inWorkspace(ws, 'cat /workspace/a.txt /workspace/b.txt')).toBe('a\nb\nmine');

    // a commit made in the workspace: the branch can no longer be fast-forwarded
    const committed = await runtime.runDiskGit(ws, { script: 'git -c user.name=w -c user.email=w@w commit -qam local && git log --format=%s -1' });
    expect(committed).toMatchObject({ exitCode: 0, output: 'local', timedOut: false });
    expect(await sync(second)).toEqual({ result: 'diverged', detail: 'the checkout has commits that are not on feature/x' });
    expect(await inWorkspace(ws, 'cat /workspace/b.txt')).toBe('b\nmine');
  }, 120_000);

  it('updates files of the app\'s user on a disk whose .git is root\'s', async () => {
    const ws = spec('mixed');
    const repo = await hostRepo('mixed');
    await repo.commit({ 'sub/c.txt': 'one\n' });
    await runtime.ensureDisk(ws);
    await runtime.populateWorkspace(ws, repo.dir);
    await inWorkspace(ws, 'chown -R 1000:1000 /workspace/sub && chmod 755 /workspace/sub && chmod 644 /workspace/sub/c.txt');
    const sha = await repo.commit({ 'sub/c.txt': 'two\n' });
    expect(await fastForwardCheckout(runtime, ws, { sourceGitDir: path.join(repo.dir, '.git'), sha, branch: 'main' })).toEqual({ result: 'updated' });
    expect(await inWorkspace(ws, 'cat /workspace/sub/c.txt')).toBe('two');
  }, 120_000);

  it('runs in a sealed box with a time limit, and answers whether a path exists without following links', async () => {
    const ws = spec('probe');
    await runtime.ensureDisk(ws);
    // the shell's own view: no capabilities, a read-only root, none of Berth's environment
    // (no .git yet: it runs as nobody)
    const box = await runtime.runDiskGit(ws, {
      script: 'set; while read k v; do [ "$k" = CapEff: ] && echo "caps $v"; done < /proc/self/status; (echo x > /probe) 2>/dev/null || echo rootfs-read-only',
    });
    expect(box.output).toContain('caps 0000000000000000');
    expect(box.output).toContain('rootfs-read-only');
    expect(box.output).not.toMatch(/PRIVATE_KEY|DATABASE_URL|REDIS|WEBHOOK_SECRET|ghs_/i);

    const slow = await runtime.runDiskGit(ws, { script: 'while :; do :; done', timeoutMs: 1500 });
    expect(slow).toMatchObject({ exitCode: -1, timedOut: true });

    expect(await runtime.diskEntryExists(ws, '.git/HEAD')).toBe(false);
    await runtime.runTask(ws, 'web', 'mkdir -p /workspace/.git && echo ref > /workspace/.git/HEAD && ln -s / /workspace/.git/root && ln -s /etc/passwd /workspace/pw');
    expect(await runtime.diskEntryExists(ws, '.git/HEAD')).toBe(true);
    expect(await runtime.diskEntryExists(ws, 'pw')).toBe(true);
    // a link is resolved inside the container by the engine, never on the host
    await fs.writeFile(path.join(tmp, 'host-only'), 'x');
    expect(await runtime.diskEntryExists(ws, `.git/root${tmp}/host-only`)).toBe(false);
  }, 120_000);
});
