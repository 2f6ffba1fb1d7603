import { randomBytes } from 'node:crypto';
import Dockerode from 'dockerode';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeGitHub, type FakeGitHub } from '../fakes/github.js';
import { pushPayload, sendWebhook } from '../fakes/webhooks.js';
import { ensureBaseImage } from '../fixtures/base-image.js';
import { sampleAppFiles } from '../fixtures/sample-app.js';
import { queueBuild } from '../../app/actions.js';
import type { AppDeps } from '../../app/deps.js';
import { removeDockerObjects, startTestBerth, type TestBerth } from '../helpers/berth.js';
import { CookieClient } from '../helpers/cookie-client.js';
import { waitFor } from '../helpers/http.js';

/**
 * Safe to install, "a wrong or empty database wipes every disk": a Berth started on a database
 * that does not know the workspaces on its Docker engine (a new DATABASE_URL, a restored
 * backup, a fresh embedded database) keeps every disk and says so; only a deletion the
 * database recorded removes one.
 */
describe('a Berth on a database that does not know its workspaces keeps their disks', () => {
  const docker = new Dockerode();
  // one instance label for the three Berths below: they are "the same Berth" on one engine
  const instance = `h3keep${randomBytes(3).toString('hex')}`;
  const repo = `h3keep-${randomBytes(3).toString('hex')}`;
  let fake: FakeGitHub;
  let installationId: number;
  const berths: TestBerth[] = [];
  const fast = { BERTH_QUEUE_PREFIX: instance, BERTH_RECONCILE_INTERVAL: '2s' };

  beforeAll(async () => {
    await ensureBaseImage();
    fake = await startFakeGitHub();
    installationId = fake.addInstallation({ login: 'acme', type: 'Organization' }).id;
    fake.createRepo('acme', repo, { installationId });
    fake.setPermission('acme', repo, 'olga-operator', 'admin');
  }, 120_000);

  afterAll(async () => {
    for (const b of berths) await b.stop().catch(() => {});
    for (const b of berths) await b.database.drop().catch(() => {});
    await removeDockerObjects(instance);
    await fake?.close();
  }, 120_000);

  async function push(berth: TestBerth, branch: string) {
    const sha = await fake.pushFiles('acme', repo, branch, sampleAppFiles());
    const res = await sendWebhook(berth.webhookUrl, 'push', pushPayload({ fake, owner: 'acme', repo, branch, after: sha, installationId }), fake.webhookSecret);
    expect(res.status).toBeLessThan(300);
  }

  async function settled(berth: TestBerth, branch: string, want: 'running' | 'failed' | 'stopped') {
    return waitFor(
      `workspace ${branch} to be ${want}`,
      async () => {
        const ws = await berth.db.workspace.findFirst({ where: { branch, repository: { name: repo } } });
        if (ws?.state === 'failed' && want !== 'failed') throw new Error(`workspace ${branch} failed: ${ws.stateReason}`);
        return ws?.state === want ? ws : null;
      },
      240_000,
      500,
    );
  }

  const volumes = async () => ((await docker.listVolumes({ filters: { label: [`berth.instance=${instance}`] } })).Volumes ?? []).map((v) => v.Name).sort();
  const containersOf = async (workspaceId: string) => docker.listContainers({ all: true, filters: { label: [`berth.workspace=${workspaceId}`] } });

  async function readyz(berth: TestBerth) {
    return (await (await fetch(`${berth.url}/readyz`)).json()) as { ok: boolean; unknownVolumes?: { count: number; detail: string } };
  }

  async function shell(containerId: string, script: string): Promise<string> {
    const exec = await docker.getContainer(containerId).exec({ Cmd: ['sh', '-c', script], AttachStdout: true, AttachStderr: true });
    const stream = await exec.start({});
    const chunks: Buffer[] = [];
    await new Promise<void>((done, fail) => {
      docker.modem.demuxStream(stream, { write: (c: Buffer) => chunks.push(c) } as never, { write: (c: Buffer) => chunks.push(c) } as never);
      stream.on('end', () => done());
      stream.on('error', fail);
    });
    return Buffer.concat(chunks).toString('utf8');
  }

  it('keeps and reports every volume on an empty database, refuses to reuse one, and removes one only after a recorded deletion', async () => {
    // 1. The first Berth runs two workspaces; someone leaves work on one of them.
    const first = await startTestBerth(fake, fast);
    berths.push(first);
    await Promise.all([push(first, 'keep'), push(first, 'gone')]);
    const [keep, gone] = await Promise.all([settled(first, 'keep', 'running'), settled(first, 'gone', 'running')]);
    const [web] = await containersOf(keep.id).then((cs) => cs.filter((c) => c.Labels['berth.service'] === 'web'));
    expect(await shell(web!.Id, 'echo precious > /workspace/precious.txt && cat /workspace/precious.txt')).toContain('precious');
    const before = await volumes();
    expect(before.filter((v) => v.includes(keep.slug)).length).toBeGreaterThan(0);
    expect(before.filter((v) => v.includes(gone.slug)).length).toBeGreaterThan(0);
    await first.stop();
    // a deletion recorded while Docker was out of reach: the delete job never removed its disk
    const db1 = new pg.Client({ connectionString: first.config.DATABASE_URL });
    await db1.connect();
    await db1.query(`UPDATE "Workspace" SET state = 'deleted' WHERE id = $1`, [gone.id]);
    await db1.end();

    // 2. The same Berth (instance label) on a new, empty database runs its reconciler.
    const second = await startTestBerth(fake, fast);
    berths.push(second);
    const report = await waitFor('/readyz to report the unknown volumes', async () => {
      const r = await readyz(second);
      return r.unknownVolumes?.count === before.length ? r : null;
    }, 60_000, 500);
    expect(report.unknownVolumes!.detail).toMatch(/does not know/);
    expect(JSON.stringify(report)).not.toContain(keep.slug); // /readyz is public: a count, no names
    // the containers of unknown workspaces are gone (a start makes them again), every disk is not
    await waitFor('the unknown workspaces\' containers to be removed', async () => (await containersOf(keep.id)).length + (await containersOf(gone.id)).length === 0, 30_000);
    expect(await volumes()).toEqual(before);
    // the log names each volume and what to do
    for (const name of before) expect(second.logs.some((l) => l.includes(`keeping Docker volume ${name}`) && l.includes('docker volume rm'))).toBe(true);
    // the dashboard tells whoever signs in
    fake.setOAuthUser('olga-operator');
    const client = new CookieClient();
    const page = await client.get(`${second.url}/`, { follow: true });
    expect(page.status).toBe(200);
    expect(page.body).toContain(`data-unknown-volumes="${before.length}"`);
    expect(page.body).toMatch(/of workspaces this database does not know\. Berth keeps them and never removes them by itself/);

    // A push of the same branch on this database gets a new workspace with the same slug: it
    // fails with a reason instead of taking over (or replacing) the disk it does not own.
    await push(second, 'keep');
    const refused = await settled(second, 'keep', 'failed');
    expect(refused.slug).toBe(keep.slug);
    expect(refused.stateReason).toContain(`holds the disk of workspace ${keep.id}, which this Berth's database does not know`);
    expect(await volumes()).toEqual(before);
    await second.stop();

    // 3. Back on the first database: the recorded deletion removes that workspace's disk; the
    //    other one is stopped (its containers vanished) and, rebuilt (the second Berth's image
    //    retention removed the images of the slug it had reused), runs again on its disk, work
    //    included, without seeding again.
    const third = await startTestBerth(fake, { ...fast, DATABASE_URL: first.config.DATABASE_URL! });
    berths.push(third);
    await waitFor('the deleted workspace\'s volumes to be removed', async () => (await volumes()).every((v) => !v.includes(gone.slug)), 60_000, 500);
    expect((await volumes()).filter((v) => v.includes(keep.slug))).toEqual(before.filter((v) => v.includes(keep.slug)));
    expect((await readyz(third)).unknownVolumes?.count).toBe(0);
    await settled(third, 'keep', 'stopped');
    const repository = await third.db.repository.findFirstOrThrow({ where: { name: repo } });
    await queueBuild({ config: third.config, db: third.db, queues: third.queues } as AppDeps, repository, 'keep', keep.headSha, 'test', 'rebuild', { force: true });
    await settled(third, 'keep', 'running');
    const page2 = await waitFor('the preview', async () => {
      const r = await third.preview(keep.slug);
      return r.status === 200 ? r : null;
    }, 60_000, 500);
    expect(page2.body).toContain('seeded-alice');
    const [web2] = await containersOf(keep.id).then((cs) => cs.filter((c) => c.Labels['berth.service'] === 'web'));
    expect(await shell(web2!.Id, 'cat /workspace/precious.txt; cat /workspace/.data/seed.log | wc -l')).toMatch(/precious\s+1\s*$/);
  }, 600_000);
});
