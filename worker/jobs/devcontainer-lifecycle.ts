import type { WorkerDeps } from '../deps.js';
import type { LifecycleCommand, RepoConfig } from '../../lib/repo-config.js';
import { StepFailedError } from '../../lib/errors.js';
import { formatDuration } from '../../lib/config.js';
import type { BuildLog } from '../build-log.js';
import type { TaskResult, WorkspaceRunSpec } from '../runtime/types.js';

/**
 * devcontainer.json's lifecycle commands, run in the running container people work in (what
 * they start, e.g. a dev server in the background, keeps running): onCreateCommand and
 * postCreateCommand once per disk, updateContentCommand when the checkout moved to a new commit
 * (and on the first start), postStartCommand on every start, postAttachCommand when the IDE
 * opens. Each has BERTH_TASK_TIMEOUT; one that fails fails the start, like a migrate, except
 * postAttachCommand (the workspace is running by then: the log says it failed).
 */
type Point = 'create' | 'update' | 'start' | 'attach';

const NAMES: Record<Point, string> = {
  create: 'onCreateCommand/postCreateCommand',
  update: 'updateContentCommand',
  start: 'postStartCommand',
  attach: 'postAttachCommand',
};

/** on the disk, in .git where no `git status` shows it: the create commands ran to the end here */
export const CREATED_MARK = '.git/berth-devcontainer-created';

/**
 * After the services are up: create (first start of a disk, until it succeeded once), update,
 * then start. `checkoutMoved`: this start brought the checkout to a new commit.
 */
export async function runStartLifecycle(
  deps: WorkerDeps,
  spec: WorkspaceRunSpec,
  config: RepoConfig,
  checkoutMoved: boolean,
  progress: (reason: string) => Promise<void>,
  log: BuildLog,
): Promise<void> {
  const lifecycle = config.lifecycle;
  if (!lifecycle) return;
  let fresh = false;
  if (lifecycle.create?.length && !(await deps.runtime.diskEntryExists(spec, CREATED_MARK))) {
    fresh = true;
    await progress(`running ${NAMES.create}`);
    await runAll(deps, spec, config, 'create', lifecycle.create, log);
    await markCreated(deps, spec, config, lifecycle.create[0]!.service);
  }
  if (lifecycle.update?.length && (fresh || checkoutMoved)) {
    await progress(`running ${NAMES.update}`);
    await runAll(deps, spec, config, 'update', lifecycle.update, log);
  }
  if (lifecycle.start?.length) {
    await progress(`running ${NAMES.start}`);
    await runAll(deps, spec, config, 'start', lifecycle.start, log);
  }
}

/** When the IDE has started: postAttachCommand. Never fatal: the log says what failed. */
export async function runAttachLifecycle(deps: WorkerDeps, spec: WorkspaceRunSpec, config: RepoConfig, log: BuildLog): Promise<void> {
  const attach = config.lifecycle?.attach;
  if (!attach?.length) return;
  log.line(`==> running ${NAMES.attach}`);
  try {
    await runAll(deps, spec, config, 'attach', attach, log);
  } catch (err) {
    log.line(`==> ${(err as Error).message}${err instanceof StepFailedError && err.logTail ? `\n${err.logTail}` : ''}`);
  }
}

async function runAll(deps: WorkerDeps, spec: WorkspaceRunSpec, config: RepoConfig, point: Point, commands: LifecycleCommand[], log: BuildLog): Promise<void> {
  for (const c of commands) {
    const shown = typeof c.command === 'string' ? c.command : JSON.stringify(c.command);
    log.line(`$ ${shown}`);
    const result = await run(deps, spec, config, c, log);
    const limit = deps.config.BERTH_TASK_TIMEOUT;
    if (result.timedOut) {
      throw new StepFailedError(
        point,
        `${NAMES[point]} of ${config.file ?? 'devcontainer.json'} (${shown}) did not finish within ${formatDuration(limit)} (BERTH_TASK_TIMEOUT), so Berth stopped it: start long-running processes in the background (nohup … &), or ask the operator to raise the limit`,
        result.tail,
      );
    }
    if (result.exitCode !== 0) {
      throw new StepFailedError(point, `${NAMES[point]} of ${config.file ?? 'devcontainer.json'} (${shown}) exited with code ${result.exitCode}`, result.tail);
    }
  }
}

function run(deps: WorkerDeps, spec: WorkspaceRunSpec, config: RepoConfig, c: LifecycleCommand, log: BuildLog): Promise<TaskResult> {
  const timeoutMs = deps.config.BERTH_TASK_TIMEOUT;
  if (deps.runtime.execIn) {
    return deps.runtime.execIn(spec, { service: c.service }, c.command, { timeoutMs, workingDir: workingDirOf(config, c.service), onLog: log.write });
  }
  // a runtime without exec: a one-off container of the service's image with its mounts
  return deps.runtime.runTask(spec, c.service, typeof c.command === 'string' ? c.command : c.command.map(shellQuote).join(' '), log.write, { timeoutMs });
}

async function markCreated(deps: WorkerDeps, spec: WorkspaceRunSpec, config: RepoConfig, service: string): Promise<void> {
  const dir = checkoutOf(config, service);
  const script = ['sh', '-c', 'if [ -d "$1/.git" ]; then : > "$1/.git/berth-devcontainer-created"; fi', 'mark', dir];
  if (deps.runtime.execIn) await deps.runtime.execIn(spec, { service }, script, { timeoutMs: 30_000 });
  else await deps.runtime.runTask(spec, service, script.map(shellQuote).join(' '), undefined, { timeoutMs: 30_000 });
}

function checkoutOf(config: RepoConfig, service: string): string {
  return config.services.find((s) => s.name === service)?.checkoutMount ?? '/workspace';
}

function workingDirOf(config: RepoConfig, service: string): string {
  const s = config.services.find((x) => x.name === service);
  return s?.workingDir ?? s?.checkoutMount ?? '/workspace';
}

function shellQuote(arg: string): string {
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/**
 * customizations.vscode for Runtime.startIde: settings (VS Code's machine settings, which the
 * person's own user settings still override) and the .vsix files the repository holds, as paths
 * on the disk the IDE sees at /workspace. Extensions without one are named in the log: the
 * marketplace code-server would download them from is out of reach.
 */
export function ideCustomizations(config: RepoConfig, log: BuildLog): { settings?: Record<string, unknown>; extensions?: string[]; onLog?: (text: string) => void } {
  const vscode = config.vscode;
  if (!vscode) return {};
  const vsix = vscode.vsix ?? [];
  const has = (id: string) =>
    vsix.some((f) => {
      const base = f.split('/').pop()!.toLowerCase();
      return base === `${id.toLowerCase()}.vsix` || base.startsWith(`${id.toLowerCase()}-`);
    });
  const missing = vscode.extensions.filter((id) => !id.startsWith('-') && !has(id));
  if (missing.length) {
    log.line(`==> IDE: VS Code extensions not installed: ${missing.join(', ')} (the marketplace is out of reach; commit their .vsix files next to ${config.file ?? 'devcontainer.json'} to have them installed)`);
  }
  return {
    ...(Object.keys(vscode.settings).length ? { settings: vscode.settings } : {}),
    ...(vsix.length ? { extensions: vsix.map((f) => `/workspace/${f}`) } : {}),
    onLog: log.write,
  };
}
