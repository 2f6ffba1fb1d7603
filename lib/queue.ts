import { Queue, type ConnectionOptions, type JobsOptions } from 'bullmq';

/**
 * BullMQ queues shared by the app (producer) and the worker (consumer).
 * - builds:     one job per workspace build; payload names the workspace, the job reads
 *               the newest head commit when it runs, so a burst of pushes builds once.
 * - workspaces: start / stop / delete / reap-idle / reconcile.
 * - reports:    state changes to show on GitHub (check run, sticky comment); run by the app.
 * - maintenance: the idle reaper, the reconciler and idle stops, on a worker of their own: a
 *               workspace job that takes long (a slow migrate, a big build) cannot starve them.
 */
export const QUEUE = { builds: 'berth-builds', workspaces: 'berth-workspaces', reports: 'berth-reports', maintenance: 'berth-maintenance' } as const;

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

export class Queues {
  readonly builds: Queue<BuildJob>;
  readonly workspaces: Queue<WorkspaceJob>;
  readonly reports: Queue<ReportJob | CommandJob>;
  readonly maintenance: Queue<WorkspaceJob>;

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
    const producer = opts.failFast ? { ...connection, enableOfflineQueue: false, maxRetriesPerRequest: 1 } : connection;
    this.builds = new Queue(QUEUE.builds, { connection: producer, prefix, defaultJobOptions: { ...defaults, attempts: 1 } });
    this.workspaces = new Queue(QUEUE.workspaces, { connection: producer, prefix, defaultJobOptions: defaults });
    this.reports = new Queue(QUEUE.reports, { connection: producer, prefix, defaultJobOptions: { ...defaults, attempts: 5 } });
    this.maintenance = new Queue(QUEUE.maintenance, { connection: producer, prefix, defaultJobOptions: defaults });
    // Connection errors reach the callers as failed calls and BullMQ reconnects by itself; an
    // 'error' event nobody listens to would end the process instead.
    for (const queue of [this.builds, this.workspaces, this.reports, this.maintenance]) queue.on('error', () => {});
  }

  /**
   * Deduplicated per workspace while waiting: pushes in a row collapse into one job that
   * builds the newest commit. The build job drops the key when it starts, so a push
   * during a build queues the next one (and the running one notices it is superseded).
   */
  enqueueBuild(job: BuildJob) {
    return this.builds.add('build', job, { deduplication: { id: buildDedupId(job.workspaceId) } });
  }

  enqueueWorkspace(name: WorkspaceJobName, job: WorkspaceJob, opts: JobsOptions = {}) {
    return this.workspaces.add(name, job, opts);
  }

  /** the reaper, the reconciler, and stops of idle workspaces (see QUEUE.maintenance) */
  enqueueMaintenance(name: MaintenanceJobName, job: WorkspaceJob, opts: JobsOptions = {}) {
    return this.maintenance.add(name, job, opts);
  }

  /**
   * Brings a repository's warm pool to its size (berth.yml `workspace: { warm: N }`): after a
   * build of the default branch, a claim, a config change. Idempotent, so repeats are harmless.
   */
  enqueueWarm(repositoryId: bigint) {
    return this.maintenance.add('warm', { repositoryId: String(repositoryId) }, { removeOnComplete: true, removeOnFail: { count: 100 } });
  }

  enqueueReport(job: ReportJob) {
    return this.reports.add('report', job);
  }

  enqueueCommand(job: CommandJob) {
    // a command must not run twice because a retry followed a half-done attempt
    return this.reports.add('command', job, { attempts: 1 });
  }

  async close() {
    await Promise.all([this.builds.close(), this.workspaces.close(), this.reports.close(), this.maintenance.close()]);
  }
}

export const buildDedupId = (workspaceId: string) => `build:${workspaceId}`;
