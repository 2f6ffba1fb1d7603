import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Dockerode from 'dockerode';
import { startFakeGitHub, type FakeGitHub } from '../fakes/github.js';
import { pushPayload, sendWebhook } from '../fakes/webhooks.js';
import { BASE_IMAGE_TAG } from '../fixtures/base-image.js';
import { sampleAppFiles } from '../fixtures/sample-app.js';
import { startTestBerth, type TestBerth } from '../helpers/berth.js';
import { NotYet, waitFor } from '../helpers/http.js';
import { copyImage, startPrivateDockerd, type PrivateDockerd } from '../helpers/private-dockerd.js';
import { canTransition } from '../../lib/lifecycle.js';
import { dockerNames, LABELS } from '../../worker/runtime/docker.js';

const O = 'acme';
const R = 'engine-restart';
const BRANCH = 'feature/engine-restart';

const files = () =>
  sampleAppFiles({
    '.github/berth.yml': [
      'services:',
      '  web:',
      '    build: .',
      '    port: 3000',
      '    command: node server.js',
      '    migrate: node migrate.js',
      '    seed: node seed.js',
      '    health: /health',
      "preview: { service: web, visibility: public }", // opened without sign-in; the fake's repositories are private
      'workspace:',
      '  ide: terminal',
      '',
    ].join('\n'),
  });

/**
 * A restart of the Docker engine under a running workspace (issue 4), on a dockerd of this
 * test's own: the machine's engine is shared with everything else running on it and is never
 * stopped by a test. The workspace comes back by itself (restart policy) with its disk, and
 * the preview follows the container to its new address.
 */
describe('Docker engine restart', () => {
  let engine: PrivateDockerd;
  let fake: FakeGitHub;
  let berth: TestBerth;
  let installationId: number;
  const savedDockerHost = process.env.DOCKER_HOST;

  beforeAll(async () => {
    engine = await startPrivateDockerd();
    await copyImage(new Dockerode(), engine.docker, BASE_IMAGE_TAG);
    // Berth's runtime, the web's container lookups and the test helpers all connect where DOCKER_HOST says
    process.env.DOCKER_HOST = engine.host;
    fake = await startFakeGitHub();
    installationId = fake.addInstallation({ login: O, type: 'Organization' }).id;
    fake.createRepo(O, R, { installationId });
    await fake.pushFiles(O, R, 'main', { 'README.md': '# engine\n' });
    berth = await startTestBerth(fake, { DOCKER_HOST: engine.host, BERTH_RECONCILE_INTERVAL: '2s' });
  }, 240_000);

  afterAll(async () => {
    await berth?.close();
    await fake?.close();
    await engine?.destroy();
    if (savedDockerHost === undefined) delete process.env.DOCKER_HOST;
    else process.env.DOCKER_HOST = savedDockerHost;
  });

  const byId = (id: string) => berth.db.workspace.findUniqueOrThrow({ where: { id } });
  const serviceContainer = async (id: string) => {
    const [c] = await engine.docker.listContainers({ filters: { label: [`${LABELS.workspace}=${id}`, `${LABELS.role}=service`, `${LABELS.service}=web`] } });
    if (!c) throw new NotYet('no running web container');
    return c;
  };
  const previewBody = async (slug: string) => {
    const r = await berth.preview(slug);
    if (r.status !== 200) throw new NotYet(`preview answered ${r.status}: ${r.body.slice(0, 200)}`);
    return r.body;
  };
  const exec = async (containerId: string, script: string) => {
    const e = await engine.docker.getContainer(containerId).exec({ Cmd: ['sh', '-c', script], AttachStdout: true, AttachStderr: true });
    const stream = await e.start({});
    await new Promise((resolve) => (stream.on('end', resolve), stream.resume()));
    expect((await e.inspect()).ExitCode).toBe(0);
  };
  const diskFile = async (slug: string, rel: string) => {
    const info = await engine.docker.getVolume(dockerNames.workspaceVolume(slug)).inspect();
    const { readFile } = await import('node:fs/promises');
    return readFile(`${info.Mountpoint}/${rel}`, 'utf8');
  };

  it('survives a restart of the Docker engine: the workspace comes back by itself with its disk, and the preview follows it', async () => {
    const sha = await fake.pushFiles(O, R, BRANCH, files());
    const res = await sendWebhook(berth.webhookUrl, 'push', pushPayload({ fake, owner: O, repo: R, branch: BRANCH, after: sha, installationId }), fake.webhookSecret);
    expect(res.status).toBeLessThan(300);
    const ws = await waitFor('the workspace to run', async () => {
      const w = await berth.db.workspace.findFirst({ where: { branch: BRANCH } });
      if (w?.state === 'failed') throw new Error(`workspace failed: ${w.stateReason}`);
      return w?.state === 'running' ? w : null;
    }, 180_000);
    // an edit on the disk, as in the IDE's terminal
    const before = await serviceContainer(ws.id);
    await exec(before.Id, 'echo "Edited before the engine restart" > /workspace/message.txt');
    expect(await waitFor('the preview', () => previewBody(ws.slug), 30_000)).toContain('Edited before the engine restart');

    await engine.stop();
    const during = await berth.preview(ws.slug).catch((err: Error) => ({ status: 0, body: err.message }));
    expect(during.status).not.toBe(200);
    await engine.start();

    const body = await waitFor('the preview after the engine restart', () => previewBody(ws.slug), 120_000).catch(async (err) => {
      const now = await byId(ws.id);
      throw new Error(`${(err as Error).message}; workspace ${now.state}: ${now.stateReason}; Berth's log: ${berth.logs.slice(-20).join('\n')}`);
    });
    expect(body).toContain('Edited before the engine restart');
    expect((await byId(ws.id)).state).toBe('running');
    // the same container, brought back by its restart policy, and Berth proxies to where it is now
    const now = await serviceContainer(ws.id);
    expect(now.Id).toBe(before.Id);
    await waitFor('previewHost to follow the container', async () => (await byId(ws.id)).previewHost === now.NetworkSettings.Networks[dockerNames.network(ws.slug)]?.IPAddress, 30_000);
    // seed once for the disk
    expect((await diskFile(ws.slug, '.data/seed.log')).split('\n').filter((l) => l.trim())).toHaveLength(1);
    // every state change in the history is a legal step from the one before
    const events = await berth.db.workspaceEvent.findMany({ where: { workspaceId: ws.id }, orderBy: { id: 'asc' } });
    for (let i = 1; i < events.length; i++) {
      expect(events[i]!.fromState, `event ${i}: ${events[i]!.reason}`).toBe(events[i - 1]!.toState);
      expect(canTransition(events[i]!.fromState!, events[i]!.toState)).toBe(true);
    }
    expect(events.at(-1)!.toState).toBe('running');
  });
});
