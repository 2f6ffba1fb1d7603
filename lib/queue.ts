import { Queue, type ConnectionOptions, type JobsOptions } from 'bullmq';
import { LOCAL_HOST } from './hosts/health.js';

/**
 * BullMQ queues shared by the app (producer) and the worker (consumer).
 * - builds:     one job per workspace build; payload names the workspace, the job reads
 *               the newest head commit when it runs, so a burst of pushes builds once.
 * - workspaces: start / stop / delete / reap-idle / reconcile.
 * - reports:    state changes to show on GitHub (check run, sticky comment); run by the app.
 * - maintenance: the idle reaper, the reconciler and idle stops, on a worker of their own: a
 *               workspace job that takes long (a slow migrate, a big build) cannot starve them.
 * - placement:  the first build of a workspace that has no host yet: any worker places it
 *               (lib/hosts/placement.ts), pins it and hands the build to that host's queue.
 *
 * builds, workspaces and maintenance are per host (issue 18): host `x` consumes `berth-builds.x`
 * and so on, so a workspace's jobs run only where its disk is. The implicit host `local` keeps
 * the plain names (a single-machine install sees no change). Jobs go to the queue of the
 * workspace's host (`routeBy`); one of a host that is away waits there until it is back.
 */
export const QUEUE = { builds: 'berth-builds', workspaces: 'berth-workspaces', reports: 'berth-reports', maintenance: 'berth-maintenance', placement: 'berth-placement' } as const;

/** the name of a per-host queue (`QUEUE.builds`, `QUEUE.workspaces`, `QUEUE.maintenance`) for one host */
export function hostQueueName(base: string, host: string): string {
  return host === LOCAL_HOST ? base : `${base}.${host}`;
}

/**
 * The host a workspace's jobs go to: its name, or null when it has none yet (its build is then
 * placed first; its other jobs go to `local`, the host of workspaces from before hosts).
 */
export type HostRouter = (workspaceId: string) => Promise<string | null>;

export interface BuildJob {
  workspaceId: string;
  buildId: string;
}
export type WorkspaceJobName = 'start' | 'stop' | 'delete' | 'status' | 'reap-idle' | 'reconcile' | 'base-disk' | 'reset';
export type MaintenanceJobName = 'reap-idle' | 'reconcile' | 'stop' | 'warm';
export interface WorkspaceJob {
  workspaceId?: string;
  /** warm: the repository whose warm pool to bring to its size (worker/jobs/warm-pool.ts) */
  repositoryId?: string;
  actor?: string;
  reason?: string;
  /** run only if the workspace is still in one of these states when the job runs (e.g. a wake-up: stopped) */
  onlyIf?: string[];
  /** base-disk: the default branch's build to prepare the repository's base disk from (issue 17) */
  buildId?: string;
  /** reset: back to the snapshot taken before the newest migrate instead of the base disk (`/berth reset --before-migrate`) */
  beforeMigrate?: boolean;
  /** reset: the pull request to answer on when it is done */
  issueNumber?: number;
  /** start: without migrating, once (after `/berth reset --before-migrate`, which undoes the newest migrate) */
  skipMigrate?: boolean;
  /**
   * delete: keep the disk (stopped, for the retention period) when it holds work found nowhere
   * else. Set for deletions GitHub caused (branch deleted or gone, pull request closed), not for
   * someone asking for the deletion.
   */
  keepUnsavedWork?: boolean;
  /**
   * delete: do nothing when the disk holds work found nowhere else (or Berth cannot tell), and
   * reply with what it holds on this pull request (`/berth delete` without `--force`)
   */
  refuseIfUnsaved?: { issueNumber?: number };
}
export interface ReportJob {
  workspaceId: string;
  buildId?: string;
  /** one-off message to post as a reply (slash command results) */
  reply?: { issueNumber: number; body: string };
}

/** Slash commands and check-run buttons; run by the app, which checks who asked. */
export interface CommandJob {
  installationId: number;
  repositoryId: number;
  owner: string;
  repo: string;
  sender: string;
  issueNumber?: number;
  commentId?: number;
  /** for check-run buttons: the build behind the check run, and its commit */
  buildId?: string;
  headSha?: string;
  /** when the comment was written (GitHub's created_at): `/berth approve` approves the head of then */
  commentCreatedAt?: string;
  /** `sha`: the commit named by `/berth approve <sha>` */
  commands: Array<{ verb: string; sha?: string; withSecrets?: boolean; force?: boolean; beforeMigrate?: boolean } | { unknown: string }>;
}

const defaults: JobsOptions = {
  attempts: 3,
  backoff: { type: 'exponential', delay: 1000 },
  removeOnComplete: { count: 1000 },
  removeOnFail: { count: 1000 },
};

/** the queues one host's worker consumes */
export interface HostQueues {
  builds: Queue<BuildJob>;
  workspaces: Queue<WorkspaceJob>;
  maintenance: Queue<WorkspaceJob>;
}

export class Queues {
  /** the host `local`'s queues (every workspace's before hosts; see `forHost`) */
  readonly builds: Queue<BuildJob>;
  readonly workspaces: Queue<WorkspaceJob>;
  readonly reports: Queue<ReportJob | CommandJob>;
  readonly maintenance: Queue<WorkspaceJob>;
  readonly placement: Queue<BuildJob>;
  private readonly hosts = new Map<string, HostQueues>();
  private router: HostRouter | undefined;
  private readonly producer: ConnectionOptions;

  /**
   * `connection` is what workers use too (they wait for Redis to come back). With `failFast`
   * (the web process) adding a job fails at once while Redis is away, instead of waiting: a
   * webhook must be answered before GitHub gives up (10 s), and a failed one can be redelivered.
   */
  constructor(
    readonly connection: ConnectionOptions,
    readonly prefix = 'berth',
    opts: { failFast?: boolean } = {},
  ) {
    this.producer = opts.failFast ? { ...connection, enableOfflineQueue: false, maxRetriesPerRequest: 1 } : connection;
    const local = this.forHost(LOCAL_HOST);
    this.builds = local.builds;
    this.workspaces = local.workspaces;
    this.maintenance = local.maintenance;
    this.reports = this.queue(QUEUE.reports, { ...defaults, attempts: 5 });
    this.placement = this.queue(QUEUE.placement, { ...defaults, attempts: 1 });
  }

  private queue<T>(name: string, defaultJobOptions: JobsOptions): Queue<T> {
    const queue = new Queue<T>(name, { connection: this.producer, prefix: this.prefix, defaultJobOptions });
    // Connection errors reach the callers as failed calls and BullMQ reconnects by itself; an
    // 'error' event nobody listens to would end the process instead.
    queue.on('error', () => {});
    return queue;
  }

  /** one host's builds, workspaces and maintenance queues (made on first use) */
  forHost(host: string): HostQueues {
    let queues = this.hosts.get(host);
    if (!queues) {
      queues = {
        builds: this.queue(hostQueueName(QUEUE.builds, host), { ...defaults, attempts: 1 }),
        workspaces: this.queue(hostQueueName(QUEUE.workspaces, host), defaults),
        maintenance: this.queue(hostQueueName(QUEUE.maintenance, host), defaults),
      };
      this.hosts.set(host, queues);
    }
    return queues;
  }

  /** sends each workspace's jobs to its host's queues (lib/boot.ts); without it everything is `local`'s */
  routeBy(router: HostRouter) {
    this.router = router;
  }

  private async hostOf(workspaceId: string | undefined): Promise<string | null> {
    if (!workspaceId || !this.router) return LOCAL_HOST;
    return this.router(workspaceId);
  }

  /**
   * Deduplicated per workspace while waiting: pushes in a row collapse into one job that
   * builds the newest commit. The build job drops the key when it starts, so a push
   * during a build queues the next one (and the running one notices it is superseded).
   * A workspace with no host yet is placed first (the `place` job on QUEUE.placement).
   */
  async enqueueBuild(job: BuildJob) {
    const host = await this.hostOf(job.workspaceId);
    if (host === null) return this.placement.add('place', job, { deduplication: { id: buildDedupId(job.workspaceId) } });
    return this.forHost(host).builds.add('build', job, { deduplication: { id: buildDedupId(job.workspaceId) } });
  }

  /** a build job starts: a push from now on queues a build of its own (see enqueueBuild) */
  releaseBuild(workspaceId: string, host: string) {
    return this.forHost(host).builds.removeDeduplicationKey(buildDedupId(workspaceId));
  }

  async enqueueWorkspace(name: WorkspaceJobName, job: WorkspaceJob, opts: JobsOptions = {}) {
    const host = (await this.hostOf(job.workspaceId)) ?? LOCAL_HOST;
    return this.forHost(host).workspaces.add(name, job, opts);
  }

  /** the reaper, the reconciler, and stops of idle workspaces (see QUEUE.maintenance) */
  async enqueueMaintenance(name: MaintenanceJobName, job: WorkspaceJob, opts: JobsOptions = {}) {
    const host = (await this.hostOf(job.workspaceId)) ?? LOCAL_HOST;
    return this.forHost(host).maintenance.add(name, job, opts);
  }

  /**
   * Brings a repository's warm pool to its size (berth.yml `workspace: { warm: N }`): after a
   * build of the default branch, a claim, a config change. Idempotent, so repeats are harmless.
   */
  enqueueWarm(repositoryId: bigint, opts: { delayMs?: number } = {}) {
    return this.maintenance.add('warm', { repositoryId: String(repositoryId) }, { removeOnComplete: true, removeOnFail: { count: 100 }, ...(opts.delayMs ? { delay: opts.delayMs } : {}) });
  }

  enqueueReport(job: ReportJob) {
    return this.reports.add('report', job);
  }

  enqueueCommand(job: CommandJob) {
    // a command must not run twice because a retry followed a half-done attempt
    return this.reports.add('command', job, { attempts: 1 });
  }

  async close() {
    const hosts = [...this.hosts.values()].flatMap((h) => [h.builds, h.workspaces, h.maintenance]);
    await Promise.all([...hosts, this.reports, this.placement].map((q) => q.close()));
  }
}

export const buildDedupId = (workspaceId: string) => `build:${workspaceId}`;
