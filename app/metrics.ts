import type { IncomingMessage, ServerResponse } from 'node:http';
import { emitterEventNames } from '@octokit/webhooks';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { AppDeps } from './deps.js';
import type { Handler } from './http.js';
import { safeEqual } from './auth/signing.js';

/** Who may read /metrics besides a bearer of BERTH_METRICS_TOKEN: a signed-in user, if anyone. */
export type MetricsViewer = (req: IncomingMessage) => Promise<{ login: string } | null>;

/** GitHub's webhook event names: the only values of the `event` label */
const GITHUB_EVENTS = new Set<string>(emitterEventNames.filter((name) => !name.includes('.')));
const WORKSPACE_STATES = ['queued', 'building', 'starting', 'running', 'stopped', 'failed', 'deleted'] as const;
const QUEUE_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children', 'failed'] as const;

/**
 * Berth's Prometheus metrics, served at GET /metrics.
 *
 * Counts (workspaces by state, queue depth) are read from PostgreSQL and Redis when scraped,
 * so they are right whether the worker runs in this process or on other machines. Build
 * durations come from the builds table too: each scrape observes the builds that finished
 * since the previous one. Webhook latency is measured here, in the process that answers GitHub.
 *
 * One registry per server (not prom-client's global one), so tests can run several Berths
 * in one process.
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly webhookSeconds: Histogram<'event' | 'status'>;
  private readonly buildSeconds: Histogram<'result'>;
  private readonly scrapeErrors: Counter<'source'>;
  /** builds finished at or before this instant were observed already */
  private buildsSeenUntil = new Date();
  private buildsSeenAtCursor = new Set<string>();

  /**
   * `viewer` tells who is signed in; those in BERTH_ADMINS may read the metrics too. Without
   * BERTH_METRICS_TOKEN and admins nobody may: the numbers (repositories' activity, queue
   * sizes, process details) are not for every visitor.
   */
  constructor(
    private deps: AppDeps,
    private readonly viewer: MetricsViewer = async () => null,
  ) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'berth_process_' });
    this.webhookSeconds = new Histogram({
      name: 'berth_webhook_duration_seconds',
      help: 'Time to answer a GitHub webhook delivery (verify, record, enqueue), by event and HTTP status',
      labelNames: ['event', 'status'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.buildSeconds = new Histogram({
      name: 'berth_build_duration_seconds',
      help: 'Duration of finished builds (clone, configuration, images), by result',
      labelNames: ['result'],
      buckets: [5, 10, 30, 60, 120, 300, 600, 1200, 1800],
      registers,
    });
    this.scrapeErrors = new Counter({
      name: 'berth_metrics_scrape_errors_total',
      help: 'Metrics that could not be read during a scrape, by source',
      labelNames: ['source'],
      registers,
    });
    const self = this;
    new Gauge({
      name: 'berth_workspaces',
      help: 'Workspaces by state',
      labelNames: ['state'],
      registers,
      async collect() {
        try {
          const rows = await deps.db.workspace.groupBy({ by: ['state'], _count: { _all: true } });
          const counts = new Map(rows.map((r) => [r.state as string, r._count._all]));
          // every state is reported, zeros included, so dashboards need no absent() tricks
          for (const state of WORKSPACE_STATES) this.set({ state }, counts.get(state) ?? 0);
        } catch {
          self.scrapeErrors.inc({ source: 'database' });
        }
      },
    });
    new Gauge({
      name: 'berth_queue_jobs',
      help: 'Jobs in Berth queues, by queue and job state (waiting + delayed + prioritized is the backlog)',
      labelNames: ['queue', 'state'],
      registers,
      async collect() {
        const queues = { builds: deps.queues.builds, workspaces: deps.queues.workspaces, reports: deps.queues.reports };
        for (const [name, queue] of Object.entries(queues)) {
          try {
            const counts = await queue.getJobCounts(...QUEUE_STATES);
            for (const state of QUEUE_STATES) this.set({ queue: name, state }, counts[state] ?? 0);
          } catch {
            self.scrapeErrors.inc({ source: 'redis' });
          }
        }
      },
    });
    new Gauge({
      name: 'berth_queue_depth',
      help: 'Jobs waiting to run (waiting, delayed or prioritized) per queue',
      labelNames: ['queue'],
      registers,
      async collect() {
        const queues = { builds: deps.queues.builds, workspaces: deps.queues.workspaces, reports: deps.queues.reports };
        for (const [name, queue] of Object.entries(queues)) {
          try {
            const counts = await queue.getJobCounts('waiting', 'delayed', 'prioritized');
            this.set({ queue: name }, (counts.waiting ?? 0) + (counts.delayed ?? 0) + (counts.prioritized ?? 0));
          } catch {
            self.scrapeErrors.inc({ source: 'redis' });
          }
        }
      },
    });
  }

  /** Wraps the webhook handler: observes how long each delivery took to answer. */
  timeWebhooks(handler: Handler, path: string): Handler {
    return (req, res) => {
      if (!req.url?.startsWith(path)) return handler(req, res);
      const end = this.webhookSeconds.startTimer();
      // anyone can send this header: a made-up event must not add a series (memory) per request
      const sent = String(req.headers['x-github-event'] ?? '');
      const event = GITHUB_EVENTS.has(sent) ? sent : 'other';
      res.once('finish', () => end({ event, status: String(res.statusCode) }));
      return handler(req, res);
    };
  }

  /** GET /metrics */
  handle: Handler = async (req: IncomingMessage, res: ServerResponse) => {
    if (req.url?.split('?')[0] !== '/metrics') return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    if (!(await this.authorized(req))) {
      res.writeHead(401, { 'content-type': 'text/plain; charset=utf-8', 'www-authenticate': 'Bearer realm="berth-metrics"', 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : 'Berth\'s metrics need `Authorization: Bearer $BERTH_METRICS_TOKEN`, or sign-in as one of BERTH_ADMINS.\n');
      return true;
    }
    await this.observeFinishedBuilds();
    const body = await this.registry.metrics();
    res.writeHead(200, { 'content-type': this.registry.contentType, 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : body);
    return true;
  };

  private async authorized(req: IncomingMessage): Promise<boolean> {
    const token = this.deps.config.BERTH_METRICS_TOKEN;
    const header = req.headers.authorization ?? '';
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1];
    if (token && bearer) return safeEqual(bearer, token);
    const admins = this.deps.config.BERTH_ADMINS;
    if (!admins.length) return false;
    const user = await this.viewer(req);
    return !!user && admins.includes(user.login.toLowerCase());
  }

  /**
   * Observes builds that finished since the last scrape. Builds finished before this process
   * started are not counted: a histogram starts empty at process start, like any counter.
   */
  async observeFinishedBuilds() {
    try {
      const builds = await this.deps.db.build.findMany({
        where: { finishedAt: { gte: this.buildsSeenUntil }, startedAt: { not: null } },
        select: { id: true, state: true, startedAt: true, finishedAt: true },
        orderBy: { finishedAt: 'asc' },
        take: 5000,
      });
      for (const b of builds) {
        if (this.buildsSeenAtCursor.has(b.id)) continue;
        const seconds = Math.max(0, (b.finishedAt!.getTime() - b.startedAt!.getTime()) / 1000);
        this.buildSeconds.observe({ result: b.state }, seconds);
        if (b.finishedAt!.getTime() > this.buildsSeenUntil.getTime()) {
          this.buildsSeenUntil = b.finishedAt!;
          this.buildsSeenAtCursor = new Set();
        }
        // builds finishing in the same millisecond as the cursor are remembered by id
        this.buildsSeenAtCursor.add(b.id);
      }
    } catch {
      this.scrapeErrors.inc({ source: 'database' });
    }
  }
}
