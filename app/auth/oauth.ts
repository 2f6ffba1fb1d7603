import type { BerthConfig } from '../../lib/config.js';
import { SignInError } from './errors.js';

export interface GitHubUser {
  id: number;
  login: string;
  name: string | null;
  avatar_url: string | null;
}

const TIMEOUT_MS = 10_000;

/**
 * GitHub's OAuth web flow for the app's client id (GitHub Apps sign users in with it too).
 * Under GHE_HOST both the OAuth endpoints and the API are on that host.
 */
export class GitHubOAuth {
  constructor(private readonly config: Pick<BerthConfig, 'GITHUB_CLIENT_ID' | 'GITHUB_CLIENT_SECRET' | 'githubWebUrl' | 'githubApiUrl' | 'berthUrl'>) {}

  get configured(): boolean {
    return Boolean(this.config.GITHUB_CLIENT_ID && this.config.GITHUB_CLIENT_SECRET);
  }

  get callbackUrl(): string {
    return `${this.config.berthUrl}/login/callback`;
  }

  authorizeUrl(state: string): string {
    const url = new URL('/login/oauth/authorize', this.config.githubWebUrl);
    url.searchParams.set('client_id', this.config.GITHUB_CLIENT_ID ?? '');
    url.searchParams.set('redirect_uri', this.callbackUrl);
    url.searchParams.set('state', state);
    url.searchParams.set('allow_signup', 'false');
    return url.toString();
  }

  /**
   * Exchanges the callback's code for the person's user-to-server token and asks GitHub who it
   * belongs to. The grant is kept (app/auth/person-tokens.ts) so that git in a workspace works
   * with the person's own authority.
   */
  async userFor(code: string): Promise<{ user: GitHubUser; grant: UserTokenGrant }> {
    const grant = await this.exchange({ code, redirect_uri: this.callbackUrl });
    const res = await fetch(`${this.config.githubApiUrl}/user`, {
      headers: { authorization: `Bearer ${grant.accessToken}`, accept: 'application/vnd.github+json', 'user-agent': 'berth' },
      signal: AbortSignal.timeout(TIMEOUT_MS),
    }).catch((err: Error) => {
      throw new SignInError(`GitHub did not answer (${err.message}); try again`, 502);
    });
    if (!res.ok) throw new SignInError(`GitHub refused to say who signed in (HTTP ${res.status}); try again`, 502);
    const user = (await res.json()) as GitHubUser;
    if (typeof user.id !== 'number' || typeof user.login !== 'string') throw new SignInError('GitHub answered /user without an id and login', 502);
    return { user, grant };
  }

  /** A new token pair for an expired one (GitHub Apps' expiring user tokens; a refresh token works once). */
  refresh(refreshToken: string): Promise<UserTokenGrant> {
    return this.exchange({ grant_type: 'refresh_token', refresh_token: refreshToken });
  }

  private async exchange(params: Record<string, string>): Promise<UserTokenGrant> {
    const res = await fetch(new URL('/login/oauth/access_token', this.config.githubWebUrl), {
      method: 'POST',
      headers: { accept: 'application/json', 'content-type': 'application/json', 'user-agent': 'berth' },
      body: JSON.stringify({ client_id: this.config.GITHUB_CLIENT_ID, client_secret: this.config.GITHUB_CLIENT_SECRET, ...params }),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    }).catch((err: Error) => {
      throw new SignInError(`GitHub did not answer (${err.message}); try again`, 502);
    });
    const body = (await res.json().catch(() => ({}))) as TokenResponse;
    if (!res.ok || !body.access_token) {
      // error_description is GitHub's text for people ("The code passed is incorrect or expired.").
      throw new SignInError(`GitHub did not accept the sign-in: ${body.error_description ?? body.error ?? `HTTP ${res.status}`}. Sign in again.`);
    }
    const now = Date.now();
    const seconds = (v: unknown) => (Number(v) > 0 ? now + Number(v) * 1000 : null);
    return {
      accessToken: body.access_token,
      expiresAt: seconds(body.expires_in),
      refreshToken: body.refresh_token ?? null,
      refreshExpiresAt: seconds(body.refresh_token_expires_in),
    };
  }
}

interface TokenResponse {
  access_token?: string;
  expires_in?: number | string;
  refresh_token?: string;
  refresh_token_expires_in?: number | string;
  error?: string;
  error_description?: string;
}

/** A person's GitHub App user-to-server token; expiring ones come with a refresh token. */
export interface UserTokenGrant {
  accessToken: string;
  /** ms since the epoch; null: it does not expire */
  expiresAt: number | null;
  refreshToken: string | null;
  refreshExpiresAt: number | null;
}
