import type { Redis } from 'ioredis';
import { CryptoBox } from '../../lib/crypto-box.js';
import type { GitHubOAuth, UserTokenGrant } from './oauth.js';

/** Refresh a little before GitHub's expiry, so a token handed out still works for a push. */
const REFRESH_MARGIN_MS = 2 * 60_000;
/** Tokens that never expire (expiring user tokens turned off in the App) are kept this long after the last sign-in. */
const NON_EXPIRING_KEEP_S = 30 * 24 * 60 * 60;

interface Stored extends UserTokenGrant {
  login: string;
}

/**
 * The GitHub App user-to-server token of each person who signed in, for git in workspaces
 * (app/ide/git-credentials.ts) and SSH sessions: their own authority, never the installation's.
 * Kept in Redis sealed with AES-256-GCM (lib/crypto-box.ts, a key derived from Berth's session
 * secret and bound to the login), until the refresh token expires; signing out removes it.
 */
export class PersonTokens {
  /** one refresh per login at a time in this process: a refresh token works only once */
  private readonly refreshing = new Map<string, Promise<string | null>>();

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly box: CryptoBox,
    private readonly oauth: Pick<GitHubOAuth, 'refresh'>,
  ) {}

  async remember(login: string, grant: UserTokenGrant): Promise<void> {
    const stored: Stored = { login, ...grant };
    const until = grant.refreshExpiresAt ?? grant.expiresAt;
    const ttlS = until ? Math.max(1, Math.ceil((until - Date.now()) / 1000)) : NON_EXPIRING_KEEP_S;
    await this.redis.set(this.key(login), this.box.seal(JSON.stringify(stored), login.toLowerCase()), 'EX', ttlS);
  }

  async forget(login: string): Promise<void> {
    await this.redis.del(this.key(login));
  }

  /**
   * The person's token, refreshed first when it expired (or is about to); null when they never
   * signed in, signed out, or GitHub no longer accepts the refresh token (they sign in again).
   */
  async token(login: string): Promise<string | null> {
    const stored = await this.read(login);
    if (!stored) return null;
    if (stored.expiresAt === null || stored.expiresAt - REFRESH_MARGIN_MS > Date.now()) return stored.accessToken;
    const key = login.toLowerCase();
    let pending = this.refreshing.get(key);
    if (!pending) {
      pending = this.refresh(login, stored).finally(() => this.refreshing.delete(key));
      this.refreshing.set(key, pending);
    }
    return pending;
  }

  private async refresh(login: string, stored: Stored): Promise<string | null> {
    if (!stored.refreshToken || (stored.refreshExpiresAt !== null && stored.refreshExpiresAt <= Date.now())) {
      return stored.expiresAt !== null && stored.expiresAt > Date.now() ? stored.accessToken : null;
    }
    try {
      const grant = await this.oauth.refresh(stored.refreshToken);
      await this.remember(login, grant);
      return grant.accessToken;
    } catch {
      // Another Berth process may have used the (single-use) refresh token first: take its result.
      const now = await this.read(login);
      if (now && now.accessToken !== stored.accessToken && (now.expiresAt === null || now.expiresAt > Date.now())) return now.accessToken;
      // Still valid for a moment (refreshed early), else the person has to sign in again.
      return stored.expiresAt !== null && stored.expiresAt > Date.now() ? stored.accessToken : null;
    }
  }

  private async read(login: string): Promise<Stored | null> {
    const sealed = await this.redis.get(this.key(login));
    const plain = sealed ? this.box.open(sealed, login.toLowerCase()) : null;
    return plain ? (JSON.parse(plain) as Stored) : null;
  }

  private key(login: string): string {
    return `${this.prefix}:auth:github-token:${login.toLowerCase()}`;
  }
}
