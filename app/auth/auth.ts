import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Redis } from 'ioredis';
import type { Probot } from 'probot';
import type { AppDeps } from '../deps.js';
import { sendJson, sendPage } from '../http.js';
import { isUniqueViolation } from '../../lib/workspaces.js';
import { AccessChecker, type RepoRef } from './access.js';
import { COOKIE, appendSetCookie, cookieName, readCookies, serializeCookie } from './cookies.js';
import { SignInError } from './errors.js';
import { readSmallForm, safePath } from './form.js';
import { GitHubOAuth, type GitHubUser } from './oauth.js';
import { sessionSecret } from './secret.js';
import { purposeSigners, safeEqual, type Signers } from './signing.js';
import { AuthStore, SESSION_TTL_S } from './store.js';
import { PersonTokens } from './person-tokens.js';
import { CryptoBox } from '../../lib/crypto-box.js';
import type { Auth, RepoAccess, SessionUser } from './types.js';

/** Long enough to sign in on GitHub (perhaps with 2FA), short enough to be useless later. */
const OAUTH_STATE_TTL_S = 10 * 60;

interface SessionCookie {
  sid: string;
  exp: number;
}
interface OAuthStateCookie {
  state: string;
  next: string;
  exp: number;
}

/**
 * Sign-in with GitHub for everything on BERTH_URL (the implementation of ./types.ts):
 *
 * - `/login` starts GitHub's OAuth web flow with a random `state`, kept in a short-lived
 *   signed cookie scoped to /login; `/login/callback` checks it, asks GitHub who signed in,
 *   stores the user and starts a session.
 * - A session lives in Redis; the browser holds a signed, HttpOnly, SameSite=Lax,
 *   host-only cookie naming it. Signing out deletes it server-side, which also ends every
 *   workspace-host cookie made from it.
 * - CSRF tokens are an HMAC of the session id: nothing to store, and a token from one
 *   session is worthless in another.
 */
export class BerthAuth implements Auth {
  /** one per purpose: a cookie made for one is worthless as another (see signing.ts) */
  readonly signers: Signers;
  readonly store: AuthStore;
  readonly oauth: GitHubOAuth;
  /** each signed-in person's GitHub user token (git and SSH in workspaces as themselves) */
  readonly personTokens: PersonTokens;
  private readonly checker: AccessChecker;
  private readonly secure: boolean;
  private readonly sessionCookie: string;
  private readonly stateCookie: string;
  /** told about every sign-out in this process, so open IDE WebSockets of that session close at once */
  private readonly signOutListeners = new Set<(sid: string) => void>();
  /** one Redis read per request, however often a handler asks */
  private readonly perRequest = new WeakMap<IncomingMessage, Promise<SessionUser | null>>();

  constructor(
    private readonly deps: AppDeps,
    probot: Probot,
    redis: Redis,
  ) {
    const secret = sessionSecret(deps.config);
    this.signers = purposeSigners(secret);
    this.store = new AuthStore(redis, deps.config.BERTH_QUEUE_PREFIX);
    this.oauth = new GitHubOAuth(deps.config);
    this.personTokens = new PersonTokens(redis, deps.config.BERTH_QUEUE_PREFIX, new CryptoBox(secret, 'github-user-tokens'), this.oauth);
    this.checker = new AccessChecker(probot);
    this.secure = new URL(deps.config.berthUrl).protocol === 'https:';
    this.sessionCookie = cookieName(COOKIE.session, this.secure);
    // __Host- cookies must use Path=/, so the state cookie only gets the prefix-free name.
    this.stateCookie = COOKIE.oauthState;
  }

  // --- the contract -------------------------------------------------------------------------

  currentUser(req: IncomingMessage): Promise<SessionUser | null> {
    let pending = this.perRequest.get(req);
    if (!pending) {
      pending = this.lookupSession(req);
      this.perRequest.set(req, pending);
    }
    return pending;
  }

  async requireUser(req: IncomingMessage, res: ServerResponse): Promise<SessionUser | null> {
    const user = await this.currentUser(req);
    if (user) return user;
    if (req.method === 'GET' || req.method === 'HEAD') this.startSignIn(req, res, req.url ?? '/');
    else sendJson(res, 401, { error: 'sign in first', signIn: `${this.deps.config.berthUrl}/login` });
    return null;
  }

  access(user: SessionUser, repo: RepoRef): Promise<RepoAccess> {
    return this.checker.access(user.login, repo);
  }

  csrfToken(req: IncomingMessage): string {
    const sid = this.sessionId(req);
    return sid ? this.signers.csrf.mac(sid) : '';
  }

  verifyCsrf(req: IncomingMessage, form?: Record<string, string>): boolean {
    const expected = this.csrfToken(req);
    if (!expected) return false;
    const header = req.headers['x-csrf-token'];
    const given = form?._csrf ?? (Array.isArray(header) ? header[0] : header);
    return typeof given === 'string' && safeEqual(given, expected);
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const url = new URL(req.url ?? '/', 'http://berth.invalid');
    switch (`${req.method} ${url.pathname}`) {
      case 'GET /login':
        this.startSignIn(req, res, url.searchParams.get('next') ?? '/');
        return true;
      case 'GET /login/callback':
        await this.finishSignIn(req, res, url);
        return true;
      case 'POST /logout':
        await this.signOut(req, res);
        return true;
      case 'GET /logout': {
        const user = await this.currentUser(req);
        if (user) this.page(res, 200, 'auth/sign-out.njk', { user, csrf: this.csrfToken(req) });
        else this.redirect(res, '/signed-out');
        return true;
      }
      case 'GET /signed-out':
        this.page(res, 200, 'auth/signed-out.njk', {});
        return true;
      default:
        return false;
    }
  }

  // --- used by the workspace-host gate --------------------------------------------------------

  /** the session id of a request on BERTH_URL whose session cookie is genuine and unexpired */
  sessionId(req: IncomingMessage): string | null {
    for (const value of readCookies(req, this.sessionCookie)) {
      const c = this.signers.session.verify<SessionCookie>(value);
      if (c && typeof c.sid === 'string' && c.exp > Date.now()) return c.sid;
    }
    return null;
  }

  /** the user of a session id, null once it ended (signed out or expired) */
  async userOfSession(sid: string): Promise<(SessionUser & { expiresAt: number }) | null> {
    const s = await this.store.session(sid);
    return s && s.expiresAt > Date.now() ? s : null;
  }

  /**
   * The GitHub user-to-server token of a person who signed in to Berth (refreshed when it
   * expired), or null: never signed in, signed out, or GitHub refused the refresh. It carries
   * the person's own authority; hand it only to that person.
   */
  personGitHubToken(login: string): Promise<string | null> {
    return this.personTokens.token(login);
  }

  /** calls `listener` with the session id of each sign-out here; returns the way to stop */
  onSignOut(listener: (sid: string) => void): () => void {
    this.signOutListeners.add(listener);
    return () => this.signOutListeners.delete(listener);
  }

  // --- the OAuth flow -------------------------------------------------------------------------

  /** Sends the browser to GitHub to sign in, then back to `next` (a path on BERTH_URL). */
  startSignIn(req: IncomingMessage, res: ServerResponse, next: string) {
    const berth = new URL(this.deps.config.berthUrl);
    if (req.headers.host && req.headers.host.toLowerCase() !== berth.host.toLowerCase()) {
      // Reached by another name (an IP, a second DNS name): the session must live on
      // BERTH_URL's host, where GitHub sends the browser back, or the state check fails.
      this.redirect(res, `${this.deps.config.berthUrl}${safePath(req.url)}`);
      return;
    }
    if (!this.oauth.configured) {
      this.page(res, 503, 'auth/sign-in-error.njk', {
        message: 'Sign-in is not set up on this Berth: GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET (the GitHub App’s OAuth client) are missing.',
      });
      return;
    }
    const state = randomBytes(24).toString('base64url');
    const cookie: OAuthStateCookie = { state, next: safePath(next), exp: Date.now() + OAUTH_STATE_TTL_S * 1000 };
    appendSetCookie(res, serializeCookie(this.stateCookie, this.signers['oauth-state'].sign(cookie), { path: '/login', maxAgeS: OAUTH_STATE_TTL_S, secure: this.secure }));
    this.redirect(res, this.oauth.authorizeUrl(state));
  }

  private async finishSignIn(req: IncomingMessage, res: ServerResponse, url: URL) {
    // The state cookie is single-use whatever happens next.
    appendSetCookie(res, serializeCookie(this.stateCookie, '', { path: '/login', maxAgeS: 0, secure: this.secure }));
    try {
      const state = url.searchParams.get('state') ?? '';
      const saved = readCookies(req, this.stateCookie)
        .map((v) => this.signers['oauth-state'].verify<OAuthStateCookie>(v))
        .find((c) => c && c.exp > Date.now() && safeEqual(c.state, state));
      if (!state || !saved) {
        throw new SignInError('This sign-in link is not the one Berth started (or it is more than 10 minutes old), so it was refused. Sign in again.');
      }
      const denied = url.searchParams.get('error');
      if (denied) throw new SignInError(`GitHub did not sign you in: ${url.searchParams.get('error_description') ?? denied}.`, 403);
      const code = url.searchParams.get('code');
      if (!code) throw new SignInError('GitHub sent no code back. Sign in again.');
      const { user: ghUser, grant } = await this.oauth.userFor(code);
      const user = await this.rememberUser(ghUser);
      await this.personTokens.remember(ghUser.login, grant);
      const { sid, expiresAt } = await this.store.createSession(user);
      const value = this.signers.session.sign({ sid, exp: expiresAt } satisfies SessionCookie);
      appendSetCookie(res, serializeCookie(this.sessionCookie, value, { maxAgeS: SESSION_TTL_S, secure: this.secure }));
      this.redirect(res, `${this.deps.config.berthUrl}${safePath(saved.next)}`);
    } catch (err) {
      if (!(err instanceof SignInError)) throw err;
      this.page(res, err.status, 'auth/sign-in-error.njk', { message: err.message });
    }
  }

  private async signOut(req: IncomingMessage, res: ServerResponse) {
    const form = await readSmallForm(req);
    if (!this.verifyCsrf(req, form)) {
      // Without a session there is nothing to end; with one, a missing token means a forged post.
      if (!this.sessionId(req)) return this.redirect(res, '/signed-out', 303);
      this.page(res, 403, 'auth/forbidden.njk', { title: 'Sign-out refused', message: 'The sign-out form was not sent by Berth (its CSRF token is missing or wrong). Use the Sign out button on a Berth page.' });
      return;
    }
    const sid = this.sessionId(req);
    if (sid) {
      // Signing out ends git as this person too: the credential helper finds no token any more.
      const user = await this.store.session(sid);
      if (user) await this.personTokens.forget(user.login);
      await this.store.deleteSession(sid);
      for (const listener of this.signOutListeners) listener(sid);
    }
    appendSetCookie(res, serializeCookie(this.sessionCookie, '', { maxAgeS: 0, secure: this.secure }));
    this.redirect(res, '/signed-out', 303);
  }

  private async rememberUser(gh: GitHubUser): Promise<SessionUser> {
    const data = { login: gh.login, name: gh.name ?? null, avatarUrl: gh.avatar_url ?? null };
    const id = BigInt(gh.id);
    const upsert = () => this.deps.db.user.upsert({ where: { id }, create: { id, ...data }, update: data });
    try {
      await upsert();
    } catch (err) {
      if (!isUniqueViolation(err)) throw err;
      // Another account had this login before (renamed on GitHub): logins are unique, ids are who people are.
      await this.deps.db.user.updateMany({ where: { login: gh.login, id: { not: id } }, data: { login: `${gh.login}~renamed-${randomBytes(3).toString('hex')}` } });
      await upsert();
    }
    return { id, ...data };
  }

  private async lookupSession(req: IncomingMessage): Promise<SessionUser | null> {
    const sid = this.sessionId(req);
    if (!sid) return null;
    const s = await this.userOfSession(sid);
    return s ? { id: s.id, login: s.login, name: s.name, avatarUrl: s.avatarUrl } : null;
  }

  private redirect(res: ServerResponse, location: string, status = 302) {
    res.writeHead(status, { location, 'cache-control': 'no-store' });
    res.end();
  }

  private page(res: ServerResponse, status: number, view: string, ctx: Record<string, unknown>) {
    sendPage(res, status, view, { berthUrl: this.deps.config.berthUrl, ...ctx });
  }
}
