import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { AppDeps } from '../deps.js';
import type { Workspace } from '../../lib/db/client.js';
import { sendPage } from '../http.js';
import { showWorkspaceState, wakeIfStopped } from './workspace-state-page.js';
import { HOST_WORKSPACE_FIELDS, WorkspaceLookup } from './workspace-lookup.js';
import type { WorkspaceGate } from '../auth/workspace-gate.js';
import { forwardableHeaders, forwardableRawHeaders, withoutBerthSetCookies } from '../auth/cookies.js';

/**
 * How long a WebSocket to a workspace that is not serving yet (stopped, starting, first build)
 * is held before it gets a 503: long enough for a wake-up, not for a build that hangs.
 */
const UPGRADE_WAIT_MS = 120_000;
const UPGRADE_POLL_MS = 250;

/** `<slug>.<previewDomain>[:port]` → slug, or undefined when the host is not a workspace's. */
export function slugFromHost(host: string | undefined, previewDomain: string): string | undefined {
  if (!host) return undefined;
  const name = host.replace(/:\d+$/, '').toLowerCase();
  const suffix = `.${previewDomain.toLowerCase()}`;
  if (!name.endsWith(suffix)) return undefined;
  const slug = name.slice(0, -suffix.length);
  return /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(slug) ? slug : undefined;
}

type Lookup = Pick<Workspace, 'id' | 'slug' | 'branch' | 'state' | 'stateReason' | 'previewHost' | 'previewPort' | 'previewPrivate' | 'idleTimeoutSec'> & {
  repo: string;
  repository: { owner: string; name: string; installationId: bigint; fullName: string };
};

/**
 * The preview gateway: proxies `<slug>.<BERTH_PREVIEW_DOMAIN>` to the workspace's preview
 * service (HTTP and WebSocket), shows a self-refreshing page while it builds or starts,
 * wakes stopped workspaces, and records activity for the idle timer.
 */
export class Gateway {
  private lookups: WorkspaceLookup<Lookup>;
  private lastActivity = new Map<string, number>();
  private agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

  /** `gate` signs people in for `preview.visibility: private`; without it such previews are refused */
  constructor(
    private deps: AppDeps,
    private gate?: WorkspaceGate,
  ) {
    this.lookups = new WorkspaceLookup((slug) => this.load(slug), proxiable);
  }

  /** Handles the request when its Host is a workspace's; false otherwise. */
  handle = async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    const slug = slugFromHost(req.headers.host, this.deps.config.BERTH_PREVIEW_DOMAIN);
    if (!slug) return false;
    const ws = await this.lookups.get(slug);
    if (!ws) {
      sendPage(res, 404, 'pages/not-found.njk', { message: `No workspace is called “${slug}”.`, berthUrl: this.deps.config.berthUrl });
      return true;
    }
    if (ws.previewPrivate && !(this.gate && (await this.gate.admit(req, res, ws, 'preview')))) {
      if (!res.headersSent) sendPage(res, 403, 'pages/error.njk', { status: 403, title: 'Private preview', message: 'This preview is private and sign-in is not available.' });
      return true;
    }
    this.touch(ws);
    if (proxiable(ws)) {
      this.proxyHttp(ws, req, res);
      return true;
    }
    await this.showState(ws, res);
    return true;
  };

  /**
   * WebSocket upgrades for workspace hosts; false when the host is not a workspace's. A
   * WebSocket cannot show a waiting page, so one to a stopped workspace wakes it and is held
   * until the app answers (a dev server's live-reload client then simply connects).
   */
  handleUpgrade = async (req: IncomingMessage, socket: Duplex, head: Buffer): Promise<boolean> => {
    const slug = slugFromHost(req.headers.host, this.deps.config.BERTH_PREVIEW_DOMAIN);
    if (!slug) return false;
    const found = await this.lookups.get(slug);
    if (!found || found.state === 'deleted') {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return true;
    }
    if (found.previewPrivate && !(this.gate && (await this.gate.admitUpgrade(req, socket, found, 'preview')))) {
      if (socket.writable) socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n');
      return true;
    }
    this.touch(found);
    const ws = proxiable(found) ? found : await this.untilServing(found, socket);
    if (!ws) {
      if (socket.writable) socket.end('HTTP/1.1 503 Service Unavailable\r\nRetry-After: 2\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return true;
    }
    const upstream = net.connect(ws.previewPort!, ws.previewHost!, () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      // Berth's cookies never reach the workspace's code.
      const raw = forwardableRawHeaders(req.rawHeaders);
      for (let i = 0; i < raw.length; i += 2) lines.push(`${raw[i]}: ${raw[i + 1]}`);
      upstream.write(lines.join('\r\n') + '\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(socket).pipe(upstream);
    });
    // a private preview's WebSocket ends with its viewer's sign-in or read access
    const unwatch = ws.previewPrivate && this.gate ? this.gate.watch(req, ws, 'preview', () => close()) : () => {};
    const close = () => (unwatch(), upstream.destroy(), socket.destroy());
    upstream.on('error', close);
    socket.on('error', close);
    socket.once('close', unwatch);
    return true;
  };

  private proxyHttp(ws: Lookup, req: IncomingMessage, res: ServerResponse) {
    // Berth's cookies never reach the workspace's code, and the app cannot set Berth's.
    const headers = forwardableHeaders(req.headers);
    headers['x-forwarded-host'] = req.headers.host;
    headers['x-forwarded-proto'] = 'http';
    headers['x-forwarded-for'] = req.socket.remoteAddress ?? '';
    const upstream = http.request(
      { host: ws.previewHost!, port: ws.previewPort!, method: req.method, path: req.url, headers, agent: this.agent },
      (up) => {
        res.writeHead(up.statusCode ?? 502, withoutBerthSetCookies(up.rawHeaders) as unknown as http.OutgoingHttpHeaders);
        up.pipe(res);
      },
    );
    upstream.on('error', () => {
      // The container is gone or restarting: show the state page rather than a bare error, and
      // have the worker look (a container that came back on another IP after a dockerd restart).
      this.lookups.forget(ws.slug);
      void this.deps.queues
        .enqueueWorkspace('status', { workspaceId: ws.id, actor: 'gateway', reason: 'its preview did not answer' }, { deduplication: { id: `status:${ws.id}` } })
        .catch(() => {});
      if (!res.headersSent) void this.showState({ ...ws, state: 'starting' }, res).catch(() => res.destroy());
      else res.destroy();
    });
    req.pipe(upstream);
  }

  /**
   * Wakes the workspace if it is stopped and waits until its preview can be proxied; null when
   * it fails, is deleted, the client gives up, or it takes longer than UPGRADE_WAIT_MS.
   */
  private async untilServing(ws: Lookup, socket: Duplex): Promise<Lookup | null> {
    await wakeIfStopped(this.deps, ws, 'gateway', 'woken by a WebSocket to its preview');
    const deadline = Date.now() + UPGRADE_WAIT_MS;
    let gone = false;
    socket.once('close', () => (gone = true));
    while (!gone && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, UPGRADE_POLL_MS));
      const now = await this.lookups.get(ws.slug, { fresh: true });
      if (!now || now.state === 'failed' || now.state === 'deleted') return null;
      if (proxiable(now)) return now;
    }
    return null;
  }

  private async showState(ws: Lookup, res: ServerResponse) {
    if (ws.state === 'stopped') this.lookups.forget(ws.slug);
    await showWorkspaceState(this.deps, res, ws, ws.repo, {
      actor: 'gateway',
      wakeReason: 'woken by a request to its preview',
      runningHeading: 'Starting',
      detail: ws.state === 'queued' ? 'A build is queued.' : 'Berth is getting it ready.',
    });
  }

  private async load(slug: string): Promise<Lookup | null> {
    const row = await this.deps.db.workspace.findUnique({
      where: { slug },
      select: { ...HOST_WORKSPACE_FIELDS, previewPort: true, previewPrivate: true, idleTimeoutSec: true },
    });
    return row ? { ...row, repo: row.repository.fullName } : null;
  }

  /** Activity for the idle timer, written at most every 10 s per workspace (more often for shorter idle timeouts). */
  private touch(ws: Lookup) {
    const now = Date.now();
    if (now - (this.lastActivity.get(ws.id) ?? 0) < Math.min(10_000, (ws.idleTimeoutSec * 1000) / 3)) return;
    this.lastActivity.set(ws.id, now);
    void this.deps.db.workspace.update({ where: { id: ws.id }, data: { lastActivityAt: new Date(now) } }).catch(() => {});
  }

  invalidate(slug?: string) {
    this.lookups.forget(slug);
  }
}

/** The old containers keep serving while a newer commit is queued or building. */
function proxiable(ws: Lookup): boolean {
  return Boolean(ws.previewHost && ws.previewPort) && ['running', 'queued', 'building'].includes(ws.state);
}
