import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushPayload } from '../fakes/webhooks.js';
import { sampleAppFiles } from '../fixtures/sample-app.js';
import { startScenario, stopScenario, webhookSender, type Scenario } from '../helpers/scenario.js';
import { CookieClient } from '../helpers/cookie-client.js';
import { waitFor } from '../helpers/http.js';
import { containersOf, docker } from './lifecycle.helpers.js';
import { LABELS } from '../../worker/runtime/docker.js';

const O = 'acme';
const R = 'pool';

/** the sample app (migrate, seed, dev command on the disk), with a warm pool of `warm` */
function berthYml(warm: number) {
  return [
    'services:',
    '  web:',
    '    build: .',
    '    port: 3000',
    '    command: node server.js',
    '    migrate: node migrate.js',
    '    seed: node seed.js',
    '    health: /health',
    '    env: { NODE_ENV: development }',
    'preview: { service: web, visibility: public }',
    'workspace:',
    '  ide: terminal',
    `  warm: ${warm}`,
    '',
  ].join('\n');
}

/**
 * Issue 17, warm pools, end to end on real Docker: `workspace: { warm: 1 }` on the default
 * branch fills a pool of one (a stopped, prepared workspace: migrated and seeded, no container
 * running), the next push of a new branch claims it (its preview serves the branch's commit with
 * the seeded data, without seeding again, and the check run says "from the warm pool"), the pool
 * fills again, and `warm: 0` drains it (its members and their disks are gone).
 */
describe('warm pools', () => {
  let s: Scenario;
  const send = webhookSender(() => s);

  beforeAll(async () => {
    s = await startScenario({ owner: O, repo: R, baseImage: true, people: { alice: 'write' }, main: sampleAppFiles({ '.github/berth.yml': berthYml(1) }) });
  });

  afterAll(async () => {
    for (const ws of (await s?.berth.db.workspace.findMany({ where: { state: { not: 'deleted' } } })) ?? []) {
      await s.berth.queues.enqueueWorkspace('delete', { workspaceId: ws.id, actor: 'test' });
    }
    if (s) await waitFor('workspaces deleted', async () => (await s.berth.db.workspace.count({ where: { state: { not: 'deleted' } } })) === 0, 60_000).catch(() => {});
    await stopScenario(s);
  });

  async function push(branch: string, files: Record<string, string | null>) {
    const sha = await s.fake.pushFiles(O, R, branch, files);
    await send('push', pushPayload({ fake: s.fake, owner: O, repo: R, branch, after: sha, installationId: s.installationId }));
    return sha;
  }

  /** the pool's live members; fails at once when one failed to fill */
  async function members() {
    const rows = await s.berth.db.workspace.findMany({ where: { poolMember: true, state: { not: 'deleted' } }, orderBy: { createdAt: 'asc' } });
    const failed = rows.find((m) => m.state === 'failed');
    if (failed) throw new Error(`a pool member failed to fill: ${failed.stateReason}`);
    return rows;
  }

  const readyMember = (sha: string, not?: string) =>
    waitFor(
      'a ready warm pool member',
      async () => (await members()).find((m) => m.state === 'stopped' && m.runningSha === sha && m.id !== not) ?? null,
      240_000,
      500,
    );

  async function runningContainers(workspaceId: string) {
    return (await containersOf(workspaceId, 'service', false)).length;
  }

  async function poolLine(): Promise<string> {
    s.fake.setOAuthUser('alice');
    const page = await new CookieClient().get(`${s.berth.config.berthUrl}/`, { follow: true });
    expect(page.status).toBe(200);
    return /<p class="muted warm-pool"[^]*?<\/p>/.exec(page.body)?.[0] ?? '';
  }

  it('a pool of 1 fills; the next new branch claims it; the pool fills again; warm: 0 drains it', async () => {
    const main1 = await push('main', {});
    const member = await readyMember(main1);
    // prepared, not running: migrated and seeded on its disk, its containers gone
    expect(member.seededAt).not.toBeNull();
    expect(await runningContainers(member.id)).toBe(0);
    const fill = await s.berth.db.build.findUniqueOrThrow({ where: { id: member.currentBuildId! } });
    const fillLog = (await s.berth.db.buildLogChunk.findMany({ where: { buildId: fill.id }, orderBy: { id: 'asc' } })).map((c) => c.text).join('');
    expect(fillLog).toContain('seeding (web)');
    expect(fillLog).toContain('warm pool: prepared from');
    // the dashboard shows the pool of the repository
    expect(await poolLine()).toMatch(/warm: 1[^]*1 ready[^]*0 filling/);

    // a new branch claims it: the same workspace (disk), the branch's commit, the seed's rows
    const sha = await push('feature/warm', { 'message.txt': 'Hello from the warm branch' });
    const ws = await waitFor('the branch to claim the member', () => s.berth.db.workspace.findFirst({ where: { branch: 'feature/warm' } }));
    expect(ws.id).toBe(member.id);
    expect(ws.claimedAt).not.toBeNull();
    const page = await waitFor(
      'the preview to serve the branch',
      async () => {
        const w = await s.berth.db.workspace.findUniqueOrThrow({ where: { id: ws.id } });
        if (w.state === 'failed') throw new Error(`the claimed workspace failed: ${w.stateReason}`);
        const r = await s.berth.preview(ws.slug);
        return r.status === 200 && r.body.includes('warm branch') ? r : null;
      },
      150_000,
      250,
    );
    expect(page.body).toContain('seeded-alice');
    const running = await s.berth.db.workspace.findUniqueOrThrow({ where: { id: ws.id } });
    expect(running.runningSha).toBe(sha);
    const build = await s.berth.db.build.findFirstOrThrow({ where: { workspaceId: ws.id, sha } });
    const log = (await s.berth.db.buildLogChunk.findMany({ where: { buildId: build.id }, orderBy: { id: 'asc' } })).map((c) => c.text).join('');
    expect(log).toContain('from the warm pool');
    expect(log).toContain('migrating (web)');
    expect(log).not.toContain('seeding (web)');
    // the checkout is the branch's, through git on the disk
    const [web] = await containersOf(ws.id, 'service', false);
    const head = await docker.getContainer(web!.Id).exec({ Cmd: ['sh', '-c', 'cat /workspace/.git/HEAD'], AttachStdout: true });
    const out = await new Promise<string>((resolve, reject) => head.start({}, (err, stream) => {
      if (err || !stream) return reject(err);
      let text = '';
      stream.on('data', (c: Buffer) => (text += c.toString('latin1')));
      stream.on('end', () => resolve(text));
    }));
    expect(out).toContain('refs/heads/feature/warm');
    const check = await waitFor('the completed check run', async () => s.fake.checkRuns(O, R, sha).find((c) => c.status === 'completed'));
    expect(check.conclusion).toBe('success');
    expect(check.output?.summary).toContain('from the warm pool');
    // the pool member never wrote to the default branch's check run
    const mainChecks = s.fake.checkRuns(O, R, main1);
    expect(mainChecks.length).toBe(1);

    // the pool fills again, with another member
    const refill = await readyMember(main1, member.id);
    expect(refill.id).not.toBe(member.id);
    expect(await poolLine()).toMatch(/1 ready/);

    // warm: 0 drains it: its members and their disks go; the claimed workspace stays
    await push('main', { '.github/berth.yml': berthYml(0) });
    await waitFor('the pool drained', async () => (await members()).length === 0, 120_000, 500);
    await waitFor(
      'the drained member\'s disk removed',
      async () => ((await docker.listVolumes({ filters: { label: [`${LABELS.workspace}=${refill.id}`] } })).Volumes ?? []).length === 0,
      60_000,
    );
    expect((await s.berth.db.workspace.findUniqueOrThrow({ where: { id: ws.id } })).state).toBe('running');
    expect(await poolLine()).toBe('');
  }, 480_000);
});
