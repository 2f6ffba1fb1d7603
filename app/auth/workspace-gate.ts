import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { AppDeps } from '../deps.js';
import { sendPage } from '../http.js';
import { workspaceLinks } from '../github/links.js';
import { ideOrigin } from '../ide/hosts.js';
import { sufficient, type RepoRef } from './access.js';
import type { BerthAuth } from './auth.js';
import { COOKIE, appendSetCookie, cookieName, readCookies, serializeCookie } from './cookies.js';
import { AccessCheckError } from './errors.js';
import { safePath } from './form.js';
import { parsePreviewHost, previewOrigin, serviceEndpointsOf, serviceHostLabel } from '../../lib/preview-domain.js';
import type { WorkspaceKind } from './store.js';
import type { RepoAccess, SessionUser } from './types.js';

/** Where a workspace host takes a one-time ticket and turns it into its own cookie. */
export const EXCHANGE_PATH = '/__berth/auth';

export interface GatedWorkspace {
  id: string;
  slug: string;
  repository: RepoRef & { fullName: string };
}

interface HostCookie {
  sid: string;
  wid: string;
  k: WorkspaceKind;
  exp: number;
}

type Verdict =
  | { ok: true; user: SessionUser }
  | { ok: false; why: 'sign-in' }
  | { ok: false; why: 'forbidden'; user: SessionUser; access: RepoAccess }
  | { ok: false; why: 'unavailable'; message: string };

/**
 * How often an open WebSocket of an IDE or private preview checks that its user may still be
 * there: session alive, access (through the one-minute permission cache) still enough.
 */
export const WEBSOCKET_RECHECK_MS = 10_000;

const ENTRY = /^\/workspaces\/([A-Za-z0-9_-]{1,64})\/(ide|preview)$/;

/**
 * Sign-in for workspace hosts (IDEs, private previews). They are other sites than BERTH_URL,
 * so the session cookie never goes there, and must not: the workspace's own code runs there.
 * Instead:
 *
 *   BERTH_URL/workspaces/<id>/ide     signed in? may write? → one-time ticket (Redis, 60 s)
 *     → <ide host>/__berth/auth?token  ticket consumed → host-only cookie naming the session
 *     → <ide host>/                    every request: cookie genuine, same workspace, session
 *                                      alive, access re-checked through the one-minute cache
 *
 * The IDE needs write access, a private preview read access. A host cookie is worth nothing
 * once its session ends (sign-out) or GitHub revokes the access.
 */
export class WorkspaceGate {
  private readonly secure: boolean;
  private readonly hostCookie: string;

  constructor(
    private readonly deps: AppDeps,
    private readonly auth: BerthAuth,
    private readonly recheckMs = WEBSOCKET_RECHECK_MS,
  ) {
    this.secure = new URL(deps.config.berthUrl).protocol === 'https:';
    this.hostCookie = cookieName(COOKIE.workspace, this.secure);
  }

  // --- on BERTH_URL -----------------------------------------------------------------------------

  /** `GET /workspaces/<id>/ide` and `GET /workspaces/<id>/preview?path=…` */
  handleEntry = async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    const url = new URL(req.url ?? '/', 'http://berth.invalid');
    const m = ENTRY.exec(url.pathname);
    if (!m || (req.method !== 'GET' && req.method !== 'HEAD')) return false;
    const [, id, kind] = m as unknown as [string, string, WorkspaceKind];
    const path = safePath(url.searchParams.get('path'));
    const ws = await this.deps.db.workspace.findUnique({ where: { id }, include: { repository: true } });
    // a service's own host (issue 16) rather than the preview's: only one the workspace has
    const service = kind === 'preview' && ws ? serviceEndpointsOf(ws.serviceEndpoints).find((e) => e.label === url.searchParams.get('service')) : undefined;
    const origin = (w: { id: string; slug: string }) => (service ? previewOrigin(this.deps.config, serviceHostLabel(service.label, w)) : this.origin(w, kind));
    if (kind === 'preview' && ws && !ws.previewPrivate) {
      this.redirect(res, origin(ws) + path); // public: nothing to sign in for
      return true;
    }
    const user = await this.auth.requireUser(req, res);
    if (!user) return true;
    if (!ws || ws.state === 'deleted') {
      sendPage(res, 404, 'pages/not-found.njk', { berthUrl: this.deps.config.berthUrl, user, message: 'There is no such workspace (it may have been deleted with its branch).' });
      return true;
    }
    const need = kind === 'ide' ? 'write' : 'read';
    let access: RepoAccess;
    try {
      access = await this.auth.access(user, ws.repository);
    } catch (err) {
      if (!(err instanceof AccessCheckError)) throw err;
      this.unavailable(res, err.message);
      return true;
    }
    if (!sufficient(access, need)) {
      this.forbidden(req, res, ws, kind, user, access);
      return true;
    }
    const sid = this.auth.sessionId(req)!;
    const token = await this.auth.store.mintTicket({ sid, workspaceId: ws.id, kind, path });
    this.redirect(res, `${origin(ws)}${EXCHANGE_PATH}?token=${encodeURIComponent(token)}`);
    return true;
  };

  // --- on workspace hosts -------------------------------------------------------------------------

  /**
   * The signed-in user allowed on this host, or null after answering the request itself
   * (the ticket exchange, a redirect to sign in, a 403 page).
   */
  async admit(req: IncomingMessage, res: ServerResponse, ws: GatedWorkspace, kind: WorkspaceKind): Promise<SessionUser | null> {
    const url = new URL(req.url ?? '/', 'http://workspace.invalid');
    const service = this.serviceOfHost(req, kind);
    if (url.pathname === EXCHANGE_PATH) {
      await this.exchange(res, ws, kind, url, service);
      return null;
    }
    const verdict = await this.check(req, ws, kind);
    if (verdict.ok) return verdict.user;
    if (verdict.why === 'sign-in') {
      const entry = this.entryUrl(ws, kind, req.url ?? '/', service);
      if (req.method === 'GET' || req.method === 'HEAD') this.redirect(res, entry);
      else {
        res.writeHead(401, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
        res.end(`Sign in first: ${entry}\n`);
      }
    } else if (verdict.why === 'forbidden') this.forbidden(req, res, ws, kind, verdict.user, verdict.access);
    else this.unavailable(res, verdict.message);
    return null;
  }

  /** The same check for a WebSocket upgrade; on refusal the socket gets a bare HTTP answer. */
  async admitUpgrade(req: IncomingMessage, socket: Duplex, ws: GatedWorkspace, kind: WorkspaceKind): Promise<SessionUser | null> {
    const verdict = await this.check(req, ws, kind);
    if (verdict.ok) return verdict.user;
    const status = verdict.why === 'sign-in' ? '401 Unauthorized' : verdict.why === 'forbidden' ? '403 Forbidden' : '503 Service Unavailable';
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    return null;
  }

  /**
   * Watches a WebSocket `admitUpgrade` let through: `end` is called once its user signed out
   * (at once when it happened in this process, else at the next check), the session expired,
   * or GitHub says the access is no longer enough (within the permission cache's minute).
   * While Redis or GitHub cannot be asked, it stays open. Returns the way to stop watching.
   */
  watch(req: IncomingMessage, ws: GatedWorkspace, kind: WorkspaceKind, end: (reason: string) => void): () => void {
    const sid = this.validCookie(req, ws, kind)?.sid;
    let watching = true;
    const stop = () => {
      watching = false;
      clearInterval(timer);
      stopListening();
    };
    const revoke = (reason: string) => {
      if (!watching) return;
      stop();
      end(reason);
    };
    const stopListening = this.auth.onSignOut((ended) => ended === sid && revoke('signed out'));
    const timer = setInterval(() => {
      this.check(req, ws, kind).then(
        (verdict) => {
          if (verdict.ok || verdict.why === 'unavailable') return;
          if (verdict.why === 'sign-in') revoke('the sign-in ended');
          else revoke(kind === 'ide' ? 'write access to the repository is gone' : 'read access to the repository is gone');
        },
        () => {}, // Redis is away: asked again at the next check
      );
    }, this.recheckMs);
    timer.unref();
    return stop;
  }

  /**
   * Whether the request may pass as it is (a genuine host cookie, its session alive, access
   * enough), with no answer written: the native proxy's per-request question
   * (app/gateway/native-front.ts). Anything else, including GitHub not answering, is a no: the
   * request then comes to Berth, whose admit() answers it.
   */
  async allows(req: IncomingMessage, ws: GatedWorkspace, kind: WorkspaceKind): Promise<boolean> {
    return (await this.check(req, ws, kind).catch(() => ({ ok: false }))).ok;
  }

  /** the sign-in session behind a request on a workspace host (its cookie genuine and for this workspace), if any */
  sessionOf(req: IncomingMessage, ws: GatedWorkspace, kind: WorkspaceKind): string | undefined {
    return this.validCookie(req, ws, kind)?.sid;
  }

  /** the request's host cookie when it is genuine, for this workspace and kind, and unexpired */
  private validCookie(req: IncomingMessage, ws: GatedWorkspace, kind: WorkspaceKind): HostCookie | undefined {
    const now = Date.now();
    return readCookies(req, this.hostCookie)
      .map((v) => this.hostSigner(kind).verify<HostCookie>(v))
      .find((c): c is HostCookie => Boolean(c && typeof c.sid === 'string' && c.wid === ws.id && c.k === kind && c.exp > now));
  }

  private async check(req: IncomingMessage, ws: GatedWorkspace, kind: WorkspaceKind): Promise<Verdict> {
    const cookie = this.validCookie(req, ws, kind);
    if (!cookie) return { ok: false, why: 'sign-in' };
    const user = await this.auth.userOfSession(cookie.sid);
    if (!user) return { ok: false, why: 'sign-in' };
    let access: RepoAccess;
    try {
      access = await this.auth.access(user, ws.repository);
    } catch (err) {
      if (!(err instanceof AccessCheckError)) throw err;
      return { ok: false, why: 'unavailable', message: err.message };
    }
    if (!sufficient(access, kind === 'ide' ? 'write' : 'read')) return { ok: false, why: 'forbidden', user, access };
    return { ok: true, user };
  }

  private async exchange(res: ServerResponse, ws: GatedWorkspace, kind: WorkspaceKind, url: URL, service?: string) {
    const ticket = await this.auth.store.consumeTicket(url.searchParams.get('token') ?? '');
    if (!ticket || ticket.workspaceId !== ws.id || ticket.kind !== kind) {
      sendPage(res, 400, 'auth/ticket-used.njk', { berthUrl: this.deps.config.berthUrl, entryUrl: this.entryUrl(ws, kind, '/', service) });
      return;
    }
    const session = await this.auth.userOfSession(ticket.sid);
    if (!session) return this.redirect(res, this.entryUrl(ws, kind, ticket.path, service));
    const value = this.hostSigner(kind).sign({ sid: ticket.sid, wid: ws.id, k: kind, exp: session.expiresAt } satisfies HostCookie);
    appendSetCookie(res, serializeCookie(this.hostCookie, value, { maxAgeS: (session.expiresAt - Date.now()) / 1000, secure: this.secure }));
    this.redirect(res, safePath(ticket.path));
  }

  // --- helpers ------------------------------------------------------------------------------------

  /** IDE and preview host cookies are signed for their kind of host, never as a session */
  private hostSigner(kind: WorkspaceKind) {
    return kind === 'ide' ? this.auth.signers['ide-host'] : this.auth.signers['preview-host'];
  }

  /**
   * The Berth page that signs in and sends the browser back to `path` on the workspace host:
   * the preview's, or with `service` (its label) that service's own host.
   */
  entryUrl(ws: { id: string }, kind: WorkspaceKind, path: string, service?: string): string {
    const base = `${this.deps.config.berthUrl}/workspaces/${ws.id}/${kind}`;
    const back = safePath(path);
    const query = [service ? `service=${encodeURIComponent(service)}` : '', back === '/' ? '' : `path=${encodeURIComponent(back)}`].filter(Boolean).join('&');
    return query ? `${base}?${query}` : base;
  }

  /** the service label of a request to a service's own preview host (`<label>--<slug>`), if it is one */
  private serviceOfHost(req: IncomingMessage, kind: WorkspaceKind): string | undefined {
    return kind === 'preview' ? parsePreviewHost(req.headers.host, this.deps.config.BERTH_PREVIEW_DOMAIN)?.service : undefined;
  }

  private origin(ws: { id: string; slug: string }, kind: WorkspaceKind): string {
    if (kind === 'ide') return ideOrigin(this.deps.config, ws.slug);
    return workspaceLinks(this.deps.config, ws).preview.replace(/\/$/, '');
  }

  private forbidden(req: IncomingMessage, res: ServerResponse, ws: GatedWorkspace, kind: WorkspaceKind, user: SessionUser, access: RepoAccess) {
    const repo = ws.repository.fullName;
    const has = access === 'read' ? 'can only read it' : 'has no access to it';
    const message =
      kind === 'ide'
        ? `The IDE is a shell on this workspace, so it needs write, maintain or admin permission on ${repo}. GitHub says ${user.login} ${has}.`
        : `This preview is private: it needs read access to ${repo}, and GitHub says ${user.login} has none.`;
    // The layout's sign-out button needs the session's CSRF token, which only exists on BERTH_URL.
    const onBerth = Boolean(this.auth.sessionId(req));
    sendPage(res, 403, 'auth/forbidden.njk', {
      berthUrl: this.deps.config.berthUrl,
      ...(onBerth ? { user, csrf: this.auth.csrfToken(req) } : { signedInAs: user }),
      title: kind === 'ide' ? 'You cannot open this IDE' : 'This preview is private',
      message,
    });
  }

  private unavailable(res: ServerResponse, message: string) {
    sendPage(res, 502, 'pages/error.njk', { berthUrl: this.deps.config.berthUrl, status: 502, title: 'GitHub did not answer', message });
  }

  private redirect(res: ServerResponse, location: string) {
    res.writeHead(302, { location, 'cache-control': 'no-store' });
    res.end();
  }
}
