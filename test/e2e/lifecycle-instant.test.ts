import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeGitHub, type FakeGitHub } from '../fakes/github.js';
import { issueCommentPayload, pullRequestPayload, pushPayload, sendWebhook } from '../fakes/webhooks.js';
import { sampleAppFiles } from '../fixtures/sample-app.js';
import { startTestBerth, type TestBerth } from '../helpers/berth.js';
import { waitFor, type SimpleResponse } from '../helpers/http.js';
import type { WorkspaceState } from '../../lib/db/client.js';
import { containersOf, docker } from './lifecycle.helpers.js';

const O = 'acme';
const R = 'instant';
const BRANCH = 'feature/instant';
const PR = 7;
const IDLE_S = 10;
const GRACE_S = 1;

/**
 * The sample app, with a dev command that ignores SIGTERM (as a careless dev server does): only
 * the SIGKILL after BERTH_STOP_GRACE ends it. `mode` shows on its page (BERTH_SAMPLE_MODE), so a
 * response says which version of the workspace's containers answered it.
 */
function appFiles(mode: string) {
  const yml = [
    'services:',
    '  web:',
    '    build: .',
    '    port: 3000',
    '    command: node stubborn.js',
    '    migrate: node migrate.js',
    '    seed: node seed.js',
    '    health: /health',
    `    env: { NODE_ENV: development, BERTH_SAMPLE_MODE: ${mode} }`,
    'preview: { service: web, visibility: public }',
    'workspace:',
    '  ide: terminal',
    `  idle_timeout: ${IDLE_S}s`,
    '',
  ].join('\n');
  const stubborn = "require('./server.js');\nprocess.removeAllListeners('SIGTERM');\nprocess.on('SIGTERM', () => console.log('ignoring SIGTERM'));\n";
  return sampleAppFiles({ '.github/berth.yml': yml, 'stubborn.js': stubborn });
}

/** A GET as curl sends it (no Accept: text/html), waiting as long as curl would. */
function curl(port: number, host: string, path = '/'): Promise<SimpleResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, headers: { host, accept: '*/*', 'user-agent': 'curl/8.5.0' }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.setTimeout(60_000, () => req.destroy(new Error('timeout')));
    req.end();
  });
}

/**
 * Issue 13, what a user sees of the lifecycle: `/berth stop` ends the containers within the stop
 * grace and the comment says so; a plain GET to a stopped preview gets the app's own 200; a new
 * commit rolls out while requests every 100 ms keep getting 200; an idle workspace stops on
 * its deadline (the sweep is set to an hour here, so only the scheduled stop can do it).
 */
describe('instant lifecycle', () => {
  let fake: FakeGitHub;
  let berth: TestBerth;
  let installationId: number;

  beforeAll(async () => {
    fake = await startFakeGitHub();
    installationId = fake.addInstallation({ login: O, type: 'Organization' }).id;
    fake.createRepo(O, R, { installationId });
    await fake.pushFiles(O, R, 'main', { 'README.md': '# instant\n' });
    fake.addUser('wendy');
    fake.setPermission(O, R, 'wendy', 'write');
    berth = await startTestBerth(fake, { BERTH_STOP_GRACE: `${GRACE_S}s`, BERTH_REAP_INTERVAL: '1h' });
  });

  afterAll(async () => {
    await berth?.close();
    await fake?.close();
  });

  const hook = async (event: string, payload: unknown) => {
    const res = await sendWebhook(berth.webhookUrl, event, payload, fake.webhookSecret);
    expect(res.status).toBeLessThan(300);
  };
  const sticky = () => fake.issueComments(O, R, PR).find((c) => c.body?.includes('<!-- berth:sticky'))?.body ?? '';
  const byId = (id: string) => berth.db.workspace.findUniqueOrThrow({ where: { id } });
  const untilState = (id: string, state: WorkspaceState, ms = 120_000) =>
    waitFor(`workspace ${state}`, async () => {
      const ws = await byId(id);
      if (ws.state === 'failed' && state !== 'failed') throw new Error(`failed: ${ws.stateReason}`);
      return ws.state === state ? ws : null;
    }, ms, 100);
  const host = (slug: string) => `${slug}.localhost:${berth.port}`;

  async function push(files: Record<string, string | null>) {
    const sha = await fake.pushFiles(O, R, BRANCH, files);
    await hook('push', pushPayload({ fake, owner: O, repo: R, branch: BRANCH, after: sha, installationId }));
    const existing = fake.getPullRequest(O, R, PR);
    if (!existing) fake.createPullRequest(O, R, { number: PR, head: BRANCH, user: 'wendy' });
    await hook('pull_request', pullRequestPayload(existing ? 'synchronize' : 'opened', { fake, owner: O, repo: R, number: PR, installationId }));
    return sha;
  }

  let made: { id: string; slug: string } | undefined;
  /** The workspace of the test branch in `state` (running or stopped), made on first use. */
  async function workspaceIn(state: 'running' | 'stopped') {
    if (!made) {
      await push(appFiles('v1'));
      made = await waitFor('the workspace', () => berth.db.workspace.findFirst({ where: { branch: BRANCH } }));
      await untilState(made.id, 'running');
    }
    const now = await byId(made.id);
    if (now.state !== state) {
      await berth.queues.enqueueWorkspace(state === 'running' ? 'start' : 'stop', { workspaceId: made.id, actor: 'test', reason: `${state} for the test` });
      await untilState(made.id, state);
    }
    // stopped as a user sees it: its containers gone too (the gateways' lookup of a running
    // workspace is reused for a quarter second)
    if (state === 'stopped') await waitFor('its containers gone', async () => (await containersOf(made!.id)).length === 0, 30_000, 100);
    return made;
  }

  it('/berth stop: the containers are gone and the comment says stopped within the stop grace, even for an app that ignores SIGTERM', async () => {
    const ws = await workspaceIn('running');
    const [web] = await containersOf(ws.id);
    expect(web).toBeDefined();
    const since = Math.floor(Date.now() / 1000) - 1;
    const asked = Date.now();
    await hook('issue_comment', issueCommentPayload({ fake, owner: O, repo: R, issueNumber: PR, body: '/berth stop', user: 'wendy', installationId }));
    await waitFor('the containers gone and the comment saying stopped', async () => (await containersOf(ws.id)).length === 0 && /stopped/i.test(sticky()), 30_000, 50);
    const took = Date.now() - asked;
    // The engine's own record: SIGTERM, ignored, then SIGKILL once the grace was up, not Docker's
    // old 5 s (the old code also waited for each container in turn).
    const events = await engineEvents(web!.Id, since);
    const term = events.find((e) => e.Action === 'kill' && e.Actor.Attributes.signal === '15');
    const died = events.find((e) => e.Action === 'die');
    expect(term, JSON.stringify(events)).toBeDefined();
    expect(died).toBeDefined();
    expect(events.some((e) => e.Action === 'kill' && e.Actor.Attributes.signal === '9')).toBe(true);
    const graceMs = (died!.timeNano - term!.timeNano) / 1e6;
    expect(graceMs).toBeGreaterThanOrEqual(GRACE_S * 1000 - 100);
    expect(graceMs).toBeLessThan(GRACE_S * 1000 + 1500);
    // from the comment to everything gone: the grace plus Berth's own work, well under the 5 s
    // the engine's default grace alone took before
    expect(took).toBeLessThan(5_000);
    expect((await byId(ws.id)).state).toBe('stopped');
  });

  it('a plain GET to a stopped preview is held while the workspace wakes and gets the app’s own 200', async () => {
    const ws = await workspaceIn('stopped');
    const wakesBefore = await berth.db.workspaceEvent.count({ where: { workspaceId: ws.id, toState: 'starting', actor: 'gateway' } });
    // three clients at once (curl, a probe, a script's fetch): each gets the app, one wake-up
    const answers = await Promise.all([curl(berth.port, host(ws.slug)), curl(berth.port, host(ws.slug), '/health'), curl(berth.port, host(ws.slug), '/?probe=1')]);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    expect(answers[0]!.body).toContain('Hello from Berth sample v1');
    expect(answers[1]!.body).toBe('ok');
    expect(answers[0]!.body).not.toContain('Waking up');
    expect((await byId(ws.id)).state).toBe('running');
    expect(await berth.db.workspaceEvent.count({ where: { workspaceId: ws.id, toState: 'starting', actor: 'gateway' } })).toBe(wakesBefore + 1);
  });

  it('a browser navigation to a stopped preview still gets the waiting page when the wake takes longer than BERTH_WAKE_PAGE_AFTER', async () => {
    const ws = await workspaceIn('stopped');
    const previous = berth.config.BERTH_WAKE_PAGE_AFTER;
    berth.config.BERTH_WAKE_PAGE_AFTER = 0; // every wake takes longer than no time at all
    try {
      const page = await berth.preview(ws.slug, '/', { accept: 'text/html,application/xhtml+xml', 'sec-fetch-mode': 'navigate' });
      expect(page.status, `${JSON.stringify(page.headers)} ${page.body.slice(0, 300)} ${JSON.stringify(await byId(ws.id).then((w) => [w.state, w.previewHost]))}`).toBe(503);
      expect(page.body).toMatch(/<meta http-equiv="refresh"/);
      expect(page.body).toMatch(/Waking up|Starting/);
    } finally {
      berth.config.BERTH_WAKE_PAGE_AFTER = previous;
    }
    await untilState(ws.id, 'running');
  });

  it('a new commit rolls out without downtime: a request every 100 ms gets only 200s, first from the old version, then from the new', async () => {
    const ws = await workspaceIn('running');
    const before = (await byId(ws.id)).runningSha;
    const seen: Array<{ status: number; mode: string }> = [];
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const r = await curl(berth.port, host(ws.slug)).catch((err: Error) => ({ status: 0, body: err.message, headers: {} }));
        seen.push({ status: r.status, mode: /BERTH_SAMPLE_MODE: (\w+)/.exec(r.body)?.[1] ?? r.body.slice(0, 200) });
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    try {
      const sha = await push(appFiles('v2'));
      await waitFor('the new commit running', async () => {
        const now = await byId(ws.id);
        if (now.state === 'failed') throw new Error(`failed: ${now.stateReason}`);
        return now.state === 'running' && now.runningSha === sha;
      }, 120_000, 100);
      await waitFor('the new version answering', async () => seen.at(-1)?.mode === 'v2', 10_000, 100);
      // one container left: the old version stopped after the switch
      await waitFor('the old container gone', async () => (await containersOf(ws.id)).length === 1, 10_000, 100);
    } finally {
      polling = false;
      await poller;
    }
    expect(before).not.toBeNull();
    const failures = seen.filter((s) => s.status !== 200);
    expect(failures, JSON.stringify(failures.slice(0, 5))).toEqual([]);
    expect(seen.length).toBeGreaterThan(20);
    expect(seen[0]!.mode).toBe('v1');
    expect(seen.at(-1)!.mode).toBe('v2');
    // once the new version answered, the old one never did again
    const firstNew = seen.findIndex((s) => s.mode === 'v2');
    expect(seen.slice(firstNew).every((s) => s.mode === 'v2')).toBe(true);
    // the rollout went through `starting` while the old version served
    const events = await berth.db.workspaceEvent.findMany({ where: { workspaceId: ws.id }, orderBy: { id: 'desc' }, take: 4 });
    expect(events.map((e) => e.toState)).toContain('starting');
  });

  it('an idle workspace stops within 5 s of its deadline (last request + idle_timeout), not on a sweep', async () => {
    const ws = await workspaceIn('running');
    // traffic for a while (activity is written at most every idle_timeout/3), then silence
    let last = 0;
    const until = Date.now() + 5_000;
    while (Date.now() < until) {
      expect((await curl(berth.port, host(ws.slug), '/health')).status).toBe(200);
      last = Date.now();
      await new Promise((r) => setTimeout(r, 300));
    }
    const stopped = await untilState(ws.id, 'stopped', 60_000);
    const event = await berth.db.workspaceEvent.findFirstOrThrow({ where: { workspaceId: ws.id, toState: 'stopped' }, orderBy: { id: 'desc' } });
    expect(event.actor).toBe('idle');
    expect(stopped.stateReason).toBe(`idle for ${IDLE_S} s`);
    const deadline = last + IDLE_S * 1000;
    const late = event.createdAt.getTime() - deadline;
    // not before the deadline (the last request counts, not the last write), and within 5 s after it
    expect(late).toBeGreaterThan(-300);
    expect(late).toBeLessThan(5_000);
  });
});

interface EngineEvent {
  Action: string;
  timeNano: number;
  Actor: { Attributes: Record<string, string> };
}

/** The engine's events of one container since `since` (seconds), up to now. */
async function engineEvents(containerId: string, since: number): Promise<EngineEvent[]> {
  const stream = (await docker.getEvents({ since, until: Math.ceil(Date.now() / 1000) + 1, filters: { container: [containerId] } })) as NodeJS.ReadableStream;
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks)
    .toString('utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as EngineEvent);
}
