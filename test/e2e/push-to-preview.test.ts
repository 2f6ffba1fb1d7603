import { readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeGitHub, type FakeGitHub } from '../fakes/github.js';
import { pushPayload, sendWebhook } from '../fakes/webhooks.js';
import { ensureBaseImage } from '../fixtures/base-image.js';
import { sampleAppFiles } from '../fixtures/sample-app.js';
import { startTestBerth, type TestBerth } from '../helpers/berth.js';
import { waitFor } from '../helpers/http.js';

/**
 * The heart of Berth, end to end on real PostgreSQL, Redis and Docker: a signed push
 * webhook → build → migrate + seed → the preview URL serves the branch's app.
 */
describe('push a branch, get a running workspace with a live preview', () => {
  let fake: FakeGitHub;
  let berth: TestBerth;
  let installationId: number;

  beforeAll(async () => {
    await ensureBaseImage();
    fake = await startFakeGitHub();
    installationId = fake.addInstallation({ login: 'acme', type: 'Organization' }).id;
    fake.createRepo('acme', 'shop', { installationId });
    berth = await startTestBerth(fake);
  });

  afterAll(async () => {
    await berth?.close();
    await fake?.close();
  });

  async function push(branch: string, files: Record<string, string | null>, before?: string) {
    const sha = await fake.pushFiles('acme', 'shop', branch, files);
    const payload = pushPayload({ fake, owner: 'acme', repo: 'shop', branch, after: sha, before, installationId });
    const res = await sendWebhook(berth.webhookUrl, 'push', payload, fake.webhookSecret);
    expect(res.status).toBeLessThan(300);
    return sha;
  }

  async function workspaceOf(branch: string) {
    return waitFor(`workspace of ${branch}`, () => berth.db.workspace.findFirst({ where: { branch } }));
  }

  it('serves the commit content and the seeded data at the preview URL, and follows new pushes', async () => {
    const sha1 = await push('feature/hello', sampleAppFiles());
    const ws = await workspaceOf('feature/hello');
    expect(ws.slug).toMatch(/^[a-z0-9-]+$/);

    const page = await waitFor(
      'the preview to serve the app',
      async () => {
        const r = await berth.preview(ws.slug);
        return r.status === 200 ? r : null;
      },
      150_000,
      500,
    );
    expect(page.body).toContain('Hello from Berth sample v1');
    expect(page.body).toContain('seeded-alice');
    expect(page.body).toContain('development');

    const running = await berth.db.workspace.findUniqueOrThrow({ where: { id: ws.id } });
    expect(running.state).toBe('running');
    expect(running.runningSha).toBe(sha1);

    // One clone for build and first start: the start copies the build's checkout onto the new disk.
    const fetches = fake.requests.filter((r) => r.method === 'GET' && /^\/acme\/shop(\.git)?\/info\/refs$/.test(r.path));
    expect(fetches).toHaveLength(1);
    expect((await readdir(tmpdir())).filter((n) => n.startsWith(`berth-checkout-${ws.id}`))).toEqual([]);

    // The build log holds Docker's own build output.
    const build = await berth.db.build.findFirstOrThrow({ where: { workspaceId: ws.id, sha: sha1 } });
    const log = (await berth.db.buildLogChunk.findMany({ where: { buildId: build.id }, orderBy: { id: 'asc' } })).map((c) => c.text).join('');
    expect(log).toMatch(/Step \d+\/\d+ : FROM berth-base:node20|FROM berth-base:node20/);
    expect(log).toContain('seed');

    // A second push with changed content reaches the preview.
    const sha2 = await push('feature/hello', { 'message.txt': 'Hello from Berth sample v2' }, sha1);
    await waitFor(
      'the preview to show the second commit',
      async () => {
        const r = await berth.preview(ws.slug);
        return r.status === 200 && r.body.includes('sample v2');
      },
      150_000,
      500,
    );
    // the checkout is fast-forwarded before the new images start: wait for the switch itself
    const after = await waitFor('the workspace to run the second commit', async () => {
      const w = await berth.db.workspace.findUniqueOrThrow({ where: { id: ws.id } });
      return w.state === 'running' && w.runningSha === sha2 ? w : null;
    });
    expect(after.runningSha).toBe(sha2);
    // seed ran once for this disk, migrate on both starts
    const seedBuild = await berth.db.build.findFirstOrThrow({ where: { workspaceId: ws.id, sha: sha2 } });
    const log2 = (await berth.db.buildLogChunk.findMany({ where: { buildId: seedBuild.id } })).map((c) => c.text).join('');
    expect(log2).toContain('migrating');
    expect(log2).not.toContain('seeding');

    // The GitHub check run for the commit completed with the links.
    const check = await waitFor('a completed check run', async () => fake.checkRuns('acme', 'shop', sha2).find((c) => c.status === 'completed'));
    expect(check.name).toBe('Berth');
    expect(check.conclusion).toBe('success');
    expect(check.output?.summary).toContain('Preview');
    expect(check.output?.summary).toContain('Open IDE');
  });

  it('answers 404 for an unknown workspace host', async () => {
    const r = await berth.preview('no-such-workspace');
    expect(r.status).toBe(404);
    expect(r.body).toContain('No workspace is called');
  });
});
