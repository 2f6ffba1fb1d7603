/**
 * DockerRuntime against the real Docker engine. Images build FROM the locally imported
 * `berth-base:node20` (no registry here). Every object is labelled with a workspace id that
 * starts with this run's id, and afterAll removes whatever still carries it.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { StepFailedError } from '../../lib/errors.js';
import { DockerRuntime, LABELS } from '../../worker/runtime/docker.js';
import type { BuildImageOptions, ServiceRunSpec, WorkspaceRunSpec } from '../../worker/runtime/types.js';
import { ensureBaseImage } from '../fixtures/base-image.js';

const docker = new Dockerode();
const runtime = new DockerRuntime(docker);
const RUN = randomBytes(3).toString('hex');
const IMAGE_LABEL = 'berth.test-run';
let tmp: string;
let appImage: string;

/** Answers /health, serves files from /workspace, and asks its peer (PEER_URL) for /hello. */
const SERVER_JS = `
const http = require('http');
const fs = require('fs');
http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  try {
    if (url.pathname === '/health') return res.end('ok');
    if (url.pathname === '/hello') return res.end('hello from ' + process.env.NAME);
    if (url.pathname === '/file') return res.end(fs.readFileSync('/workspace/' + url.searchParams.get('name')));
    if (url.pathname === '/peer') return res.end(await (await fetch(process.env.PEER_URL)).text());
    res.statusCode = 404; res.end('not found');
  } catch (err) { res.statusCode = 500; res.end(String(err)); }
}).listen(Number(process.env.PORT || 3000), () => console.log('listening on', process.env.PORT));
`;

function workspaceId(name: string): string {
  return `test-${RUN}-${name}`;
}

function slugOf(name: string): string {
  return `rt-${RUN}-${name}`;
}

function buildOpts(contextDir: string, over: Partial<BuildImageOptions> = {}): BuildImageOptions & { logs: string[] } {
  const logs: string[] = [];
  return {
    contextDir,
    dockerfile: 'Dockerfile',
    args: {},
    tag: `berth-test/${RUN}/app:${randomBytes(3).toString('hex')}`,
    labels: { [IMAGE_LABEL]: RUN },
    noCache: false,
    onLog: (t) => logs.push(t),
    logs,
    ...over,
  };
}

async function makeContext(name: string, files: Record<string, string>): Promise<string> {
  const dir = path.join(tmp, name);
  for (const [rel, content] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await fs.writeFile(path.join(dir, rel), content);
  }
  return dir;
}

function spec(name: string, services: ServiceRunSpec[], over: Partial<WorkspaceRunSpec> = {}): WorkspaceRunSpec {
  return { workspaceId: workspaceId(name), slug: slugOf(name), services, memoryBytes: 256 * 1024 ** 2, cpus: 1, ...over };
}

function webService(over: Partial<ServiceRunSpec> = {}): ServiceRunSpec {
  return {
    name: 'web',
    image: appImage,
    command: 'node /workspace/server.js',
    env: { NAME: 'web', PEER_URL: 'http://api:4000/hello' },
    port: 3000,
    health: '/health',
    mountsWorkspace: true,
    ...over,
  };
}

async function labelled(id: string) {
  const filters = { label: [`${LABELS.workspace}=${id}`] };
  const [containers, networks, volumes] = await Promise.all([
    docker.listContainers({ all: true, filters }),
    docker.listNetworks({ filters }),
    docker.listVolumes({ filters }),
  ]);
  return { containers, networks, volumes: volumes.Volumes ?? [] };
}

async function get(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  return { status: res.status, body: await res.text() };
}

async function timed<T>(label: string, fn: () => Promise<T>): Promise<T> {
  const started = Date.now();
  try {
    return await fn();
  } finally {
    console.log(`[timing] ${label}: ${Date.now() - started} ms`);
  }
}

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-runtime-test-'));
  await ensureBaseImage(docker);
  const ctx = await makeContext('app', {
    Dockerfile: 'FROM berth-base:node20\nWORKDIR /app\nCOPY server.js .\nCMD ["node", "/app/server.js"]\n',
    'server.js': SERVER_JS,
  });
  appImage = await runtime.buildImage(buildOpts(ctx));
}, 180_000);

afterAll(async () => {
  const ids = (await runtime.listWorkspaceIds()).filter((id) => id.startsWith(`test-${RUN}-`));
  for (const id of ids) await runtime.removeWorkspace(id);
  const images = await docker.listImages({ filters: { label: [`${IMAGE_LABEL}=${RUN}`] } });
  for (const image of images) await docker.getImage(image.Id).remove({ force: true }).catch(() => undefined);
  await docker.pruneImages({ filters: { dangling: ['true'], label: [`${IMAGE_LABEL}=${RUN}`] } }).catch(() => undefined);
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
}, 120_000);

describe('ping', () => {
  it('answers when the engine is up and names the address when it is not', async () => {
    await runtime.ping();
    const nowhere = new DockerRuntime(new Dockerode({ socketPath: path.join(os.tmpdir(), `no-docker-${RUN}.sock`) }));
    await expect(nowhere.ping()).rejects.toThrow(/Docker engine is not reachable at .*no-docker-/);
  });
});

describe('buildImage', () => {
  it('builds a context and streams the Dockerfile steps', async () => {
    const ctx = await makeContext('build-ok', {
      Dockerfile: 'FROM berth-base:node20\nARG GREETING\nRUN echo "greeting=$GREETING" > /greeting\nCOPY . /src\nRUN test ! -e /src/secret.txt && test -e /src/keep.txt\n',
      '.dockerignore': 'secret.txt\n',
      'secret.txt': 'do not send',
      'keep.txt': 'send me',
    });
    const labels = { [IMAGE_LABEL]: RUN, 'berth.build': 'b1' };
    const opts = buildOpts(ctx, { args: { GREETING: 'hi' }, labels });
    const id = await timed('build (uncached)', () => runtime.buildImage(opts));
    expect(id).toMatch(/^sha256:[0-9a-f]{64}$/);
    const log = opts.logs.join('');
    expect(log).toContain('FROM berth-base:node20');
    expect(log).toContain('RUN echo "greeting=$GREETING" > /greeting');
    const info = await docker.getImage(opts.tag).inspect();
    expect(info.Id).toBe(id);
    expect(info.Config.Labels).toMatchObject({ [IMAGE_LABEL]: RUN, 'berth.build': 'b1' });

    const again = buildOpts(ctx, { args: { GREETING: 'hi' }, labels, tag: opts.tag });
    expect(await timed('build (cached)', () => runtime.buildImage(again))).toBe(id);
    expect(again.logs.join('')).toContain('Using cache');
  }, 120_000);

  it('fails with the tail of the log when a step fails', async () => {
    const ctx = await makeContext('build-fail', {
      Dockerfile: 'FROM berth-base:node20\nRUN echo about to fail && false\n',
    });
    const err = await runtime.buildImage(buildOpts(ctx)).catch((e) => e);
    expect(err).toBeInstanceOf(StepFailedError);
    expect(err.step).toBe('build');
    expect(err.message).toMatch(/^docker build failed: .*returned a non-zero code: 1/);
    expect(err.logTail).toContain('RUN echo about to fail && false');
    expect(err.logTail).toContain('about to fail');
  }, 60_000);

  it('names the missing Dockerfile', async () => {
    const ctx = await makeContext('build-missing', { 'README.md': 'no dockerfile here' });
    const err = await runtime.buildImage(buildOpts(ctx, { dockerfile: 'docker/web.Dockerfile' })).catch((e) => e);
    expect(err).toBeInstanceOf(StepFailedError);
    expect(err.message).toContain('docker/web.Dockerfile');
    expect(err.message).toMatch(/not found/i);
  });

  it('stops when the signal aborts', async () => {
    const ctx = await makeContext('build-abort', { Dockerfile: 'FROM berth-base:node20\nRUN sleep 30\n' });
    const controller = new AbortController();
    const opts = buildOpts(ctx, {
      noCache: true,
      signal: controller.signal,
      onLog: (t) => {
        if (t.includes('RUN sleep')) setTimeout(() => controller.abort(), 300);
      },
    });
    const started = Date.now();
    const err = await runtime.buildImage(opts).catch((e) => e);
    expect(err.name).toBe('AbortError');
    expect(Date.now() - started).toBeLessThan(15_000);
  }, 60_000);
});

describe('ensureImage', () => {
  it('accepts a local image and explains one that cannot be pulled', async () => {
    await runtime.ensureImage('berth-base:node20');
    const err = await timed('failed pull', () => runtime.ensureImage(`berth-missing-${RUN}/nothing:1`).catch((e) => e));
    expect(err).toBeInstanceOf(StepFailedError);
    expect(err.message).toContain(`image berth-missing-${RUN}/nothing:1 is not available on this Docker host and could not be pulled: `);
  }, 120_000);
});

describe('a workspace', () => {
  const api: ServiceRunSpec = {
    name: 'api',
    image: '', // set in beforeAll (appImage)
    env: { NAME: 'api' },
    port: 4000,
    data: '/data',
    mountsWorkspace: false,
  };
  let ws: WorkspaceRunSpec;

  beforeAll(() => {
    ws = spec('main', [webService(), { ...api, image: appImage }]);
  });

  it('creates its disk once', async () => {
    expect(await runtime.ensureDisk(ws)).toEqual({ created: true });
    expect(await runtime.ensureDisk(ws)).toEqual({ created: false });
    const { networks, volumes } = await labelled(ws.workspaceId);
    expect(networks.map((n) => n.Name)).toEqual([`berth-${ws.slug}`]);
    expect(volumes.map((v) => v.Name).sort()).toEqual([`berth-${ws.slug}-workspace`, `berth-${ws.slug}_api.data`]);
    for (const v of volumes) expect(v.Labels).toMatchObject({ [LABELS.slug]: ws.slug });
  });

  it('copies a checkout onto the disk, keeping modes and .git', async () => {
    const src = await makeContext('checkout', {
      'server.js': SERVER_JS,
      'bin/run.sh': '#!/bin/sh\necho ran\n',
      '.git/HEAD': 'ref: refs/heads/main\n',
      'private.txt': 'secret-ish',
    });
    await fs.chmod(path.join(src, 'bin/run.sh'), 0o755);
    await fs.chmod(path.join(src, 'private.txt'), 0o640);
    await timed('populateWorkspace', () => runtime.populateWorkspace(ws, src));
    const result = await runtime.runTask(ws, 'web', 'stat -c "%a %n" bin/run.sh private.txt && cat .git/HEAD && ./bin/run.sh');
    expect(result.exitCode).toBe(0);
    expect(result.tail).toContain('755 bin/run.sh');
    expect(result.tail).toContain('640 private.txt');
    expect(result.tail).toContain('ref: refs/heads/main');
    expect(result.tail).toContain('ran');
  }, 60_000);

  it('runs tasks with the workspace, env and network, and reports failures', async () => {
    const seen: string[] = [];
    const ok = await timed('runTask', () =>
      runtime.runTask(ws, 'web', 'echo seeded > /workspace/seeded.txt && pwd && echo "port=$PORT name=$NAME"', (t) => seen.push(t)),
    );
    expect(ok).toEqual({ exitCode: 0, tail: '/workspace\nport=3000 name=web', oomKilled: false });
    expect(seen.join('')).toContain('port=3000 name=web');

    const bad = await runtime.runTask(ws, 'web', 'for i in $(seq 1 30); do echo line $i; done; echo oops >&2; exit 3');
    expect(bad.exitCode).toBe(3);
    expect(bad.oomKilled).toBe(false);
    expect(bad.tail.split('\n')).toHaveLength(20);
    // stderr written right after a burst of stdout must still end the tail.
    expect(bad.tail).toMatch(/^line 12\n[^]*line 30\noops$/);

    const data = await runtime.runTask(ws, 'api', 'echo kept > /data/db.txt && pwd');
    expect(data.exitCode).toBe(0);
    // task containers are removed: a finished one in the background while the start goes on
    await vi.waitFor(async () => expect((await labelled(ws.workspaceId)).containers).toEqual([]), { timeout: 15_000, interval: 200 });
  }, 60_000);

  it('starts services that answer, reach each other by name and keep the disk across restarts', async () => {
    const endpoints = await timed('startServices', () => runtime.startServices(ws));
    expect(endpoints.map((e) => e.service)).toEqual(['api', 'web']); // image services first
    const web = endpoints.find((e) => e.service === 'web')!;
    const apiEp = endpoints.find((e) => e.service === 'api')!;
    await timed('waitHealthy (web)', () => runtime.waitHealthy(ws, web, 3000, '/health', 20_000));
    await runtime.waitHealthy(ws, apiEp, 4000, '/health', 20_000);

    expect(await get(`http://${web.host}:3000/health`)).toEqual({ status: 200, body: 'ok' });
    expect(await get(`http://${web.host}:3000/file?name=seeded.txt`)).toEqual({ status: 200, body: 'seeded\n' });
    expect(await get(`http://${web.host}:3000/peer`)).toEqual({ status: 200, body: 'hello from api' });

    const info = await docker.getContainer(web.containerId).inspect();
    expect(info.Name).toBe(`/berth-${ws.slug}_web`);
    expect(info.Config.Labels).toMatchObject({
      [LABELS.workspace]: ws.workspaceId,
      [LABELS.slug]: ws.slug,
      [LABELS.service]: 'web',
      [LABELS.role]: 'service',
    });
    expect(info.HostConfig.RestartPolicy?.Name).toBe('unless-stopped');
    expect(info.HostConfig.Memory).toBe(ws.memoryBytes);
    expect(info.Config.WorkingDir).toBe('/workspace');

    const status = await runtime.status(ws.workspaceId);
    expect(status.map((s) => [s.service, s.state]).sort()).toEqual([['api', 'running'], ['web', 'running']]);

    await runtime.runTask(ws, 'web', 'echo survived > /workspace/later.txt');
    await timed('stopServices', () => runtime.stopServices(ws.workspaceId));
    expect(await runtime.status(ws.workspaceId)).toEqual([]);
    expect((await labelled(ws.workspaceId)).volumes).toHaveLength(2);

    const again = await runtime.startServices(ws);
    const web2 = again.find((e) => e.service === 'web')!;
    await timed('restart to healthy', () => runtime.waitHealthy(ws, web2, 3000, '/health', 20_000));
    expect(await get(`http://${web2.host}:3000/file?name=later.txt`)).toEqual({ status: 200, body: 'survived\n' });
    const data = await runtime.runTask(ws, 'api', 'cat /data/db.txt');
    expect(data.tail).toBe('kept');
  }, 120_000);

  it('is removed completely', async () => {
    expect(await runtime.listWorkspaceIds()).toContain(ws.workspaceId);
    await runtime.removeWorkspace(ws.workspaceId);
    expect(await labelled(ws.workspaceId)).toEqual({ containers: [], networks: [], volumes: [] });
    expect(await runtime.listWorkspaceIds()).not.toContain(ws.workspaceId);
  }, 60_000);
});

describe('waitHealthy failures', () => {
  it('names the exit code of a service that exits immediately', async () => {
    const ws = spec('exits', [webService({ command: 'echo boom; exit 7' })]);
    const [web] = await runtime.startServices(ws);
    const err = await timed('crash detected', () => runtime.waitHealthy(ws, web, 3000, '/health', 15_000).catch((e) => e));
    expect(err).toBeInstanceOf(StepFailedError);
    expect(err.step).toBe('start');
    expect(err.message).toBe('service web exited with code 7 before becoming healthy');
    expect(err.logTail).toContain('boom');
    await runtime.removeWorkspace(ws.workspaceId);
  }, 60_000);

  it('says when a service was killed for memory', async () => {
    const ws = spec('oom', [webService({ command: 'node -e "const a=[];for(;;)a.push(Buffer.alloc(1e6,1))"' })], {
      memoryBytes: 48 * 1024 ** 2,
    });
    const [web] = await runtime.startServices(ws);
    const err = await runtime.waitHealthy(ws, web, 3000, '/health', 20_000).catch((e) => e);
    expect(err).toBeInstanceOf(StepFailedError);
    expect(err.message).toMatch(/^service web exited with code 137 \(killed: out of memory\) before becoming healthy$/);
    await runtime.removeWorkspace(ws.workspaceId);
  }, 60_000);

  it('times out on a service that never answers', async () => {
    const ws = spec('silent', [webService({ command: 'echo waiting forever; sleep 600' })]);
    const [web] = await runtime.startServices(ws);
    const err = await runtime.waitHealthy(ws, web, 3000, '/health', 2_000).catch((e) => e);
    expect(err).toBeInstanceOf(StepFailedError);
    expect(err.message).toBe('service web did not answer /health on port 3000 within 2s');
    expect(err.logTail).toContain('waiting forever');
    await timed('stopServices (sleep as child of tini)', () => runtime.stopServices(ws.workspaceId));
    await runtime.removeWorkspace(ws.workspaceId);
  }, 60_000);
});
