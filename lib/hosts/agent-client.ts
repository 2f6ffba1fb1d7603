import http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import { BerthError, ConfigurationError } from '../errors.js';
import { AGENT_AUTH_HEADER, signAgentRequest } from './agent-auth.js';

/** The agent of a workspace's host did not open what was asked (refused, unreachable, too slow). */
export class HostAgentError extends BerthError {
  constructor(
    readonly host: string,
    readonly status: number | undefined,
    message: string,
  ) {
    super(message, 'host_agent');
  }
}

/** how long opening a connection through an agent may take (the agent's host answers on a LAN) */
const OPEN_TIMEOUT_MS = 10_000;

/** the protocol name of a tunnel (HTTP Upgrade): after 101 the connection is the target's TCP stream */
export const TUNNEL_PROTOCOL = 'berth-tunnel';
export const TUNNEL_PATH = '/v1/tunnel';
/** an exec (lib/hosts/agent-frames.ts after the upgrade) */
export const EXEC_PATH = '/v1/exec';
export const EXEC_PROTOCOL = 'berth-exec';
/** a WorkspaceAccess call answered as JSON */
export const ACCESS_PATH = '/v1/access';
/** a JSON call to an agent may take this long (a person's VS Code is created in one) */
const CALL_TIMEOUT_MS = 60_000;

/**
 * The web process's side of a host agent (worker/agent/server.ts, BERTH_HOST_URL of that host):
 * opens TCP connections to a workspace's containers on that host, each request signed with
 * BERTH_HOST_SECRET. Container addresses are only reachable on their host; through here the web
 * reaches them without any route to them.
 */
export class HostAgentClient {
  private readonly base: URL;

  constructor(
    readonly url: string,
    private readonly secret: string,
  ) {
    this.base = new URL(url);
  }

  /**
   * A connection to `to` of workspace `workspaceId` on the agent's host: `<ip>:<port>` of one of
   * its containers, or `ide` (its own code-server). The agent refuses anything that is not that
   * workspace's on its own engine.
   */
  tunnel(workspaceId: string, to: string): Promise<Duplex> {
    const path = `${TUNNEL_PATH}?workspace=${encodeURIComponent(workspaceId)}&to=${encodeURIComponent(to)}`;
    return this.upgrade(path, TUNNEL_PROTOCOL);
  }

  /** `method` of the host's WorkspaceAccess with JSON `args`; its result (null for none) */
  async call<T>(method: string, args: unknown[]): Promise<T> {
    const path = `${ACCESS_PATH}?method=${encodeURIComponent(method)}&args=${Buffer.from(JSON.stringify(args)).toString('base64url')}`;
    const res = await fetch(new URL(path, this.base), {
      headers: { [AGENT_AUTH_HEADER]: signAgentRequest(this.secret, 'GET', path) },
      signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
    }).catch((err: Error) => {
      throw new HostAgentError(this.base.host, undefined, `the host agent at ${this.base.host} cannot be reached: ${err.message}`);
    });
    if (!res.ok) {
      await res.body?.cancel();
      throw new HostAgentError(this.base.host, res.status, `the host agent at ${this.base.host} refused ${method} (${res.status}: ${res.headers.get('x-berth-agent-reason') ?? ''})`);
    }
    return ((await res.json()) as { result: T }).result;
  }

  /** an upgraded connection to the agent at `path` (signed), speaking `protocol` after 101 */
  upgrade(path: string, protocol: string, headers: Record<string, string> = {}): Promise<Duplex> {
    return new Promise((resolve, reject) => {
      const lib = this.base.protocol === 'https:' ? https : http;
      const req = lib.request({
        protocol: this.base.protocol,
        hostname: this.base.hostname,
        port: this.base.port || (this.base.protocol === 'https:' ? 443 : 80),
        method: 'GET',
        path,
        headers: { ...headers, connection: 'Upgrade', upgrade: protocol, [AGENT_AUTH_HEADER]: signAgentRequest(this.secret, 'GET', path) },
        timeout: OPEN_TIMEOUT_MS,
      });
      const fail = (status: number | undefined, why: string) => reject(new HostAgentError(this.base.host, status, `the host agent at ${this.base.host} ${why}`));
      req.on('upgrade', (res, socket, head) => {
        socket.setTimeout(0);
        if (head.length) socket.unshift(head);
        resolve(socket);
      });
      req.on('response', (res) => {
        res.resume();
        fail(res.statusCode, `refused (${res.statusCode}${res.headers['x-berth-agent-reason'] ? `: ${String(res.headers['x-berth-agent-reason'])}` : ''})`);
      });
      req.on('timeout', () => req.destroy(new Error(`no answer within ${OPEN_TIMEOUT_MS / 1000} s`)));
      req.on('error', (err) => fail(undefined, `cannot be reached: ${err.message}`));
      req.end();
    });
  }
}

/**
 * The agents of the hosts a web process reaches, by BERTH_HOST_URL, all signed with the one
 * BERTH_HOST_SECRET. `ownHost`: the host whose worker runs in this process (npm start) is this
 * machine: its workspaces are reached directly, as on a single host.
 */
export class HostAgents {
  private readonly clients = new Map<string, HostAgentClient>();

  constructor(
    private readonly secret: string | undefined,
    readonly ownHost?: string,
  ) {}

  /** the agent URL to go through for a workspace on `host`, or null to go direct */
  urlFor(host: { name: string; url: string | null } | null | undefined): string | null {
    return host?.url && host.name !== this.ownHost ? host.url : null;
  }

  client(url: string): HostAgentClient {
    if (!this.secret) throw new ConfigurationError(`BERTH_HOST_SECRET is not set on the web process: it cannot reach the workspaces on the host at ${url}; set the same value as on that host's worker`);
    let c = this.clients.get(url);
    if (!c) this.clients.set(url, (c = new HostAgentClient(url, this.secret)));
    return c;
  }
}

/**
 * http.request options that send the request over a connection `connect` opens (a tunnel through
 * a host agent) instead of a TCP connection to host:port of its own; one connection per request.
 */
export function overConnection(connect: () => Promise<Duplex>): Pick<http.RequestOptions, 'agent' | 'createConnection'> {
  return {
    // no agent at all: Node calls createConnection only then (agent: false makes a fresh Agent)
    agent: undefined,
    createConnection: ((_opts: unknown, ready: (err: Error | null, socket?: Duplex) => void) => {
      connect().then((s) => ready(null, s), (err: Error) => ready(err));
      return undefined;
    }) as unknown as http.RequestOptions['createConnection'],
  };
}
