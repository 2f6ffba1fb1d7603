import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeGitHub, type FakeGitHub } from '../fakes/github.js';
import { ProbotOctokit } from 'probot';
import { PermissionCache } from '../../app/github/permissions.js';


const TestOctokit = ProbotOctokit.defaults((o: Record<string, any>) => ({ ...o, throttle: { ...o.throttle, enabled: false }, retry: { enabled: false } }));

/** The permission cache against the fake GitHub (in-process): how often GitHub is really asked. */
describe('PermissionCache', () => {
  let fake: FakeGitHub;
  let octokit: InstanceType<typeof TestOctokit>;

  beforeAll(async () => {
    fake = await startFakeGitHub();
    const installationId = fake.addInstallation({ login: 'h2acme', type: 'Organization' }).id;
    fake.createRepo('h2acme', 'shop', { installationId });
    fake.addUser('h2ann');
    fake.setPermission('h2acme', 'shop', 'h2ann', 'write');
    fake.addUser('h2bob');
    fake.addUser('h2carl');
    octokit = new TestOctokit({ auth: { token: fake.mintInstallationToken(installationId).token }, baseUrl: fake.apiUrl });
  });

  afterAll(async () => {
    await fake?.close();
  });

  // by path: a request answered by failNext has no route
  const asked = (login: string) => fake.requests.filter((r) => r.method === 'GET' && r.path.endsWith(`/collaborators/${login}/permission`)).length;

  it('asks once for a burst, per user and repository, a "no access" answer included', async () => {
    const cache = new PermissionCache();
    const all = await Promise.all(Array.from({ length: 50 }, (_, i) => cache.permission(octokit as never, 'h2acme', 'shop', i % 2 ? 'h2ann' : 'H2Bob')));
    expect(new Set(all)).toEqual(new Set(['write', 'none']));
    expect(asked('h2ann')).toBe(1);
    expect(asked('H2Bob')).toBe(1);
    expect(await cache.canWrite(octokit as never, 'H2ACME', 'shop', 'h2ann')).toBe(true);
    expect(asked('h2ann')).toBe(1);
  });

  it('forgets answers after the TTL (a revoked writer loses access) and never keeps a failure', async () => {
    const cache = new PermissionCache({ ttlMs: 200 });
    const before = asked('h2ann');
    fake.failNext('GET', /\/collaborators\/h2ann\/permission$/, 502);
    await expect(cache.permission(octokit as never, 'h2acme', 'shop', 'h2ann')).rejects.toThrow();
    expect(await cache.permission(octokit as never, 'h2acme', 'shop', 'h2ann')).toBe('write');
    fake.setPermission('h2acme', 'shop', 'h2ann', 'read');
    expect(await cache.permission(octokit as never, 'h2acme', 'shop', 'h2ann')).toBe('write');
    await new Promise((r) => setTimeout(r, 250));
    expect(await cache.permission(octokit as never, 'h2acme', 'shop', 'h2ann')).toBe('read');
    expect(asked('h2ann') - before).toBe(3); // the failure, the retry, the one after the TTL
  });

  it('keeps "no access" longer than an access that could be revoked', async () => {
    const cache = new PermissionCache({ ttlMs: 100, noAccessTtlMs: 5_000 });
    expect(await cache.permission(octokit as never, 'h2acme', 'shop', 'h2carl')).toBe('none');
    fake.setPermission('h2acme', 'shop', 'h2carl', 'write');
    await new Promise((r) => setTimeout(r, 150));
    expect(await cache.permission(octokit as never, 'h2acme', 'shop', 'h2carl')).toBe('none');
    expect(asked('h2carl')).toBe(1);
  });

  it('is bounded: the least recently used answers go first', async () => {
    const cache = new PermissionCache({ max: 2 });
    for (const login of ['h2u1', 'h2u2', 'h2u3']) await cache.permission(octokit as never, 'h2acme', 'shop', login);
    await cache.permission(octokit as never, 'h2acme', 'shop', 'h2u3');
    await cache.permission(octokit as never, 'h2acme', 'shop', 'h2u1');
    expect(asked('h2u3')).toBe(1);
    expect(asked('h2u1')).toBe(2);
  });
});
