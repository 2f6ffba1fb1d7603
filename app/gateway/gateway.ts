import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { AppDeps } from '../deps.js';
import type { Workspace } from '../../lib/db/client.js';
import { sendPage } from '../http.js';
import { showWorkspaceState, wakeIfStopped } from './workspace-state-page.js';
import { HOST_WORKSPACE_FIELDS, WorkspaceLookup } from './workspace-lookup.js';
import { ActivityRecorder } from './activity.js';
import { HostAgents, overConnection } from '../../lib/hosts/agent-client.js';
import { NATIVE_AUTH_HEADER, NATIVE_AUTH_PATH } from './nginx-config.js';
import type { WorkspaceGate } from '../auth/workspace-gate.js';
import { forwardableRawHeaders, stripBerthCookies, withoutBerthSetCookies } from '../auth/cookies.js';
import { parsePreviewHost, parsePreviewLabel, serviceEndpointsOf, serviceHostLabel } from '../../lib/preview-domain.js';

/**
 * How long a WebSocket to a workspace that is not serving yet (stopped, starting, first build)
 * is held before it gets a 503: long enough for a wake-up, not for a build that hangs.
 */
const UPGRADE_WAIT_MS = 120_000;
/**
 * how often a held request's workspace is looked up again (one indexed query per workspace, shared
 * by every held request): every 25 ms adds at most that to a wake, 12 ms on average
 */
const SERVING_POLL_MS = 25;
/** one shared poll lasts at most this long; waiters with time left start the next */
const SERVING_POLL_SPAN_MS = 5_000;

export { slugFromHost } from '../../lib/preview-domain.js';

/**
 * A workspace as one of its hosts serves it: the preview (`key` = slug), or a service's own
 * host (issue 16), whose previewHost/previewPort are that service's while the workspace serves.
 */
type Lookup = Pick<Workspace, 'id' | 'slug' | 'branch' | 'state' | 'stateReason' | 'previewHost' | 'previewPort' | 'previewPrivate' | 'idleTimeoutSec'> & {
  /** the host's label: the lookup cache's key */
  key: string;
  /** the agent of the host holding the workspace (issue 18), or null: its containers are reachable from here */
  agentUrl: string | null;
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
  private activity: ActivityRecorder;
  private agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  private hosts: HostAgents;

  /** `gate` signs people in for `preview.visibility: private`; without it such previews are refused */
  constructor(
    private deps: AppDeps,
    private gate?: WorkspaceGate,
  ) {
    this.lookups = new WorkspaceLookup((slug) => this.load(slug), proxiable);
    this.activity = new ActivityRecorder(deps);
    this.hosts = new HostAgents(deps.config.BERTH_HOST_SECRET, deps.config.BERTH_ROLE === 'all' ? deps.config.BERTH_HOST_NAME : undefined);
  }

  /**
   * nginx is in front (app/gateway/native-front.ts): it answers running workspaces' hosts itself,
   * asks Berth whether a private one's request may pass, and names the client in X-Forwarded-For.
   */
  behindNativeProxy = false;

  /** Handles the request when its Host is a workspace's; false otherwise. */
  handle = async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    const host = parsePreviewHost(req.headers.host, this.deps.config.BERTH_PREVIEW_DOMAIN);
    if (!host) return false;
    if (this.behindNativeProxy && req.headers[NATIVE_AUTH_HEADER] === '1' && req.url === NATIVE_AUTH_PATH) return this.answerNativeAuth(host.key, req, res);
    const ws = await this.lookups.get(host.key);
    if (!ws) {
      const message = host.service ? `No workspace has a service at “${host.key}”.` : `No workspace is called “${host.key}”.`;
      sendPage(res, 404, 'pages/not-found.njk', { message, berthUrl: this.deps.config.berthUrl });
      return true;
    }
    if (ws.previewPrivate && !(this.gate && (await this.gate.admit(req, res, ws, 'preview')))) {
      if (!res.headersSent) sendPage(res, 403, 'pages/error.njk', { status: 403, title: 'Private preview', message: 'This preview is private and sign-in is not available.' });
      return true;
    }
    this.touch(ws);
    if (ws.state === 'running' && ws.previewHost && !ws.previewPort) {
      // a devcontainer.json without forwardPorts: an IDE and nothing to preview (no link shows it either)
      sendPage(res, 404, 'pages/not-found.njk', { message: `Workspace ${ws.slug} has no preview: its devcontainer.json forwards no port. Its IDE is on the pull request and the dashboard.`, berthUrl: this.deps.config.berthUrl });
      return true;
    }
    if (proxiable(ws)) {
      this.proxyHttp(ws, req, res);
      return true;
    }
    await this.holdUntilServing(ws, req, res);
    return true;
  };

  /**
   * The hot path, taken before any other route and without a promise: a request to a running,
   * public preview whose row was looked up in the last quarter second is proxied at once (the
   * same decision handle() makes for it). false: handle() decides (not cached, private, not
   * serving, not a workspace's host).
   */
  proxyIfCached = (req: IncomingMessage, res: ServerResponse): boolean => {
    const host = parsePreviewHost(req.headers.host, this.deps.config.BERTH_PREVIEW_DOMAIN);
    const ws = host && this.lookups.peek(host.key);
    if (!ws || ws.previewPrivate || !ws.previewPort || !proxiable(ws)) return false;
    this.touch(ws);
    this.proxyHttp(ws, req, res);
    return true;
  };

  /**
   * The native proxy's question for a private host's request (nginx auth_request): 204 when the
   * Node gateway would let it through as it is, 401 otherwise, and nginx then hands the request
   * itself to Berth, which signs in, shows the 403 page or the state page. Asked on every request,
   * so a sign-out or lost access ends access exactly as without nginx.
   */
  private async answerNativeAuth(key: string, req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const ws = await this.lookups.get(key).catch(() => null);
    const ok = ws && proxiable(ws) && (!ws.previewPrivate || (this.gate && (await this.gate.allows(req, ws, 'preview'))));
    res.writeHead(ok ? 204 : 401, { 'cache-control': 'no-store' });
    res.end();
    return true;
  }

  /** activity nginx saw on the fast path (its activity log), for the idle timer */
  recordActivity(ws: { id: string; idleTimeoutSec: number }, atMs: number): void {
    this.activity.touch(ws, atMs);
  }

  /**
   * A request to a workspace that is not serving (stopped: woken now; starting; a first build)
   * is held and answered by the app as soon as it serves, for every client: a `curl`, a `fetch`
   * or a monitoring probe gets the app's own answer, never a waiting page. Past BERTH_WAKE_HOLD
   * it gets a 503 with Retry-After. A browser navigation gets the waiting page (the live step,
   * reloading itself) already after BERTH_WAKE_PAGE_AFTER: a normal wake is over by then, and a
   * longer one (a first build, a slow migrate) is better shown than spun on a blank tab.
   */
  private async holdUntilServing(ws: Lookup, req: IncomingMessage, res: ServerResponse) {
    if (ws.state === 'failed' || ws.state === 'deleted') return this.showState(ws, res);
    await wakeIfStopped(this.deps, ws, 'gateway', 'woken by a request to its preview');
    const { BERTH_WAKE_HOLD, BERTH_WAKE_PAGE_AFTER } = this.deps.config;
    const navigation = isBrowserNavigation(req);
    const serving = await this.untilServing(ws, res, navigation ? Math.min(BERTH_WAKE_PAGE_AFTER, BERTH_WAKE_HOLD) : BERTH_WAKE_HOLD);
    if (res.destroyed || res.writableEnded) return; // the client gave up
    if (serving && proxiable(serving)) return this.proxyHttp(serving, req, res);
    const now = serving ?? (await this.lookups.get(ws.key).catch(() => null)) ?? ws;
    if (navigation || now.state === 'failed' || now.state === 'deleted') return this.showState(now, res);
    res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'retry-after': '5', 'cache-control': 'no-store' });
    res.end(`The workspace ${ws.slug} is ${now.state === 'stopped' ? 'waking up' : now.state}; try again in a few seconds.\n`);
  }

  /**
   * WebSocket upgrades for workspace hosts; false when the host is not a workspace's. A
   * WebSocket cannot show a waiting page, so one to a stopped workspace wakes it and is held
   * until the app answers (a dev server's live-reload client then simply connects).
   */
  handleUpgrade = async (req: IncomingMessage, socket: Duplex, head: Buffer): Promise<boolean> => {
    const host = parsePreviewHost(req.headers.host, this.deps.config.BERTH_PREVIEW_DOMAIN);
    if (!host) return false;
    const found = await this.lookups.get(host.key);
    if (!found || found.state === 'deleted') {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return true;
    }
    if (found.previewPrivate && !(this.gate && (await this.gate.admitUpgrade(req, socket, found, 'preview')))) {
      if (socket.writable) socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n');
      return true;
    }
    this.touch(found);
    if (!proxiable(found)) await wakeIfStopped(this.deps, found, 'gateway', 'woken by a WebSocket to its preview');
    const awaited = proxiable(found) ? found : await this.untilServing(found, socket, UPGRADE_WAIT_MS);
    const ws = awaited && proxiable(awaited) ? awaited : null;
    if (!ws) {
      if (socket.writable) socket.end('HTTP/1.1 503 Service Unavailable\r\nRetry-After: 2\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return true;
    }
    const handshake = (upstream: Duplex) => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      // Berth's cookies never reach the workspace's code.
      const raw = forwardableRawHeaders(req.rawHeaders);
      for (let i = 0; i < raw.length; i += 2) lines.push(`${raw[i]}: ${raw[i + 1]}`);
      upstream.write(lines.join('\r\n') + '\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(socket).pipe(upstream);
    };
    // a private preview's WebSocket ends with its viewer's sign-in or read access
    let upstream: Duplex | undefined;
    const unwatch = ws.previewPrivate && this.gate ? this.gate.watch(req, ws, 'preview', () => close()) : () => {};
    const close = () => (unwatch(), upstream?.destroy(), socket.destroy());
    socket.on('error', close);
    if (ws.agentUrl) {
      // on another host: through its agent (the container's address is only reachable there)
      this.tunnel(ws).then((t) => {
        upstream = t;
        t.on('error', close);
        if (socket.destroyed) return close();
        handshake(t);
      }, close);
    } else {
      const direct = net.connect(ws.previewPort!, ws.previewHost!, () => handshake(direct));
      upstream = direct;
      direct.on('error', close);
    }
    socket.once('close', unwatch);
    return true;
  };

  private proxyHttp(ws: Lookup, req: IncomingMessage, res: ServerResponse, retried = false) {
    // Berth's cookies never reach the workspace's code, and the app cannot set Berth's.
    const headers = upstreamHeaders(req, this.behindNativeProxy);
    // on another host: one connection through its agent per request (no pool across hosts yet)
    const via = ws.agentUrl ? overConnection(() => this.tunnel(ws)) : { agent: this.agent };
    const upstream = http.request(
      { host: ws.previewHost!, port: ws.previewPort!, method: req.method, path: req.url, headers, ...via },
      (up) => {
        res.writeHead(up.statusCode ?? 502, withoutBerthSetCookies(up.rawHeaders) as unknown as http.OutgoingHttpHeaders);
        up.pipe(res);
      },
    );
    upstream.on('error', () => {
      this.lookups.forget(ws.key);
      // A request without a body that met a container on its way out (the old version of a
      // rollout, just switched away from) is sent once more, to where the workspace serves now.
      if (!retried && !res.headersSent && (req.method === 'GET' || req.method === 'HEAD')) {
        void this.lookups
          .get(ws.key, { fresh: true })
          .then((now) => (now && proxiable(now) && now.previewHost !== ws.previewHost ? this.proxyHttp(now, req, res, true) : this.upstreamGone(ws, res)))
          .catch(() => this.upstreamGone(ws, res));
        return;
      }
      this.upstreamGone(ws, res);
    });
    // a retry's request (no body) was read to its end by the first attempt: nothing left to pipe;
    // a request without a body (most GETs) is sent at once rather than when its stream ends
    if (retried || (req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined)) upstream.end();
    else req.pipe(upstream);
  }

  private upstreamGone(ws: Lookup, res: ServerResponse) {
    // The container is gone or restarting: show the state page rather than a bare error, and
    // have the worker look (a container that came back on another IP after a dockerd restart).
    void this.deps.queues
      .enqueueWorkspace('status', { workspaceId: ws.id, actor: 'gateway', reason: 'its preview did not answer' }, { deduplication: { id: `status:${ws.id}` } })
      .catch(() => {});
    if (!res.headersSent) void this.showState({ ...ws, state: 'starting' }, res).catch(() => res.destroy());
    else res.destroy();
  }

  /**
   * Waits until the workspace's preview can be proxied: the serving row, or the row it ended in
   * (failed, deleted), or null when the client gave up or `maxMs` passed. Requests held for one
   * workspace share one poll of the database (see serving()).
   */
  private async untilServing(ws: Lookup, client: { once(event: 'close', fn: () => void): unknown; removeListener(event: 'close', fn: () => void): unknown }, maxMs: number): Promise<Lookup | null> {
    const deadline = Date.now() + maxMs;
    let gone = false;
    const onClose = () => (gone = true);
    client.once('close', onClose);
    try {
      while (!gone && Date.now() < deadline) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const row = await Promise.race([
          this.serving(ws.key),
          new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), Math.max(0, deadline - Date.now())))),
        ]).finally(() => clearTimeout(timer));
        if (row === undefined) return null; // this request's time is up
        if (row === null) return null; // no such workspace any more
        if (proxiable(row) || row.state === 'failed' || row.state === 'deleted') return row;
      }
      return null;
    } finally {
      client.removeListener('close', onClose);
    }
  }

  private polls = new Map<string, Promise<Lookup | null>>();

  /**
   * One poll per workspace, whoever waits: resolves with the row once it can be proxied or
   * has failed or gone, or after a while with what it is then (the waiter asks again).
   */
  private serving(slug: string): Promise<Lookup | null> {
    const running = this.polls.get(slug);
    if (running) return running;
    const poll = (async () => {
      const until = Date.now() + SERVING_POLL_SPAN_MS;
      for (;;) {
        const row = await this.lookups.get(slug, { fresh: true }).catch(() => undefined);
        if (row === null) return null;
        if (row && (proxiable(row) || row.state === 'failed' || row.state === 'deleted' || Date.now() > until)) return row;
        await new Promise((r) => setTimeout(r, SERVING_POLL_MS));
      }
    })().finally(() => this.polls.delete(slug));
    this.polls.set(slug, poll);
    return poll;
  }

  private async showState(ws: Lookup, res: ServerResponse) {
    if (ws.state === 'stopped') this.lookups.forget(ws.key);
    await showWorkspaceState(this.deps, res, ws, ws.repo, {
      actor: 'gateway',
      wakeReason: 'woken by a request to its preview',
      runningHeading: 'Starting',
      detail: ws.state === 'queued' ? 'A build is queued.' : 'Berth is getting it ready.',
    });
  }

  private async load(key: string): Promise<Lookup | null> {
    const host = parsePreviewLabel(key);
    if (!host) return null;
    const row = await this.deps.db.workspace.findUnique({
      // a warm pool member is nobody's preview: no visitor wakes it (lib/warm-pool.ts)
      where: host.workspaceId ? { id: host.workspaceId, poolMember: false } : { slug: host.slug!, poolMember: false },
      select: { ...HOST_WORKSPACE_FIELDS, previewPort: true, previewPrivate: true, idleTimeoutSec: true, serviceEndpoints: true, host: { select: { name: true, url: true } } },
    });
    if (!row) return null;
    const { serviceEndpoints, host: owner, ...ws } = row;
    const agentUrl = this.hosts.urlFor(owner);
    if (!host.service) return { ...ws, key, agentUrl, repo: row.repository.fullName };
    return serviceLookup({ ...ws, key, agentUrl, repo: row.repository.fullName }, serviceEndpoints);
  }

  /** a connection to the workspace's preview (or service) address through its host's agent */
  private async tunnel(ws: Lookup): Promise<Duplex> {
    return this.hosts.client(ws.agentUrl!).tunnel(ws.id, `${ws.previewHost}:${ws.previewPort}`);
  }

  /** Activity for the idle timer (see ActivityRecorder: no write per request, the last one counts). */
  private touch(ws: Lookup) {
    this.activity.touch(ws);
  }

  invalidate(slug?: string) {
    this.lookups.forget(slug);
  }
}

/**
 * A service's host (`<label>--<slug>`, lib/preview-domain.ts) serves like the preview, proxied to
 * that service's address; null when the workspace has no service at exactly this host.
 */
function serviceLookup(ws: Lookup, recorded: unknown): Lookup | null {
  const endpoint = serviceEndpointsOf(recorded).find((e) => serviceHostLabel(e.label, ws) === ws.key);
  if (!endpoint) return null;
  // the address counts only while the workspace serves (previewHost set), as the preview's does
  return { ...ws, previewHost: ws.previewHost && endpoint.host, previewPort: endpoint.port };
}

/** set by Berth for the workspace: a client's own values are dropped */
const FORWARDED = new Set(['x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-for']);

/**
 * The request's header lines for the workspace, as raw [name, value, …] pairs: Berth's cookies
 * removed and Berth's X-Forwarded-* in place of the client's. Raw pairs go out as they came in
 * (Node checked them when it parsed the request), which spares the proxy a validated
 * `setHeader` per header on every request.
 */
function upstreamHeaders(req: IncomingMessage, behindNativeProxy: boolean): string[] {
  const raw = req.rawHeaders;
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (FORWARDED.has(lower)) continue;
    if (lower === 'cookie') {
      const kept = stripBerthCookies(raw[i + 1]);
      if (kept !== undefined) out.push(name, kept);
    } else out.push(name, raw[i + 1]!);
  }
  // behind nginx, the client is the one nginx names (it replaces any X-Forwarded-For a client sent)
  const client = (behindNativeProxy ? (req.headers['x-forwarded-for'] as string | undefined) : undefined) ?? req.socket.remoteAddress ?? '';
  out.push('X-Forwarded-Host', req.headers.host ?? '', 'X-Forwarded-Proto', 'http', 'X-Forwarded-For', client);
  return out;
}

/**
 * The old containers keep serving while a newer commit is queued, building or rolling out
 * (`starting` with the running version's address kept; a start from stopped has none).
 */
function proxiable(ws: Lookup): boolean {
  return Boolean(ws.previewHost && ws.previewPort) && ['running', 'queued', 'building', 'starting'].includes(ws.state);
}

/**
 * A browser loading a page (rather than a script's `fetch`, a probe or `curl`): those are the
 * requests a waiting page helps. Browsers say so with Sec-Fetch-Mode; older ones only with Accept.
 */
export function isBrowserNavigation(req: IncomingMessage): boolean {
  const mode = req.headers['sec-fetch-mode'];
  if (mode) return mode === 'navigate';
  return req.method === 'GET' && /\btext\/html\b/.test(req.headers.accept ?? '');
}
