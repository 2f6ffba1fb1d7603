import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeGitHub, type FakeGitHub } from '../fakes/github.js';
import { GitHubOAuth } from '../../app/auth/oauth.js';
import { PersonTokens } from '../../app/auth/person-tokens.js';
import { CryptoBox } from '../../lib/crypto-box.js';

/**
 * The store of people's GitHub user tokens against the fake GitHub's expiring user tokens and
 * a real Redis: sealed at rest, refreshed once when expired (also when asked twice at once),
 * gone after `forget`, null when GitHub refuses the refresh token.
 */
describe('people’s GitHub user tokens', () => {
  let fake: FakeGitHub;
  let redis: Redis;
  let oauth: GitHubOAuth;
  let tokens: PersonTokens;
  const prefix = `t${randomBytes(4).toString('hex')}`;
  const berthUrl = 'http://berth.test';

  /** the web flow as a browser would do it: authorize, then trade the code */
  async function signIn(login: string) {
    fake.setOAuthUser(login);
    const res = await fetch(oauth.authorizeUrl('s'), { redirect: 'manual' });
    const code = new URL(res.headers.get('location')!).searchParams.get('code')!;
    return oauth.userFor(code);
  }

  beforeAll(async () => {
    fake = await startFakeGitHub({ userTokenTtlMs: 60_000 });
    redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
    oauth = new GitHubOAuth({ GITHUB_CLIENT_ID: fake.clientId, GITHUB_CLIENT_SECRET: fake.clientSecret, githubWebUrl: fake.url, githubApiUrl: fake.apiUrl, berthUrl });
    tokens = new PersonTokens(redis, prefix, new CryptoBox(randomBytes(32), 'github-user-tokens'), oauth);
  });

  afterAll(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
    await fake?.close();
  });

  it('keeps the sign-in’s token sealed, and refreshes it once when it is (nearly) expired', async () => {
    const { user, grant } = await signIn('bob');
    expect(user.login).toBe('bob');
    expect(grant.refreshToken).toMatch(/^ghr_/);
    expect(grant.expiresAt! - Date.now()).toBeLessThan(61_000);
    await tokens.remember('bob', grant);
    const raw = await redis.get(`${prefix}:auth:github-token:bob`);
    expect(raw).toBeTruthy();
    expect(raw).not.toContain(grant.accessToken);
    expect(raw).not.toContain(grant.refreshToken!);

    // a minute left is inside the refresh margin: two requests at once trade the refresh token once
    const [a, b] = await Promise.all([tokens.token('bob'), tokens.token('Bob')]);
    expect(a).toMatch(/^ghu_/);
    expect(a).not.toBe(grant.accessToken);
    expect(b).toBe(a);
    expect(fake.refreshes).toEqual(['bob']);
    // the new token works on GitHub as bob
    const me = await fetch(`${fake.apiUrl}/user`, { headers: { authorization: `Bearer ${a}` } });
    expect(((await me.json()) as { login: string }).login).toBe('bob');
  });

  it('answers null after forget (sign-out) and for someone who never signed in', async () => {
    const { grant } = await signIn('carol');
    await tokens.remember('carol', grant);
    expect(await tokens.token('carol')).toBeTruthy();
    await tokens.forget('carol');
    expect(await tokens.token('carol')).toBeNull();
    expect(await tokens.token('nobody')).toBeNull();
  });

  it('answers null once the token expired and GitHub refuses the refresh token', async () => {
    const { grant } = await signIn('dave');
    await tokens.remember('dave', { ...grant, expiresAt: Date.now() - 1000, refreshToken: 'ghr_not-a-real-one' });
    expect(await tokens.token('dave')).toBeNull();
  });
});
