/**
 * The Docker runtime's container spec: what Berth asks the engine to make, as pure functions of a
 * WorkspaceRunSpec (names, labels, configuration, mounts, limits, hardening, build query, and the
 * engine's container states in Berth's words). No engine here: unit-tested without Docker
 * (test/unit/docker-spec.test.ts); docker.ts makes what these describe.
 */
import { createHash } from 'node:crypto';
import type Dockerode from 'dockerode';
import type { BuildImageOptions, ServiceRunSpec, ServiceState, WorkspaceRunSpec } from './types.js';

export const LABELS = {
  workspace: 'berth.workspace',
  slug: 'berth.slug',
  service: 'berth.service',
  role: 'berth.role',
  /** which Berth owns the object: several Berths (or test runs) may share one Docker engine */
  instance: 'berth.instance',
  /** a hash of a service container's configuration: a rollout keeps a container whose hash is unchanged */
  config: 'berth.config',
} as const;

export type Role = 'service' | 'task' | 'ide';

/**
 * Slugs and service names are lower-case letters, digits and hyphens: `_` and `.` appear in
 * neither, so every name below splits into its slug and the rest one way only. (Joined with
 * hyphens, `berth-a-b-c` was slug `a-b` + service `c` and slug `a` + service `b-c` alike.)
 * The workspace disk keeps its name (no other volume Berth makes now ends in `-workspace`),
 * which is also the name an operator gives a disk of their own for Berth to adopt.
 */
export const dockerNames = {
  network: (slug: string) => `berth-${slug}`,
  workspaceVolume: (slug: string) => `berth-${slug}-workspace`,
  dataVolume: (slug: string, service: string) => `berth-${slug}_${service}.data`,
  /** before Berth used `_`: existing workspaces keep their data volumes under this name */
  legacyDataVolume: (slug: string, service: string) => `berth-${slug}-data-${service}`,
  container: (slug: string, service: string) => `berth-${slug}_${service}`,
  /** a dot cannot appear in a service name, so these never collide with a service's */
  ideContainer: (slug: string) => `berth-${slug}.ide`,
  ideVolume: (slug: string) => `berth-${slug}.ide`,
  /** a compose named volume of the workspace (names may hold `_` and `.`: after `.vol-`, the slug is behind) */
  namedVolume: (slug: string, volume: string) => `berth-${slug}.vol-${volume}`,
};

export const WORKSPACE_DIR = '/workspace';

/**
 * What a dev server, a database image's entrypoint (postgres: chown its data folder as root,
 * then drop to its own user) and a package manager need; the rest of Docker's defaults go:
 * NET_RAW (forged packets, ARP spoofing on the workspace network), MKNOD, SYS_CHROOT,
 * SETFCAP, SETPCAP, AUDIT_WRITE.
 */
export const WORKSPACE_CAPABILITIES = ['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'SETUID', 'SETGID', 'KILL', 'NET_BIND_SERVICE'];

/** Restarts (100 ms, doubling) before a crashing service counts as broken: about 3 s of grace. */
export const CRASH_LOOP_RESTARTS = 5;

/** `dataVolume`: the service's data volume as found on the engine (see dataVolumeOf) */
export function containerConfig(spec: WorkspaceRunSpec, service: ServiceRunSpec, role: Role, instance: string, dataVolume?: string): Dockerode.ContainerCreateOptions {
  const network = dockerNames.network(spec.slug);
  return {
    Image: service.image,
    Env: envList(service),
    // compose's working_dir; else /workspace when the checkout is there (berth.yml), else the image's
    WorkingDir: service.workingDir ?? (service.mountsWorkspace && !service.checkoutMount ? WORKSPACE_DIR : undefined),
    ...(service.user ? { User: service.user } : {}),
    Labels: { ...labelsOf(spec, service.name, role), [LABELS.instance]: instance },
    HostConfig: {
      NetworkMode: network,
      Mounts: mountsFor(spec, service, dataVolume),
      ...limits(spec),
      ...hardening(),
      // tini as PID 1: SIGTERM reaches the app (a bare node/sh as PID 1 ignores it, turning
      // every stop into a kill after the timeout) and zombies of dev servers get reaped.
      Init: true,
      // Services survive a dockerd restart; tasks must never run twice.
      RestartPolicy: { Name: role === 'service' ? 'unless-stopped' : 'no' },
      // Explicit json-file: we read logs back through the API, and dev servers are chatty.
      LogConfig: { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '3' } },
    },
    NetworkingConfig: { EndpointsConfig: { [network]: { Aliases: [service.name] } } },
  };
}

export function limits(spec: WorkspaceRunSpec): Dockerode.HostConfig {
  const out: Dockerode.HostConfig = {};
  if (spec.memoryBytes > 0) {
    out.Memory = spec.memoryBytes;
    // Without this, cgroup v1 hands out as much swap again and OOM kills come late or never.
    out.MemorySwap = spec.memoryBytes;
  }
  if (spec.cpus > 0) out.NanoCpus = Math.round(spec.cpus * 1e9);
  if (spec.pidsLimit && spec.pidsLimit > 0) out.PidsLimit = spec.pidsLimit;
  return out;
}

/**
 * Code from a branch runs here: no setuid binary (sudo, su) may raise its privileges, and only
 * the capabilities in WORKSPACE_CAPABILITIES remain. A root process inside stays root in its
 * container (chown, bind :80) but cannot gain more.
 */
export function hardening(): Dockerode.HostConfig {
  return { SecurityOpt: ['no-new-privileges'], CapDrop: ['ALL'], CapAdd: WORKSPACE_CAPABILITIES };
}

/**
 * One pipe for both streams: the daemon reads stdout and stderr concurrently, so a burst of
 * output followed by an error on stderr (the usual crash) lands in the log in random order
 * and the error can fall out of the tail users see. ash and dash still exec the last command,
 * so the app remains the process that receives signals.
 */
export function shellCommand(command: string): string[] {
  return ['sh', '-c', `exec 2>&1\n${command}`];
}

/**
 * PORT comes first so an explicit PORT in the repository's env wins.
 * TINI_KILL_PROCESS_GROUP: shells that do not exec their last command (bash) would otherwise
 * take SIGTERM alone and leave the app to be SIGKILLed without a chance to shut down.
 */
export function envList(service: ServiceRunSpec): string[] {
  const env = { TINI_KILL_PROCESS_GROUP: '1', ...(service.port ? { PORT: String(service.port) } : {}), ...service.env };
  return Object.entries(env).map(([k, v]) => `${k}=${v}`);
}

export function mountsFor(spec: WorkspaceRunSpec, service: ServiceRunSpec, dataVolume?: string): Dockerode.MountSettings[] {
  const mounts: Dockerode.MountSettings[] = [];
  if (service.mountsWorkspace) {
    const target = service.checkoutMount ?? WORKSPACE_DIR;
    mounts.push({ ...workspaceMount(spec), Target: target });
    // The checkout is also at /workspace where compose (`.:/app`) or devcontainer.json
    // (`workspaceFolder`) put it elsewhere: the terminal, SSH, SFTP and the IDE find the
    // container people work in, and open their shells, by that one path.
    if (target !== WORKSPACE_DIR && !target.startsWith(`${WORKSPACE_DIR}/`)) mounts.push({ ...workspaceMount(spec), Target: WORKSPACE_DIR });
  }
  for (const v of service.volumes ?? []) {
    mounts.push({ Type: 'volume', Source: dockerNames.namedVolume(spec.slug, v.name), Target: v.target, ...(v.readOnly ? { ReadOnly: true } : {}) });
  }
  if (service.data) {
    mounts.push({ Type: 'volume', Source: dataVolume ?? dockerNames.dataVolume(spec.slug, service.name), Target: service.data });
  }
  return mounts;
}

export function workspaceMount(spec: WorkspaceRunSpec): Dockerode.MountSettings {
  return { Type: 'volume', Source: dockerNames.workspaceVolume(spec.slug), Target: WORKSPACE_DIR };
}

export function startOrder(services: ServiceRunSpec[]): ServiceRunSpec[] {
  return [...services.filter((s) => !s.mountsWorkspace), ...services.filter((s) => s.mountsWorkspace)];
}

/** Image services are the ones without the workspace mount (see ServiceRunSpec.mountsWorkspace). */
export function isImageService(c: Dockerode.ContainerInfo): boolean {
  // by the disk's name: compose may mount the checkout elsewhere than /workspace
  const disk = dockerNames.workspaceVolume(c.Labels[LABELS.slug] ?? '');
  return !c.Mounts.some((m) => m.Destination === WORKSPACE_DIR || m.Name === disk);
}

/** the container's command: berth.yml's shell command, or compose's exec form and entrypoint */
export function commandOf(service: ServiceRunSpec): Pick<Dockerode.ContainerCreateOptions, 'Cmd' | 'Entrypoint'> {
  return {
    Cmd: service.command ? shellCommand(service.command) : service.args,
    ...(service.entrypoint ? { Entrypoint: service.entrypoint } : {}),
  };
}

/** compose's healthcheck as the engine's (durations in nanoseconds) */
export function healthConfig(h: NonNullable<ServiceRunSpec['healthcheck']>): Dockerode.HealthConfig {
  const ns = (ms?: number) => (ms === undefined ? undefined : Math.round(ms * 1e6));
  return { Test: h.test, Interval: ns(h.intervalMs), Timeout: ns(h.timeoutMs), Retries: h.retries, StartPeriod: ns(h.startPeriodMs) };
}

/** depends_on order: each service after what it depends on, otherwise as listed (no cycles: the reader refuses them) */
export function dependencyOrder(services: ServiceRunSpec[]): ServiceRunSpec[] {
  const out: ServiceRunSpec[] = [];
  const placed = new Set<string>();
  const place = (s: ServiceRunSpec, depth: number) => {
    if (placed.has(s.name) || depth > services.length) return;
    for (const dep of Object.keys(s.dependsOn ?? {})) {
      const d = services.find((x) => x.name === dep);
      if (d) place(d, depth + 1);
    }
    placed.add(s.name);
    out.push(s);
  };
  for (const s of services) place(s, 0);
  return out;
}

export function findService(spec: WorkspaceRunSpec, name: string): ServiceRunSpec {
  const service = spec.services.find((s) => s.name === name);
  if (!service) throw new Error(`workspace ${spec.slug} has no service named ${name}`);
  return service;
}

export function labelsOf(spec: WorkspaceRunSpec, service?: string, role?: Role): Record<string, string> {
  const labels: Record<string, string> = { [LABELS.workspace]: spec.workspaceId, [LABELS.slug]: spec.slug };
  if (service) labels[LABELS.service] = service;
  if (role) labels[LABELS.role] = role;
  return labels;
}

export function labelFilter(workspaceId: string, role?: Role): { label: string[] } {
  const label = [`${LABELS.workspace}=${workspaceId}`];
  if (role) label.push(`${LABELS.role}=${role}`);
  return { label };
}

export function buildQuery(opts: BuildImageOptions): Record<string, unknown> {
  const query: Record<string, unknown> = {
    t: opts.tag,
    dockerfile: opts.dockerfile,
    buildargs: opts.args,
    labels: opts.labels,
    nocache: opts.noCache,
    // The layer cache is what makes a rebuild on every push affordable; never re-pull bases.
    pull: false,
    rm: true,
    forcerm: true,
  };
  // The RUN steps are the repository's code too: the same memory and CPU caps as its workspace.
  // (The build API has no PID limit; BERTH_BUILD_TIMEOUT bounds a build that forks for ever.)
  if (opts.memoryBytes && opts.memoryBytes > 0) {
    query.memory = opts.memoryBytes;
    query.memswap = opts.memoryBytes;
  }
  if (opts.cpus && opts.cpus > 0) {
    query.cpuperiod = 100_000;
    query.cpuquota = Math.max(1000, Math.round(opts.cpus * 100_000));
  }
  if (opts.target) query.target = opts.target;
  return query;
}

/** the same configuration (image, command, env, mounts, limits) gives the same hash */
export function configHash(options: Dockerode.ContainerCreateOptions): string {
  const { [LABELS.config]: _old, ...labels } = options.Labels ?? {};
  return createHash('sha256').update(JSON.stringify({ ...options, Labels: labels })).digest('hex').slice(0, 16);
}

/**
 * A container's state in Berth's words (ContainerStatus.state): the engine's `restarting` is
 * `starting`, or `crash-looping` once its restart policy has brought it back
 * CRASH_LOOP_RESTARTS times; `created` (never started), `exited` and `dead` are `exited`; a
 * container being removed is `gone`; `paused` still holds its processes: `running`.
 */
export function serviceState(engineState: string, restartCount: number): ServiceState {
  switch (engineState) {
    case 'running':
    case 'paused':
      return 'running';
    case 'restarting':
      return restartCount >= CRASH_LOOP_RESTARTS ? 'crash-looping' : 'starting';
    case 'removing':
      return 'gone';
    default:
      return 'exited';
  }
}
