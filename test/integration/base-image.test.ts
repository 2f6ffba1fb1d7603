/**
 * The locally built base image and the sample app on the real Docker engine:
 * `berth-base:node20` runs node and busybox, and the sample app's Dockerfile builds on it,
 * migrates, seeds and answers /health through a published port.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Dockerode from 'dockerode';
import tar from 'tar-fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRepoConfig } from '../../lib/repo-config.js';
import { BASE_IMAGE_TAG, ensureBaseImage, parseLdd, runInImage } from '../fixtures/base-image.js';
import { SAMPLE_MESSAGE, SAMPLE_SEEDED_NAMES, sampleAppFiles } from '../fixtures/sample-app.js';

const docker = new Dockerode();
const runId = randomBytes(4).toString('hex');
const sampleTag = `berth-test-sample:${runId}`;
const containers: Dockerode.Container[] = [];

beforeAll(async () => {
  await ensureBaseImage(docker);
}, 120_000);

afterAll(async () => {
  for (const c of containers) await c.remove({ force: true }).catch(() => undefined);
  await docker.getImage(sampleTag).remove({ force: true }).catch(() => undefined);
});

describe('parseLdd', () => {
  it('keeps resolved libraries and the loader, skips the vdso', () => {
    const out = [
      '\tlinux-vdso.so.1 (0x00007ffd1b9f2000)',
      '\tlibstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6 (0x00007f0e1a200000)',
      '\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f0e19e00000)',
      '\t/lib64/ld-linux-x86-64.so.2 (0x00007f0e1a5f0000)',
    ].join('\n');
    expect(parseLdd(out)).toEqual([
      '/lib/x86_64-linux-gnu/libstdc++.so.6',
      '/lib/x86_64-linux-gnu/libc.so.6',
      '/lib64/ld-linux-x86-64.so.2',
    ]);
  });

  it('fails loudly on a missing library', () => {
    expect(() => parseLdd('\tlibnope.so.1 => not found', 'node')).toThrow(/libnope/);
  });
});

describe(`${BASE_IMAGE_TAG}`, () => {
  it('is returned by ensureBaseImage without rebuilding', async () => {
    const before = await docker.getImage(BASE_IMAGE_TAG).inspect();
    expect(await ensureBaseImage(docker)).toBe(BASE_IMAGE_TAG);
    const after = await docker.getImage(BASE_IMAGE_TAG).inspect();
    expect(after.Id).toBe(before.Id);
    expect(after.Config.Cmd).toEqual(['sh']);
    expect(after.Config.Env).toContain('PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
  });

  it('runs the host node', async () => {
    const r = await runInImage(docker, BASE_IMAGE_TAG, ['node', '-e', 'console.log(JSON.stringify({ v: process.version, sum: 40 + 2 }))']);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ v: process.version, sum: 42 });
  });

  it('has a busybox shell, wget, env and a sticky /tmp', async () => {
    const r = await runInImage(docker, BASE_IMAGE_TAG, [
      'sh',
      '-c',
      'echo hi && which wget && /usr/bin/env true && test -k /tmp && test -w /tmp && id -un',
    ]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout.split('\n')).toEqual(['hi', '/usr/bin/wget', 'root', '']);
  });
});

describe('sample app', () => {
  it('ships a berth.yml Berth accepts', () => {
    const files = sampleAppFiles();
    const config = parseRepoConfig(files['.github/berth.yml']);
    expect(JSON.stringify(config)).toContain('node migrate.js');
    expect(files['message.txt'].trim()).toBe(SAMPLE_MESSAGE);
    expect(sampleAppFiles({ 'seed.js': null, 'extra.txt': 'x' })).toMatchObject({ 'extra.txt': 'x' });
    expect(sampleAppFiles({ 'seed.js': null })['seed.js']).toBeUndefined();
  });

  it('builds on the base image, migrates, seeds and answers /health', async () => {
    // Build from the helper's files (as tests commit them), not from the fixture directory.
    const ctx = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-sample-ctx-'));
    try {
      for (const [rel, content] of Object.entries(sampleAppFiles())) {
        await fs.mkdir(path.dirname(path.join(ctx, rel)), { recursive: true });
        await fs.writeFile(path.join(ctx, rel), content);
      }
      const stream = await docker.buildImage(tar.pack(ctx), { t: sampleTag, labels: { 'berth.test': '1' } });
      const events = await new Promise<Array<{ stream?: string; error?: string }>>((resolve, reject) =>
        docker.modem.followProgress(stream, (err: Error | null, res: any[]) => (err ? reject(err) : resolve(res))),
      );
      const failed = events.find((e) => e.error);
      if (failed) throw new Error(`sample build failed: ${failed.error}\n${events.map((e) => e.stream ?? '').join('')}`);
    } finally {
      await fs.rm(ctx, { recursive: true, force: true });
    }

    const container = await docker.createContainer({
      Image: sampleTag,
      Cmd: ['sh', '-c', 'node migrate.js && node seed.js && exec node server.js'],
      Env: ['NODE_ENV=development', 'BERTH_SAMPLE_MODE=dev'],
      ExposedPorts: { '3000/tcp': {} },
      Labels: { 'berth.test': '1' },
      HostConfig: { PortBindings: { '3000/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] } },
    });
    containers.push(container);
    await container.start();
    const info = await container.inspect();
    const hostPort = info.NetworkSettings.Ports['3000/tcp']?.[0]?.HostPort;
    expect(hostPort).toBeTruthy();
    const base = `http://127.0.0.1:${hostPort}`;

    // Every fetch carries a timeout: while nothing listens in the container yet, docker-proxy
    // accepts and then resets the connection, and Node 20's fetch can wait forever on that.
    const get = (p: string, init: RequestInit = {}) => fetch(`${base}${p}`, { ...init, signal: AbortSignal.timeout(1_500) });
    const deadline = Date.now() + 30_000;
    let health: Response | undefined;
    while (Date.now() < deadline) {
      health = await get('/health').catch(() => undefined);
      if (health?.status === 200) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(health?.status).toBe(200);
    expect(await health!.text()).toBe('ok');

    const home = await (await get('/')).text();
    expect(home).toContain(SAMPLE_MESSAGE);
    for (const name of SAMPLE_SEEDED_NAMES) expect(home).toContain(name);
    expect(home).toContain('BERTH_SAMPLE_MODE: dev');
    expect(home).toContain('dev mode: yes');

    const headers = await (await get('/echo-headers', { headers: { 'x-probe': 'yes' } })).json();
    expect(headers['x-probe']).toBe('yes');

    // Stops promptly: the server handles SIGTERM although it runs as PID 1.
    const stopStarted = Date.now();
    await container.stop({ t: 10 });
    expect(Date.now() - stopStarted).toBeLessThan(5_000);
  }, 120_000);
});
