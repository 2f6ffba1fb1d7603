import type { BerthConfig } from '../lib/config.js';
import type { Build, PrismaClient, Repository, Workspace } from '../lib/db/client.js';
import { BerthError } from '../lib/errors.js';
import { previewOrigin, serviceLabels, serviceUrl, serviceUrlVariable } from '../lib/preview-domain.js';
import type { RepoConfig } from '../lib/repo-config.js';
import { referencedNames, substituteReferences } from '../lib/variables/layers.js';
import { VariableStore, type VariableEntry } from '../lib/variables/store.js';
import type { BuildLog } from './build-log.js';
import type { WorkspaceRunSpec } from './runtime/types.js';
import type { Runtime } from './runtime/types.js';

/**
 * What the layers' variables (lib/variables) become in a workspace (issue 16): the build checks
 * that every name the configuration needs has a value; the start gives the values to the
 * services' environments (never to `docker build`), writes the files into /workspace, and tells
 * the build log which values to mask.
 */

type Deps = { db: PrismaClient; config: BerthConfig };
type WorkspaceWithRepo = Workspace & { repository: Repository };

/** A required or referenced name without a value for this workspace. */
export class MissingVariablesError extends BerthError {
  constructor(
    readonly names: string[],
    readonly withheld: string[],
    settingsUrl: string,
  ) {
    const list = [...names, ...withheld].join(', ');
    const forks = withheld.length
      ? ` ${withheld.join(', ')} ${withheld.length === 1 ? 'is a secret' : 'are secrets'}, which a fork's pull request gets only when a maintainer or admin approves its commit with \`/berth approve --with-secrets\`.`
      : '';
    super(
      `missing variables: ${list}. Set ${names.length + withheld.length === 1 ? 'it' : 'them'} for this branch on ${settingsUrl} (repository admins and maintainers can), then \`/berth refresh\`.${forks}`,
      'missing_variables',
    );
  }
}

/** The settings page of a repository's variables on the dashboard. */
export function variablesSettingsUrl(config: Pick<BerthConfig, 'berthUrl'>, repo: { owner: string; name: string }): string {
  return `${config.berthUrl}/repos/${encodeURIComponent(repo.owner)}/${encodeURIComponent(repo.name)}/variables`;
}

/**
 * A fork's pull request gets secret variables only for the commit a maintainer or admin
 * approved with `/berth approve --with-secrets`.
 */
export function secretsAllowed(ws: Pick<Workspace, 'forkRepo' | 'approvedSecretsSha'>, sha: string): boolean {
  return !ws.forkRepo || ws.approvedSecretsSha === sha;
}

/** Every name the configuration needs a value for: `required:` and `${{ secrets.NAME }}` references. */
export function neededNames(config: RepoConfig): string[] {
  const names = new Set(config.required ?? []);
  for (const s of config.services) for (const v of Object.values(s.env ?? {})) for (const n of referencedNames(String(v))) names.add(n);
  return [...names].sort();
}

interface Resolved {
  entries: Map<string, VariableEntry>;
  /** secret names a fork does not get */
  withheld: string[];
}

async function resolve(deps: Deps, ws: WorkspaceWithRepo, sha: string): Promise<Resolved> {
  const all = await VariableStore.of(deps).resolved(ws.repository.id, ws.branch);
  if (secretsAllowed(ws, sha)) return { entries: all, withheld: [] };
  const entries = new Map([...all].filter(([, e]) => !e.secret));
  return { entries, withheld: [...all.values()].filter((e) => e.secret).map((e) => e.name) };
}

/**
 * After the build read the configuration: every needed name must have a value for this
 * branch. Throws MissingVariablesError naming them and the settings page.
 */
export async function assertVariablesSet(deps: Deps, ws: WorkspaceWithRepo, sha: string, config: RepoConfig): Promise<void> {
  const needed = neededNames(config);
  if (needed.length === 0) return;
  const { entries, withheld } = await resolve(deps, ws, sha);
  const missing = needed.filter((n) => !entries.has(n) || entries.get(n)!.path !== null);
  if (missing.length === 0) return;
  throw new MissingVariablesError(
    missing.filter((n) => !withheld.includes(n)),
    missing.filter((n) => withheld.includes(n)),
    variablesSettingsUrl(deps.config, ws.repository),
  );
}

/**
 * Build arguments from variables: only those marked build-time and not secret (a secret never
 * reaches `docker build`, where it would stay in the image's history).
 */
export async function buildArgs(deps: Deps, ws: WorkspaceWithRepo): Promise<Record<string, string>> {
  const store = VariableStore.of(deps);
  const { entries } = await resolve(deps, ws, '');
  const args: Record<string, string> = {};
  for (const e of entries.values()) if (e.buildTime && !e.secret && e.path === null) args[e.name] = store.value(e);
  return args;
}

/**
 * The values every service gets (issue 16 "derived values"). Every service with a port has a
 * public URL a browser reaches (lib/preview-domain.ts): the previewed one the preview's, each
 * other its own host, so a frontend finds its backend with BERTH_URL_API.
 */
export function derivedValues(config: BerthConfig, ws: Workspace, build: Build, repoConfig: RepoConfig): Record<string, string> {
  const previewUrl = `${previewOrigin(config, ws.slug)}/`;
  const values: Record<string, string> = {
    BERTH_PREVIEW_URL: previewUrl,
    BERTH_BRANCH: ws.forkBranch ?? ws.branch,
    BERTH_SHA: build.sha,
    BERTH_WORKSPACE: ws.slug,
  };
  if (ws.prNumber) values.BERTH_PR = String(ws.prNumber);
  const withPort = repoConfig.services.filter((s) => s.port);
  const labels = serviceLabels(withPort.map((s) => s.name));
  for (const s of withPort) {
    values[serviceUrlVariable(s.name)] = s.name === repoConfig.preview.service ? previewUrl : serviceUrl(config, ws, labels.get(s.name)!);
  }
  return values;
}

export interface VariableSource {
  name: string;
  layer: string;
  secret: boolean;
  /** a file: its path in /workspace */
  file?: string;
}

/**
 * The start's one call (worker/jobs/start.ts): fills the services' environments of `spec` in
 * place (the layers' variables, then berth.yml's env with `${{ secrets.NAME }}` filled in, then
 * the derived values), writes the files into /workspace, adds every secret value to the build
 * log's secrets so output echoing it is masked, and records names and layers (never values) for
 * the workspace page. A needed name without a value, or a value that cannot be decrypted, fails
 * the start with that reason.
 */
export async function applyWorkspaceVariables(
  deps: Deps & { runtime: Runtime },
  ws: WorkspaceWithRepo,
  build: Build,
  config: RepoConfig,
  spec: WorkspaceRunSpec,
  log: BuildLog,
): Promise<void> {
  await assertVariablesSet(deps, ws, build.sha, config);
  const store = VariableStore.of(deps);
  const { entries, withheld } = await resolve(deps, ws, build.sha);
  const env: Record<string, string> = {};
  const files: { path: string; content: string }[] = [];
  const sources: VariableSource[] = [];
  for (const e of entries.values()) {
    const value = store.value(e);
    // masked wherever the build log shows output, a file's content as much as an env value
    if (e.secret) log.addSecret(value);
    if (e.path !== null) files.push({ path: e.path, content: value });
    else env[e.name] = value;
    sources.push({ name: e.name, layer: e.layer, secret: e.secret, ...(e.path !== null ? { file: e.path } : {}) });
  }
  const derived = derivedValues(deps.config, ws, build, config);
  const lookup = new Map(Object.entries(env));
  for (const service of spec.services) {
    // the service's own env (berth.yml, compose) as runSpec made it, references filled in
    const filled = Object.fromEntries(Object.entries(service.env ?? {}).map(([k, v]) => [k, substituteReferences(String(v), lookup)]));
    service.env = { ...env, ...filled, ...derived };
  }
  if (files.length) {
    if (spec.services.some((s) => s.mountsWorkspace)) {
      await deps.runtime.writeWorkspaceFiles(spec, files);
      log.line(`==> wrote ${files.length} variable file${files.length === 1 ? '' : 's'}: ${files.map((f) => f.path).join(', ')}`);
    } else log.line('==> variable files are not written: no service has the checkout at /workspace');
  }
  if (sources.length) log.line(`==> variables: ${sources.map((s) => s.name).join(', ')}`);
  if (withheld.length) log.line(`==> secrets not given to this fork's pull request (approve with \`/berth approve --with-secrets\`): ${withheld.join(', ')}`);
  await deps.db.workspace.update({ where: { id: ws.id }, data: { variableSources: sources as never } });
}
