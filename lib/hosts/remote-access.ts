import { PassThrough, type Duplex } from 'node:stream';
import { LRUCache } from 'lru-cache';
import type { PrismaClient } from '../db/client.js';
import type { ContainerView, Endpoint, ExecRequest, ExecSession, IdeContainerInfo, WorkspaceAccess, WorkspaceShell } from '../workspace-access.js';
import { EXEC_PATH, EXEC_PROTOCOL, HostAgents, type HostAgentClient } from './agent-client.js';
import { FRAME, readFrames, writeFrame } from './agent-frames.js';

/**
 * A workspace host's WorkspaceAccess as the web process sees it: every call goes to that host's
 * agent (worker/agent/server.ts). Addresses it returns are container addresses on that host, so
 * each endpoint carries `connect`, a connection to it through the agent.
 */
export class RemoteWorkspaceAccess implements WorkspaceAccess {
  constructor(readonly agent: HostAgentClient) {}

  async ping(): Promise<void> {
    await this.agent.call('ping', []);
  }

  async containersOf(workspaceId: string): Promise<ContainerView[] | null> {
    const list = await this.agent.call<ContainerView[] | null>('containersOf', [workspaceId]).catch(() => null);
    return list?.map((c) => ({ ...c, createdAt: new Date(c.createdAt) })) ?? null;
  }

  async ideEndpoint(workspaceId: string): Promise<Endpoint | null> {
    const e = await this.agent.call<Endpoint | null>('ideEndpoint', [workspaceId]);
    return e && this.reachable(workspaceId, e);
  }

  async mainContainer(workspaceId: string, preferredService: string | null): Promise<WorkspaceShell | null> {
    const id = await this.agent.call<string | null>('mainContainer', [workspaceId, preferredService]);
    return id ? new RemoteShell(this.agent, workspaceId, id) : null;
  }

  forwardTarget(workspaceId: string, mainContainerId: string, destination: string): Promise<string | null> {
    return this.agent.call('forwardTarget', [workspaceId, mainContainerId, destination]);
  }

  runsWithEnv(containerName: string, envEntry: string): Promise<boolean> {
    return this.agent.call('runsWithEnv', [containerName, envEntry]);
  }

  async ideContainers(workspaceId: string): Promise<IdeContainerInfo[]> {
    const list = await this.agent.call<IdeContainerInfo[]>('ideContainers', [workspaceId]);
    return list.map((c) => (c.endpoint ? { ...c, endpoint: this.reachable(workspaceId, c.endpoint) } : c));
  }

  async createPersonIde(req: { templateId: string; login: string; env: string[] }): Promise<{ id: string; name: string } & Endpoint> {
    const made = await this.agent.call<{ id: string; name: string; host: string; port: number }>('createPersonIde', [req]);
    const workspaceId = await this.workspaceOfContainer(made.id);
    return { ...made, ...this.reachable(workspaceId, made) };
  }

  removeContainer(id: string): Promise<void> {
    return this.agent.call('removeContainer', [id]);
  }

  shell(idOrName: string): WorkspaceShell {
    return new RemoteShell(this.agent, null, idOrName);
  }

  private reachable(workspaceId: string, e: Endpoint): Endpoint {
    return { host: e.host, port: e.port, connect: () => this.agent.tunnel(workspaceId, `${e.host}:${e.port}`) };
  }

  private async workspaceOfContainer(id: string): Promise<string> {
    return (await this.agent.call<string | null>('workspaceOf', [id])) ?? '';
  }
}

/** a container on another host: its programs run through that host's agent */
class RemoteShell implements WorkspaceShell {
  constructor(
    private readonly agent: HostAgentClient,
    private readonly workspaceId: string | null,
    readonly id: string,
  ) {}

  gateway(): Promise<string | null> {
    return this.agent.call('gateway', [this.id]);
  }

  async exec(req: ExecRequest): Promise<ExecSession> {
    const workspace = this.workspaceId ?? (await this.agent.call<string | null>('workspaceOf', [this.id])) ?? '';
    const query = new URLSearchParams({ workspace, container: this.id, req: Buffer.from(JSON.stringify(req)).toString('base64url') });
    const socket = await this.agent.upgrade(`${EXEC_PATH}?${query}`, EXEC_PROTOCOL);
    return remoteExec(socket, req);
  }
}

/** an ExecSession carried by frames over one connection to the agent (worker/agent/exec.ts) */
function remoteExec(socket: Duplex, req: ExecRequest): ExecSession {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let exitCode: number | null = null;
  let destroyed = false;
  const stdin = new PassThrough();
  stdin.on('data', (c: Buffer) => writeFrame(socket, FRAME.stdin, c));
  stdin.on('end', () => writeFrame(socket, FRAME.stdinEnd));
  if (!req.stdin) stdin.end();
  const ended = new Promise<'end' | 'error'>((resolve) => {
    readFrames(socket, (type, payload) => {
      if (type === FRAME.stdout) stdout.write(payload);
      else if (type === FRAME.stderr) stderr.write(payload);
      else if (type === FRAME.exit) {
        exitCode = (JSON.parse(payload.toString('utf8')) as { exitCode: number | null }).exitCode;
        stdout.end();
        stderr.end();
        resolve('end');
      }
    });
    socket.once('close', () => {
      stdout.end();
      stderr.end();
      resolve(exitCode === null ? 'error' : 'end');
    });
    socket.on('error', () => resolve('error'));
  });
  return {
    stdin,
    stdout,
    stderr,
    ended,
    async resize(cols, rows) {
      if (socket.writable) writeFrame(socket, FRAME.resize, JSON.stringify({ cols, rows }));
    },
    async exitCode() {
      return exitCode;
    },
    destroy() {
      destroyed = true;
      socket.destroy();
    },
    get destroyed() {
      return destroyed;
    },
  };
}

/** how long a workspace's host (and whether any host has an agent) is remembered */
const HOST_CACHE_MS = 2_000;

/**
 * The web's door to every host: each call goes to the access of the host that holds the
 * workspace (Workspace.hostId → Host.url, hosts-b's table). A workspace on a host without an agent
 * URL (the implicit `local` host, or not placed yet) is this machine's: `local`, as on a single
 * host. While no host has an agent URL at all (every single-host install), every call goes to
 * `local` without looking anything up.
 */
export class RoutedWorkspaceAccess implements WorkspaceAccess {
  private readonly remotes = new Map<string, RemoteWorkspaceAccess>();
  private readonly agents: HostAgents;
  private readonly hostOf = new LRUCache<string, { url: string | null }>({ max: 10_000, ttl: HOST_CACHE_MS });
  /** containers (ids and names) handed out by a remote access: their later calls go there too */
  private readonly owners = new LRUCache<string, WorkspaceAccess>({ max: 10_000 });
  private anyRemote: { at: number; value: Promise<boolean> } | undefined;

  constructor(
    private readonly local: WorkspaceAccess,
    private readonly db: PrismaClient,
    /** BERTH_HOST_SECRET; without it a workspace on another host cannot be reached (said when asked) */
    secret: string | undefined,
    /** the host whose worker runs in this process (npm start): its workspaces are `local`'s, no agent hop */
    ownHost?: string,
  ) {
    this.agents = new HostAgents(secret, ownHost);
  }

  /** the access of the workspace's host */
  async of(workspaceId: string): Promise<WorkspaceAccess> {
    if (!(await this.hasRemoteHosts())) return this.local;
    let entry = this.hostOf.get(workspaceId);
    if (!entry) {
      const row = await this.db.workspace.findUnique({ where: { id: workspaceId }, select: { host: { select: { url: true, name: true } } } });
      entry = { url: this.agents.urlFor(row?.host) };
      this.hostOf.set(workspaceId, entry);
    }
    return entry.url ? this.remote(entry.url) : this.local;
  }

  /** the agent of the host at `url` (BERTH_HOST_URL) */
  remote(url: string): RemoteWorkspaceAccess {
    let r = this.remotes.get(url);
    if (!r) this.remotes.set(url, (r = new RemoteWorkspaceAccess(this.agents.client(url))));
    return r;
  }

  private hasRemoteHosts(): Promise<boolean> {
    if (this.anyRemote && Date.now() - this.anyRemote.at < HOST_CACHE_MS) return this.anyRemote.value;
    const value = this.db.host.count({ where: { url: { not: null } } }).then((n) => n > 0, () => false);
    this.anyRemote = { at: Date.now(), value };
    return value;
  }

  private byHandle(idOrName: string): WorkspaceAccess {
    return this.owners.get(idOrName) ?? this.local;
  }

  private remember(access: WorkspaceAccess, ...handles: Array<string | undefined>) {
    if (access === this.local) return;
    for (const h of handles) if (h) this.owners.set(h, access);
  }

  ping(): Promise<void> {
    return this.local.ping();
  }

  async containersOf(workspaceId: string): Promise<ContainerView[] | null> {
    return (await this.of(workspaceId)).containersOf(workspaceId);
  }

  async ideEndpoint(workspaceId: string): Promise<Endpoint | null> {
    return (await this.of(workspaceId)).ideEndpoint(workspaceId);
  }

  async mainContainer(workspaceId: string, preferredService: string | null): Promise<WorkspaceShell | null> {
    const access = await this.of(workspaceId);
    const shell = await access.mainContainer(workspaceId, preferredService);
    this.remember(access, shell?.id);
    return shell;
  }

  async forwardTarget(workspaceId: string, mainContainerId: string, destination: string): Promise<string | null> {
    return (await this.of(workspaceId)).forwardTarget(workspaceId, mainContainerId, destination);
  }

  runsWithEnv(containerName: string, envEntry: string): Promise<boolean> {
    return this.byHandle(containerName).runsWithEnv(containerName, envEntry);
  }

  async ideContainers(workspaceId: string): Promise<IdeContainerInfo[]> {
    const access = await this.of(workspaceId);
    const list = await access.ideContainers(workspaceId);
    for (const c of list) this.remember(access, c.id, c.name);
    return list;
  }

  async createPersonIde(req: { templateId: string; login: string; env: string[] }): Promise<{ id: string; name: string } & Endpoint> {
    const access = this.byHandle(req.templateId);
    const made = await access.createPersonIde(req);
    this.remember(access, made.id, made.name);
    return made;
  }

  removeContainer(id: string): Promise<void> {
    return this.byHandle(id).removeContainer(id);
  }

  shell(idOrName: string): WorkspaceShell {
    return this.byHandle(idOrName).shell(idOrName);
  }
}
