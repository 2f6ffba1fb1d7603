import type { ServiceSpec } from '../../lib/repo-config.js';

/**
 * What the worker needs from a container engine. docker.ts implements it with dockerode;
 * jobs depend on this interface only, so their logic reads as steps, not API calls.
 */
export interface BuildImageOptions {
  /** directory on the host holding the build context (the repository checkout) */
  contextDir: string;
  /** Dockerfile path relative to the context */
  dockerfile: string;
  target?: string;
  args: Record<string, string>;
  /** tag to give the image, e.g. berth/<slug>/<service>:<sha12> */
  tag: string;
  labels: Record<string, string>;
  noCache: boolean;
  signal?: AbortSignal;
  /** the build is stopped and fails after this long (BERTH_BUILD_TIMEOUT); none when unset */
  timeoutMs?: number;
  /** the service being built, for messages ("build of service web …") */
  service?: string;
  /** caps for the build's containers (RUN steps), like a workspace's; 0 or unset = none */
  memoryBytes?: number;
  /** CPUs, e.g. 1.5 (BERTH_CPU_LIMIT) */
  cpus?: number;
  /** build output as it arrives (already decoded, may hold several lines) */
  onLog: (text: string) => void;
}

export interface BuiltImage {
  id: string;
  /** `berth/<slug>/<service>:<sha12>` (image-tags.ts); none when a rebuild took its tag over */
  tags: string[];
  createdAt: Date;
}

export interface ServiceRunSpec {
  name: string;
  image: string;
  /** shell command run with `sh -c` inside the container; undefined = image CMD */
  command?: string;
  env: Record<string, string>;
  port?: number;
  /** absolute path inside the container kept on the workspace disk */
  data?: string;
  /** HTTP path answered 2xx/3xx when ready */
  health?: string;
  /** true for services built from the repository: they get the checkout at /workspace */
  mountsWorkspace: boolean;
  // ---- from compose (and devcontainer.json): see ServiceSpec in lib/repo-config.ts ----
  entrypoint?: ServiceSpec['entrypoint'];
  /** exec form of the command; `command` (sh -c) wins when both are set */
  args?: string[];
  workingDir?: string;
  user?: string;
  healthcheck?: ServiceSpec['healthcheck'];
  dependsOn?: ServiceSpec['dependsOn'];
  /** named volumes of the workspace (each a Docker volume labelled like its disk) */
  volumes?: ServiceSpec['volumes'];
  /** where the checkout is mounted instead of /workspace (with mountsWorkspace) */
  checkoutMount?: string;
  /** run to completion (exit 0) before the services that depend on it, as a task, on every start */
  oneShot?: boolean;
}

/** How startServices waits for what compose's depends_on asks for. */
export interface StartOptions {
  /** longest wait for a service_healthy dependency (BERTH_HEALTH_TIMEOUT) */
  healthTimeoutMs?: number;
  /** longest run of a one-shot service (BERTH_TASK_TIMEOUT) */
  taskTimeoutMs?: number;
  /** a one-shot's output, and a line when one starts */
  onLog?: (text: string) => void;
  /** with depends_on: runs before each service starts (its dependencies are up): its migrate and seed */
  beforeStart?: (service: string) => Promise<void>;
  /**
   * without depends_on: runs before any service starts (migrate and seed), while the runtime
   * makes the containers, so only their start waits for it; when it throws nothing starts.
   * Every runtime calls it (the start relies on it for migrate and seed).
   */
  prepare?: () => Promise<void>;
}

export interface WorkspaceRunSpec {
  workspaceId: string;
  slug: string;
  services: ServiceRunSpec[];
  memoryBytes: number;
  /** CPUs the workspace's containers may use each, e.g. 1.5 (BERTH_CPU_LIMIT); 0 = no cap */
  cpus: number;
  /** processes one container may run at once (BERTH_PIDS_LIMIT); unset = the engine's default */
  pidsLimit?: number;
}

export interface TaskResult {
  exitCode: number;
  /** last lines of combined stdout/stderr */
  tail: string;
  oomKilled: boolean;
  /** it ran past its time limit and was killed */
  timedOut?: boolean;
}

export interface TaskOptions {
  /** kill the task after this long (BERTH_TASK_TIMEOUT); none when unset */
  timeoutMs?: number;
  /**
   * a task of two steps (migrate, then seed, in one container): the output line `marker` starts
   * the second; that line is not passed on, `onStart` is called, and the time limit and the
   * result's tail count from there
   */
  nextStep?: { marker: string; onStart: () => void };
}

/** Runtime.execIn: where the command runs, its time limit and its output as it arrives */
export interface ExecOptions {
  timeoutMs?: number;
  workingDir?: string;
  onLog?: (text: string) => void;
}

/** A git script against a workspace disk (Runtime.runDiskGit). */
export interface DiskGitRequest {
  /**
   * a POSIX sh script run in /workspace with git on its PATH; its arguments are `$1`…. Pass
   * anything from a payload (a sha, a branch) as an argument, never inside the script text.
   */
  script: string;
  args?: string[];
  /** a git directory on this host that Berth wrote (a clone's `.git`), mounted read-only at /src */
  sourceGitDir?: string;
  /** default 60 s; the container is killed when it is up */
  timeoutMs?: number;
}

export interface DiskGitResult {
  /** the script's exit code; -1 when it was killed at the time limit */
  exitCode: number;
  /** the last lines of stdout and stderr together */
  output: string;
  timedOut: boolean;
}

export interface ServiceEndpoint {
  service: string;
  containerId: string;
  /** IP of the container on the workspace network, reachable from the Berth host */
  host: string;
}

/**
 * A service container's state in Berth's words: `starting` (made, or being brought back by the
 * engine after it died), `crash-looping` (brought back again and again), `exited` (ended and not
 * coming back by itself), `gone` (removed meanwhile). Each runtime maps its engine's states.
 */
export type ServiceState = 'running' | 'starting' | 'crash-looping' | 'exited' | 'gone';

export interface ContainerStatus {
  service: string;
  containerId: string;
  state: ServiceState;
  exitCode?: number;
  /** it died because it ran out of memory (in this life, or before its restart policy brought it back) */
  oomKilled?: boolean;
  /** its IP on the workspace network; changes when the engine restarts it (e.g. a dockerd restart) */
  ip?: string;
  /** how often the engine's restart policy has restarted it */
  restartCount?: number;
  /** when it last stopped (ISO time), for one that is not running */
  finishedAt?: string;
}

/** A service container died on its own (the engine's event stream). */
export interface ContainerDeath {
  workspaceId: string;
  service: string;
  containerId: string;
  exitCode: number;
  oomKilled: boolean;
}

/** The `vscode` IDE: code-server from the host's install, next to a service, on its disk. */
export interface IdeSpec {
  /** the service whose image, environment and disk the IDE shares (it needs a glibc image) */
  service: string;
  /** host directory of scripts/install-code-server.sh's install (its own node + code-server) */
  codeServerDir: string;
  /** VS Code machine settings (devcontainer customizations.vscode.settings), written at each start */
  settings?: Record<string, unknown>;
  /** .vsix files in the IDE container (on the disk, /workspace/…) to install once it runs; a failure is logged, not fatal */
  extensions?: string[];
  /** the output of the extension installs */
  onLog?: (text: string) => void;
  /** aborted when the workspace is being stopped: the start gives up and removes the IDE container */
  signal?: AbortSignal;
}

/** where code-server listens inside the IDE container, on the workspace network only */
export const CODE_SERVER_PORT = 13337;

/**
 * Where a workspace's disk lives: `own` a file system of its own (a volume with a device, e.g.
 * a sized disk an operator made for it), `host` a directory on the Docker host's disk (Docker's
 * default volumes), `unknown` when the engine could not say.
 */
export type DiskPlace = 'own' | 'host' | 'unknown';

/** a Docker volume carrying this Berth's labels */
export interface WorkspaceVolume {
  name: string;
  workspaceId: string;
  slug?: string;
  /** when Docker created it (ISO time), when the engine says */
  createdAt?: string;
}

/** A rollout's new containers, started next to the old ones (Runtime.rollOut) */
export interface Rollout {
  /** where each service of the new version listens (an unchanged service: its running container) */
  endpoints: ServiceEndpoint[];
  /** after the switch: stops and removes the containers the new version replaced */
  retire(): Promise<void>;
  /** the new version failed: removes its containers, the old version keeps serving */
  abandon(): Promise<void>;
}

/** which volumes of a workspace disk a copy takes (Runtime.copyDisk) */
export type DiskPart =
  /** every volume: the checkout's (/workspace) too */
  | 'all'
  /** services' `data:` volumes and compose named volumes, never the checkout */
  | 'data';

export interface DiskCopyOptions {
  part: DiskPart;
  /** the copy is killed and fails (StepFailedError('copy')) after this long */
  timeoutMs: number;
  /** empty the target's volumes first (a reset); otherwise they are new or empty */
  replace?: boolean;
}

export interface DiskCopyResult {
  /** `reflink`: the file system shares the blocks copy-on-write (btrfs, xfs); `copy`: every byte was streamed */
  method: 'reflink' | 'copy';
  /** how many volumes were copied (0: the disk has none of that part) */
  volumes: number;
  /** bytes on the copied volumes (du) */
  bytes: number;
  durationMs: number;
}

export interface Runtime {
  /** throws when the engine cannot be reached */
  ping(): Promise<void>;
  /** builds an image, streaming output to onLog; throws StepFailedError('build', …) on failure */
  buildImage(opts: BuildImageOptions): Promise<string>;
  /** makes sure `ref` exists locally (for `image:` services); never builds */
  ensureImage(ref: string, opts?: { timeoutMs?: number }): Promise<void>;
  /** network + volumes of a workspace; `created` is true when the workspace disk is new */
  ensureDisk(spec: WorkspaceRunSpec): Promise<{ created: boolean }>;
  /**
   * runs a sh script with git against the workspace disk (/workspace), never on the host: in a
   * one-off container without network, capabilities, Berth's environment or any token, as the
   * owner of /workspace/.git, hooks and fsmonitor off, killed at the time limit. A Berth-made
   * git directory may be mounted read-only at /src to take commits from. See disk-git.ts.
   */
  runDiskGit(spec: WorkspaceRunSpec, req: DiskGitRequest): Promise<DiskGitResult>;
  /** whether `relPath` (e.g. `.git/HEAD`) exists on the workspace disk, asked of the engine, never read on the host */
  diskEntryExists(spec: WorkspaceRunSpec, relPath: string): Promise<boolean>;
  /**
   * copies the volumes of one disk onto another's (the base disk onto a new workspace's, data
   * volumes back from a base disk or a snapshot): volume by volume, as the service sees it, the
   * target's volumes created with `to`'s labels. The fastest way the engine's host offers:
   * reflinks where its file system shares blocks, else `cp -a` streaming; in a one-off container
   * with both volumes and nothing else (no network, no capabilities but file ownership), killed at
   * `timeoutMs`. Nothing may run on either disk meanwhile. Optional: without it every workspace
   * starts fresh (checkout, migrate, seed).
   */
  copyDisk?(from: WorkspaceRunSpec, to: WorkspaceRunSpec, opts: DiskCopyOptions): Promise<DiskCopyResult>;
  /** copies a directory (the checkout, with .git) into /workspace on the disk */
  populateWorkspace(spec: WorkspaceRunSpec, sourceDir: string): Promise<void>;
  /** writes files (relative paths, checked) into /workspace on the disk, through the engine, never on the host */
  writeWorkspaceFiles(spec: WorkspaceRunSpec, files: { path: string; content: string }[]): Promise<void>;
  /** runs a one-off command (migrate, seed) in a service's image with its mounts, env and network */
  runTask(spec: WorkspaceRunSpec, service: string, command: string, onLog?: (t: string) => void, opts?: TaskOptions): Promise<TaskResult>;
  /**
   * runs a command in the running container of a service, or of the IDE (`docker exec`; a string
   * with `sh -c`, a list as it is), killed at `timeoutMs`: devcontainer lifecycle commands, which
   * act on the container people work in. Optional: without it they run as one-off tasks (runTask).
   */
  execIn?(spec: WorkspaceRunSpec, target: { service: string } | { ide: true }, command: string | string[], opts?: ExecOptions): Promise<TaskResult>;
  /**
   * (re)creates and starts every service container; returns where each listens. With depends_on
   * (compose), in dependency order: waits for service_healthy ones' health checks and runs
   * one-shots to exit 0 first (StepFailedError('migrate') when one fails).
   */
  startServices(spec: WorkspaceRunSpec, opts?: StartOptions): Promise<ServiceEndpoint[]>;
  /**
   * starts the services of a new version next to the running ones, for a switch without
   * downtime; optional: without it a new version restarts the services (startServices)
   */
  rollOut?(spec: WorkspaceRunSpec): Promise<Rollout>;
  /** waits for GET http://host:port/path to answer 2xx/3xx while the container keeps running */
  waitHealthy(spec: WorkspaceRunSpec, endpoint: ServiceEndpoint, port: number, path: string, timeoutMs: number): Promise<void>;
  /**
   * (re)creates the workspace's code-server container and waits until it answers; returns
   * where it listens (CODE_SERVER_PORT). On failure the container is removed and the
   * StepFailedError carries its log tail.
   */
  startIde(spec: WorkspaceRunSpec, ide: IdeSpec, timeoutMs: number): Promise<ServiceEndpoint>;
  /** stops and removes the IDE container only (a stop that raced the IDE's start) */
  stopIde(workspaceId: string): Promise<void>;
  /** stops and removes the service containers and the IDE container, keeping volumes */
  stopServices(workspaceId: string): Promise<void>;
  /**
   * removes containers, network and volumes of a workspace; with its slug also a workspace disk
   * Berth adopted (one without its labels). `keepVolumes`: containers and network only (the
   * reconciler, for a workspace the database does not know: its disk is never Berth's to drop).
   */
  removeWorkspace(workspaceId: string, slug?: string, opts?: { keepVolumes?: boolean }): Promise<void>;
  status(workspaceId: string): Promise<ContainerStatus[]>;
  /** the last lines a container wrote (empty when it is gone) */
  containerLogTail(containerId: string): Promise<string>;
  /** whether the workspace disk is a file system of its own or a directory on the Docker host's disk (see DiskPlace) */
  workspaceDiskPlace(slug: string): Promise<DiskPlace>;
  /** every workspace id that owns a Docker object (by label) */
  listWorkspaceIds(): Promise<string[]>;
  /** the volumes (disks) this Berth made, with the workspace their label names */
  listWorkspaceVolumes(): Promise<WorkspaceVolume[]>;
  /** every workspace id with a service or IDE container that is running (or restarting) */
  runningWorkspaceIds(): Promise<string[]>;
  /** the images this Berth built (buildImage), with the build and workspace they were built for */
  listBuiltImages(): Promise<BuiltImage[]>;
  /** untags `ref`; Docker deletes the image with its last tag, and refuses while a container uses it (false) */
  removeImage(ref: string): Promise<boolean>;
  /**
   * removes the one-off task containers (migrate, seed, populate) a crashed worker may have
   * left, after waiting up to `waitMs` for those still running to finish
   */
  removeTasks(workspaceId: string, waitMs?: number): Promise<void>;
  /**
   * follows the engine's events and calls `onDeath` when a service container dies; reconnects
   * by itself when the engine restarts. Optional: a runtime without events relies on the reconciler.
   */
  watch?(onDeath: (death: ContainerDeath) => void, log?: (msg: string) => void): { close(): void };
}
