/**
 * The Runtime on a Docker engine, through dockerode.
 *
 * Every object it creates carries `berth.workspace` and `berth.slug` labels, so the reconciler
 * and `removeWorkspace` find them by label, never by guessing names. Names are still
 * deterministic (`berth-<slug>-…`) so an operator running `docker ps` can tell what is what.
 *
 * Split by role: docker-spec.ts says what each container, volume and build is (pure, unit-tested
 * without an engine), docker-events.ts follows deaths, docker-errors.ts maps the engine's errors,
 * docker-access.ts is the web's door (WorkspaceAccess); this class does the steps on the engine.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Dockerode from 'dockerode';
import tarStream from 'tar-stream';
import { formatDuration } from '../../lib/config.js';
import { StepFailedError } from '../../lib/errors.js';
import { packBuildContext, packDirectory } from './context.js';
import { copySources } from './dockerfile-sources.js';
import { diskEntryExists, runDiskGit, type DiskGitTarget } from './disk-git.js';
import { copyVolumes, type VolumePair } from './disk-copy.js';
import { ensureToolsImage } from './tools-image.js';
import { LogTail, demuxBuffer, textSink } from './logs.js';
import { execInContainer } from './exec.js';
import { CODE_SERVER_PORT } from './types.js';
import {
  CRASH_LOOP_RESTARTS,
  LABELS,
  WORKSPACE_DIR,
  buildQuery,
  commandOf,
  configHash,
  containerConfig,
  dependencyOrder,
  dockerNames,
  findService,
  healthConfig,
  labelFilter,
  labelsOf,
  serviceState,
  shellCommand,
  startOrder,
  workspaceMount,
  type Role,
} from './docker-spec.js';
import { abortError, builtByBerth, dockerReason, ignoreNotFound, statusOf } from './docker-errors.js';
import { watchDeaths, type DockerEvent } from './docker-events.js';

// where other modules have always found them
export { LABELS, WORKSPACE_CAPABILITIES, dockerNames } from './docker-spec.js';
import type {
  BuildImageOptions,
  BuiltImage,
  ContainerDeath,
  ContainerStatus,
  DiskCopyOptions,
  DiskCopyResult,
  DiskGitRequest,
  DiskPart,
  ExecOptions,
  DiskGitResult,
  DiskPlace,
  IdeSpec,
  Rollout,
  Runtime,
  ServiceEndpoint,
  ServiceRunSpec,
  StartOptions,
  TaskOptions,
  TaskResult,
  WorkspaceRunSpec,
  WorkspaceVolume,
} from './types.js';

/** where the IDE container sees the code-server install (read-only) and keeps its state */
const IDE_INSTALL_DIR = '/opt/berth-ide';
const IDE_HOME = '/var/lib/berth-ide';
/** VS Code's first screen is the repository, not its walkthrough; users may change these. */
const IDE_SETTINGS = { 'workbench.startupEditor': 'none', 'security.workspace.trust.enabled': false, 'telemetry.telemetryLevel': 'off' };

const BUILD_TAIL_LINES = 30;
const TASK_TAIL_LINES = 20;
const FAILURE_TAIL_LINES = 30;
/** Long enough for a database to flush, short enough that a restart feels prompt. */
const STOP_TIMEOUT_S = 5;
const HEALTH_TRY_TIMEOUT_MS = 2_000;
// Short: an app usually answers within a few hundred ms, and every interval waited is added to
// the start (half of it on average). A refused connection costs a probe next to nothing.
const HEALTH_INTERVAL_MS = 25;
/** how long a task killed for its time limit gets to disappear before Berth gives up waiting */
const TASK_KILL_GRACE_MS = 15_000;
interface BuildEvent {
  stream?: string;
  status?: string;
  id?: string;
  progress?: string;
  error?: string;
  errorDetail?: { message?: string };
  aux?: { ID?: string };
}

export class DockerRuntime implements Runtime {
  /** service containers seen dying right after an `oom` event (see watch) */
  private readonly oomDeaths = new Map<string, number>();

  constructor(
    private readonly docker: Dockerode = new Dockerode(),
    private readonly instance = 'berth',
    /** stopGraceMs: SIGTERM → SIGKILL of a stopping container (BERTH_STOP_GRACE) */
    private readonly opts: { stopGraceMs?: number } = {},
  ) {}

  private labelsOf(spec: WorkspaceRunSpec, service?: string, role?: Role): Record<string, string> {
    return { ...labelsOf(spec, service, role), [LABELS.instance]: this.instance };
  }

  async ping(): Promise<void> {
    try {
      await this.docker.ping();
    } catch (err) {
      throw new Error(`Docker engine is not reachable at ${this.engineAddress()}: ${dockerReason(err)}`);
    }
  }

  private engineAddress(): string {
    const modem = this.docker.modem as { socketPath?: unknown; host?: string; port?: number };
    // dockerode 5 keeps a resolver function as socketPath until the first request
    if (typeof modem.socketPath === 'string') return modem.socketPath;
    if (modem.host) return `${modem.host}:${modem.port ?? ''}`;
    return process.env.DOCKER_HOST ?? '/var/run/docker.sock';
  }

  // --- images ---------------------------------------------------------------------------------

  async buildImage(opts: BuildImageOptions): Promise<string> {
    if (opts.signal?.aborted) throw abortError();
    await assertDockerfile(opts.contextDir, opts.dockerfile);
    await this.refuseForeignCopySources(opts);
    const tail = new LogTail(BUILD_TAIL_LINES);
    const log = (text: string) => {
      tail.push(text);
      opts.onLog(text);
    };
    // Our own controller lets a broken context stream cancel the upload too.
    const internal = new AbortController();
    const timeout = opts.timeoutMs ? AbortSignal.timeout(opts.timeoutMs) : undefined;
    const signal = AbortSignal.any([internal.signal, ...(opts.signal ? [opts.signal] : []), ...(timeout ? [timeout] : [])]);
    const context = packBuildContext(opts.contextDir, opts.dockerfile);
    let contextError: Error | undefined;
    context.on('error', (err: Error) => {
      contextError = err;
      internal.abort(err);
    });
    try {
      // the instance label: image retention only ever touches this Berth's images
      const query = buildQuery({ ...opts, labels: { ...opts.labels, [LABELS.instance]: this.instance } });
      const stream = await this.docker.buildImage(context, { ...query, abortSignal: signal } as object);
      const id = (await this.followBuild(stream, log, tail, signal)) ?? (await this.docker.getImage(opts.tag).inspect()).Id;
      await this.refuseForeignBase(id, opts.tag);
      return id;
    } catch (err) {
      if (opts.signal?.aborted) throw abortError();
      if (timeout?.aborted) {
        // Dropping the connection cancels the build in the daemon (and kills its RUN container).
        throw new StepFailedError(
          'build',
          `build of ${opts.service ? `service ${opts.service}` : opts.tag} did not finish within ${formatDuration(opts.timeoutMs!)} (BERTH_BUILD_TIMEOUT), so Berth stopped it: make the build faster, or ask the operator to raise the limit`,
          tail.toString(),
        );
      }
      if (contextError) {
        throw new StepFailedError('build', `could not read the build context: ${contextError.message}`, tail.toString());
      }
      // The daemon refused before streaming (bad target, Dockerfile syntax): the user's to fix.
      // Anything else (engine unreachable, connection dropped) is ours and propagates as is.
      if (statusOf(err) === undefined) throw err;
      throw new StepFailedError('build', `docker build failed: ${dockerReason(err)}`, tail.toString());
    }
  }

  /**
   * A Dockerfile's FROM can name another workspace's build (`berth/<slug>/…:<commit>`, or its
   * image ID, however spelled: ARGs, digests), which holds that repository's code. That image is
   * then among the new image's ancestors: the build is refused and its image removed. Only the
   * branch's own builds (the tag's `berth/<slug>/`) may be built on. Not caught here:
   * `COPY --from=<image>` (files, not ancestry); builds share the engine's image store.
   */
  /** `COPY --from=<image>` of another workspace's build: the same rule as for FROM, before building. */
  private async refuseForeignCopySources(opts: BuildImageOptions): Promise<void> {
    const own = /^berth\/[^/]+\//.exec(opts.tag)?.[0];
    // Only what the builder will read: a Dockerfile inside the context (a link out of it fails
    // the build anyway), of a sane size.
    const root = await fs.realpath(opts.contextDir);
    const file = await fs.realpath(path.resolve(opts.contextDir, opts.dockerfile)).catch(() => '');
    if (!file.startsWith(`${root}${path.sep}`) || (await fs.stat(file)).size > 1024 ** 2) return;
    const text = await fs.readFile(file, 'utf8');
    for (const source of copySources(text, opts.args)) {
      if (own && source.toLowerCase().startsWith(own)) continue;
      let foreign = /^berth\//i.test(source);
      if (!foreign && /^(sha256:)?[0-9a-f]{12,64}$/i.test(source)) {
        const info = await ignoreNotFound(this.docker.getImage(source).inspect());
        const tags = (info?.RepoTags ?? []).filter((t) => t !== '<none>:<none>');
        foreign = info?.Config?.Labels?.[LABELS.instance] !== undefined && !(own && tags.some((t) => t.startsWith(own)));
      }
      if (foreign) {
        throw new StepFailedError('build', `the Dockerfile copies from ${source}, an image Berth built for another workspace; copy from a build stage or an image from a registry`);
      }
    }
  }

  private async refuseForeignBase(id: string, tag: string): Promise<void> {
    const own = /^berth\/[^/]+\//.exec(tag)?.[0];
    const history = (await this.docker.getImage(id).history()) as Array<{ Id?: string }>;
    for (const entry of history) {
      if (!entry.Id || entry.Id === id || !entry.Id.startsWith('sha256:')) continue;
      const info = await ignoreNotFound(this.docker.getImage(entry.Id).inspect());
      if (info?.Config?.Labels?.[LABELS.instance] === undefined) continue;
      const tags = (info.RepoTags ?? []).filter((t) => t !== '<none>:<none>');
      // Untagged: a step of a build (each build label is a step; only the last is tagged), or a
      // build retention already untagged; a workspace's image is reachable by its tag or ID.
      if (tags.length === 0) continue;
      // One image may carry several workspaces' tags (same Dockerfile, shared layer cache): its
      // content is then also the branch's own build, nothing it could not make itself.
      if (own && tags.some((t) => t.startsWith(own))) continue;
      await ignoreNotFound(this.docker.getImage(tag).remove()).catch(() => undefined);
      throw new StepFailedError(
        'build',
        `the Dockerfile builds on ${tags[0]}, an image Berth built for another workspace; build FROM an image from a registry (or one the operator provides)`,
      );
    }
  }

  private followBuild(
    stream: NodeJS.ReadableStream,
    log: (text: string) => void,
    tail: LogTail,
    signal: AbortSignal,
  ): Promise<string | undefined> {
    return new Promise((resolve, reject) => {
      let imageId: string | undefined;
      let failure: string | undefined;
      const onAbort = () => {
        (stream as NodeJS.ReadableStream & { destroy(): void }).destroy();
        reject(abortError());
      };
      signal.addEventListener('abort', onAbort, { once: true });
      const onEvent = (event: BuildEvent) => {
        if (event.aux?.ID) imageId = event.aux.ID;
        const text = buildEventText(event);
        if (text) log(text);
        if (event.error || event.errorDetail) failure = event.errorDetail?.message ?? event.error;
      };
      const onDone = (err: Error | null) => {
        signal.removeEventListener('abort', onAbort);
        if (err) return reject(err);
        if (failure) return reject(new StepFailedError('build', `docker build failed: ${failure}`, tail.toString()));
        resolve(imageId);
      };
      this.docker.modem.followProgress(stream, onDone, onEvent);
    });
  }

  async ensureImage(ref: string, opts: { timeoutMs?: number } = {}): Promise<void> {
    if (/^berth\//i.test(ref)) throw builtByBerth(ref);
    try {
      // A malformed reference fails already at inspect; it cannot be pulled either.
      const existing = await ignoreNotFound(this.docker.getImage(ref).inspect());
      // An image ID (or a tag an operator gave one) can name another workspace's build too.
      if (existing?.Config?.Labels?.[LABELS.instance] !== undefined) throw builtByBerth(ref);
      if (existing) return;
      await this.pull(ref, opts.timeoutMs);
    } catch (err) {
      if (err instanceof StepFailedError) throw err;
      if (opts.timeoutMs && (err as Error)?.name === 'TimeoutError') {
        throw new StepFailedError(
          'build',
          `pulling image ${ref} did not finish within ${formatDuration(opts.timeoutMs)} (BERTH_PULL_TIMEOUT), so Berth stopped it: use a smaller image, or ask the operator to pull it on the Docker host beforehand`,
        );
      }
      throw new StepFailedError(
        'build',
        `image ${ref} is not available on this Docker host and could not be pulled: ${dockerReason(err)}`,
      );
    }
  }

  private async pull(ref: string, timeoutMs?: number): Promise<void> {
    const signal = timeoutMs ? AbortSignal.timeout(timeoutMs) : undefined;
    const stream = await this.docker.pull(ref, signal ? { abortSignal: signal } : {});
    await new Promise<void>((resolve, reject) => {
      signal?.addEventListener('abort', () => {
        (stream as NodeJS.ReadableStream & { destroy(): void }).destroy();
        reject(signal.reason);
      }, { once: true });
      this.docker.modem.followProgress(stream, (err: Error | null, events: BuildEvent[]) => {
        if (err) return reject(err);
        const failed = (events ?? []).find((e) => e.error || e.errorDetail);
        if (failed) return reject(new Error(failed.errorDetail?.message ?? failed.error));
        resolve();
      });
    });
  }

  // --- disk -----------------------------------------------------------------------------------

  async ensureDisk(spec: WorkspaceRunSpec): Promise<{ created: boolean }> {
    // A start asks before each step (populate, every task, the services): the network and
    // volumes it just made or found are taken as there for a few seconds.
    const key = diskKey(spec);
    const checked = this.disksChecked.get(key);
    if (checked !== undefined && Date.now() - checked < DISK_CHECK_REUSE_MS) return { created: false };
    // independent of each other: one round trip of the engine instead of one per object
    const [, created] = await Promise.all([
      this.ensureNetwork(spec),
      this.ensureVolume(spec, dockerNames.workspaceVolume(spec.slug)),
      ...spec.services.flatMap((service) => [
        ...(service.data ? [this.dataVolumeOf(spec, service).then((name) => this.ensureVolume(spec, name, service.name))] : []),
        // compose's named volumes: on the workspace's disk like data volumes (stop keeps, delete removes)
        ...(service.volumes ?? []).map((v) => this.ensureVolume(spec, dockerNames.namedVolume(spec.slug, v.name))),
      ]),
    ]);
    this.disksChecked.set(key, Date.now());
    return { created: Boolean(created) };
  }

  /** diskKey → when ensureDisk last made or found that disk (forgotten when the workspace is removed) */
  private disksChecked = new Map<string, number>();

  /**
   * The data volume of a service: under its old name when this workspace has one there (made
   * before names used `_`; its label says whose it is, so no other workspace's is taken), so an
   * upgrade loses no disk.
   */
  private async dataVolumeOf(spec: WorkspaceRunSpec, service: ServiceRunSpec): Promise<string> {
    const legacy = dockerNames.legacyDataVolume(spec.slug, service.name);
    const info = await ignoreNotFound(this.docker.getVolume(legacy).inspect());
    const labels = info?.Labels ?? {};
    if (labels[LABELS.workspace] === spec.workspaceId && labels[LABELS.service] === service.name) return legacy;
    return dockerNames.dataVolume(spec.slug, service.name);
  }

  private async ensureNetwork(spec: WorkspaceRunSpec): Promise<void> {
    const name = dockerNames.network(spec.slug);
    if (await ignoreNotFound(this.docker.getNetwork(name).inspect())) return;
    try {
      // CheckDuplicate: Docker otherwise happily creates two networks with one name.
      await this.docker.createNetwork({ Name: name, Driver: 'bridge', CheckDuplicate: true, Labels: this.labelsOf(spec) });
    } catch (err) {
      if (statusOf(err) !== 409) throw err; // a concurrent start created it first
    }
  }

  /** Returns true when the volume did not exist before. */
  private async ensureVolume(spec: WorkspaceRunSpec, name: string, service?: string): Promise<boolean> {
    const existing = await ignoreNotFound(this.docker.getVolume(name).inspect());
    const owner = existing?.Labels?.[LABELS.workspace];
    if (existing && (!owner || owner === spec.workspaceId)) return false;
    if (existing) {
      // Same name, someone else's disk: never hand it to this workspace.
      const instance = existing.Labels?.[LABELS.instance];
      if (instance !== this.instance) {
        throw new StepFailedError('start', `the Docker volume ${name} belongs to another Berth (${instance ?? 'unlabelled'}) on this Docker engine; remove it, or give each Berth its own engine`);
      }
      // Another workspace of this Berth with the same slug: slugs are unique in a database and a
      // deleted workspace keeps its row (and its slug), so its owner is one this database does
      // not know (a new DATABASE_URL, a restored backup, a fresh embedded database). Its disk is
      // not this workspace's to take or to replace; the reconciler reports it.
      throw new StepFailedError(
        'start',
        `the Docker volume ${name} holds the disk of workspace ${owner}, which this Berth's database does not know ` +
          `(a different DATABASE_URL, a restored backup or a new embedded database?). Berth never replaces a disk it has no record of deleting: ` +
          `point Berth at the database that knows it, or remove the volume yourself (docker volume rm ${name}), then push again`,
      );
    }
    await this.docker.createVolume({ Name: name, Labels: this.labelsOf(spec, service) });
    return true;
  }

  async copyDisk(from: WorkspaceRunSpec, to: WorkspaceRunSpec, opts: DiskCopyOptions): Promise<DiskCopyResult> {
    const pairs: VolumePair[] = [];
    for (const pair of await this.volumePairs(from, to, opts.part)) {
      // a volume the source never had (a service added since) has nothing to give
      if (!(await ignoreNotFound(this.docker.getVolume(pair.from).inspect()))) continue;
      await this.ensureVolume(to, pair.to, pair.service);
      pairs.push(pair);
    }
    const target = { name: `berth-${to.slug}.copy-${suffix()}`, labels: this.labelsOf(to, undefined, 'task'), toolsImage: await ensureToolsImage(this.docker) };
    return copyVolumes(this.docker, target, pairs, opts);
  }

  /** each volume of `to`'s disk (of `part`) with the same volume of `from`'s: by service, or by compose volume name */
  private async volumePairs(from: WorkspaceRunSpec, to: WorkspaceRunSpec, part: DiskPart): Promise<Array<VolumePair & { service?: string }>> {
    const pairs: Array<VolumePair & { service?: string }> = [];
    if (part === 'all' && to.services.some((s) => s.mountsWorkspace)) {
      pairs.push({ from: dockerNames.workspaceVolume(from.slug), to: dockerNames.workspaceVolume(to.slug) });
    }
    const named = new Set<string>();
    for (const service of to.services) {
      const source = from.services.find((s) => s.name === service.name);
      if (service.data && source?.data) pairs.push({ from: await this.dataVolumeOf(from, source), to: await this.dataVolumeOf(to, service), service: service.name });
      for (const v of service.volumes ?? []) {
        if (named.has(v.name)) continue;
        named.add(v.name);
        pairs.push({ from: dockerNames.namedVolume(from.slug, v.name), to: dockerNames.namedVolume(to.slug, v.name) });
      }
    }
    return pairs;
  }

  async runDiskGit(spec: WorkspaceRunSpec, req: DiskGitRequest): Promise<DiskGitResult> {
    await this.ensureDisk(spec);
    return runDiskGit(this.docker, await this.diskGitTarget(spec), req);
  }

  async diskEntryExists(spec: WorkspaceRunSpec, relPath: string): Promise<boolean> {
    if (!(await ignoreNotFound(this.docker.getVolume(dockerNames.workspaceVolume(spec.slug)).inspect()))) return false;
    return diskEntryExists(this.docker, await this.diskGitTarget(spec), relPath);
  }

  private async diskGitTarget(spec: WorkspaceRunSpec): Promise<DiskGitTarget> {
    return {
      volume: dockerNames.workspaceVolume(spec.slug),
      name: `${dockerNames.workspaceVolume(spec.slug)}-git-${suffix()}`,
      // a task: removeTasks clears one a dead worker left behind
      labels: this.labelsOf(spec, undefined, 'task'),
      toolsImage: await ensureToolsImage(this.docker),
    };
  }

  /**
   * A `local` volume with a file system type (ext4 on a device, tmpfs) is a disk of its own;
   * one without (Docker's default) or a bind (`type: none`) is a directory on the host's disk,
   * so running out of space there means the host is full. Other drivers keep their own storage.
   */
  async workspaceDiskPlace(slug: string): Promise<DiskPlace> {
    try {
      const info = await ignoreNotFound(this.docker.getVolume(dockerNames.workspaceVolume(slug)).inspect());
      if (!info) return 'unknown';
      if (info.Driver !== 'local') return 'own';
      const type = (info.Options as Record<string, string> | null)?.type;
      return type && type !== 'none' ? 'own' : 'host';
    } catch {
      return 'unknown'; // the engine is away: the reason says less, the failure is not hidden
    }
  }

  async populateWorkspace(spec: WorkspaceRunSpec, sourceDir: string): Promise<void> {
    await this.ensureDisk(spec);
    const service = spec.services.find((s) => s.mountsWorkspace) ?? spec.services[0];
    if (!service) throw new Error(`workspace ${spec.slug} has no service image to mount its disk with`);
    // Never started: the daemon mounts a created container's volumes for archive calls,
    // so the copy needs no shell, no running process and no network.
    const container = await this.docker.createContainer({
      name: `${dockerNames.container(spec.slug, service.name)}-populate-${suffix()}`,
      Image: service.image,
      Cmd: ['true'],
      Labels: this.labelsOf(spec, service.name, 'task'),
      HostConfig: { NetworkMode: 'none', Mounts: [workspaceMount(spec)] },
    });
    try {
      await container.putArchive(packDirectory(sourceDir), { path: WORKSPACE_DIR });
    } finally {
      await container.remove({ force: true }).catch(() => undefined);
    }
  }

  /**
   * Writes files (variables of the kind "file", issue 16) into /workspace like populateWorkspace:
   * through the engine into a created, never started container, so nothing on the host follows
   * a link the workspace made; the engine keeps every path inside the container. Paths are
   * relative and were checked (lib/variables/layers.ts badFilePath); only files go into the
   * archive, so the engine creates missing folders and leaves existing ones as they are.
   */
  async writeWorkspaceFiles(spec: WorkspaceRunSpec, files: { path: string; content: string }[]): Promise<void> {
    if (files.length === 0) return;
    const service = spec.services.find((s) => s.mountsWorkspace);
    if (!service) throw new StepFailedError('files', `workspace ${spec.slug} has no service with the checkout at /workspace to write variable files into`);
    const pack = tarStream.pack();
    for (const f of files) {
      if (f.path.startsWith('/') || f.path.split('/').includes('..')) throw new StepFailedError('files', `${f.path}: a file must stay inside /workspace`);
      pack.entry({ name: f.path, mode: 0o644, uid: 0, gid: 0, mtime: new Date() }, f.content);
    }
    pack.finalize();
    const container = await this.docker.createContainer({
      name: `${dockerNames.container(spec.slug, service.name)}-files-${suffix()}`,
      Image: service.image,
      Cmd: ['true'],
      Labels: this.labelsOf(spec, service.name, 'task'),
      HostConfig: { NetworkMode: 'none', Mounts: [workspaceMount(spec)] },
    });
    try {
      await container.putArchive(pack, { path: WORKSPACE_DIR });
    } finally {
      await container.remove({ force: true }).catch(() => undefined);
    }
  }

  // --- tasks and services ---------------------------------------------------------------------

  async runTask(
    spec: WorkspaceRunSpec,
    serviceName: string,
    command: string,
    onLog?: (t: string) => void,
    opts: TaskOptions = {},
  ): Promise<TaskResult> {
    const service = findService(spec, serviceName);
    await this.ensureDisk(spec);
    const container = await this.docker.createContainer({
      ...containerConfig(spec, service, 'task', this.instance, service.data ? await this.dataVolumeOf(spec, service) : undefined),
      name: `${dockerNames.container(spec.slug, service.name)}.task-${suffix()}`,
      Cmd: shellCommand(command),
    });
    return this.runToCompletion(container, onLog, opts);
  }

  /** Starts a created task container, follows its output, kills it at the time limit, removes it. */
  private async runToCompletion(container: Dockerode.Container, onLog?: (t: string) => void, opts: TaskOptions = {}): Promise<TaskResult> {
    let timedOut = false;
    let finishedCleanly = false;
    let timer: NodeJS.Timeout | undefined;
    try {
      await container.start();
      let tail = new LogTail(TASK_TAIL_LINES);
      let armTimer: (() => void) | undefined;
      const deliver = (text: string) => {
        tail.push(text);
        onLog?.(text);
      };
      // a task of two steps: the tail and the time limit are the second step's from its marker on
      const steps = opts.nextStep
        ? lineSwitch(opts.nextStep.marker, deliver, () => {
            tail = new LogTail(TASK_TAIL_LINES);
            armTimer?.();
            opts.nextStep!.onStart();
          })
        : null;
      const finished = (async () => {
        const push = steps ? steps.push : deliver;
        let heard = false;
        await this.followLogs(container, (text) => {
          heard = true;
          push(text);
        });
        const code = ((await container.wait()) as { StatusCode: number }).StatusCode;
        // A task that exits before `logs --follow` attaches can meet a log file the engine has not
        // written yet (the stream then ends empty); once it has stopped, the log is complete.
        if (!heard) {
          const again = demuxBuffer((await container.logs({ follow: false, stdout: true, stderr: true })) as unknown as Buffer);
          if (again) push(again);
        }
        steps?.flush();
        return code;
      })();
      let exitCode: number;
      if (opts.timeoutMs) {
        // Past its limit the task is killed; its log stream then ends and `wait` returns. The
        // grace after the kill bounds a kill the engine never carries out: remove() below forces it.
        const expired = new Promise<number>((resolve) => {
          armTimer = () => {
            if (timedOut) return;
            clearTimeout(timer);
            timer = setTimeout(() => {
              timedOut = true;
              void container.kill().catch(() => undefined);
              timer = setTimeout(() => resolve(-1), TASK_KILL_GRACE_MS);
            }, opts.timeoutMs);
          };
          armTimer();
        });
        exitCode = await Promise.race([finished, expired]);
      } else {
        exitCode = await finished;
      }
      // exit 0 was no OOM kill: one round trip of the engine less on every migrate and seed
      const info = exitCode === 0 ? null : await ignoreNotFound(container.inspect());
      finishedCleanly = exitCode === 0 && !timedOut;
      return { exitCode, tail: tail.toString(), oomKilled: !timedOut && Boolean(info?.State.OOMKilled), ...(timedOut ? { timedOut } : {}) };
    } finally {
      clearTimeout(timer);
      // A task that ended by itself is removed while the start goes on (its name is its own, and
      // a leftover is cleared by the next start's removeTasks); one that was killed or failed
      // is gone before the caller reports it.
      const removed = container.remove({ force: true }).catch(() => undefined);
      if (!finishedCleanly) await removed;
    }
  }

  async execIn(spec: WorkspaceRunSpec, target: { service: string } | { ide: true }, command: string | string[], opts: ExecOptions = {}): Promise<TaskResult> {
    // by label, not by name: whatever the container of the service is called now, the running one
    const label = [`${LABELS.workspace}=${spec.workspaceId}`, ...('ide' in target ? [`${LABELS.role}=ide`] : [`${LABELS.role}=service`, `${LABELS.service}=${target.service}`])];
    // the workspace's IDE, not a person's copy of it (app/ide/person-ide.ts labels those berth.person)
    const found = (await this.docker.listContainers({ filters: { label, status: ['running'] } })).find((c) => !c.Labels?.['berth.person']);
    if (!found) throw new StepFailedError('exec', `${'ide' in target ? 'the IDE' : `service ${target.service}`} of workspace ${spec.slug} is not running`);
    const container = this.docker.getContainer(found.Id);
    try {
      return await execInContainer(this.docker, container, command, opts);
    } catch (err) {
      // 409: it died meanwhile (a command or entrypoint that exits): say so, with its last words
      if (statusOf(err) !== 409) throw err;
      const what = 'ide' in target ? 'the IDE' : `service ${target.service}`;
      throw new StepFailedError('exec', `${what} stopped running, so Berth could not run ${typeof command === 'string' ? command : JSON.stringify(command)} in it`, await this.logTail(container).catch(() => ''));
    }
  }

  /** Resolves once the container's output ends, i.e. when it has stopped. */
  private async followLogs(container: Dockerode.Container, onText: (text: string) => void): Promise<void> {
    // `logs --follow` replays from the start, so nothing written before we attach is lost.
    const stream = await container.logs({ follow: true, stdout: true, stderr: true });
    const sink = textSink(onText);
    this.docker.modem.demuxStream(stream, sink, sink);
    await new Promise<void>((resolve) => {
      stream.on('end', resolve);
      stream.on('close', resolve);
      stream.on('error', () => resolve());
    });
  }

  async startServices(spec: WorkspaceRunSpec, opts: StartOptions = {}): Promise<ServiceEndpoint[]> {
    await Promise.all([this.ensureDisk(spec), this.stopServices(spec.workspaceId)]);
    if (spec.services.some((s) => s.dependsOn || s.oneShot)) return this.startByDependencies(spec, opts);
    // The containers are made while `prepare` (migrate, seed) runs: only their start waits for it.
    const creating = Promise.all(startOrder(spec.services).map((service) => this.createService(spec, service).then((container) => ({ service, container }))));
    creating.catch(() => {}); // awaited below; a failed prepare must not leave it unhandled
    try {
      await opts.prepare?.();
    } catch (err) {
      await creating.then((made) => Promise.all(made.map((m) => ignoreNotFound(m.container.remove({ force: true })))), () => {});
      throw err;
    }
    const endpoints: ServiceEndpoint[] = [];
    // `image:` services (databases, caches) first, so the app finds them when it boots.
    for (const { service, container } of await creating) endpoints.push(await this.startCreated(spec, service, container));
    return endpoints;
  }

  /**
   * compose's depends_on: services in dependency order (file order among equals); before a
   * service starts, its service_healthy dependencies pass their health check and its
   * service_completed_successfully ones (one-shots, e.g. a migration) have exited 0.
   */
  private async startByDependencies(spec: WorkspaceRunSpec, opts: StartOptions): Promise<ServiceEndpoint[]> {
    const endpoints = new Map<string, ServiceEndpoint>();
    const healthy = new Set<string>();
    for (const service of dependencyOrder(spec.services)) {
      for (const [dep, condition] of Object.entries(service.dependsOn ?? {})) {
        const endpoint = endpoints.get(dep);
        if (condition !== 'service_healthy' || healthy.has(dep) || !endpoint) continue;
        opts.onLog?.(`==> waiting for ${dep} to be healthy (${service.name} depends on it)\n`);
        await this.waitContainerHealthy(spec, endpoint, opts.healthTimeoutMs ?? 120_000);
        healthy.add(dep);
      }
      await opts.beforeStart?.(service.name);
      if (service.oneShot) await this.runOneShot(spec, service, opts);
      else endpoints.set(service.name, await this.startService(spec, service));
    }
    return [...endpoints.values()];
  }

  /**
   * A new commit without downtime: starts the services of `spec` next to the running ones (new
   * containers under a generation suffix, on the same network and alias), keeps running a
   * service whose container would be the same (an unchanged `image:` database), and leaves the
   * switch to the caller: `retire()` then stops the replaced containers, `abandon()` removes the
   * new ones and leaves the old version serving. A changed service with a data volume cannot run
   * twice on its data: its old container stops before the new one starts.
   */
  async rollOut(spec: WorkspaceRunSpec): Promise<Rollout> {
    await this.ensureDisk(spec);
    const running = await this.listContainers(spec.workspaceId, 'service');
    const endpoints: ServiceEndpoint[] = [];
    const replaced: string[] = [];
    const started: string[] = [];
    const abandon = async () => void (await Promise.all(started.map((id) => this.stopAndRemove(id))));
    try {
      for (const service of startOrder(spec.services)) {
        const old = running.filter((c) => c.Labels[LABELS.service] === service.name);
        const hash = configHash(await this.serviceOptions(spec, service));
        const same = old.find((c) => c.State === 'running' && c.Labels[LABELS.config] === hash);
        if (same) {
          const host = same.NetworkSettings?.Networks?.[dockerNames.network(spec.slug)]?.IPAddress ?? '';
          endpoints.push({ service: service.name, containerId: same.Id, host });
          replaced.push(...old.filter((c) => c !== same).map((c) => c.Id));
          continue;
        }
        if (service.data) await Promise.all(old.map((c) => this.stopAndRemove(c.Id)));
        else replaced.push(...old.map((c) => c.Id));
        const endpoint = await this.startService(spec, service, `${dockerNames.container(spec.slug, service.name)}.${suffix()}`);
        started.push(endpoint.containerId);
        endpoints.push(endpoint);
      }
    } catch (err) {
      await abandon().catch(() => {});
      throw err;
    }
    // services the new commit no longer has go with the old version
    const names = new Set(spec.services.map((s) => s.name));
    replaced.push(...running.filter((c) => !names.has(c.Labels[LABELS.service] ?? '')).map((c) => c.Id));
    return { endpoints, retire: async () => void (await Promise.all(replaced.map((id) => this.stopAndRemove(id)))), abandon };
  }

  /** what startService creates a service's container with (for its configuration hash) */
  private async serviceOptions(spec: WorkspaceRunSpec, service: ServiceRunSpec): Promise<Dockerode.ContainerCreateOptions> {
    return {
      ...containerConfig(spec, service, 'service', this.instance, service.data ? await this.dataVolumeOf(spec, service) : undefined),
      ...commandOf(service),
      ...(service.healthcheck ? { Healthcheck: healthConfig(service.healthcheck) } : {}),
    };
  }

  /** A compose one-shot (a migration service): runs as a task, to exit 0, before its dependents. */
  private async runOneShot(spec: WorkspaceRunSpec, service: ServiceRunSpec, opts: StartOptions): Promise<void> {
    opts.onLog?.(`==> running ${service.name} to completion (one-shot: its dependents wait for it to exit 0)\n`);
    const container = await this.docker.createContainer({
      ...containerConfig(spec, service, 'task', this.instance, service.data ? await this.dataVolumeOf(spec, service) : undefined),
      name: `${dockerNames.container(spec.slug, service.name)}.task-${suffix()}`,
      ...commandOf(service),
    });
    const result = await this.runToCompletion(container, opts.onLog, { timeoutMs: opts.taskTimeoutMs });
    if (result.timedOut) {
      throw new StepFailedError('migrate', `one-shot service ${service.name} did not finish within ${formatDuration(opts.taskTimeoutMs!)} (BERTH_TASK_TIMEOUT), so Berth stopped it: a service others wait for with service_completed_successfully must exit`, result.tail);
    }
    if (result.exitCode !== 0) {
      const why = result.oomKilled ? 'was killed: out of memory' : `exited with code ${result.exitCode}`;
      throw new StepFailedError('migrate', `one-shot service ${service.name} ${why}; the services that depend on it (service_completed_successfully) were not started`, result.tail);
    }
  }

  /** Waits for the engine's health status of a container (compose `healthcheck`) to be healthy. */
  private async waitContainerHealthy(spec: WorkspaceRunSpec, endpoint: ServiceEndpoint, timeoutMs: number): Promise<void> {
    const container = this.docker.getContainer(endpoint.containerId);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      await this.assertNotCrashed(container, spec, endpoint.service);
      const health = (await container.inspect()).State.Health;
      if (!health) {
        throw new StepFailedError('start', `service ${endpoint.service} has no healthcheck (neither in the compose file nor in its image), so service_healthy can never be met: add a healthcheck to it, or use condition: service_started`);
      }
      if (health.Status === 'healthy') return;
      const last = health.Log?.[health.Log.length - 1];
      if (health.Status === 'unhealthy') {
        throw new StepFailedError('start', `service ${endpoint.service} is unhealthy: its healthcheck failed (exit ${last?.ExitCode ?? '?'})`, (last?.Output ?? '').trim() || (await this.logTail(container)));
      }
      if (Date.now() >= deadline) {
        throw new StepFailedError('start', `service ${endpoint.service} was not healthy within ${Math.round(timeoutMs / 1000)}s`, (last?.Output ?? '').trim() || (await this.logTail(container)));
      }
      await sleep(200);
    }
  }

  /** `name`: a rollout's next generation runs next to the current one under a name of its own */
  private async startService(spec: WorkspaceRunSpec, service: ServiceRunSpec, name = dockerNames.container(spec.slug, service.name)): Promise<ServiceEndpoint> {
    return this.startCreated(spec, service, await this.createService(spec, service, name));
  }

  private async createService(spec: WorkspaceRunSpec, service: ServiceRunSpec, name = dockerNames.container(spec.slug, service.name)): Promise<Dockerode.Container> {
    // A container left by a crashed worker (or with lost labels) would block the name.
    await ignoreNotFound(this.docker.getContainer(name).remove({ force: true }));
    const options = await this.serviceOptions(spec, service);
    options.Labels = { ...options.Labels, [LABELS.config]: configHash(options) };
    return this.docker.createContainer({ ...options, name });
  }

  private async startCreated(spec: WorkspaceRunSpec, service: ServiceRunSpec, container: Dockerode.Container): Promise<ServiceEndpoint> {
    await container.start();
    const info = await container.inspect();
    // Empty when the process already died and awaits its restart; waitHealthy re-reads it.
    const host = info.NetworkSettings.Networks[dockerNames.network(spec.slug)]?.IPAddress ?? '';
    return { service: service.name, containerId: info.Id, host };
  }

  async waitHealthy(
    spec: WorkspaceRunSpec,
    endpoint: ServiceEndpoint,
    port: number,
    urlPath: string,
    timeoutMs: number,
    opts: { signal?: AbortSignal } = {},
  ): Promise<void> {
    const container = this.docker.getContainer(endpoint.containerId);
    const pathPart = urlPath.startsWith('/') ? urlPath : `/${urlPath}`;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      opts.signal?.throwIfAborted();
      // Re-read the address each time: a restarted container may come back with another one,
      // and has none while it waits for its restart.
      const host = await this.assertNotCrashed(container, spec, endpoint.service);
      const budget = Math.min(HEALTH_TRY_TIMEOUT_MS, Math.max(deadline - Date.now(), 1));
      if (host && (await answersOk(`http://${host}:${port}${pathPart}`, budget, opts.signal))) return;
      if (Date.now() >= deadline) break;
      await sleep(Math.min(HEALTH_INTERVAL_MS, Math.max(deadline - Date.now(), 0)), opts.signal);
    }
    await this.assertNotCrashed(container, spec, endpoint.service);
    throw new StepFailedError(
      'start',
      `service ${endpoint.service} did not answer ${pathPart} on port ${port} within ${Math.round(timeoutMs / 1000)}s`,
      await this.logTail(container),
    );
  }

  /**
   * Throws when the service has exited for good or is crash-looping; returns its current IP.
   * A few restarts are tolerated: with unless-stopped, an app that dies because its database
   * was not accepting connections yet comes back on its own, as it would under compose.
   */
  private async assertNotCrashed(container: Dockerode.Container, spec: WorkspaceRunSpec, service: string): Promise<string> {
    const info = await container.inspect();
    const { Running, Restarting } = info.State;
    const crashed = (!Running && !Restarting) || info.RestartCount >= CRASH_LOOP_RESTARTS;
    if (!crashed) return info.NetworkSettings.Networks[dockerNames.network(spec.slug)]?.IPAddress ?? '';
    const exit = await this.lastExit(info);
    const oom = exit.oomKilled ? ' (killed: out of memory)' : '';
    throw new StepFailedError(
      'start',
      `service ${service} exited with code ${exit.code}${oom} before becoming healthy`,
      await this.logTail(container),
    );
  }

  /**
   * Once the restart policy has started the container again, inspect shows exit code 0;
   * the daemon's `die`/`oom` events still hold what happened.
   */
  private async lastExit(info: Dockerode.ContainerInspectInfo): Promise<{ code: number; oomKilled: boolean }> {
    const fromState = { code: info.State.ExitCode, oomKilled: info.State.OOMKilled };
    if (!info.State.Running && !info.State.Restarting) return fromState;
    const events = await this.containerEvents(info.Id, Math.floor(Date.parse(info.Created) / 1000));
    const deaths = events.filter((e) => e.status === 'die');
    const last = deaths[deaths.length - 1];
    if (!last) return fromState;
    return {
      code: Number(last.Actor?.Attributes?.exitCode ?? fromState.code),
      oomKilled: fromState.oomKilled || events.some((e) => e.status === 'oom'),
    };
  }

  private async containerEvents(id: string, since: number): Promise<DockerEvent[]> {
    const until = Math.ceil(Date.now() / 1000);
    const stream = (await this.docker.getEvents({
      since,
      until,
      filters: { container: [id], event: ['die', 'oom'] },
    })) as NodeJS.ReadableStream;
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
    return Buffer.concat(chunks)
      .toString('utf8')
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as DockerEvent);
  }

  async containerLogTail(containerId: string): Promise<string> {
    return this.logTail(this.docker.getContainer(containerId));
  }

  private async logTail(container: Dockerode.Container): Promise<string> {
    try {
      const buf = (await container.logs({ stdout: true, stderr: true, follow: false, tail: FAILURE_TAIL_LINES })) as Buffer;
      return demuxBuffer(buf).trimEnd();
    } catch {
      return '';
    }
  }

  /**
   * code-server in its own container: the service's image (so its terminal has the app's
   * tools and environment), the workspace disk at /workspace, the workspace network (so it
   * reaches the services by name), and the host's install mounted read-only, run with the
   * install's own node because its native modules were built for that node. `--auth none` is
   * safe only because nothing but Berth's gateway can reach the workspace network.
   */
  async startIde(spec: WorkspaceRunSpec, ide: IdeSpec, timeoutMs: number): Promise<ServiceEndpoint> {
    const service = findService(spec, ide.service);
    const name = dockerNames.ideContainer(spec.slug);
    await ignoreNotFound(this.docker.getContainer(name).remove({ force: true }));
    await this.ensureVolume(spec, dockerNames.ideVolume(spec.slug), 'ide');
    const base = containerConfig(spec, service, 'ide', this.instance);
    const container = await this.docker.createContainer({
      ...base,
      name,
      Labels: { ...base.Labels, [LABELS.service]: 'ide' },
      // code-server's PORT variable would override --bind-addr; the service's port is not its.
      Env: [...(base.Env ?? []).filter((e) => !e.startsWith('PORT=')), `HOME=${IDE_HOME}`],
      WorkingDir: WORKSPACE_DIR,
      Entrypoint: [`${IDE_INSTALL_DIR}/node`],
      Cmd: [
        `${IDE_INSTALL_DIR}/node_modules/code-server/out/node/entry.js`,
        ...['--bind-addr', `0.0.0.0:${CODE_SERVER_PORT}`, '--auth', 'none'],
        ...['--disable-telemetry', '--disable-update-check', '--disable-workspace-trust'],
        ...['--user-data-dir', `${IDE_HOME}/data`, '--extensions-dir', `${IDE_HOME}/extensions`, '--config', `${IDE_HOME}/config.yaml`],
        WORKSPACE_DIR,
      ],
      HostConfig: {
        ...base.HostConfig,
        RestartPolicy: { Name: 'unless-stopped' },
        Mounts: [
          workspaceMount(spec),
          { Type: 'volume', Source: dockerNames.ideVolume(spec.slug), Target: IDE_HOME },
          { Type: 'bind', Source: ide.codeServerDir, Target: IDE_INSTALL_DIR, ReadOnly: true },
        ],
      },
      NetworkingConfig: { EndpointsConfig: { [dockerNames.network(spec.slug)]: {} } },
    });
    await this.seedIdeSettings(container);
    if (ide.settings) await this.writeMachineSettings(container, ide.settings);
    if (ide.signal?.aborted) {
      await ignoreNotFound(container.remove({ force: true }));
      ide.signal.throwIfAborted();
    }
    await container.start();
    const info = await container.inspect();
    const endpoint = { service: 'ide', containerId: info.Id, host: info.NetworkSettings.Networks[dockerNames.network(spec.slug)]?.IPAddress ?? '' };
    try {
      await this.waitHealthy(spec, endpoint, CODE_SERVER_PORT, '/healthz', timeoutMs, { signal: ide.signal });
    } catch (err) {
      // An image code-server cannot run in (no glibc, say) must not restart it for ever; a start
      // given up (a stop came) leaves nothing behind either.
      await ignoreNotFound(container.remove({ force: true }));
      throw err;
    }
    if (ide.extensions?.length) await this.installIdeExtensions(container, ide.extensions, timeoutMs, ide.onLog, ide.signal);
    return endpoint;
  }

  /**
   * A devcontainer's VS Code settings as machine settings (what VS Code does for a dev
   * container): rewritten at each start from the repository, while the person's own user
   * settings, kept on the IDE disk, still win.
   */
  private async writeMachineSettings(container: Dockerode.Container, settings: Record<string, unknown>): Promise<void> {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-ide-machine-'));
    try {
      await fs.mkdir(path.join(dir, 'data/Machine'), { recursive: true });
      await fs.writeFile(path.join(dir, 'data/Machine/settings.json'), `${JSON.stringify(settings, null, 2)}\n`);
      await container.putArchive(packDirectory(dir), { path: IDE_HOME });
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  }

  /** .vsix files from the disk, with code-server's own CLI in the IDE container; failures are logged */
  private async installIdeExtensions(container: Dockerode.Container, files: string[], timeoutMs: number, onLog?: (text: string) => void, signal?: AbortSignal): Promise<void> {
    for (const file of files) {
      signal?.throwIfAborted();
      const result = await execInContainer(
        this.docker,
        container,
        [
          `${IDE_INSTALL_DIR}/node`,
          `${IDE_INSTALL_DIR}/node_modules/code-server/out/node/entry.js`,
          ...['--user-data-dir', `${IDE_HOME}/data`, '--extensions-dir', `${IDE_HOME}/extensions`, '--config', `${IDE_HOME}/config.yaml`],
          '--install-extension',
          file,
        ],
        { timeoutMs, onLog },
      ).catch((err: Error) => ({ exitCode: -1, tail: err.message, timedOut: false }));
      onLog?.(result.exitCode === 0 ? `==> IDE: installed the extension ${file}\n` : `==> IDE: the extension ${file} could not be installed (${result.timedOut ? 'it took too long' : `exit code ${result.exitCode}`}): ${result.tail.split('\n').slice(-3).join(' ')}\n`);
    }
  }

  /** Writes VS Code's settings once per IDE disk; a created container's volumes take archives. */
  private async seedIdeSettings(container: Dockerode.Container): Promise<void> {
    const existing = await ignoreNotFound(container.getArchive({ path: `${IDE_HOME}/data/User/settings.json` }));
    if (existing) {
      existing.resume();
      return;
    }
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-ide-settings-'));
    try {
      await fs.mkdir(path.join(dir, 'data/User'), { recursive: true });
      await fs.writeFile(path.join(dir, 'data/User/settings.json'), `${JSON.stringify(IDE_SETTINGS, null, 2)}\n`);
      await container.putArchive(packDirectory(dir), { path: IDE_HOME });
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  }

  async stopIde(workspaceId: string): Promise<void> {
    await Promise.all((await this.listContainers(workspaceId, 'ide')).map((c) => this.stopAndRemove(c.Id)));
  }

  async stopServices(workspaceId: string): Promise<void> {
    // Every container at once (IDE, app, database), each with the same short grace: a stop takes
    // one grace at most instead of one per container in turn. Each gets its stop signal through
    // tini (Init), so a database flushes and exits on SIGTERM/SIGINT well within it; one that
    // ignores the signal is killed when the grace is up.
    const containers = [...(await this.listContainers(workspaceId, 'ide')), ...(await this.listContainers(workspaceId, 'service'))];
    await Promise.all(containers.map((c) => this.stopAndRemove(c.Id)));
  }

  /** BERTH_STOP_GRACE in whole seconds (the engine's unit); 5 s when the runtime was made without it */
  private get stopTimeoutS(): number {
    return this.opts.stopGraceMs === undefined ? STOP_TIMEOUT_S : Math.ceil(this.opts.stopGraceMs / 1000);
  }

  private async stopAndRemove(id: string): Promise<void> {
    const container = this.docker.getContainer(id);
    await container.stop({ t: this.stopTimeoutS }).catch((err) => {
      if (statusOf(err) !== 304 && statusOf(err) !== 404) throw err; // 304: already stopped
    });
    await ignoreNotFound(container.remove({ force: true }));
  }

  // --- inventory ------------------------------------------------------------------------------

  async removeWorkspace(workspaceId: string, slug?: string, opts: { keepVolumes?: boolean } = {}): Promise<void> {
    for (const key of this.disksChecked.keys()) if (key.startsWith(`${workspaceId}:`)) this.disksChecked.delete(key);
    const filters = labelFilter(workspaceId);
    const containers = await this.listContainers(workspaceId);
    // keepVolumes: a container's anonymous volumes (an image's VOLUME) may hold data too
    await Promise.all(containers.map((c) => ignoreNotFound(this.docker.getContainer(c.Id).remove({ force: true, v: !opts.keepVolumes }))));
    const networks = await this.docker.listNetworks({ filters });
    await Promise.all(networks.map((n) => ignoreNotFound(this.docker.getNetwork(n.Id).remove())));
    if (opts.keepVolumes) return;
    const { Volumes: volumes } = await this.docker.listVolumes({ filters });
    await Promise.all((volumes ?? []).map((v) => ignoreNotFound(this.docker.getVolume(v.Name).remove())));
    if (slug) {
      // A workspace disk Berth adopted (ensureVolume: same name, no owner label) is found only
      // by its name. Left behind, the next workspace of this branch would adopt it again, full.
      const name = dockerNames.workspaceVolume(slug);
      const adopted = await ignoreNotFound(this.docker.getVolume(name).inspect());
      if (adopted && !adopted.Labels?.[LABELS.workspace]) await ignoreNotFound(this.docker.getVolume(name).remove());
    }
  }

  async status(workspaceId: string): Promise<ContainerStatus[]> {
    const containers = await this.listContainers(workspaceId, 'service');
    return Promise.all(containers.map((c) => this.containerStatus(c)));
  }

  private async containerStatus(c: Dockerode.ContainerInfo): Promise<ContainerStatus> {
    const base = { service: c.Labels[LABELS.service]!, containerId: c.Id, state: serviceState(c.State, 0) };
    const info = await ignoreNotFound(this.docker.getContainer(c.Id).inspect());
    if (!info) return { ...base, state: 'gone' };
    const ip = info.NetworkSettings.Networks[dockerNames.network(c.Labels[LABELS.slug] ?? '')]?.IPAddress || undefined;
    // Its restart policy may have brought it back already: then only the events tell.
    let oomKilled = info.State.OOMKilled || this.oomDeaths.has(c.Id);
    if (!oomKilled && info.RestartCount > 0) oomKilled = (await this.lastExit(info).catch(() => ({ oomKilled: false }))).oomKilled;
    return {
      ...base,
      state: serviceState(info.State.Status, info.RestartCount),
      ip,
      restartCount: info.RestartCount,
      oomKilled,
      ...(info.State.Running ? {} : { exitCode: info.State.ExitCode, finishedAt: info.State.FinishedAt }),
    };
  }

  async runningWorkspaceIds(): Promise<string[]> {
    const filters = { label: [LABELS.workspace, `${LABELS.instance}=${this.instance}`], status: ['running', 'restarting'] };
    const containers = await this.docker.listContainers({ all: true, filters });
    const ids = containers.filter((c) => c.Labels[LABELS.role] !== 'task').map((c) => c.Labels[LABELS.workspace]!);
    return [...new Set(ids)];
  }

  async listBuiltImages(): Promise<BuiltImage[]> {
    const images = await this.docker.listImages({ filters: { label: [`${LABELS.instance}=${this.instance}`] } });
    return images.map((i) => ({
      id: i.Id,
      tags: (i.RepoTags ?? []).filter((t) => t !== '<none>:<none>'),
      createdAt: new Date(i.Created * 1000),
    }));
  }

  async removeImage(ref: string): Promise<boolean> {
    try {
      await this.docker.getImage(ref).remove();
      return true;
    } catch (err) {
      if (statusOf(err) === 404) return true;
      if (statusOf(err) === 409) return false; // a container (perhaps stopped) still uses it
      throw err;
    }
  }

  async removeTasks(workspaceId: string, waitMs = 0): Promise<void> {
    const tasks = await this.listContainers(workspaceId, 'task');
    const running = tasks.filter((c) => c.State === 'running');
    if (waitMs > 0 && running.length) {
      await Promise.race([Promise.all(running.map((c) => this.docker.getContainer(c.Id).wait().catch(() => undefined))), sleep(waitMs)]);
    }
    await Promise.all(tasks.map((c) => ignoreNotFound(this.docker.getContainer(c.Id).remove({ force: true }))));
  }

  /**
   * Follows `die` and `oom` events of this Berth's service containers. A container that dies
   * right after an `oom` event was OOM-killed; its restart policy may bring it back at once,
   * which hides the kill from `inspect`, so the runtime remembers it for `status`. When the
   * stream ends (the engine restarted) it reconnects, replaying from the last event seen.
   */
  watch(onDeath: (death: ContainerDeath) => void, log: (msg: string) => void = () => {}): { close(): void } {
    return watchDeaths(this.docker, { instance: this.instance, engineAddress: () => this.engineAddress(), oomDeaths: this.oomDeaths }, onDeath, log);
  }

  async listWorkspaceIds(): Promise<string[]> {
    const filters = { label: [LABELS.workspace, `${LABELS.instance}=${this.instance}`] };
    const [containers, networks, volumes] = await Promise.all([
      this.docker.listContainers({ all: true, filters }),
      this.docker.listNetworks({ filters }),
      this.docker.listVolumes({ filters }),
    ]);
    const ids = new Set<string>();
    for (const o of [...containers, ...networks, ...(volumes.Volumes ?? [])]) {
      const id = (o.Labels as Record<string, string> | null)?.[LABELS.workspace];
      if (id) ids.add(id);
    }
    return [...ids];
  }

  async listWorkspaceVolumes(): Promise<WorkspaceVolume[]> {
    const filters = { label: [LABELS.workspace, `${LABELS.instance}=${this.instance}`] };
    const { Volumes: volumes } = await this.docker.listVolumes({ filters });
    return (volumes ?? []).map((v) => {
      const labels = (v.Labels ?? {}) as Record<string, string>;
      const createdAt = (v as { CreatedAt?: string }).CreatedAt;
      return { name: v.Name, workspaceId: labels[LABELS.workspace]!, slug: labels[LABELS.slug], createdAt };
    });
  }

  private listContainers(workspaceId: string, role?: Role): Promise<Dockerode.ContainerInfo[]> {
    return this.docker.listContainers({ all: true, filters: labelFilter(workspaceId, role) });
  }
}

/**
 * Passes a task's output on, except the first whole line that is `marker`: that line is
 * swallowed and `onMarker` called. Text after the last newline waits for its line to end
 * (`flush` at the end of the output).
 */
function lineSwitch(marker: string, deliver: (text: string) => void, onMarker: () => void): { push: (text: string) => void; flush: () => void } {
  let pending = '';
  let switched = false;
  return {
    push: (text) => {
      if (switched) return deliver(text);
      pending += text;
      for (let nl = pending.indexOf('\n'); nl >= 0 && !switched; nl = pending.indexOf('\n')) {
        const line = pending.slice(0, nl + 1);
        pending = pending.slice(nl + 1);
        if (line.replace(/\r?\n$/, '') === marker) {
          switched = true;
          onMarker();
        } else {
          deliver(line);
        }
      }
      if (switched && pending) {
        deliver(pending);
        pending = '';
      }
    },
    flush: () => {
      if (pending) deliver(pending);
      pending = '';
    },
  };
}

/** how long a disk ensureDisk made or found is taken as there without asking the engine again */
const DISK_CHECK_REUSE_MS = 10_000;

/** a disk as ensureDisk makes it: the workspace, its slug and the services' volumes */
function diskKey(spec: WorkspaceRunSpec): string {
  return `${spec.workspaceId}:${spec.slug}:${JSON.stringify(spec.services.map((s) => [s.name, Boolean(s.data), (s.volumes ?? []).map((v) => v.name)]))}`;
}

// --- build helpers ------------------------------------------------------------------------------

async function assertDockerfile(contextDir: string, dockerfile: string): Promise<void> {
  const full = path.resolve(contextDir, dockerfile);
  const rel = path.relative(path.resolve(contextDir), full);
  if (rel.startsWith('..') || path.isAbsolute(rel)) {
    throw new StepFailedError('build', `Dockerfile ${dockerfile} is outside the build context ${contextDir}`);
  }
  const stat = await fs.stat(full).catch(() => undefined);
  if (!stat?.isFile()) {
    throw new StepFailedError('build', `Dockerfile not found: there is no file ${dockerfile} in the build context ${contextDir}`);
  }
}

function buildEventText(event: BuildEvent): string {
  if (event.stream) return event.stream;
  if (event.error) return `${event.error}\n`;
  // Layer download progress would flood the log with one event per chunk.
  if (event.status && !event.progress) return `${event.id ? `${event.id}: ` : ''}${event.status}\n`;
  return '';
}

// --- small utilities ----------------------------------------------------------------------------

async function answersOk(url: string, timeoutMs: number, cancel?: AbortSignal): Promise<boolean> {
  try {
    const signal = cancel ? AbortSignal.any([cancel, AbortSignal.timeout(timeoutMs)]) : AbortSignal.timeout(timeoutMs);
    const res = await fetch(url, { redirect: 'manual', signal });
    await res.body?.cancel();
    return res.status >= 200 && res.status < 400;
  } catch {
    return false; // refused, reset or timed out: not up yet
  }
}

function suffix(): string {
  return randomBytes(4).toString('hex');
}

/** with a signal: rejects with its reason as soon as it aborts */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (!signal) return new Promise((r) => setTimeout(r, ms));
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
