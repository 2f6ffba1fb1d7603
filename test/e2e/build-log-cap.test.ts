import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeGitHub, type FakeGitHub } from '../fakes/github.js';
import { pushPayload, sendWebhook } from '../fakes/webhooks.js';
import { sampleAppFiles } from '../fixtures/sample-app.js';
import { startTestBerth, type TestBerth } from '../helpers/berth.js';
import { CookieClient } from '../helpers/cookie-client.js';
import { waitFor } from '../helpers/http.js';
import { LOG_HEAD_CHARS, LOG_TAIL_CHARS } from '../../worker/build-log.js';

const O = 'h2logs';
const R = 'floodshop';

/**
 * A repository whose build prints far more than anyone reads (issue 10, item 11): the build
 * works, its stored log keeps the head and the tail and says it was cut, and the dashboard
 * shows it to a signed-in reader.
 */
describe('a huge build log', () => {
  let fake: FakeGitHub;
  let berth: TestBerth;
  let installationId: number;

  beforeAll(async () => {
    fake = await startFakeGitHub();
    installationId = fake.addInstallation({ login: O, type: 'Organization' }).id;
    fake.createRepo(O, R, { installationId, private: true });
    fake.addUser('h2reader');
    fake.setPermission(O, R, 'h2reader', 'read');
    berth = await startTestBerth(fake);
  });

  afterAll(async () => {
    await berth?.close();
    await fake?.close();
  });

  it('is capped: its first and last lines stay, one line says how much was cut', async () => {
    // ~3.3 MB of output from a layer that is never cached (the echo differs on every run)
    const dockerfile = `FROM berth-base:node20\nRUN echo flood-${Date.now()} && seq 1 450000 && echo flood-done\nWORKDIR /workspace\nCOPY . /workspace\nEXPOSE 3000\nCMD ["node","server.js"]\n`;
    const sha = await fake.pushFiles(O, R, 'feature/h2-flood', sampleAppFiles({ Dockerfile: dockerfile }));
    const res = await sendWebhook(berth.webhookUrl, 'push', pushPayload({ fake, owner: O, repo: R, branch: 'feature/h2-flood', after: sha, installationId }), fake.webhookSecret);
    expect(res.status).toBe(200);
    const ws = await waitFor('the workspace to run', async () => {
      const w = await berth.db.workspace.findFirst({ where: { branch: 'feature/h2-flood' } });
      if (w?.state === 'failed') throw new Error(`failed: ${w.stateReason}`);
      return w?.state === 'running' ? w : null;
    }, 240_000);
    const build = await berth.db.build.findFirstOrThrow({ where: { workspaceId: ws.id, sha } });

    // signed in as a reader of the private repository, as a user reads it
    fake.setOAuthUser('h2reader');
    const client = new CookieClient();
    const log = await client.get(`${berth.config.berthUrl}/builds/${build.id}/log.txt`, { follow: true });
    expect(log.status).toBe(200);
    expect(log.body.length).toBeLessThan(LOG_HEAD_CHARS + LOG_TAIL_CHARS + 500);
    expect(log.body).toContain('==> cloning');
    expect(log.body).toMatch(/\[Berth cut this log here: \d+ characters left out/);
    expect(log.body).toContain('flood-done');
    expect(log.body).toContain('==> running: preview service');
    // and nobody else reads a private repository's build log
    const anonymous = await new CookieClient().get(`${berth.config.berthUrl}/builds/${build.id}/log.txt`);
    expect(anonymous.status).not.toBe(200);
    expect(anonymous.body).not.toContain('flood-done');
  });
});
