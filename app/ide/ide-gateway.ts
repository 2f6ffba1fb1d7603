import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { AppDeps } from '../deps.js';
import { sendPage } from '../http.js';
import type { WorkspaceGate, GatedWorkspace } from '../auth/workspace-gate.js';
import { forwardableHeaders, forwardableRawHeaders, withoutBerthSetCookies } from '../auth/cookies.js';
import { ideOrigin, ideSlugFromHost } from './hosts.js';
import { IdeContainers, type IdeEndpoint } from './containers.js';
import { runTerminal, type TerminalProgram } from './terminal.js';
import { serveAsset } from './assets.js';
import { overConnection } from '../../lib/hosts/agent-client.js';
import { showWorkspaceState } from '../gateway/workspace-state-page.js';
import { HOST_WORKSPACE_FIELDS, WorkspaceLookup } from '../gateway/workspace-lookup.js';
import { ActivityRecorder } from '../gateway/activity.js';
import type { GitCredentials } from './git-credentials.js';
import { PersonIdes } from './person-ide.js';
import type { SessionUser } from '../auth/types.js';

const TERMINAL_PATH = '/__berth/terminal';
type IdeWorkspace = GatedWorkspace & {
  branch: string;
  state: string;
  stateReason: string | null;
  ide: string;
  ideState: string | null;
  previewService: string | null;
  previewHost: string | null;
  idleTimeoutSec: number;
};

/**
 * The IDE hosts, `<slug>.ide.<BERTH_PREVIEW_DOMAIN>`: behind WorkspaceGate (signed in, write
 * access), they serve either code-server (`workspace.ide: vscode`, proxied to the IDE
 * container the worker started on the workspace network) or Berth's terminal page
 * (`vim`, `emacs`, `terminal`, and `vscode` when code-server is not available here).
 * Requests count as activity; opening the IDE of a stopped workspace wakes it.
 */
export class IdeGateway {
  private lookups = new WorkspaceLookup<IdeWorkspace>((slug) => this.load(slug), (ws) => live(ws) && ws.ideState !== 'starting');
  private activity: ActivityRecorder;
  private agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  private terminals = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024 });
  private upgrades = new Set<Duplex>();
  /** each person's own VS Code (with git credentials only); none: everyone shares the workspace's */
  private people?: PersonIdes;

  constructor(
    private readonly deps: AppDeps,
    private readonly gate: WorkspaceGate,
    private readonly containers: IdeContainers,
    /** git as the person at the keyboard in terminals (none: terminals get no git credentials) */
    private readonly git?: GitCredentials,
  ) {
    this.activity = new ActivityRecorder(deps);
    if (git) this.people = new PersonIdes(deps, containers.access, git);
  }

  handle = async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    const slug = ideSlugFromHost(req.headers.host, this.deps.config.BERTH_PREVIEW_DOMAIN);
    if (!slug) return false;
    const ws = await this.lookups.get(slug);
    if (!ws || ws.state === 'deleted') {
      sendPage(res, 404, 'pages/not-found.njk', { berthUrl: this.deps.config.berthUrl, message: `No workspace is called “${slug}”.` });
      return true;
    }
    if (!this.sameOrigin(req, ws)) {
      res.writeHead(403, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('Refused: this request came from another site.\n');
      return true;
    }
    const user = await this.gate.admit(req, res, ws, 'ide');
    if (!user) return true;
    this.touch(ws);
    const pathname = new URL(req.url ?? '/', 'http://ide.invalid').pathname;
    if (await serveAsset(pathname, res)) return true;
    if (!live(ws)) {
      await this.showState(ws, res);
      return true;
    }
    if (ws.ide === 'vscode') {
      // VS Code starts after the app runs: wait for it rather than fall back to a terminal.
      // Its container exists before code-server listens, so the worker's word decides.
      if (ws.ideState === 'starting') {
        await this.showState(ws, res);
        return true;
      }
      const endpoint = await this.codeServer(ws, req, user);
      if (endpoint) {
        this.proxy(ws, endpoint, req, res, user);
        return true;
      }
    }
    if (pathname !== '/') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('not found\n');
      return true;
    }
    const notice =
      ws.ide === 'vscode'
        ? 'VS Code is not running for this workspace (code-server is not installed on this Berth host, or it failed to start; see the workspace page). Here is a terminal instead.'
        : undefined;
    sendPage(res, 200, 'ide/terminal.njk', { berthUrl: this.deps.config.berthUrl, workspace: ws, repo: ws.repository.fullName, program: programOf(ws.ide), notice }, {
      'content-security-policy': "default-src 'self'; connect-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
    });
    return true;
  };

  handleUpgrade = async (req: IncomingMessage, socket: Duplex, head: Buffer): Promise<boolean> => {
    const slug = ideSlugFromHost(req.headers.host, this.deps.config.BERTH_PREVIEW_DOMAIN);
    if (!slug) return false;
    const ws = await this.lookups.get(slug);
    // A page on another workspace's host is same-site with this one, so its WebSocket would
    // carry our cookie: the Origin check is what keeps it out of this shell.
    if (!ws || !live(ws) || !this.sameOrigin(req, ws)) {
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return true;
    }
    const user = await this.gate.admitUpgrade(req, socket, ws, 'ide');
    if (!user) return true;
    this.touch(ws);
    const url = new URL(req.url ?? '/', 'http://ide.invalid');
    if (url.pathname === TERMINAL_PATH) {
      await this.openTerminal(ws, req, socket, head, url, user);
      return true;
    }
    const endpoint = ws.ide === 'vscode' ? await this.codeServer(ws, req, user) : null;
    if (!endpoint) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return true;
    }
    this.proxyUpgrade(ws, endpoint, req, socket, head);
    return true;
  };

  async close() {
    for (const client of this.terminals.clients) client.terminate();
    for (const s of this.upgrades) s.destroy();
    await new Promise<void>((r) => this.terminals.close(() => r()));
    this.agent.destroy();
  }

  // --- terminal ------------------------------------------------------------------------------------

  private async openTerminal(ws: IdeWorkspace, req: IncomingMessage, socket: Duplex, head: Buffer, url: URL, user: SessionUser) {
    const container = await this.containers.mainContainer(ws.id, ws.previewService).catch(() => null);
    if (!container) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    // This person's git identity and credential handle, in this terminal's environment only.
    const sid = this.gate.sessionOf(req, ws, 'ide');
    const handle = this.git && sid ? await this.git.mintHandle(sid, ws.id, user.login) : undefined;
    const env = handle ? await this.git!.terminalEnv(user, handle, container, req.socket.localPort ?? 0) : [];
    this.terminals.handleUpgrade(req, socket, head, (client) => {
      // ws reports a bad frame (one over maxPayload, say) as an 'error' event and closes the
      // socket itself; an error event nobody listens to would end the process.
      client.on('error', () => {});
      // signed out, or no longer a writer: the shell closes (the exec ends with it)
      const unwatch = this.gate.watch(req, ws, 'ide', (reason) => client.close(1008, `closed: ${reason}`));
      client.on('close', unwatch);
      if (handle) client.on('close', () => void this.git!.revoke(handle));
      runTerminal(client, container, programOf(ws.ide), {
        cols: Number(url.searchParams.get('cols')) || undefined,
        rows: Number(url.searchParams.get('rows')) || undefined,
        onActivity: () => this.touch(ws),
        env,
      }).catch((err: Error) => client.close(1011, `could not start the terminal: ${err.message}`.slice(0, 120)));
    });
  }

  // --- code-server proxy ---------------------------------------------------------------------------

  private proxy(ws: IdeWorkspace, endpoint: IdeEndpoint, req: IncomingMessage, res: ServerResponse, user: SessionUser) {
    const headers = forwardableHeaders(req.headers);
    headers['x-forwarded-host'] = req.headers.host;
    headers['x-forwarded-proto'] = new URL(this.deps.config.berthUrl).protocol.replace(':', '');
    // on another host (issue 18): a connection through its agent, made for this request
    const via = endpoint.connect ? overConnection(endpoint.connect) : { agent: this.agent };
    const upstream = http.request({ host: endpoint.host, port: endpoint.port, method: req.method, path: req.url, headers, ...via }, (up) => {
      res.writeHead(up.statusCode ?? 502, withoutBerthSetCookies(up.rawHeaders) as unknown as http.OutgoingHttpHeaders);
      up.pipe(res);
    });
    upstream.on('error', () => {
      // The IDE container is gone or restarting: forget it and let the next request look again.
      this.containers.forget(ws.id);
      this.people?.forget(ws.id, user.login);
      // the app runs; it is the IDE that does not answer (yet): say so
      if (!res.headersSent) void this.showState({ ...ws, state: 'running' }, res).catch(() => res.destroy());
      else res.destroy();
    });
    req.pipe(upstream);
  }

  private proxyUpgrade(ws: IdeWorkspace, endpoint: IdeEndpoint, req: IncomingMessage, socket: Duplex, head: Buffer) {
    this.upgrades.add(socket);
    const handshake = (upstream: Duplex) => {
      const raw = forwardableRawHeaders(req.rawHeaders);
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      for (let i = 0; i < raw.length; i += 2) lines.push(`${raw[i]}: ${raw[i + 1]}`);
      upstream.write(lines.join('\r\n') + '\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(socket).pipe(upstream);
    };
    let upstream: Duplex | undefined;
    const connected = (u: Duplex) => {
      upstream = u;
      u.on('error', close);
      u.on('close', close);
      if (socket.destroyed) close();
    };
    // Typing in VS Code is WebSocket traffic only: it must keep the workspace awake too.
    socket.on('data', () => this.touch(ws));
    // signed out, or no longer a writer: VS Code loses its connection to the workspace
    const unwatch = this.gate.watch(req, ws, 'ide', () => close());
    const close = () => {
      unwatch();
      this.upgrades.delete(socket);
      upstream?.destroy();
      socket.destroy();
    };
    socket.on('error', close);
    socket.on('close', close);
    if (endpoint.connect) {
      // on another host (issue 18): through its agent
      endpoint.connect().then((u) => (connected(u), !socket.destroyed && handshake(u)), close);
    } else {
      const direct = net.connect(endpoint.port, endpoint.host, () => handshake(direct));
      connected(direct);
    }
  }

  /**
   * Where this person's code-server answers: their own container (PersonIdes), made from the
   * workspace's once the worker has it running; looks again when the worker just reported it.
   */
  private async codeServer(ws: IdeWorkspace, req: IncomingMessage, user: SessionUser): Promise<IdeEndpoint | null> {
    let endpoint = await this.containers.codeServer(ws.id).catch(() => null);
    if (!endpoint && ws.ideState === 'running') {
      this.containers.forget(ws.id);
      endpoint = await this.containers.codeServer(ws.id).catch(() => null);
    }
    if (!endpoint || !this.people) return endpoint;
    const sid = this.gate.sessionOf(req, ws, 'ide');
    if (!sid) return null;
    return this.people.endpoint(ws, user, sid, req.socket.localPort ?? 0).catch(() => null);
  }

  // --- workspace state -------------------------------------------------------------------------------

  private async showState(ws: IdeWorkspace, res: ServerResponse) {
    if (ws.state === 'stopped') this.lookups.forget(ws.slug);
    await showWorkspaceState(this.deps, res, ws, ws.repository.fullName, {
      actor: 'ide',
      wakeReason: 'woken by opening its IDE',
      runningHeading: 'Starting the IDE',
      detail: 'Berth is getting the workspace ready; the IDE opens as soon as it is.',
    });
  }

  private load(slug: string): Promise<IdeWorkspace | null> {
    return this.deps.db.workspace.findUnique({
      // a warm pool member has no IDE for anyone (lib/warm-pool.ts)
      where: { slug, poolMember: false },
      select: { ...HOST_WORKSPACE_FIELDS, ide: true, ideState: true, previewService: true, idleTimeoutSec: true },
    });
  }

  /**
   * Browsers send Origin on every WebSocket handshake and on every POST, and a page cannot
   * remove it; without one the request is not a browser's (and still needs the cookie).
   */
  private sameOrigin(req: IncomingMessage, ws: IdeWorkspace): boolean {
    const origin = req.headers.origin;
    return !origin || origin === ideOrigin(this.deps.config, ws.slug);
  }

  private touch(ws: IdeWorkspace) {
    this.activity.touch(ws);
  }
}

/** The workspace's containers are up (old ones keep serving while a newer commit builds or rolls out). */
function live(ws: IdeWorkspace): boolean {
  return Boolean(ws.previewHost) && ['running', 'queued', 'building', 'starting'].includes(ws.state);
}

function programOf(ide: string): TerminalProgram {
  return ide === 'vim' || ide === 'emacs' ? ide : 'terminal';
}
