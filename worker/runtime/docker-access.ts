import { PassThrough, type Duplex } from 'node:stream';
import Dockerode from 'dockerode';
import type { ContainerView, Endpoint, ExecRequest, ExecSession, IdeContainerInfo, WorkspaceAccess, WorkspaceShell } from '../../lib/workspace-access.js';
import { personIdeName } from '../../lib/workspace-access.js';
import { LABELS } from './docker-spec.js';
import { CODE_SERVER_PORT } from './types.js';

/** the role label of the code-server containers (the workspace's, and people's copies) */
const IDE_ROLE = 'ide';
/** on a person's own code-server container: their login */
const LABEL_PERSON = 'berth.person';
/** on a person's code-server container: the workspace IDE container it was made from (a restart of the workspace makes a new one) */
const LABEL_TEMPLATE = 'berth.ide-template';
/** the variables of a person a copy gets its own of; the template's own (none, normally) are dropped */
const PERSON_ENV = /^(GIT_AUTHOR_|GIT_COMMITTER_|GIT_CONFIG_|BERTH_GIT_|HISTFILE=|HOME=)/;
const WORKSPACE_DIR = '/workspace';
/** How long a dashboard page waits for Docker before it shows what the database knows instead. */
const PAGE_TIMEOUT_MS = 2_000;

/**
 * The web process's door to workspaces on a Docker engine (lib/workspace-access.ts). It finds
 * everything by the labels DockerRuntime puts on what it creates; the web never holds a
 * dockerode object.
 */
export class DockerWorkspaceAccess implements WorkspaceAccess {
  constructor(private readonly docker: Dockerode = new Dockerode()) {}

  async ping(): Promise<void> {
    await withTimeout(this.docker.ping(), PAGE_TIMEOUT_MS, 'Docker did not answer');
  }

  async containersOf(workspaceId: string): Promise<ContainerView[] | null> {
    try {
      const list = await withTimeout(this.docker.listContainers({ all: true, filters: { label: [`${LABELS.workspace}=${workspaceId}`] } }), PAGE_TIMEOUT_MS, 'Docker did not answer');
      return list.map((c) => ({
        name: (c.Names?.[0] ?? c.Id.slice(0, 12)).replace(/^\//, ''),
        service: c.Labels?.[LABELS.service] ?? null,
        role: c.Labels?.[LABELS.role] ?? null,
        state: c.State,
        status: c.Status,
        image: c.Image,
        createdAt: new Date(c.Created * 1000),
      }));
    } catch {
      return null;
    }
  }

  async ideEndpoint(workspaceId: string): Promise<Endpoint | null> {
    // the workspace's own, not a person's copy of it
    const list = await this.docker.listContainers({ filters: { label: [`${LABELS.workspace}=${workspaceId}`, `${LABELS.role}=${IDE_ROLE}`], status: ['running'] } });
    const ip = ipOf(list.find((c) => !c.Labels?.[LABEL_PERSON]));
    return ip ? { host: ip, port: CODE_SERVER_PORT } : null;
  }

  async mainContainer(workspaceId: string, preferredService: string | null): Promise<WorkspaceShell | null> {
    const list = await this.docker.listContainers({ filters: { label: [`${LABELS.workspace}=${workspaceId}`, `${LABELS.role}=service`], status: ['running'] } });
    const withDisk = list.filter((c) => c.Mounts?.some((m) => m.Destination === WORKSPACE_DIR));
    const pick = withDisk.find((c) => c.Labels?.[LABELS.service] === preferredService) ?? withDisk[0];
    return pick ? this.shell(pick.Id) : null;
  }

  async forwardTarget(workspaceId: string, mainContainerId: string, destination: string): Promise<string | null> {
    const list = await this.docker.listContainers({ filters: { label: [`${LABELS.workspace}=${workspaceId}`], status: ['running'] } });
    const dest = destination.toLowerCase().replace(/^\[|\]$/g, '');
    if (LOOPBACK.has(dest)) return ipOf(list.find((c) => c.Id === mainContainerId)) ?? null;
    for (const c of list) {
      const ips = Object.values(c.NetworkSettings?.Networks ?? {})
        .map((n) => n.IPAddress)
        .filter(Boolean);
      const names = [c.Labels?.[LABELS.service], ...(c.Names ?? []).map((n) => n.replace(/^\//, ''))].filter(Boolean).map((n) => n!.toLowerCase());
      if (ips.includes(dest) || names.includes(dest)) return ipOf(c) ?? null;
    }
    return null;
  }

  async runsWithEnv(containerName: string, envEntry: string): Promise<boolean> {
    const info = await this.docker.getContainer(containerName).inspect().catch(() => null);
    return Boolean(info?.State.Running && info.Config.Env?.includes(envEntry));
  }

  async ideContainers(workspaceId: string): Promise<IdeContainerInfo[]> {
    const all = await this.docker.listContainers({ all: true, filters: { label: [`${LABELS.workspace}=${workspaceId}`, `${LABELS.role}=${IDE_ROLE}`] } });
    return Promise.all(
      all.map(async (c) => {
        const person = c.Labels?.[LABEL_PERSON];
        // the handle is in the environment, which a listing does not show
        const gitHandle = person
          ? ((await this.docker.getContainer(c.Id).inspect().catch(() => null))?.Config.Env?.find((e) => e.startsWith('BERTH_GIT_HANDLE='))?.slice('BERTH_GIT_HANDLE='.length) ?? undefined)
          : undefined;
        return {
          id: c.Id,
          name: (c.Names?.[0] ?? c.Id).replace(/^\//, ''),
          running: c.State === 'running',
          ...(person ? { person } : {}),
          ...(c.Labels?.[LABEL_TEMPLATE] ? { template: c.Labels[LABEL_TEMPLATE] } : {}),
          ...(gitHandle ? { gitHandle } : {}),
          ...(ipOf(c) ? { endpoint: { host: ipOf(c)!, port: CODE_SERVER_PORT } } : {}),
        };
      }),
    );
  }

  async createPersonIde(req: { templateId: string; login: string; env: string[] }): Promise<{ id: string; name: string; host: string; port: number }> {
    const template = this.docker.getContainer(req.templateId);
    const t = await template.inspect();
    const name = personIdeName(t.Name.replace(/^\//, ''), req.login);
    const home = (t.Config.Env ?? []).find((e) => e.startsWith('HOME='))?.slice(5) ?? '/var/lib/berth-ide';
    const userDir = `${home}/data/User`;
    const labels = { ...t.Config.Labels, [LABEL_PERSON]: req.login, [LABEL_TEMPLATE]: t.Id };
    // the person's own volume, labelled like the workspace's (its delete removes it)
    const volumeName = name;
    let fresh = false;
    if (!(await this.docker.getVolume(volumeName).inspect().catch(() => null))) {
      await this.docker.createVolume({ Name: volumeName, Labels: { ...labels, [LABEL_TEMPLATE]: '' } });
      fresh = true;
    }
    const network = Object.keys(t.NetworkSettings.Networks ?? {})[0];
    const container = await this.docker.createContainer({
      name,
      Image: t.Config.Image,
      User: t.Config.User,
      Env: [...(t.Config.Env ?? []).filter((e) => !PERSON_ENV.test(e)), `HOME=${userDir}`, ...req.env],
      WorkingDir: t.Config.WorkingDir,
      Entrypoint: t.Config.Entrypoint as string[],
      Cmd: t.Config.Cmd,
      Labels: labels,
      HostConfig: {
        ...t.HostConfig,
        Binds: undefined,
        Mounts: [
          ...(t.Mounts ?? []).map((m) =>
            m.Type === 'volume'
              ? { Type: 'volume' as const, Source: m.Name!, Target: m.Destination, ReadOnly: !m.RW }
              : { Type: 'bind' as const, Source: m.Source, Target: m.Destination, ReadOnly: !m.RW },
          ),
          { Type: 'volume' as const, Source: volumeName, Target: userDir },
        ],
      },
      NetworkingConfig: network ? { EndpointsConfig: { [network]: {} } } : undefined,
    });
    try {
      // the workspace's first settings (no walkthrough, no trust prompt) for a person's first start
      if (fresh) {
        const settings = await template.getArchive({ path: `${userDir}/settings.json` }).catch(() => null);
        if (settings) await container.putArchive(settings, { path: userDir });
      }
      await container.start();
      const info = await container.inspect();
      const host = network ? info.NetworkSettings.Networks[network]?.IPAddress : undefined;
      if (!host) throw new Error('the container has no address on the workspace network');
      return { id: info.Id, name, host, port: CODE_SERVER_PORT };
    } catch (err) {
      await container.remove({ force: true }).catch(() => {});
      throw err;
    }
  }

  async removeContainer(id: string): Promise<void> {
    await this.docker
      .getContainer(id)
      .remove({ force: true })
      .catch(() => {});
  }

  shell(idOrName: string): WorkspaceShell {
    return new DockerShell(this.docker, this.docker.getContainer(idOrName));
  }
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '::1', '0.0.0.0', 'ip6-localhost']);

class DockerShell implements WorkspaceShell {
  constructor(
    private readonly docker: Dockerode,
    private readonly container: Dockerode.Container,
  ) {}

  get id(): string {
    return this.container.id;
  }

  async exec(req: ExecRequest): Promise<ExecSession> {
    const attach = !req.detach;
    const exec = await this.container.exec({
      Cmd: req.argv,
      Tty: Boolean(req.tty),
      AttachStdin: attach && Boolean(req.stdin),
      AttachStdout: attach,
      AttachStderr: attach,
      ...(req.workingDir ? { WorkingDir: req.workingDir } : {}),
      ...(req.env ? { Env: req.env } : {}),
    });
    if (!attach) {
      await exec.start({ Detach: true });
      return new DockerExecSession(exec, null, false, this.docker);
    }
    const stream = (await exec.start({ hijack: true, stdin: Boolean(req.stdin), Tty: Boolean(req.tty) })) as Duplex;
    return new DockerExecSession(exec, stream, Boolean(req.tty), this.docker);
  }

  async gateway(): Promise<string | null> {
    const info = await this.container.inspect().catch(() => null);
    return Object.values(info?.NetworkSettings?.Networks ?? {}).find((n) => n.Gateway)?.Gateway ?? null;
  }
}

/** A `docker exec`'s hijacked stream, its stdout and stderr apart (Docker frames them without a TTY). */
class DockerExecSession implements ExecSession {
  readonly stdout = new PassThrough();
  readonly stderr = new PassThrough();
  readonly stdin: Duplex | PassThrough;
  readonly ended: Promise<'end' | 'error'>;

  constructor(
    private readonly exec: Dockerode.Exec,
    private readonly stream: Duplex | null,
    tty: boolean,
    docker: Dockerode,
  ) {
    if (!stream) {
      this.stdin = new PassThrough();
      this.stdout.end();
      this.stderr.end();
      this.ended = Promise.resolve('end');
      return;
    }
    this.stdin = stream;
    if (tty) stream.on('data', (c: Buffer) => !this.stdout.writableEnded && this.stdout.write(c));
    else docker.modem.demuxStream(stream, this.stdout, this.stderr);
    this.ended = new Promise((resolve) => {
      // output still passing through the PassThroughs reaches its readers first
      let settled = false;
      const done = (how: 'end' | 'error') => {
        if (settled) return;
        settled = true;
        this.stdout.end();
        this.stderr.end();
        setImmediate(() => resolve(how));
      };
      stream.once('end', () => done('end'));
      stream.once('close', () => done('end'));
      stream.once('error', () => done('error'));
    });
  }

  get destroyed(): boolean {
    return this.stream ? this.stream.destroyed : true;
  }

  async resize(cols: number, rows: number): Promise<void> {
    await this.exec.resize({ w: cols, h: rows }).catch(() => {
      // the exec has just ended; nothing to size
    });
  }

  async exitCode(): Promise<number | null> {
    const info = await this.exec.inspect();
    return typeof info.ExitCode === 'number' ? info.ExitCode : null;
  }

  destroy(): void {
    this.stream?.destroy();
  }
}

function ipOf(c: Dockerode.ContainerInfo | undefined): string | undefined {
  return Object.values(c?.NetworkSettings?.Networks ?? {}).find((n) => n.IPAddress)?.IPAddress || undefined;
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${message} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
