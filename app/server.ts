import http from 'node:http';
import { Redis } from 'ioredis';
import { createNodeMiddleware, type Probot } from 'probot';
import type { AppDeps } from './deps.js';
import { berthApp } from './probot-app.js';
import { Gateway } from './gateway/gateway.js';
import { sendJson, sendPage, type Handler } from './http.js';
import { Reporter } from './github/reporter.js';
import type { Auth } from './auth/types.js';
import { BerthAuth } from './auth/auth.js';
import { WorkspaceGate } from './auth/workspace-gate.js';
import { IdeGateway } from './ide/ide-gateway.js';
import { Metrics } from './metrics.js';
import { createDashboard } from './dashboard/routes.js';
import { readinessHandler } from './dashboard/readiness.js';
import { DockerContainerReader, type ContainerReader } from './dashboard/containers.js';
import { isBackendUnavailable } from '../lib/errors.js';

export const WEBHOOK_PATH = '/api/github/webhooks';

export interface BerthServer {
  server: http.Server;
  gateway: Gateway;
  reporter: Reporter;
  metrics: Metrics;
  close(): Promise<void>;
}

export interface BerthServerOptions {
  /** sign-in for the dashboard; default: GitHub sign-in (app/auth/auth.ts) */
  auth?: Auth;
  /** read-only Docker access for /readyz and the workspace page */
  containers?: ContainerReader;
}

/**
 * One HTTP server for everything Berth serves: workspace hosts go to the gateway first
 * (a workspace's app must never reach Berth's own routes), then GitHub's webhooks, then the
 * dashboard.
 */
export async function createBerthServer(deps: AppDeps, probot: Probot, extraHandlers: Handler[] = [], options: BerthServerOptions = {}): Promise<BerthServer> {
  // Sign-in keeps its sessions and one-time tickets in the Redis the queues use.
  // Like the web's queues, sessions fail at once while Redis is away (a 503 page, not a hang).
  const redis = new Redis((deps.queues.connection as { url: string }).url, { enableOfflineQueue: false, maxRetriesPerRequest: 1 });
  redis.on('error', () => {}); // it reconnects by itself; requests meanwhile fail and say so
  // without the offline queue, commands sent before the first connection would fail
  await Promise.race([new Promise((r) => redis.once('ready', r)), new Promise((r) => setTimeout(r, 10_000).unref())]);
  const signIn = new BerthAuth(deps, probot, redis);
  const gate = new WorkspaceGate(deps, signIn);
  const gateway = new Gateway(deps, gate);
  const ide = new IdeGateway(deps, gate);
  const auth = options.auth ?? signIn;
  const webhooks = await createNodeMiddleware(berthApp(deps), { probot, webhooksPath: WEBHOOK_PATH });
  const reporter = new Reporter(deps, probot);
  const health: Handler = (req, res) => {
    if (req.url === '/healthz') return (sendJson(res, 200, { ok: true }), true);
    return false;
  };
  const metrics = new Metrics(deps, (req) => auth.currentUser(req));
  const containers = options.containers ?? new DockerContainerReader();
  const webhookHandler: Handler = (req, res) => webhooks(req, res, () => {}) as Promise<boolean>;
  const dashboard: Handler[] = [createDashboard(deps, { auth, probot, containers })];
  const handlers: Handler[] = [
    gateway.handle,
    ide.handle,
    metrics.timeWebhooks(webhookHandler, WEBHOOK_PATH),
    health,
    readinessHandler(deps, containers),
    metrics.handle,
    signIn.handle.bind(signIn),
    gate.handleEntry,
    ...extraHandlers,
    ...dashboard,
  ];
  const server = http.createServer(async (req, res) => {
    try {
      for (const h of handlers) if (await h(req, res)) return;
      if (!res.headersSent) sendPage(res, 404, 'pages/not-found.njk', { berthUrl: deps.config.berthUrl });
    } catch (err) {
      const unavailable = isBackendUnavailable(err);
      probot.log.error({ err }, unavailable ? 'request failed: PostgreSQL or Redis is not reachable' : 'request failed');
      if (res.headersSent) res.destroy();
      else if (unavailable) {
        sendPage(res, 503, 'pages/error.njk', { status: 503, title: 'Back in a moment', message: 'Berth cannot reach its database or queue right now (restarting?). Try again in a few seconds.' }, { 'retry-after': '5' });
      } else sendPage(res, 500, 'pages/error.njk', { status: 500, title: 'Something went wrong', message: 'Berth could not answer this request. The error was logged.' });
    }
  });
  server.on('upgrade', (req, socket, head) => {
    gateway.handleUpgrade(req, socket, head).then(
      async (handled) => handled || (await ide.handleUpgrade(req, socket, head)) || socket.destroy(),
      () => socket.destroy(),
    );
  });
  return {
    server,
    gateway,
    reporter,
    metrics,
    async close() {
      await reporter.close();
      await ide.close();
      redis.disconnect();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
