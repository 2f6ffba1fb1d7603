/**
 * The token Berth clones with (lib/github-app.ts cloneToken) reads one repository and does
 * nothing else: another repository of the same installation is refused by git and by the REST
 * API, and writes are refused everywhere. Against the fake GitHub, which honours the
 * `repository_ids` and `permissions` of POST /app/installations/{id}/access_tokens.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../lib/config.js';
import { StepFailedError } from '../../lib/errors.js';
import { cloneToken, createProbotFor } from '../../lib/github-app.js';
import { cloneAt } from '../../worker/source/clone.js';
import { startFakeGitHub, type FakeGitHub } from '../fakes/github.js';
import { TestOctokit } from '../helpers/berth.js';

describe('the clone token', () => {
  let fake: FakeGitHub;
  let installationId: number;
  let shaA: string;
  let shaB: string;
  const cleanups: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    fake = await startFakeGitHub();
    installationId = fake.addInstallation({ login: 'h1corp', type: 'Organization' }).id;
    fake.createRepo('h1corp', 'app', { installationId });
    fake.createRepo('h1corp', 'secrets', { installationId });
    shaA = await fake.pushFiles('h1corp', 'app', 'main', { 'README.md': 'app\n' });
    shaB = await fake.pushFiles('h1corp', 'secrets', 'main', { 'prod.env': 'KEY=1\n' });
  });

  afterAll(async () => {
    for (const c of cleanups) await c();
    await fake?.close();
  });

  async function token(): Promise<string> {
    const config = loadConfig({
      APP_ID: String(fake.appId),
      PRIVATE_KEY: fake.privateKey,
      WEBHOOK_SECRET: fake.webhookSecret,
      GHE_HOST: fake.host,
      GHE_PROTOCOL: 'http',
      DATABASE_URL: 'postgresql://unused@127.0.0.1/unused',
      LOG_LEVEL: 'silent',
    } as NodeJS.ProcessEnv);
    const probot = createProbotFor(config, TestOctokit);
    return cloneToken(probot, installationId, fake.getRepo('h1corp', 'app')!.id);
  }

  const api = (t: string, method: string, p: string, body?: unknown) =>
    fetch(`http://${fake.host}/api/v3${p}`, {
      method,
      headers: { authorization: `token ${t}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  it('clones its repository, and cannot read another repository of the installation or write anywhere', async () => {
    const t = await token();
    const mint = fake.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/access_tokens')).at(-1)!;
    expect(mint.body).toEqual({ repository_ids: [fake.getRepo('h1corp', 'app')!.id], permissions: { contents: 'read' } });

    const a = await cloneAt({ cloneUrl: `http://${fake.host}/h1corp/app.git`, token: t, branch: 'main', sha: shaA });
    cleanups.push(a.cleanup);

    await expect(cloneAt({ cloneUrl: `http://${fake.host}/h1corp/secrets.git`, token: t, branch: 'main', sha: shaB })).rejects.toThrow(StepFailedError);
    // the fake's git endpoint refused the token itself (git then asks for a user name, and may not)
    const refs = fake.requests.filter((r) => r.path === '/h1corp/secrets.git/info/refs' && r.headers.authorization);
    expect(refs.map((r) => r.status)).toEqual([401]);

    expect((await api(t, 'GET', '/repos/h1corp/app/contents/README.md')).status).toBe(200);
    expect((await api(t, 'GET', '/repos/h1corp/secrets/contents/prod.env')).status).toBe(404);
    expect((await api(t, 'POST', '/repos/h1corp/app/issues/1/comments', { body: 'hi' })).status).toBe(403);
    expect((await api(t, 'POST', '/repos/h1corp/app/check-runs', { name: 'x', head_sha: shaA })).status).toBe(403);
  });
});
