import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeGitHub, type FakeGitHub } from '../fakes/github.js';
import { pushPayload, sendWebhook } from '../fakes/webhooks.js';
import { SAMPLE_MESSAGE, sampleAppFiles } from '../fixtures/sample-app.js';
import { startTestBerth, type TestBerth } from '../helpers/berth.js';
import { CookieClient } from '../helpers/cookie-client.js';
import { waitFor } from '../helpers/http.js';
import { startCluster, startClusterWorker, type Cluster, type ClusterWorker } from '../helpers/cluster.js';
import { AGENT_AUTH_HEADER, signAgentRequest } from '../../lib/hosts/agent-auth.js';
import { HostAgentClient } from '../../lib/hosts/agent-client.js';
import { HostAgent } from '../../worker/agent/server.js';
import { DockerWorkspaceAccess } from '../../worker/runtime/docker-access.js';

const AGENT_PORT = 7450;

/**
 * Issue 18: a workspace on another Docker host, served through the one Berth URL. The test
 * cluster (test/helpers/cluster.ts) puts each host in a network namespace of its own: the web
 * process (this test's Berth, BERTH_ROLE=app) has no route to the containers of host 2, only to
 * host 2's address, where its worker's agent listens. Everything a person sees of the workspace
 * (preview, its WebSocket, VS Code, a terminal) therefore comes through the agent.
 */
describe('a workspace on host 2 of a cluster, through its host agent', () => {
  let fake: FakeGitHub;
  let berth: TestBerth;
  let cluster: Cluster;
  let worker: ClusterWorker | undefined;
  let installationId: number;
  let ws: { id: string; slug: string; previewHost: string | null; previewPort: number | null };
  const secret = randomBytes(32).toString('hex');
  const agentUrl = () => `http://${cluster.hosts[1]!.address}:${AGENT_PORT}`;
  const previewOrigin = (slug: string) => `http://${slug}.localhost:${berth.port}`;
  const ideOrigin = (slug: string) => `http://${slug}.ide.localhost:${berth.port}`;

  beforeAll(async () => {
    await promisify(execFile)('bash', ['scripts/install-code-server.sh'], { timeout: 300_000 });
    fake = await startFakeGitHub();
    installationId = fake.addInstallation({ login: 'acme', type: 'Organization' }).id;
    fake.createRepo('acme', 'far', { installationId, private: false });
    fake.setPermission('acme', 'far', 'wes-writer', 'write');
    cluster = await startCluster({ hosts: 2, loopbackPorts: [Number(new URL(`http://${fake.host}`).port)] });
    berth = await startTestBerth(fake, { BERTH_ROLE: 'app', BERTH_HOST_SECRET: secret });
    const host2 = cluster.hosts[1]!;
    // the one worker of this Berth runs on host 2: placement has nowhere else to put a workspace
    worker = await startClusterWorker(host2, {
      APP_ID: berth.config.APP_ID!,
      PRIVATE_KEY: berth.config.privateKey!,
      WEBHOOK_SECRET: berth.config.WEBHOOK_SECRET!,
      GHE_HOST: fake.host,
      GHE_PROTOCOL: 'http',
      DATABASE_URL: berth.database.url,
      REDIS_URL: berth.config.REDIS_URL!,
      BERTH_QUEUE_PREFIX: berth.config.BERTH_QUEUE_PREFIX,
      BERTH_URL: berth.config.berthUrl,
      BERTH_PREVIEW_DOMAIN: 'localhost',
      BERTH_HEALTH_TIMEOUT: '60s',
      BERTH_MEMORY_LIMIT: '512m',
      BERTH_ROLE: 'worker',
      BERTH_HOST_NAME: 'host-2',
      BERTH_HOST_URL: agentUrl(),
      BERTH_HOST_SECRET: secret,
      LOG_LEVEL: 'info',
    });
    const sha = await fake.pushFiles('acme', 'far', 'feature/far', sampleAppFiles());
    const res = await sendWebhook(berth.webhookUrl, 'push', pushPayload({ fake, owner: 'acme', repo: 'far', branch: 'feature/far', after: sha, installationId }), fake.webhookSecret);
    expect(res.status).toBeLessThan(300);
    ws = await waitFor(
      'the workspace to run on host 2',
      async () => {
        const row = await berth.db.workspace.findFirst({ where: { branch: 'feature/far' } });
        if (row?.state === 'failed') throw new Error(`workspace failed: ${row.stateReason}\n${worker?.output().slice(-3000)}`);
        return row?.state === 'running' ? row : null;
      },
      300_000,
      500,
    );
  }, 600_000);

  afterAll(async () => {
    await worker?.stop();
    await berth?.close();
    await cluster?.close();
    await fake?.close();
  }, 180_000);

  it('runs the workspace on host 2’s engine, at an address of host 2 only', async () => {
    const row = await berth.db.workspace.findUniqueOrThrow({ where: { id: ws.id }, include: { host: true } });
    expect(row.host?.name).toBe('host-2');
    expect(row.host?.url).toBe(agentUrl());
    const onHost2 = await cluster.hosts[1]!.docker.listContainers({ filters: { label: [`berth.workspace=${ws.id}`] } });
    expect(onHost2.length).toBeGreaterThan(0);
    const onHost1 = await cluster.hosts[0]!.docker.listContainers({ all: true, filters: { label: [`berth.workspace=${ws.id}`] } });
    expect(onHost1).toHaveLength(0);
    // host 2's engine gives addresses from its own pool, which the machine has no route to
    expect(ws.previewHost?.startsWith('10.212.')).toBe(true);
  });

  it('serves its preview and the preview’s WebSocket through the one Berth URL', async () => {
    const page = await new CookieClient().get(`${previewOrigin(ws.slug)}/`);
    expect(page.status).toBe(200);
    expect(page.body).toContain(SAMPLE_MESSAGE);
    const socket = new WebSocket(`ws://127.0.0.1:${berth.port}/live`, { headers: { host: `${ws.slug}.localhost:${berth.port}` } });
    const message = await new Promise<string>((resolve, reject) => {
      socket.once('message', (d) => resolve(d.toString()));
      socket.once('error', reject);
      setTimeout(() => reject(new Error('no WebSocket message in 15 s')), 15_000);
    });
    socket.close();
    expect(message).toBe(`live: ${SAMPLE_MESSAGE}`);
  });

  it('opens VS Code and a terminal in /workspace on host 2 for a writer', async () => {
    fake.setOAuthUser('wes-writer');
    const client = new CookieClient();
    // signs in and lands on the IDE host (a waiting page while VS Code starts after the app)
    await client.get(`${berth.config.berthUrl}/workspaces/${ws.id}/ide`, { follow: true });
    // VS Code (the person's own code-server container, made on host 2 through its agent)
    await waitFor('VS Code on the IDE host', async () => (await client.get(`${ideOrigin(ws.slug)}/healthz`)).status === 200, 180_000, 1000);
    const workbench = await client.get(`${ideOrigin(ws.slug)}/`, { follow: true });
    expect(workbench.status).toBe(200);
    expect(workbench.body).toMatch(/vscode|code-server|workbench/i);
    const ideContainers = await cluster.hosts[1]!.docker.listContainers({ filters: { label: [`berth.workspace=${ws.id}`, 'berth.role=ide'] } });
    expect(ideContainers.some((c) => c.Labels['berth.person'] === 'wes-writer')).toBe(true);

    // a terminal: the exec runs on host 2, its streams come back through the agent
    const socket = new WebSocket(`ws://127.0.0.1:${berth.port}/__berth/terminal?cols=100&rows=30`, {
      headers: { host: `${ws.slug}.ide.localhost:${berth.port}`, origin: ideOrigin(ws.slug), cookie: client.cookieHeader(new URL(ideOrigin(ws.slug))) },
    });
    let output = '';
    socket.on('message', (d) => (output += d.toString()));
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
    socket.send(JSON.stringify({ type: 'input', data: 'pwd; cat message.txt; echo answer-$((6*7)); stty size\n' }));
    await waitFor('the terminal’s output', async () => output.includes('answer-42') && /30 100/.test(output), 20_000, 100);
    expect(output).toContain('/workspace');
    expect(output).toContain(SAMPLE_MESSAGE);
    socket.send(JSON.stringify({ type: 'resize', cols: 132, rows: 40 }));
    await new Promise((r) => setTimeout(r, 300));
    socket.send(JSON.stringify({ type: 'input', data: 'stty size\n' }));
    await waitFor('the new size', async () => output.includes('40 132'), 10_000, 100);
    socket.close();
  });

  it('refuses a request without the agent secret, or signed with another', async () => {
    const path = '/v1/health';
    expect((await agentGet(agentUrl(), path, {})).status).toBe(401);
    expect((await agentGet(agentUrl(), path, { [AGENT_AUTH_HEADER]: signAgentRequest('x'.repeat(64), 'GET', path) })).status).toBe(401);
    // a signature of another path does not open this one
    expect((await agentGet(agentUrl(), path, { [AGENT_AUTH_HEADER]: signAgentRequest(secret, 'GET', '/v1/other') })).status).toBe(401);
    // an old signature is refused
    expect((await agentGet(agentUrl(), path, { [AGENT_AUTH_HEADER]: signAgentRequest(secret, 'GET', path, Date.now() - 10 * 60_000) })).status).toBe(401);
    expect((await agentGet(agentUrl(), path, { [AGENT_AUTH_HEADER]: signAgentRequest(secret, 'GET', path) })).status).toBe(200);
    // the tunnel to the very preview the web reaches, with a wrong secret: refused
    const to = `${ws.previewHost}:${ws.previewPort}`;
    await expect(new HostAgentClient(agentUrl(), 'y'.repeat(64)).tunnel(ws.id, to)).rejects.toMatchObject({ status: 401 });
    // and an exec with a wrong secret
    const wrong = new HostAgentClient(agentUrl(), 'y'.repeat(64));
    await expect(wrong.call('mainContainer', [ws.id, null])).rejects.toMatchObject({ status: 401 });
  });

  it('never opens a connection to anything but that workspace’s containers on its own host', async () => {
    const right = new HostAgentClient(agentUrl(), secret);
    const to = `${ws.previewHost}:${ws.previewPort}`;
    // the right secret and the workspace's own preview: a connection to the app
    const tunnel = await right.tunnel(ws.id, to);
    const answer = await new Promise<string>((resolve) => {
      let text = '';
      tunnel.on('data', (c: Buffer) => (text += c.toString()));
      tunnel.on('close', () => resolve(text));
      tunnel.write(`GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    });
    expect(answer).toMatch(/^HTTP\/1.1 200/);
    // the agent's own host, the machine's PostgreSQL through it, another workspace's name: refused
    await expect(right.tunnel(ws.id, `${cluster.hosts[1]!.address}:${AGENT_PORT}`)).rejects.toMatchObject({ status: 403 });
    await expect(right.tunnel(ws.id, '127.0.0.1:5432')).rejects.toMatchObject({ status: 403 });
    await expect(right.tunnel('another-workspace', to)).rejects.toMatchObject({ status: 403 });

    // host 1's agent (same Berth, same secret) has no such workspace: it never reaches host 2's container
    const host1 = cluster.hosts[0]!;
    const agent1 = new HostAgent({ secret, instance: berth.config.BERTH_QUEUE_PREFIX, docker: host1.docker, access: new DockerWorkspaceAccess(host1.docker) });
    const port1 = await agent1.listen(0, '127.0.0.1');
    try {
      await expect(new HostAgentClient(`http://127.0.0.1:${port1}`, secret).tunnel(ws.id, to)).rejects.toMatchObject({ status: 403 });
    } finally {
      await agent1.close();
    }
  });
});

function agentGet(base: string, path: string, headers: Record<string, string>): Promise<{ status: number }> {
  return new Promise((resolve, reject) => {
    const req = http.get(new URL(path, base), { headers, timeout: 10_000 }, (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0 });
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
  });
}
