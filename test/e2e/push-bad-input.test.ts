import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeGitHub, type FakeGitHub } from '../fakes/github.js';
import { pushPayload, sendWebhook } from '../fakes/webhooks.js';
import { sampleAppFiles } from '../fixtures/sample-app.js';
import { startTestBerth, type TestBerth } from '../helpers/berth.js';
import { waitFor } from '../helpers/http.js';
import { isValidDnsLabel } from '../../lib/slug.js';

/**
 * Bad input on the core flow: each case leaves the workspace `failed` with a reason a user
 * can act on, shows it on the check run, and the next good push still works.
 */
describe('push: bad input and odd cases', () => {
  let fake: FakeGitHub;
  let berth: TestBerth;
  let installationId: number;

  beforeAll(async () => {
    fake = await startFakeGitHub();
    installationId = fake.addInstallation({ login: 'acme', type: 'Organization' }).id;
    fake.createRepo('acme', 'shop', { installationId });
    berth = await startTestBerth(fake, { BERTH_HEALTH_TIMEOUT: '8s' });
  });

  afterAll(async () => {
    await berth?.close();
    await fake?.close();
  });

  async function push(branch: string, files: Record<string, string | null>, opts: { deliveryId?: string } = {}) {
    const sha = await fake.pushFiles('acme', 'shop', branch, files);
    const res = await sendWebhook(berth.webhookUrl, 'push', pushPayload({ fake, owner: 'acme', repo: 'shop', branch, after: sha, installationId }), fake.webhookSecret, opts);
    expect(res.status).toBe(200);
    return sha;
  }

  async function settled(branch: string, sha: string) {
    return waitFor(`${branch} to settle on ${sha.slice(0, 7)}`, async () => {
      const ws = await berth.db.workspace.findFirst({ where: { branch } });
      return ws && ws.headSha === sha && (ws.state === 'failed' || (ws.state === 'running' && ws.runningSha === sha)) ? ws : null;
    });
  }

  async function failedCheck(sha: string) {
    return waitFor('a failed check run', async () => fake.checkRuns('acme', 'shop', sha).find((c) => c.status === 'completed' && c.conclusion === 'failure'));
  }

  it('refuses a webhook with a bad signature and changes nothing', async () => {
    const sha = await fake.pushFiles('acme', 'shop', 'unsigned', sampleAppFiles());
    const res = await sendWebhook(berth.webhookUrl, 'push', pushPayload({ fake, owner: 'acme', repo: 'shop', branch: 'unsigned', after: sha, installationId }), fake.webhookSecret, {
      badSignature: true,
    });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    await new Promise((r) => setTimeout(r, 500));
    expect(await berth.db.workspace.count({ where: { branch: 'unsigned' } })).toBe(0);
    expect(await berth.db.webhookDelivery.count()).toBe(0);
  });

  it('processes the same delivery id once, and ignores tags', async () => {
    const sha = await fake.pushFiles('acme', 'shop', 'twice', sampleAppFiles());
    const payload = pushPayload({ fake, owner: 'acme', repo: 'shop', branch: 'twice', after: sha, installationId });
    for (let i = 0; i < 2; i++) expect((await sendWebhook(berth.webhookUrl, 'push', payload, fake.webhookSecret, { deliveryId: 'same-delivery-1' })).status).toBe(200);
    const tag = { ...payload, ref: 'refs/tags/v1.0.0' };
    expect((await sendWebhook(berth.webhookUrl, 'push', tag, fake.webhookSecret)).status).toBe(200);
    await settled('twice', sha);
    expect(await berth.db.build.count({ where: { sha } })).toBe(1);
    expect(await berth.db.workspace.count({ where: { branch: { contains: 'v1.0.0' } } })).toBe(0);
  });

  it('a failing docker build fails the workspace with the build output; the next push succeeds', async () => {
    const bad = await push('broken-build', sampleAppFiles({ Dockerfile: 'FROM berth-base:node20\nRUN echo about-to-fail && exit 7\n' }));
    const ws = await settled('broken-build', bad);
    expect(ws.state).toBe('failed');
    expect(ws.stateReason).toMatch(/docker build failed/);
    const check = await failedCheck(bad);
    expect(check.output?.text).toContain('about-to-fail');

    const good = await push('broken-build', sampleAppFiles());
    const fixed = await settled('broken-build', good);
    expect(fixed.state).toBe('running');
  });

  it('no berth.yml and no Dockerfile: a clear message', async () => {
    const sha = await push('empty-repo', { 'README.md': '# nothing to build\n', '.github/berth.yml': null, Dockerfile: null });
    const ws = await settled('empty-repo', sha);
    expect(ws.state).toBe('failed');
    expect(ws.stateReason).toMatch(/no \.github\/berth\.yml and no Dockerfile/);
  });

  it('an invalid berth.yml fails the check run with file, line and reason', async () => {
    const sha = await push('bad-config', sampleAppFiles({ '.github/berth.yml': 'services:\n  web:\n    build: .\n    port: lots\n' }));
    const ws = await settled('bad-config', sha);
    expect(ws.state).toBe('failed');
    expect(ws.stateReason).toBe('.github/berth.yml:4: services.web.port: Invalid input: expected number, received string');
    const check = await failedCheck(sha);
    expect(check.output?.summary).toContain('.github/berth.yml:4');
  });

  it('a failing migrate reports its exit code and last output lines', async () => {
    const config = 'services:\n  web:\n    build: .\n    port: 3000\n    command: node server.js\n    migrate: node migrate.js\n    env: { FAIL_MIGRATE: "1" }\n';
    const sha = await push('bad-migrate', sampleAppFiles({ '.github/berth.yml': config }));
    const ws = await settled('bad-migrate', sha);
    expect(ws.state).toBe('failed');
    expect(ws.stateReason).toMatch(/migrate of service web \(node migrate\.js\) exited with code 3/);
    expect(ws.stateReason).toContain('migration failed: boom');
  });

  it('an app that never becomes healthy fails with a reason', async () => {
    const config = 'services:\n  web:\n    build: .\n    port: 3000\n    command: node server.js\n    health: /does-not-exist\n';
    const sha = await push('never-healthy', sampleAppFiles({ '.github/berth.yml': config }));
    const ws = await settled('never-healthy', sha);
    expect(ws.state).toBe('failed');
    expect(ws.stateReason).toMatch(/did not answer \/does-not-exist on port 3000/);
  });

  it('a branch name with odd characters gets a valid, unique DNS label and works', async () => {
    const branch = `ünïcødé/Feature_😀/${'x'.repeat(180)}`;
    const sha = await push(branch, sampleAppFiles());
    const ws = await settled(branch, sha);
    expect(ws.state).toBe('running');
    expect(isValidDnsLabel(ws.slug)).toBe(true);
    const page = await berth.preview(ws.slug);
    expect(page.status).toBe(200);
    expect(page.body).toContain('Hello from Berth sample v1');
  });

  it('several pushes in a row build only the newest commit', async () => {
    // four commits, then their webhooks in quick succession, as GitHub delivers a burst
    const shas: string[] = [];
    for (let i = 0; i < 4; i++) shas.push(await fake.pushFiles('acme', 'shop', 'burst', sampleAppFiles({ 'message.txt': `burst ${i}` })));
    for (const sha of shas) {
      const res = await sendWebhook(berth.webhookUrl, 'push', pushPayload({ fake, owner: 'acme', repo: 'shop', branch: 'burst', after: sha, installationId }), fake.webhookSecret);
      expect(res.status).toBe(200);
    }
    const ws = await settled('burst', shas[3]!);
    expect(ws.state).toBe('running');
    const builds = await berth.db.build.findMany({ where: { workspaceId: ws.id }, orderBy: { createdAt: 'asc' } });
    const built = builds.filter((b) => b.state === 'succeeded').map((b) => b.sha);
    expect(built).toContain(shas[3]);
    expect(built.length).toBeLessThan(4);
    expect(builds.filter((b) => b.state === 'canceled').length).toBeGreaterThan(0);
    const page = await berth.preview(ws.slug);
    expect(page.body).toContain('burst 3');
  });
});
