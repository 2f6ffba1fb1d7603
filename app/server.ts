import http from 'node:http';
import { createNodeMiddleware, type Probot } from 'probot';
import type { AppDeps } from './deps.js';
import { berthApp } from './probot-app.js';
import { Gateway } from './gateway/gateway.js';
import { sendJson, sendPage, type Handler } from './http.js';
import { Reporter } from './github/reporter.js';
import type { Auth } from './auth/types.js';
import { Metrics } from './metrics.js';
import { createDashboard } from './dashboard/routes.js';
import { readinessHandler } from './dashboard/readiness.js';
import { DockerContainerReader, type ContainerReader } from './dashboard/containers.js';

export const WEBHOOK_PATH = '/api/github/webhooks';

export interface BerthServer {
  server: http.Server;
  gateway: Gateway;
  reporter: Reporter;
  metrics: Metrics;
  close(): Promise<void>;
}

export interface BerthServerOptions {
  /** sign-in (app/auth); without it the dashboard is not served */
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
  const gateway = new Gateway(deps);
  const webhooks = await createNodeMiddleware(berthApp(deps), { probot, webhooksPath: WEBHOOK_PATH });
  const reporter = new Reporter(deps, probot);
  const health: Handler = (req, res) => {
    if (req.url === '/healthz') return (sendJson(res, 200, { ok: true }), true);
    return false;
  };
  const metrics = new Metrics(deps);
  const containers = options.containers ?? new DockerContainerReader();
  const webhookHandler: Handler = (req, res) => webhooks(req, res, () => {}) as Promise<boolean>;
  const dashboard: Handler[] = options.auth ? [createDashboard(deps, { auth: options.auth, probot, containers })] : [];
  const handlers: Handler[] = [
    gateway.handle,
    metrics.timeWebhooks(webhookHandler, WEBHOOK_PATH),
    health,
    readinessHandler(deps, containers),
    metrics.handle,
    ...extraHandlers,
    ...dashboard,
  ];
  const server = http.createServer(async (req, res) => {
    try {
      for (const h of handlers) if (await h(req, res)) return;
      if (!res.headersSent) sendPage(res, 404, 'pages/not-found.njk', { berthUrl: deps.config.berthUrl });
    } catch (err) {
      probot.log.error({ err }, 'request failed');
      if (!res.headersSent) sendPage(res, 500, 'pages/error.njk', { status: 500, title: 'Something went wrong', message: 'Berth could not answer this request. The error was logged.' });
      else res.destroy();
    }
  });
  server.on('upgrade', (req, socket, head) => {
    gateway.handleUpgrade(req, socket, head).then(
      (handled) => handled || socket.destroy(),
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
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
