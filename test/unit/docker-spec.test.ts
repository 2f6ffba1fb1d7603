import { describe, expect, it } from 'vitest';
import {
  LABELS,
  WORKSPACE_CAPABILITIES,
  buildQuery,
  configHash,
  containerConfig,
  dependencyOrder,
  envList,
  mountsFor,
  serviceState,
  startOrder,
} from '../../worker/runtime/docker-spec.js';
import type { BuildImageOptions, ServiceRunSpec, WorkspaceRunSpec } from '../../worker/runtime/types.js';

/**
 * What the Docker runtime asks the engine to make, without an engine: the container a service
 * gets (its limits, hardening, labels, mounts, environment), the build's caps, the start order
 * and the engine's states in Berth's words.
 */
const web = (over: Partial<ServiceRunSpec> = {}): ServiceRunSpec => ({ name: 'web', image: 'img:1', command: 'npm start', env: { A: '1' }, port: 3000, mountsWorkspace: true, ...over });
const spec = (services: ServiceRunSpec[], over: Partial<WorkspaceRunSpec> = {}): WorkspaceRunSpec => ({
  workspaceId: 'ws1',
  slug: 'shop-main',
  services,
  memoryBytes: 512 * 1024 ** 2,
  cpus: 1.5,
  ...over,
});

describe('containerConfig', () => {
  it('caps memory (no extra swap), CPUs and processes as the workspace says', () => {
    const host = containerConfig(spec([web()], { pidsLimit: 256 }), web(), 'service', 'berth').HostConfig!;
    expect(host).toMatchObject({ Memory: 512 * 1024 ** 2, MemorySwap: 512 * 1024 ** 2, NanoCpus: 1_500_000_000, PidsLimit: 256 });
    const uncapped = containerConfig(spec([web()], { memoryBytes: 0, cpus: 0 }), web(), 'service', 'berth').HostConfig!;
    expect(uncapped.Memory).toBeUndefined();
    expect(uncapped.NanoCpus).toBeUndefined();
    expect(uncapped.PidsLimit).toBeUndefined();
  });

  it('runs hardened: no new privileges, only the listed capabilities, tini as init, on the workspace network only', () => {
    const c = containerConfig(spec([web()]), web(), 'service', 'berth');
    expect(c.HostConfig).toMatchObject({ SecurityOpt: ['no-new-privileges'], CapDrop: ['ALL'], CapAdd: WORKSPACE_CAPABILITIES, Init: true, NetworkMode: 'berth-shop-main' });
    expect(WORKSPACE_CAPABILITIES).not.toContain('NET_RAW');
    expect(c.HostConfig?.Privileged).toBeFalsy();
    expect(c.HostConfig?.Binds).toBeUndefined();
    expect(c.NetworkingConfig?.EndpointsConfig?.['berth-shop-main']?.Aliases).toEqual(['web']);
  });

  it('a service comes back after a crash or an engine restart; a task never runs twice', () => {
    expect(containerConfig(spec([web()]), web(), 'service', 'berth').HostConfig?.RestartPolicy).toEqual({ Name: 'unless-stopped' });
    expect(containerConfig(spec([web()]), web(), 'task', 'berth').HostConfig?.RestartPolicy).toEqual({ Name: 'no' });
  });

  it('is labelled with its workspace, service, role and Berth instance, and works in /workspace', () => {
    const c = containerConfig(spec([web()]), web(), 'service', 'berth-test');
    expect(c.Labels).toEqual({ [LABELS.workspace]: 'ws1', [LABELS.slug]: 'shop-main', [LABELS.service]: 'web', [LABELS.role]: 'service', [LABELS.instance]: 'berth-test' });
    expect(c.WorkingDir).toBe('/workspace');
    expect(containerConfig(spec([web()]), web({ workingDir: '/srv' }), 'service', 'b').WorkingDir).toBe('/srv');
  });

  it('the same configuration hashes the same, a changed one does not', () => {
    const a = containerConfig(spec([web()]), web(), 'service', 'berth');
    expect(configHash(a)).toBe(configHash(containerConfig(spec([web()]), web(), 'service', 'berth')));
    expect(configHash(a)).not.toBe(configHash(containerConfig(spec([web()]), web({ env: { A: '2' } }), 'service', 'berth')));
  });
});

describe('envList', () => {
  it('gives PORT first so that the repository’s own PORT wins, and lets tini signal the whole group', () => {
    expect(envList(web())).toEqual(['TINI_KILL_PROCESS_GROUP=1', 'PORT=3000', 'A=1']);
    expect(envList(web({ env: { PORT: '8080' } }))).toEqual(['TINI_KILL_PROCESS_GROUP=1', 'PORT=8080']);
  });
});

describe('mountsFor', () => {
  it('mounts the disk at /workspace, and also there when compose puts the checkout elsewhere', () => {
    expect(mountsFor(spec([web()]), web())).toEqual([{ Type: 'volume', Source: 'berth-shop-main-workspace', Target: '/workspace' }]);
    expect(mountsFor(spec([web()]), web({ checkoutMount: '/app' })).map((m) => m.Target)).toEqual(['/app', '/workspace']);
    expect(mountsFor(spec([web()]), web({ checkoutMount: '/workspace/app' })).map((m) => m.Target)).toEqual(['/workspace/app']);
  });

  it('gives named volumes and a data folder volumes of the workspace, and an image service no checkout', () => {
    const db = web({ name: 'db', mountsWorkspace: false, data: '/var/lib/postgresql/data', volumes: [{ name: 'cache', target: '/cache', readOnly: true }] });
    expect(mountsFor(spec([db]), db)).toEqual([
      { Type: 'volume', Source: 'berth-shop-main.vol-cache', Target: '/cache', ReadOnly: true },
      { Type: 'volume', Source: 'berth-shop-main_db.data', Target: '/var/lib/postgresql/data' },
    ]);
  });
});

describe('start order', () => {
  it('starts image services before the ones built from the repository', () => {
    const db = web({ name: 'db', mountsWorkspace: false });
    expect(startOrder([web(), db]).map((s) => s.name)).toEqual(['db', 'web']);
  });

  it('follows depends_on, otherwise the order given', () => {
    const app = web({ name: 'app', dependsOn: { migrate: { condition: 'service_completed_successfully' } } as never });
    const migrate = web({ name: 'migrate', dependsOn: { db: { condition: 'service_healthy' } } as never });
    const db = web({ name: 'db' });
    const cache = web({ name: 'cache' });
    expect(dependencyOrder([app, cache, migrate, db]).map((s) => s.name)).toEqual(['db', 'migrate', 'app', 'cache']);
  });
});

describe('buildQuery', () => {
  const opts = (over: Partial<BuildImageOptions> = {}): BuildImageOptions => ({ contextDir: '/x', dockerfile: 'Dockerfile', args: { A: '1' }, tag: 't', labels: {}, noCache: false, onLog: () => {}, ...over });

  it('caps the build’s RUN steps like the workspace, and never pulls a base again', () => {
    expect(buildQuery(opts({ memoryBytes: 300 * 1024 ** 2, cpus: 0.5 }))).toMatchObject({ memory: 300 * 1024 ** 2, memswap: 300 * 1024 ** 2, cpuperiod: 100_000, cpuquota: 50_000, pull: false });
    const uncapped = buildQuery(opts());
    expect(uncapped.memory).toBeUndefined();
    expect(uncapped.cpuquota).toBeUndefined();
  });
});

describe('serviceState', () => {
  it('says the engine’s states in Berth’s words', () => {
    expect(serviceState('running', 0)).toBe('running');
    expect(serviceState('restarting', 1)).toBe('starting');
    expect(serviceState('restarting', 5)).toBe('crash-looping');
    expect(serviceState('exited', 0)).toBe('exited');
    expect(serviceState('dead', 0)).toBe('exited');
    expect(serviceState('created', 0)).toBe('exited');
    expect(serviceState('removing', 0)).toBe('gone');
  });
});
