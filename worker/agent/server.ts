import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import Dockerode from 'dockerode';
import { AGENT_AUTH_HEADER, verifyAgentRequest } from '../../lib/hosts/agent-auth.js';
import { ACCESS_PATH, EXEC_PATH, EXEC_PROTOCOL, TUNNEL_PATH, TUNNEL_PROTOCOL } from '../../lib/hosts/agent-client.js';
import { LABELS } from '../runtime/docker.js';
import { handleExec } from './exec.js';
import { refuseSocket } from './refuse.js';
import type { WorkspaceAccess } from '../../lib/workspace-access.js';
import { ConfigurationError } from '../../lib/errors.js';

/** a request the agent will not carry out (not a fault of the host) */
class AgentRefusal extends Error {}

/** a target's addresses are read from the engine at most this often per workspace */
const TARGETS_CACHE_MS = 1_000;
/** connecting to a container on this host: it answers at once or not at all */
const CONNECT_TIMEOUT_MS = 5_000;

export interface HostAgentOptions {
  /** BERTH_HOST_SECRET */
  secret: string;
  /** BERTH_QUEUE_PREFIX: only this Berth's containers (its `berth.instance` label) are served */
  instance: string;
  /** this host's engine */
  docker?: Dockerode;
  /** this host's door to workspaces' containers (terminals' execs) */
  access?: WorkspaceAccess;
  log?: (msg: string) => void;
}

/**
 * The host agent (issue 18): serves THIS host's workspaces to Berth's web process, which may run
 * on another machine and cannot reach container addresses (they are on this host's bridges).
 * Only requests signed with BERTH_HOST_SECRET (lib/hosts/agent-auth.ts) get anything; everything
 * else gets a bare 401. It opens:
 * - tunnels (`GET /v1/tunnel?workspace=<id>&to=<ip>:<port>|ide`, HTTP Upgrade `berth-tunnel`): a
 *   raw TCP connection to a running container of that workspace on this host's engine (previews,
 *   service hosts, WebSockets, code-server). An address that is not such a container's (the host
 *   itself, another workspace, another host, the internet) is refused.
 * - terminals and other execs (`GET /v1/exec…`, see exec.ts) in a workspace's container.
 */
export class HostAgent {
  readonly server: http.Server;
  private readonly docker: Dockerode;
  private readonly sockets = new Set<Duplex>();
  private readonly targets = new Map<string, { at: number; addresses: Promise<Set<string>> }>();

  constructor(private readonly opts: HostAgentOptions) {
    this.docker = opts.docker ?? new Dockerode();
    this.server = http.createServer((req, res) => this.request(req, res));
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => void this.upgrade(req, socket, head));
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    });
  }

  listen(port: number, host?: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        const a = this.server.address();
        resolve(typeof a === 'object' && a ? a.port : port);
      });
    });
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private authentic(req: IncomingMessage): boolean {
    return verifyAgentRequest(this.opts.secret, req.headers[AGENT_AUTH_HEADER], req.method ?? 'GET', req.url ?? '/');
  }

  private request(req: IncomingMessage, res: ServerResponse) {
    req.resume();
    if (!this.authentic(req)) return refuse(res, 401, 'not signed with this host\'s secret');
    const url = new URL(req.url ?? '/', 'http://agent.invalid');
    if (url.pathname === '/v1/health') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      return void res.end('ok\n');
    }
    if (url.pathname === ACCESS_PATH && req.method === 'GET') {
      void this.call(url)
        .then((result) => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ result: result ?? null }));
        })
        .catch((err: Error) => refuse(res, err instanceof AgentRefusal ? 403 : 502, err.message));
      return;
    }
    refuse(res, 404, 'no such endpoint');
  }

  /**
   * `GET /v1/access?method=<WorkspaceAccess method>&args=<base64url JSON array>`: the web's door
   * (lib/workspace-access.ts) to this host's engine. Methods that name a container act only on a
   * container of this Berth's on this engine; handles come back as container ids.
   */
  private async call(url: URL): Promise<unknown> {
    const access = this.opts.access;
    if (!access) throw new AgentRefusal('this host has no workspace access');
    const method = url.searchParams.get('method') ?? '';
    const args = JSON.parse(Buffer.from(url.searchParams.get('args') ?? 'W10', 'base64url').toString('utf8')) as unknown[];
    if (!Array.isArray(args)) throw new AgentRefusal('args must be a list');
    const str = (i: number) => {
      if (typeof args[i] !== 'string') throw new AgentRefusal(`argument ${i + 1} of ${method} must be a string`);
      return args[i] as string;
    };
    const ours = async (container: string) => {
      if (!(await this.owns(null, container))) throw new AgentRefusal(`${container} is not a container of this Berth on this host`);
    };
    switch (method) {
      case 'ping':
        return access.ping();
      case 'containersOf':
        return access.containersOf(str(0));
      case 'ideEndpoint':
        return access.ideEndpoint(str(0));
      case 'mainContainer':
        return (await access.mainContainer(str(0), (args[1] as string | null) ?? null))?.id ?? null;
      case 'forwardTarget':
        return access.forwardTarget(str(0), str(1), str(2));
      case 'runsWithEnv':
        await ours(str(0));
        return access.runsWithEnv(str(0), str(1));
      case 'ideContainers':
        return access.ideContainers(str(0));
      case 'createPersonIde': {
        const req = args[0] as { templateId: string; login: string; env: string[] };
        await ours(req?.templateId);
        return access.createPersonIde({ templateId: req.templateId, login: String(req.login), env: (req.env ?? []).map(String) });
      }
      case 'removeContainer':
        await ours(str(0));
        return access.removeContainer(str(0));
      case 'workspaceOf':
        return this.workspaceOfContainer(str(0));
      case 'gateway':
        await ours(str(0));
        return access.shell(str(0)).gateway();
      default:
        throw new AgentRefusal(`no method ${method}`);
    }
  }

  /** a container of this Berth (its instance label) on this engine, of `workspaceId` when given */
  private async owns(workspaceId: string | null, container: string): Promise<boolean> {
    const owner = await this.workspaceOfContainer(container);
    return owner !== null && (workspaceId === null || owner === workspaceId);
  }

  /** the workspace a container of this Berth on this engine belongs to; null for any other container or name */
  private async workspaceOfContainer(container: string): Promise<string | null> {
    if (typeof container !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,200}$/.test(container)) return null;
    const info = await this.docker.getContainer(container).inspect().catch(() => null);
    const labels = info?.Config?.Labels ?? {};
    return info && labels[LABELS.instance] === this.opts.instance ? labels[LABELS.workspace] || null : null;
  }

  private async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer) {
    socket.on('error', () => socket.destroy());
    if (!this.authentic(req)) return refuseSocket(socket, 401, 'not signed with this host\'s secret');
    const url = new URL(req.url ?? '/', 'http://agent.invalid');
    const protocol = String(req.headers.upgrade ?? '').toLowerCase();
    const workspace = url.searchParams.get('workspace') ?? '';
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(workspace)) return refuseSocket(socket, 400, 'no workspace named');
    if (protocol === EXEC_PROTOCOL && !(await this.owns(workspace, url.searchParams.get('container') ?? ''))) {
      return refuseSocket(socket, 403, 'not a container of that workspace on this host');
    }
    try {
      if (url.pathname === TUNNEL_PATH && protocol === TUNNEL_PROTOCOL) return await this.tunnel(workspace, url.searchParams.get('to') ?? '', socket, head);
      if (url.pathname === EXEC_PATH && protocol === EXEC_PROTOCOL) {
        if (!this.opts.access) return refuseSocket(socket, 501, 'this host runs no execs');
        return await handleExec(this.opts.access, (w, c) => this.owns(w, c), workspace, url, socket, head, this.opts.log);
      }
    } catch (err) {
      return refuseSocket(socket, 502, (err as Error).message);
    }
    refuseSocket(socket, 404, 'no such endpoint');
  }

  private async tunnel(workspaceId: string, to: string, socket: Duplex, head: Buffer) {
    const target = await this.resolve(workspaceId, to);
    if (!target) return refuseSocket(socket, 403, `${to} is not a running container of workspace ${workspaceId} on this host`);
    const upstream = net.connect(target.port, target.host);
    upstream.setTimeout(CONNECT_TIMEOUT_MS, () => upstream.destroy(new Error('connect timeout')));
    upstream.once('connect', () => {
      upstream.setTimeout(0);
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${TUNNEL_PROTOCOL}\r\n\r\n`);
      if (head.length) upstream.write(head);
      upstream.pipe(socket).pipe(upstream);
    });
    const close = () => (upstream.destroy(), socket.destroy());
    upstream.once('error', (err) => {
      if (upstream.connecting || !socket.writableEnded) refuseSocket(socket, 502, `the container did not answer: ${err.message}`);
      close();
    });
    socket.once('close', close);
  }

  /** `<ip>:<port>` of a running container of this workspace (this Berth's, on this engine), or its IDE */
  private async resolve(workspaceId: string, to: string): Promise<{ host: string; port: number } | null> {
    if (to === 'ide') return (await this.opts.access?.ideEndpoint(workspaceId)) ?? null;
    const m = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(to);
    if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) return null;
    return (await this.addressesOf(workspaceId)).has(m[1]!) ? { host: m[1]!, port: Number(m[2]) } : null;
  }

  private addressesOf(workspaceId: string): Promise<Set<string>> {
    const hit = this.targets.get(workspaceId);
    if (hit && Date.now() - hit.at < TARGETS_CACHE_MS) return hit.addresses;
    const addresses = this.docker
      .listContainers({ filters: { label: [`${LABELS.workspace}=${workspaceId}`, `${LABELS.instance}=${this.opts.instance}`], status: ['running'] } })
      .then((list) => new Set(list.flatMap((c) => Object.values(c.NetworkSettings?.Networks ?? {}).map((n) => n.IPAddress).filter(Boolean))));
    this.targets.set(workspaceId, { at: Date.now(), addresses });
    if (this.targets.size > 1000) for (const [k, v] of this.targets) if (Date.now() - v.at > TARGETS_CACHE_MS) this.targets.delete(k);
    addresses.catch(() => this.targets.delete(workspaceId));
    return addresses;
  }
}

function refuse(res: ServerResponse, status: number, reason: string) {
  res.writeHead(status, { 'content-type': 'text/plain', 'x-berth-agent-reason': reason.replace(/[^\x20-\x7e]/g, '?').slice(0, 200) });
  res.end(`${status}\n`);
}

/** starts the host's agent on BERTH_HOST_URL's port (every address: the URL's may be a NAT's) */
export async function startHostAgent(url: string, opts: HostAgentOptions): Promise<HostAgent> {
  const agent = new HostAgent(opts);
  const u = new URL(url);
  const port = Number(u.port) || (u.protocol === 'https:' ? 443 : 80);
  try {
    await agent.listen(port);
  } catch (err) {
    throw new ConfigurationError(`BERTH_HOST_URL: the host agent cannot listen on port ${port} (${(err as Error).message}); choose another port in BERTH_HOST_URL`);
  }
  opts.log?.(`host agent listening on port ${port} (BERTH_HOST_URL ${url})`);
  return agent;
}
