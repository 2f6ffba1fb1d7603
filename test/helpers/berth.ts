import { randomBytes } from 'node:crypto';
import Dockerode from 'dockerode';
import { ProbotOctokit } from 'probot';
import { loadConfig } from '../../lib/config.js';
import { startBerth } from '../../app/main.js';
import { memoryLogger } from '../../lib/log.js';
import { createTestDatabase } from './database.js';
import { getWithHost } from './http.js';

/** Octokit as in production, minus throttling and retries (they add seconds per write). */
export const TestOctokit = ProbotOctokit.defaults((o: Record<string, any>) => ({
  ...o,
  throttle: { ...o.throttle, enabled: false },
  retry: { enabled: false },
}));

/** Containers, networks and volumes labelled with a Berth instance; images stay as the layer cache. */
export async function removeDockerObjects(instance: string) {
  const docker = new Dockerode();
  const filters = { label: [`berth.instance=${instance}`] };
  for (const c of await docker.listContainers({ all: true, filters })) await docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => {});
  for (const n of await docker.listNetworks({ filters })) await docker.getNetwork(n.Id).remove().catch(() => {});
  for (const v of (await docker.listVolumes({ filters })).Volumes ?? []) await docker.getVolume(v.Name).remove().catch(() => {});
}

export interface FakeGitHubLike {
  host: string;
  appId: number;
  privateKey: string;
  webhookSecret: string;
  clientId: string;
  clientSecret: string;
}

export type TestBerth = Awaited<ReturnType<typeof startTestBerth>>;

/**
 * A whole Berth (web + worker in one process, as `npm start` runs it) on a random port,
 * with its own database and queue prefix, talking to the fake GitHub and the real Docker.
 */
export async function startTestBerth(fake: FakeGitHubLike, env: Record<string, string> = {}) {
  const database = await createTestDatabase();
  // Berth's whole log (Probot's lines included), kept for the test to read and for failure messages
  const { logger, lines } = memoryLogger('info');
  const base = {
    APP_ID: String(fake.appId),
    PRIVATE_KEY: fake.privateKey,
    WEBHOOK_SECRET: fake.webhookSecret,
    GITHUB_CLIENT_ID: fake.clientId,
    GITHUB_CLIENT_SECRET: fake.clientSecret,
    GHE_HOST: fake.host,
    GHE_PROTOCOL: 'http',
    DATABASE_URL: database.url,
    REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    BERTH_QUEUE_PREFIX: `t${randomBytes(4).toString('hex')}`,
    BERTH_PREVIEW_DOMAIN: 'localhost',
    BERTH_HEALTH_TIMEOUT: '60s',
    BERTH_MEMORY_LIMIT: '512m',
    LOG_LEVEL: 'error',
    PORT: '0',
    // many test Berths run at once: SSH only where a test asks for it, on a port it chose
    BERTH_SSH_PORT: 'off',
    // BERTH_NATIVE_PROXY=on in the test's environment runs a suite with nginx in front (app/gateway/native-front.ts)
    ...(process.env.BERTH_NATIVE_PROXY ? { BERTH_NATIVE_PROXY: process.env.BERTH_NATIVE_PROXY } : {}),
    ...env,
  };
  // PORT=0 picks a free port; BERTH_URL needs it, so listen first and patch the config after.
  const config = loadConfig(base as NodeJS.ProcessEnv);
  const berth = await startBerth(config, { Octokit: TestOctokit, logger });
  const url = `http://127.0.0.1:${berth.port}`;
  if (!env.BERTH_URL) config.berthUrl = `http://localhost:${berth.port}`;
  return {
    ...berth,
    url,
    config,
    db: berth.infra.db,
    queues: berth.infra.queues,
    /** the log as text lines: the message, then the other fields as JSON */
    get logs(): string[] {
      return lines.map(({ msg, level: _l, time: _t, pid: _p, name: _n, ...fields }) => (Object.keys(fields).length ? `${String(msg)} ${JSON.stringify(fields)}` : String(msg)));
    },
    /** the log as pino wrote it */
    logLines: lines,
    webhookUrl: `${url}/api/github/webhooks`,
    preview: (slug: string, path = '/', headers: Record<string, string> = {}) => getWithHost(berth.port, `${slug}.localhost:${berth.port}`, path, headers),
    /** stops Berth only: its Docker objects and its database stay (a restart, or a Berth replaced by another) */
    stop: () => berth.close(),
    /** its own test database (dropped by close) */
    database,
    /** stops Berth, removes every Docker object it made (by its instance label) and its database */
    async close() {
      await berth.close();
      await removeDockerObjects(config.BERTH_QUEUE_PREFIX);
      await database.drop();
    },
  };
}
