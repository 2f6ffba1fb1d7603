import { settingsHandler } from './dashboard/settings.js';
import { hostsHandler } from './dashboard/hosts.js';
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { Redis } from 'ioredis';
import type { Probot } from 'probot';
import type { AppDeps } from './deps.js';
import { berthApp } from './probot-app.js';
import { webhookEndpoint } from './webhook-endpoint.js';
import { previewsShareBerthSite } from './preview-domain.js';
import { Gateway } from './gateway/gateway.js';
import { sendJson, sendPage, type Handler } from './http.js';
import { Reporter } from './github/reporter.js';
import type { Auth } from './auth/types.js';
import { BerthAuth } from './auth/auth.js';
import { WorkspaceGate } from './auth/workspace-gate.js';
import { IdeGateway } from './ide/ide-gateway.js';
import { GitCredentials } from './ide/git-credentials.js';
import { IdeContainers } from './ide/containers.js';
import { Metrics } from './metrics.js';
import { createDashboard } from './dashboard/routes.js';
import { variablesHandler } from './variables/routes.js';
import { readinessHandler } from './dashboard/readiness.js';
import type { WorkspaceAccess } from '../lib/workspace-access.js';
import { isBackendUnavailable } from '../lib/errors.js';

export const WEBHOOK_PATH = '/api/github/webhooks';

export interface BerthServer {
  server: http.Server;
  gateway: Gateway;
  reporter: Reporter;
  metrics: Metrics;
  /** git credentials for workspace shells (the SSH server gives its sessions the same) */
  git: GitCredentials;
  close(): Promise<void>;
}

export interface BerthServerOptions {
  /** sign-in for the dashboard; default: GitHub sign-in (app/auth/auth.ts) */
  auth?: Auth;
  /**
   * the web's one door to the workspaces' containers (lib/workspace-access.ts): the dashboard,
   * /readyz, the IDE, terminals; app/main.ts passes the runtime's
   */
  workspaces: WorkspaceAccess;
}

/**
 * One HTTP server for everything Berth serves: workspace hosts go to the gateway first
 * (a workspace's app must never reach Berth's own routes), then GitHub's webhooks, then the
 * dashboard.
 */
export async function createBerthServer(deps: AppDeps, probot: Probot, extraHandlers: Handler[], options: BerthServerOptions): Promise<BerthServer> {
  // Sign-in keeps its sessions and one-time tickets in the Redis the queues use.
  // Like the web's queues, sessions fail at once while Redis is away (a 503 page, not a hang).
  const redis = new Redis((deps.queues.connection as { url: string }).url, { enableOfflineQueue: false, maxRetriesPerRequest: 1 });
  redis.on('error', () => {}); // it reconnects by itself; requests meanwhile fail and say so
  // without the offline queue, commands sent before the first connection would fail
  await Promise.race([new Promise((r) => redis.once('ready', r)), new Promise((r) => setTimeout(r, 10_000).unref())]);
  const signIn = new BerthAuth(deps, probot, redis);
  const gate = new WorkspaceGate(deps, signIn);
  const gateway = new Gateway(deps, gate);
  const ideContainers = new IdeContainers(options.workspaces);
  const git = new GitCredentials(deps, signIn, redis, options.workspaces);
  const ide = new IdeGateway(deps, gate, ideContainers, git);
  const auth = options.auth ?? signIn;
  // Berth's handlers on Probot's webhooks; deliveries reach them through webhookEndpoint only.
  await probot.load(berthApp(deps), {
    cwd: process.cwd(),
    addHandler: () => {
      throw new Error('Berth serves its own routes (app/server.ts)');
    },
  });
  const reporter = new Reporter(deps, probot);
  const health: Handler = (req, res) => {
    if (req.url === '/healthz') return (sendJson(res, 200, { ok: true }), true);
    return false;
  };
  const metrics = new Metrics(deps, (req) => auth.currentUser(req));
  const containers = options.workspaces;
  const webhookHandler = webhookEndpoint(probot, WEBHOOK_PATH, probot.log);
  const dashboard: Handler[] = [variablesHandler(deps, { auth, probot }), settingsHandler(deps, { auth }), hostsHandler(deps, { auth }), createDashboard(deps, { auth, probot, containers })];
  // BERTH_URL's own host is never a workspace's, even when its name would parse as one
  // (BERTH_URL berth.example.com with previews on *.example.com): Berth's pages stay Berth's.
  const berthHost = new URL(deps.config.berthUrl).hostname;
  if (previewsShareBerthSite(berthHost, deps.config.BERTH_PREVIEW_DOMAIN)) {
    probot.log.warn(
      `BERTH_PREVIEW_DOMAIN ${deps.config.BERTH_PREVIEW_DOMAIN} is under the same domain as BERTH_URL (${berthHost}): previews run branch code there and can set cookies Berth receives. Give previews a domain of their own (README, “Put previews on a domain of their own”).`,
    );
  }
  // BERTH_URL can be set after the server is made (a test's PORT=0): its hostname is parsed once per value
  let berthUrl = '';
  let berthHostname = '';
  const onBerthHost = (req: http.IncomingMessage) => {
    if (deps.config.berthUrl !== berthUrl) [berthUrl, berthHostname] = [deps.config.berthUrl, new URL(deps.config.berthUrl).hostname.toLowerCase()];
    return hostnameOf(req.headers.host) === berthHostname;
  };
  const workspaceHosts = (h: Handler): Handler => (req, res) => !onBerthHost(req) && h(req, res);
  const handlers: Handler[] = [
    workspaceHosts(gateway.handle),
    workspaceHosts(ide.handle),
    metrics.timeWebhooks(webhookHandler, WEBHOOK_PATH),
    health,
    git.handle,
    readinessHandler(deps, containers),
    metrics.handle,
    signIn.handle.bind(signIn),
    gate.handleEntry,
    ...extraHandlers,
    ...dashboard,
  ];
  const server = http.createServer((req, res) => {
    // Nothing a request does may end the process: every failure becomes its answer.
    serve(req, res).catch((err) => {
      probot.log.error({ err }, 'answering a request failed');
      res.destroy();
    });
  });
  const serve = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    try {
      // A running preview's traffic first: no handler chain, no await per handler.
      if (!onBerthHost(req) && gateway.proxyIfCached(req, res)) return;
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
  };
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    // Node takes its own 'error' listener off an upgraded socket: without one, a client that
    // resets the connection while a handler awaits (a lookup, sign-in) would end the process.
    socket.on('error', () => socket.destroy());
    const upgrade = async () => !onBerthHost(req) && ((await gateway.handleUpgrade(req, socket, head)) || (await ide.handleUpgrade(req, socket, head)));
    upgrade().then(
      (handled) => {
        if (!handled) socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      },
      (err) => {
        const unavailable = isBackendUnavailable(err);
        if (!unavailable) probot.log.error({ err }, 'WebSocket upgrade failed');
        if (socket.writable) socket.end(`HTTP/1.1 ${unavailable ? '503 Service Unavailable\r\nRetry-After: 5' : '500 Internal Server Error'}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
        else socket.destroy();
      },
    );
  });
  return {
    server,
    gateway,
    reporter,
    metrics,
    git,
    async close() {
      await reporter.close();
      await ide.close();
      redis.disconnect();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** `Host` without its port, lower case */
function hostnameOf(host: string | undefined): string {
  return (host ?? '').replace(/:\d+$/, '').replace(/^\[|\]$/g, '').toLowerCase();
}
