/**
 * What the runtime does against code from a branch, on the real Docker engine: time limits on
 * builds and tasks, the reduced privileges of workspace containers, limits on builds, no way to
 * Berth's PostgreSQL, Redis or Docker API, and no running of another workspace's image.
 * Every object is labelled with a workspace id that starts with this run's id (slugs `h4-…`).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StepFailedError } from '../../lib/errors.js';
import { DockerRuntime, LABELS, WORKSPACE_CAPABILITIES, dockerNames } from '../../worker/runtime/docker.js';
import type { BuildImageOptions, ServiceRunSpec, WorkspaceRunSpec } from '../../worker/runtime/types.js';
import { ensureBaseImage } from '../fixtures/base-image.js';

const docker = new Dockerode();
const runtime = new DockerRuntime(docker, 'berth-h4test');
const RUN = randomBytes(3).toString('hex');
const IMAGE_LABEL = 'berth.test-run';
let tmp: string;
let appImage: string;

/**
 * A database-like entry point, as postgres' image does it: as root, make the data folder and
 * give it to an unprivileged user (CHOWN), write into it although it is 0700 and not root's
 * (DAC_OVERRIDE), then drop to that user (SETGID, SETUID) and serve as that user.
 */
const DROPS_PRIVILEGES_JS = `
const fs = require('fs');
const http = require('http');
fs.mkdirSync('/pgdata', { recursive: true });
fs.chownSync('/pgdata', 999, 999);
fs.chmodSync('/pgdata', 0o700);
fs.writeFileSync('/pgdata/PG_VERSION', '16\\n');
fs.chownSync('/pgdata/PG_VERSION', 999, 999);
process.setgid(999);
process.setuid(999);
fs.writeFileSync('/pgdata/postmaster.pid', String(process.pid));
http.createServer((req, res) => res.end('uid=' + process.getuid() + ' ' + fs.readFileSync('/pgdata/PG_VERSION', 'utf8').trim()))
  .listen(5432, () => console.log('ready'));
`;

const workspaceId = (name: string) => `test-h4-${RUN}-${name}`;
const slugOf = (name: string) => `h4-${RUN}-${name}`;

function spec(name: string, services: ServiceRunSpec[], over: Partial<WorkspaceRunSpec> = {}): WorkspaceRunSpec {
  return { workspaceId: workspaceId(name), slug: slugOf(name), services, memoryBytes: 256 * 1024 ** 2, cpus: 1, pidsLimit: 128, ...over };
}

function service(over: Partial<ServiceRunSpec> = {}): ServiceRunSpec {
  return { name: 'web', image: appImage, env: {}, mountsWorkspace: true, ...over };
}

function buildOpts(contextDir: string, over: Partial<BuildImageOptions> = {}): BuildImageOptions & { logs: string[] } {
  const logs: string[] = [];
  return {
    contextDir,
    dockerfile: 'Dockerfile',
    args: {},
    tag: `berth-test/${RUN}/h4:${randomBytes(3).toString('hex')}`,
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

async function serviceContainer(id: string, name: string) {
  const [c] = await docker.listContainers({ all: true, filters: { label: [`${LABELS.workspace}=${id}`, `${LABELS.role}=service`, `${LABELS.service}=${name}`] } });
  if (!c) throw new Error(`no ${name} container of ${id}`);
  return docker.getContainer(c.Id);
}

async function exec(container: Dockerode.Container, script: string): Promise<string> {
  const e = await container.exec({ Cmd: ['sh', '-c', script], AttachStdout: true, AttachStderr: true });
  const stream = await e.start({});
  const chunks: Buffer[] = [];
  const out = { write: (c: Buffer) => chunks.push(Buffer.from(c)) } as unknown as NodeJS.WritableStream;
  docker.modem.demuxStream(stream, out, out);
  await new Promise((r) => stream.on('end', r));
  return Buffer.concat(chunks).toString('utf8');
}

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-h4-hardening-'));
  await ensureBaseImage(docker);
  const ctx = await makeContext('app', {
    Dockerfile: 'FROM berth-base:node20\nWORKDIR /app\nCOPY drops-privileges.js .\n',
    'drops-privileges.js': DROPS_PRIVILEGES_JS,
  });
  appImage = await runtime.buildImage(buildOpts(ctx));
}, 180_000);

afterAll(async () => {
  const ids = (await runtime.listWorkspaceIds()).filter((id) => id.startsWith(`test-h4-${RUN}-`));
  for (const id of ids) await runtime.removeWorkspace(id);
  const images = await docker.listImages({ filters: { label: [`${IMAGE_LABEL}=${RUN}`] } });
  for (const image of images) await docker.getImage(image.Id).remove({ force: true }).catch(() => undefined);
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
}, 120_000);

describe('time limits', () => {
  it('a task past its limit is killed and removed, with what it printed', async () => {
    const s = spec('task-limit', [service()]);
    const started = Date.now();
    const result = await runtime.runTask(s, 'web', 'echo migrating; sleep infinity', undefined, { timeoutMs: 2_000 });
    expect(result.timedOut).toBe(true);
    expect(result.exitCode).not.toBe(0);
    expect(result.tail).toContain('migrating');
    expect(Date.now() - started).toBeLessThan(15_000);
    const tasks = await docker.listContainers({ all: true, filters: { label: [`${LABELS.workspace}=${s.workspaceId}`, `${LABELS.role}=task`] } });
    expect(tasks).toEqual([]);
    // a task within its limit is not touched
    const quick = await runtime.runTask(s, 'web', 'echo done', undefined, { timeoutMs: 10_000 });
    expect(quick.exitCode).toBe(0);
    expect(quick.timedOut).toBeUndefined();
  }, 60_000);

  it('a build past its limit is stopped and fails naming the service and the limit', async () => {
    const ctx = await makeContext('build-limit', { Dockerfile: 'FROM berth-base:node20\nRUN echo building && sleep 600\n' });
    const started = Date.now();
    const err = await runtime.buildImage(buildOpts(ctx, { noCache: true, timeoutMs: 3_000, service: 'web' })).catch((e) => e);
    expect(err).toBeInstanceOf(StepFailedError);
    expect(err.message).toMatch(/^build of service web did not finish within 3s \(BERTH_BUILD_TIMEOUT\)/);
    expect(err.logTail).toContain('RUN echo building && sleep 600');
    expect(Date.now() - started).toBeLessThan(20_000);
    // the daemon cancelled the build: no RUN container keeps sleeping
    await expect
      .poll(async () => (await docker.listContainers({ filters: { ancestor: ['berth-base:node20'] } })).filter((c) => c.Command.includes('sleep 600')).length, { timeout: 10_000 })
      .toBe(0);
  }, 60_000);
});

describe('builds get the workspace limits', () => {
  it('RUN steps see the memory and CPU caps', async () => {
    const ctx = await makeContext('build-caps', {
      Dockerfile: 'FROM berth-base:node20\nRUN echo "mem=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max)" && echo "cpu=$(cat /sys/fs/cgroup/cpu*/cpu.cfs_quota_us 2>/dev/null | head -1 || cat /sys/fs/cgroup/cpu.max)"\n',
    });
    const opts = buildOpts(ctx, { noCache: true, memoryBytes: 300 * 1024 ** 2, cpus: 0.5 });
    await runtime.buildImage(opts);
    const log = opts.logs.join('');
    expect(log).toMatch(new RegExp(`mem=${300 * 1024 ** 2}\\b`));
    expect(log).toMatch(/cpu=(50000\b|50000 100000)/);
  }, 60_000);
});

describe('workspace containers', () => {
  it('run without new privileges, with a PID limit and few capabilities; a database-like entry still drops to its user', async () => {
    const s = spec('caps', [service({ name: 'db', command: 'node /app/drops-privileges.js', port: 5432, mountsWorkspace: false })]);
    const [endpoint] = await runtime.startServices(s);
    await runtime.waitHealthy(s, endpoint!, 5432, '/', 20_000);
    const answer = await (await fetch(`http://${endpoint!.host}:5432/`)).text();
    expect(answer).toBe('uid=999 16');

    const container = await serviceContainer(s.workspaceId, 'db');
    const { HostConfig } = await container.inspect();
    expect(HostConfig.SecurityOpt).toContain('no-new-privileges');
    expect(HostConfig.CapDrop).toEqual(['ALL']);
    expect([...(HostConfig.CapAdd ?? [])].sort()).toEqual([...WORKSPACE_CAPABILITIES].sort());
    expect(HostConfig.PidsLimit).toBe(128);
    // what the processes really have: no_new_privs set, no CAP_NET_RAW (bit 13) in any set
    const status = await exec(container, 'grep -E "^(NoNewPrivs|CapBnd)" /proc/1/status');
    expect(status).toMatch(/NoNewPrivs:\s+1/);
    const bounding = BigInt(`0x${/CapBnd:\s+([0-9a-f]+)/.exec(status)![1]}`);
    expect(bounding & (1n << 13n)).toBe(0n);
  }, 60_000);

  it('a fork bomb stops at the PID limit', async () => {
    const s = spec('pids', [service()], { pidsLimit: 64 });
    const result = await runtime.runTask(s, 'web', 'i=0; while [ $i -lt 200 ]; do sleep 30 & i=$((i+1)); done; echo started-all', undefined, { timeoutMs: 20_000 });
    expect(result.tail).toMatch(/can't fork|Resource temporarily unavailable/i);
    expect(result.tail).not.toContain('started-all');
  }, 60_000);

  it("cannot reach Berth's PostgreSQL, Redis or Docker API on the host", async () => {
    const pg = new URL(process.env.DATABASE_URL ?? 'postgresql://berth:berth@127.0.0.1:5432/berth_test');
    const redis = new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
    // the probe's control: a port the host opens to everyone is reachable, so "closed" means closed
    const open = net.createServer((c) => c.end()).listen(0, '0.0.0.0');
    await new Promise((r) => open.once('listening', r));
    const openPort = (open.address() as net.AddressInfo).port;
    try {
      const s = spec('reach', [service()]);
      await runtime.ensureDisk(s);
      const network = await docker.getNetwork(`berth-${s.slug}`).inspect();
      const gateway = network.IPAM!.Config![0]!.Gateway as string;
      // the workspace network's gateway (the host), and the host's own addresses
      const hostAddresses = [gateway, ...Object.values(os.networkInterfaces()).flat().filter((a) => a && a.family === 'IPv4' && !a.internal).map((a) => a!.address)];
      const ports = [Number(pg.port || 5432), Number(redis.port || 6379), 2375, 2376];
      const targets = [...new Set(hostAddresses)].flatMap((ip) => ports.map((p) => [ip, p]));
      const probe = `
        const net = require('net');
        const fs = require('fs');
        const check = ([host, port]) => new Promise((done) => {
          const s = net.connect({ host, port, timeout: 2000 });
          s.on('connect', () => { console.log('OPEN', host, port); s.destroy(); done(); });
          s.on('error', (e) => { console.log('closed', host, port, e.code); done(); });
          s.on('timeout', () => { console.log('closed', host, port, 'timeout'); s.destroy(); done(); });
        });
        (async () => {
          for (const t of JSON.parse(process.env.TARGETS)) await check(t);
          await check([process.env.GATEWAY, Number(process.env.OPEN_PORT)]);
          console.log(fs.existsSync('/var/run/docker.sock') ? 'OPEN docker.sock' : 'closed docker.sock');
        })();`;
      const env = { TARGETS: JSON.stringify(targets), GATEWAY: gateway, OPEN_PORT: String(openPort), PROBE: probe };
      const withProbe = spec('reach', [service({ env })]);
      const output: string[] = [];
      await runtime.runTask(withProbe, 'web', 'node -e "$PROBE"', (t) => output.push(t), { timeoutMs: 60_000 });
      const lines = output.join('').split('\n');
      expect(lines).toContain(`OPEN ${gateway} ${openPort}`);
      expect(lines.some((l) => l.startsWith(`closed ${gateway} ${ports[0]}`))).toBe(true);
      expect(lines.some((l) => l.startsWith(`closed ${gateway} ${ports[1]}`))).toBe(true);
      expect(lines).toContain('closed docker.sock');
      expect(lines.filter((l) => l.startsWith('OPEN') && !l.endsWith(` ${openPort}`))).toEqual([]);
    } finally {
      open.close();
    }
  }, 90_000);
});

describe("another workspace's images", () => {
  it('an image: service cannot name a Berth-built image, by berth/ name or by ID', async () => {
    const id = (await docker.getImage(appImage).inspect()).Id;
    for (const ref of [`berth/${slugOf('victim')}/web:0123456789ab`, id, id.slice('sha256:'.length, 'sha256:'.length + 12)]) {
      const err = await runtime.ensureImage(ref).catch((e) => e);
      expect(err, ref).toBeInstanceOf(StepFailedError);
      expect(err.message).toContain('is an image Berth built for a workspace');
    }
    await runtime.ensureImage('berth-base:node20');
  }, 30_000);

  it("a Dockerfile cannot build FROM or COPY --from another workspace's build, by tag, through an ARG or by ID", async () => {
    const victimCtx = await makeContext('victim', { Dockerfile: 'FROM berth-base:node20\nRUN echo private-code > /app-secret\n' });
    const victimTag = `berth/${slugOf('victim')}/web:0123456789ab`;
    const victimId = await runtime.buildImage(buildOpts(victimCtx, { tag: victimTag }));
    const own = `berth/${slugOf('thief')}/web:`;
    const froms = [`FROM ${victimTag}`, `ARG BASE=berth/${slugOf('victim')}/web\nFROM \${BASE}:0123456789ab`, `FROM ${victimId}`];
    for (const from of froms) {
      const ctx = await makeContext(`thief-${froms.indexOf(from)}`, { Dockerfile: `${from}\nRUN cat /app-secret\n` });
      const tag = `${own}${randomBytes(6).toString('hex')}`;
      const err = await runtime.buildImage(buildOpts(ctx, { tag })).catch((e) => e);
      expect(err, from).toBeInstanceOf(StepFailedError);
      expect(err.message).toContain('an image Berth built for another workspace');
      // nothing of it is left to start
      await expect(docker.getImage(tag).inspect()).rejects.toMatchObject({ statusCode: 404 });
    }
    // nor copy files out of one, however the reference is spelled
    const copies = [
      `FROM berth-base:node20\nCOPY --from=${victimTag} /app-secret /stolen`,
      `FROM berth-base:node20\nARG SRC=berth/${slugOf('victim')}/web:0123456789ab\nCOPY --chown=1:1 --from=\${SRC} /app-secret /stolen`,
      `FROM berth-base:node20\nRUN --mount=type=bind,from=${victimId},target=/v cat /v/app-secret`,
    ];
    for (const dockerfile of copies) {
      const ctx = await makeContext(`copier-${copies.indexOf(dockerfile)}`, { Dockerfile: `${dockerfile}\n` });
      const err = await runtime.buildImage(buildOpts(ctx, { tag: `${own}c${copies.indexOf(dockerfile)}` })).catch((e) => e);
      expect(err, dockerfile).toBeInstanceOf(StepFailedError);
      expect(err.message).toContain('copies from');
      expect(err.message).toContain('an image Berth built for another workspace');
    }
    // a build stage is what COPY --from usually names: fine
    const staged = await makeContext('staged', { Dockerfile: 'FROM berth-base:node20 AS builder\nRUN echo built > /out\nFROM berth-base:node20\nCOPY --from=builder /out /out\nCOPY --from=0 /out /out0\n' });
    expect(await runtime.buildImage(buildOpts(staged, { tag: `${own}staged` }))).toMatch(/^sha256:/);
    // the branch's own earlier build is fine to build on
    const ownCtx = await makeContext('thief-base', { Dockerfile: 'FROM berth-base:node20\nRUN echo own-code > /own\n' });
    await runtime.buildImage(buildOpts(ownCtx, { tag: `${own}base` }));
    const next = await makeContext('thief-own', { Dockerfile: `FROM ${own}base\nRUN cat /own\n` });
    expect(await runtime.buildImage(buildOpts(next, { tag: `${own}next` }))).toMatch(/^sha256:/);
  }, 120_000);
});

describe('Docker object names', () => {
  it('slug a-b + service c and slug a + service b-c get two containers and two disks', async () => {
    const one = spec('a-b', [service({ name: 'c', command: 'sleep 300', data: '/data', mountsWorkspace: false })]);
    const two = spec('a', [service({ name: 'b-c', command: 'sleep 300', data: '/data', mountsWorkspace: false })]);
    // joined with hyphens both were berth-h4-<run>-a-b-c: the second start replaced the first's container, and they shared a disk
    expect(dockerNames.container(one.slug, 'c')).not.toBe(dockerNames.container(two.slug, 'b-c'));
    expect(dockerNames.dataVolume(one.slug, 'c')).not.toBe(dockerNames.dataVolume(two.slug, 'b-c'));
    expect((await runtime.runTask(one, 'c', 'echo one > /data/who; cat /data/who')).tail).toBe('one');
    expect((await runtime.runTask(two, 'b-c', 'cat /data/who 2>/dev/null || echo empty; echo two > /data/who')).tail).toBe('empty');
    expect((await runtime.runTask(one, 'c', 'cat /data/who')).tail).toBe('one');

    await runtime.startServices(one);
    await runtime.startServices(two);
    const [a, b] = [await serviceContainer(one.workspaceId, 'c'), await serviceContainer(two.workspaceId, 'b-c')];
    const [ia, ib] = [await a.inspect(), await b.inspect()];
    expect(ia.State.Running && ib.State.Running).toBe(true);
    expect(ia.Name).not.toBe(ib.Name);
    expect(ia.Mounts.map((m) => m.Name)).not.toEqual(ib.Mounts.map((m) => m.Name));
  }, 90_000);

  it("a workspace's data volume under the old name is still its disk after the upgrade", async () => {
    const s = spec('upgraded', [service({ name: 'db', data: '/data', mountsWorkspace: false })]);
    const legacy = `berth-${s.slug}-data-db`;
    await docker.createVolume({ Name: legacy, Labels: { [LABELS.workspace]: s.workspaceId, [LABELS.slug]: s.slug, [LABELS.service]: 'db', [LABELS.instance]: 'berth-h4test' } });
    // what the old Berth wrote there
    const writer = await docker.createContainer({ Image: 'berth-base:node20', Cmd: ['sh', '-c', 'echo rows-from-before > /data/kept'], HostConfig: { Mounts: [{ Type: 'volume', Source: legacy, Target: '/data' }] } });
    await writer.start();
    await writer.wait();
    await writer.remove();

    expect((await runtime.runTask(s, 'db', 'cat /data/kept')).tail).toBe('rows-from-before');
    const made = await docker.listVolumes({ filters: { label: [`${LABELS.workspace}=${s.workspaceId}`] } });
    expect((made.Volumes ?? []).map((v) => v.Name).filter((n) => n !== dockerNames.workspaceVolume(s.slug))).toEqual([legacy]);
  }, 60_000);
});
