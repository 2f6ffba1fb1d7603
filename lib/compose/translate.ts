/**
 * A compose project as Berth's RepoConfig: what compose says that Berth can honour becomes a
 * service spec, what it cannot is refused (file, line, reason) when the app cannot run without
 * it, or ignored with the reason in `plan`, never silently. See README "Compose files".
 */
import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import { parse as parseDotEnv } from 'dotenv';
import { z } from 'zod';
import { parseDuration } from '../config.js';
import { imageRef, type PreviewVisibility, type RepoConfig, type ServiceSpec } from '../repo-config.js';
import { errorAt, type Path } from './documents.js';
import { secretReference } from './interpolate.js';
import { loadCompose, type ComposeFileText, type LoadedCompose } from './load.js';
import { dependsOnMap, listToMap, mergeCompose } from './merge.js';
import { shellWords } from './shell-words.js';
import { serviceUrlVariable } from '../preview-domain.js';

export interface ComposeInput {
  /** the compose file and its overrides, in merge order (repository paths and their text) */
  files: ComposeFileText[];
  /** the project's `.env` (next to the first file), for interpolation */
  dotEnv?: ComposeFileText;
  /** reads a file of the repository for `env_file:`; undefined when there is none */
  readFile(rel: string): Promise<string | undefined>;
  /** a devcontainer.json's compose files: no web port is no error, its forwardPorts decide the preview */
  previewOptional?: boolean;
}

type Obj = Record<string, unknown>;
type Condition = NonNullable<ServiceSpec['dependsOn']>[string];

const SERVICE_NAME = /^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$/;

/**
 * Ports of databases, caches and queues: never the preview even when listed first. (The
 * preview is "the first web-looking one".)
 */
export const NOT_WEB_PORTS = new Set([
  25, 465, 587, 1025, 1433, 1521, 2181, 3306, 4222, 5432, 5433, 5672, 6379, 6380, 7687, 9042, 9092, 9200, 9300, 11211, 26257, 27017, 28015, 33060,
]);

/** what each key of a service means to Berth; keys not listed are ignored with a note */
const IGNORED_QUIETLY = new Set(['tty', 'stdin_open', 'labels', 'init', 'stop_signal', 'stop_grace_period', 'logging', 'platform', 'pull_policy', 'hostname', 'domainname', 'annotations', 'attach', 'scale', 'develop']);
const HANDLED = new Set(['build', 'image', 'command', 'entrypoint', 'environment', 'env_file', 'working_dir', 'user', 'healthcheck', 'depends_on', 'volumes', 'ports', 'expose', 'profiles', 'restart', 'x-berth', 'network_mode', 'extends']);
const WHY_IGNORED: Record<string, string> = {
  privileged: 'a workspace never runs privileged',
  cap_add: 'a workspace keeps a fixed set of capabilities',
  cap_drop: 'a workspace keeps a fixed set of capabilities',
  devices: 'a workspace gets no host devices',
  device_cgroup_rules: 'a workspace gets no host devices',
  pid: 'a workspace shares no process namespace with the host or another container',
  ipc: 'a workspace shares no IPC namespace with the host or another container',
  uts: 'a workspace shares no namespace with the host',
  userns_mode: 'a workspace shares no namespace with the host',
  cgroup: 'a workspace shares no namespace with the host',
  cgroup_parent: 'the operator places workspaces',
  security_opt: 'a workspace keeps Berth\'s security options',
  sysctls: 'a workspace keeps the engine\'s kernel settings',
  ulimits: 'a workspace keeps the engine\'s limits',
  container_name: 'each workspace names its own containers (several branches run at once)',
  networks: 'each workspace has one network of its own; services reach each other by service name',
  extra_hosts: 'a workspace resolves only its own services',
  dns: 'a workspace uses the engine\'s DNS',
  dns_search: 'a workspace uses the engine\'s DNS',
  dns_opt: 'a workspace uses the engine\'s DNS',
  links: 'services reach each other by service name',
  external_links: 'a workspace reaches only its own services',
  mem_limit: 'Berth applies the operator\'s memory and CPU limits',
  memswap_limit: 'Berth applies the operator\'s memory and CPU limits',
  mem_reservation: 'Berth applies the operator\'s memory and CPU limits',
  cpus: 'Berth applies the operator\'s memory and CPU limits',
  cpu_shares: 'Berth applies the operator\'s memory and CPU limits',
  cpuset: 'Berth applies the operator\'s memory and CPU limits',
  pids_limit: 'Berth applies the operator\'s limits',
  shm_size: 'Berth applies the operator\'s limits',
  deploy: 'Berth runs one container per service, with the operator\'s limits',
  secrets: 'give such values to the service as repository variables (environment: NAME: ${NAME})',
  configs: 'commit the file and mount the repository instead',
  tmpfs: 'not supported by Berth yet',
  volumes_from: 'services share data through named volumes',
  runtime: 'a workspace runs on the engine\'s default runtime',
  isolation: 'a workspace runs on the engine\'s default runtime',
  oom_kill_disable: 'Berth applies the operator\'s limits',
  oom_score_adj: 'Berth applies the operator\'s limits',
  mac_address: 'each workspace has its own network',
  read_only: 'not supported by Berth yet',
  storage_opt: 'the workspace disk is the operator\'s',
  gpus: 'a workspace gets no host devices',
};

const xBerthService = z
  .object({
    migrate: z.string().min(1).optional(),
    seed: z.string().min(1).optional(),
    health: z.string().startsWith('/', 'a health check is a path such as /health').optional(),
    port: z.coerce.number().int().min(1).max(65535).optional(),
    preview: z.union([z.boolean(), z.object({ visibility: z.enum(['public', 'private']).optional() }).strict()]).optional(),
  })
  .strict();

const xBerthTop = z
  .object({
    preview: z
      .union([
        z.string(),
        z.object({ service: z.string(), visibility: z.enum(['public', 'private']).optional(), port: z.coerce.number().int().min(1).max(65535).optional() }).strict(),
      ])
      .optional(),
    workspace: z
      .object({
        ide: z.enum(['vscode', 'vim', 'emacs', 'terminal']).optional(),
        idle_timeout: z.union([z.string().regex(/^\d+(ms|s|m|h)?$/, 'expected a duration like 30m'), z.number().int().positive()]).optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

export async function composeToRepoConfig(input: ComposeInput): Promise<RepoConfig> {
  return translate(loadCompose(input.files, input.dotEnv), input);
}

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

async function translate(loaded: LoadedCompose, input: ComposeInput): Promise<RepoConfig> {
  const { docs, model } = loaded;
  const fail = (path: Path, reason: string) => errorAt(docs, path, reason);
  const projectDir = posix.dirname(input.files[0]!.file);
  const fileNames = input.files.map((f) => f.file);
  const plan: string[] = [];
  const ignored: string[] = [];

  /** a path of the compose project as a path of the repository, or undefined when it leaves it */
  const inRepo = (p: string): string | undefined => {
    if (posix.isAbsolute(p) || p.startsWith('~')) return undefined;
    const rel = posix.normalize(posix.join(projectDir, p));
    return rel === '..' || rel.startsWith('../') ? undefined : rel.replace(/\/$/, '') || '.';
  };

  if (model.include !== undefined) throw fail(['include'], 'include is not supported by Berth: list the files\' services in this one');
  for (const key of ['networks', 'secrets', 'configs']) {
    if (isObj(model[key]) && Object.keys(model[key] as Obj).length) ignored.push(`top-level ${key}: ${WHY_IGNORED[key]}`);
  }
  const topVolumes = isObj(model.volumes) ? (model.volumes as Obj) : {};
  const top = parseX(xBerthTop, model['x-berth'], ['x-berth'], fail);

  const all = resolveExtends(model.services as Record<string, Obj>, fail);
  const enabled = Object.keys(all).filter((name) => {
    const profiles = all[name]!.profiles as string[] | undefined;
    if (!profiles?.length) return true;
    plan.push(`Not started: ${name} (profiles ${profiles.join(', ')}; Berth starts the services without profiles)`);
    return false;
  });
  if (enabled.length === 0) throw fail(['services'], 'every service has profiles: Berth starts only services without profiles, so nothing would run');
  for (const name of enabled) {
    if (!SERVICE_NAME.test(name)) {
      throw fail(['services', name], `service name "${name}": Berth needs lower-case letters, digits and hyphens (at most 32; they become host and container names): rename it`);
    }
  }

  // depends_on first: it says which services are one-shots
  const dependsOn = new Map<string, Record<string, Condition>>();
  const completedBy = new Map<string, string[]>();
  for (const name of enabled) {
    const deps = dependsOnMap(all[name]!.depends_on);
    const out: Record<string, Condition> = {};
    for (const [dep, spec] of Object.entries(deps)) {
      if (!all[dep]) throw fail(['services', name, 'depends_on', dep], `no service named "${dep}"`);
      if (!enabled.includes(dep)) throw fail(['services', name, 'depends_on', dep], `${dep} has profiles, so Berth does not start it, but ${name} depends on it: remove its profiles or this dependency`);
      const condition = ((isObj(spec) ? spec.condition : undefined) ?? 'service_started') as Condition;
      out[dep] = condition;
      if (condition === 'service_completed_successfully') completedBy.set(dep, [...(completedBy.get(dep) ?? []), name]);
    }
    if (Object.keys(out).length) dependsOn.set(name, out);
  }
  assertNoCycle(enabled, dependsOn, fail);

  const services: ServiceSpec[] = [];
  const previewCandidates: { name: string; port: number; from: string }[] = [];
  let xPreview: { service: string; visibility?: 'public' | 'private'; port?: number; path: Path } | undefined;
  if (top?.preview !== undefined) {
    xPreview = typeof top.preview === 'string' ? { service: top.preview, path: ['x-berth', 'preview'] } : { ...top.preview, path: ['x-berth', 'preview'] };
  }

  for (const name of enabled) {
    const s = all[name]!;
    const at = (...rest: Path): Path => ['services', name, ...rest];
    for (const key of Object.keys(s)) {
      if (HANDLED.has(key) || IGNORED_QUIETLY.has(key) || key.startsWith('x-')) continue;
      ignored.push(`${name}: ${key}: ${WHY_IGNORED[key] ?? 'not supported by Berth'}`);
    }
    const networkMode = s.network_mode as string | undefined;
    if (networkMode && networkMode !== 'bridge' && networkMode !== 'default') {
      if (networkMode === 'none') ignored.push(`${name}: network_mode: none: the service is on the workspace network like the others`);
      else throw fail(at('network_mode'), `network_mode: ${networkMode} cannot run in Berth: each workspace has a network of its own and shares nothing with the host or another container; remove it and reach the other services by their service name`);
    }
    const x = parseX(xBerthService, s['x-berth'], at('x-berth'), fail);

    const spec: ServiceSpec = { name, env: {} };
    // build or image
    if (s.build !== undefined) spec.build = translateBuild(name, s.build, at('build'), inRepo, fail, ignored);
    else if (typeof s.image === 'string') {
      const checked = imageRef.safeParse(s.image);
      if (!checked.success) throw fail(at('image'), checked.error.issues[0]!.message);
      spec.image = s.image;
    } else throw fail(['services', name], 'a service needs build: or image:');

    if (s.command !== undefined && s.command !== null) spec.args = words(s.command, at('command'), fail);
    if (s.entrypoint !== undefined && s.entrypoint !== null) spec.entrypoint = words(s.entrypoint, at('entrypoint'), fail);
    if (typeof s.working_dir === 'string') spec.workingDir = s.working_dir;
    if (s.user !== undefined) spec.user = String(s.user);

    // environment: env_file first, environment wins
    for (const [i, entry] of envFiles(s.env_file).entries()) {
      const rel = inRepo(entry.path);
      const path = typeof s.env_file === 'string' ? at('env_file') : at('env_file', i);
      if (!rel) throw fail(path, `env_file ${entry.path} is outside the repository: Berth reads only the repository's files`);
      const text = await input.readFile(rel);
      if (text === undefined) {
        if (entry.required) throw fail(path, `env_file ${entry.path} does not exist in the repository (mark it required: false if it is optional)`);
        continue;
      }
      Object.assign(spec.env, parseDotEnv(text));
    }
    for (const [key, value] of Object.entries(listToMap(s.environment))) {
      // `- NAME` / `NAME:` without a value: compose takes it from the environment, Berth from the repository's variables
      spec.env[key] = value === null || value === undefined ? secretReference(key) : String(value);
    }

    if (isObj(s.healthcheck)) spec.healthcheck = translateHealthcheck(s.healthcheck, at('healthcheck'), fail);
    if (dependsOn.has(name)) spec.dependsOn = dependsOn.get(name);

    // volumes
    for (const [i, v] of (Array.isArray(s.volumes) ? s.volumes : []).entries()) {
      const vol = parseVolume(v);
      const path = at('volumes', i);
      if (!vol.target.startsWith('/')) throw fail(path, `the container path of a volume must be absolute, not "${vol.target}"`);
      if (vol.type === 'bind') {
        const rel = inRepo(vol.source!);
        if (rel === undefined) {
          ignored.push(`${name}: volume ${vol.source}:${vol.target}: ${vol.source} is a path on the host, outside the repository; a workspace never sees the host's files`);
        } else if (rel !== '.') {
          ignored.push(`${name}: volume ${vol.source}:${vol.target}: only the whole repository can be mounted (the workspace checkout), not ${rel}`);
        } else if (spec.checkoutMount) {
          ignored.push(`${name}: volume ${vol.source}:${vol.target}: the repository is already mounted at ${spec.checkoutMount}`);
        } else {
          spec.checkoutMount = vol.target;
          plan.push(`${name}: the workspace checkout (what the IDE edits) is mounted at ${vol.target}`);
        }
      } else if (vol.type === 'volume') {
        let volName = vol.source;
        if (!volName) {
          // anonymous (`/app/node_modules`): compose keeps it across restarts, so does Berth
          volName = `${name}-anon-${createHash('sha256').update(vol.target).digest('hex').slice(0, 8)}`;
        } else {
          if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(volName)) throw fail(path, `"${volName}" is not a volume name`);
          const def = topVolumes[volName];
          if (isObj(def) && def.external) ignored.push(`${name}: volume ${volName} is external: Berth keeps it on the workspace disk instead`);
          else if (isObj(def) && (def.driver || def.driver_opts)) ignored.push(`${name}: volume ${volName}: driver options: Berth keeps it on the workspace disk`);
          plan.push(`${name}: volume ${volName} at ${vol.target}, kept on the workspace disk (stop keeps it, delete removes it)`);
        }
        (spec.volumes ??= []).push({ name: volName, target: vol.target, ...(vol.readOnly ? { readOnly: true } : {}) });
      } else {
        ignored.push(`${name}: volume of type ${vol.type} at ${vol.target}: not supported by Berth`);
      }
    }

    // Built without `.:/app`: it runs from its image as under compose (its own WORKDIR), and the
    // checkout (what the IDE edits) is still on its disk at /workspace.
    if (spec.build && !spec.checkoutMount) spec.checkoutMount = '/workspace';

    // ports: which service and port to preview; nothing is published on the host
    const ports = containerPorts(s.ports, at('ports'), fail);
    const exposed = containerPorts(s.expose, at('expose'), fail);
    if (ports.some((p) => p.published)) ignored.push(`${name}: published ports (${ports.filter((p) => p.published).map((p) => p.text).join(', ')}): nothing is published on the host; the preview link reaches the service's port`);
    const webPort = [...ports, ...exposed].find((p) => !NOT_WEB_PORTS.has(p.port));
    if (x?.port) previewCandidates.push({ name, port: x.port, from: 'x-berth port' });
    else if (webPort && !looksLikeBackingImage(spec.image)) previewCandidates.push({ name, port: webPort.port, from: `${ports.includes(webPort) ? 'ports' : 'expose'}: ${webPort.text}` });
    if (x?.preview) {
      if (xPreview) throw fail(at('x-berth', 'preview'), `${xPreview.service} is the preview already; only one service can be`);
      xPreview = { service: name, path: at('x-berth', 'preview'), ...(typeof x.preview === 'object' ? x.preview : {}), port: x.port };
    }
    if (x?.migrate) spec.migrate = x.migrate;
    if (x?.seed) spec.seed = x.seed;
    if (x?.health) spec.health = x.health;
    services.push(spec);
  }

  // one-shots: depended on with service_completed_successfully
  for (const [name, dependents] of completedBy) {
    const spec = services.find((s) => s.name === name)!;
    spec.oneShot = true;
    const restart = all[name]!.restart;
    if (restart !== undefined && restart !== 'no') ignored.push(`${name}: restart: ${String(restart)}: it runs once to completion, as ${dependents.join(', ')} wait${dependents.length > 1 ? '' : 's'} for it to complete`);
    plan.push(`Migrate: ${name} runs to completion (exit 0) before ${dependents.join(', ')} start${dependents.length > 1 ? '' : 's'}, on every start`);
  }

  // the preview
  let preview: { service: string; port: number; visibility: PreviewVisibility; why: string };
  if (xPreview) {
    const target = services.find((s) => s.name === xPreview.service);
    if (!target) throw fail(xPreview.path, `no started service named "${xPreview.service}"`);
    const port = xPreview.port ?? previewCandidates.find((c) => c.name === target.name)?.port;
    if (!port) throw fail(xPreview.path, `the preview service ${target.name} has no web port: add ports: ["3000"] to it, or x-berth: { port: 3000 }`);
    preview = { service: target.name, port, visibility: xPreview.visibility ?? 'default', why: 'x-berth' };
  } else {
    const first = previewCandidates.find((c) => !services.find((s) => s.name === c.name)!.oneShot);
    if (!first && input.previewOptional) {
      preview = { service: services.find((s) => !s.oneShot)!.name, port: 0, visibility: 'default', why: 'no web port in the compose files' };
    } else if (!first) {
      throw fail(['services'], 'no service to preview: none lists a web port in ports: or expose:; add ports: ["3000"] to the web service, or say x-berth: { preview: <service>, port: <port> } at the top level');
    } else {
      preview = { service: first.name, port: first.port, visibility: 'default', why: `the first web port, from ${first.from}` };
    }
  }
  const previewSpec = services.find((s) => s.name === preview.service)!;
  if (previewSpec.oneShot) throw fail(xPreview?.path ?? ['services', preview.service], `${preview.service} runs once to completion (a dependency's service_completed_successfully), so it cannot be the preview`);
  if (preview.port) previewSpec.port = preview.port;
  // every other web-looking service gets a public URL of its own too (issue 16: BERTH_URL_<SERVICE>);
  // the start does not wait for it as it does for the preview (an API may answer / with a 404)
  for (const c of previewCandidates) {
    const s = services.find((x) => x.name === c.name)!;
    if (s === previewSpec || s.oneShot || s.port) continue;
    s.port = c.port;
    s.portOptional = true;
    plan.push(`URL: ${s.name} on port ${c.port} at a host of its own (${serviceUrlVariable(s.name)}), from ${c.from}`);
  }

  for (const s of services) {
    for (const [dep, condition] of Object.entries(s.dependsOn ?? {})) {
      if (condition === 'service_healthy') plan.push(`${s.name} starts once ${dep} is healthy (its healthcheck)`);
    }
    if (s.migrate) plan.push(`Migrate: \`${s.migrate}\` in ${s.name}, on every start`);
    if (s.seed) plan.push(`Seed: \`${s.seed}\` in ${s.name}, on the first start of a disk`);
  }
  for (const { name, path } of loaded.unset) ignored.push(`${path.join('.')}: ${name} has no value (not in .env), so it is empty here`);

  const idle = top?.workspace?.idle_timeout;
  return {
    source: 'compose',
    file: fileNames[0],
    services,
    preview: { service: preview.service, visibility: preview.visibility },
    workspace: {
      ide: top?.workspace?.ide ?? 'vscode',
      ...(idle === undefined ? {} : { idleTimeoutMs: typeof idle === 'number' ? idle * 1000 : parseDuration(idle) }),
    },
    ...(loaded.required.length ? { required: loaded.required } : {}),
    plan: [
      `From ${fileNames.join(' + ')}: services ${services.map((s) => s.name).join(', ')}`,
      preview.port ? `Preview: ${preview.service} on port ${preview.port} (${preview.why})` : 'Preview: no web port in the compose files (the devcontainer.json\'s forwardPorts decide)',
      ...plan,
      ...ignored.map((i) => `Ignored: ${i}`),
    ],
  };
}

/**
 * `extends: { service: base }` (or `extends: base`) within the project: the base service merged
 * under this one, as compose does (its depends_on is not inherited). From another file: refused.
 */
function resolveExtends(services: Record<string, Obj>, fail: (p: Path, r: string) => Error): Record<string, Obj> {
  const out: Record<string, Obj> = {};
  const resolve = (name: string, chain: string[]): Obj => {
    if (out[name]) return out[name]!;
    const s = services[name]!;
    if (s.extends === undefined) return (out[name] = s);
    const ext = s.extends;
    const base = typeof ext === 'string' ? ext : String((ext as Obj).service ?? '');
    if (isObj(ext) && ext.file !== undefined) throw fail(['services', name, 'extends', 'file'], 'extends from another file is not supported by Berth: extend a service of this project');
    if (!services[base]) throw fail(['services', name, 'extends'], `no service named "${base}" to extend`);
    if (chain.includes(base)) throw fail(['services', name, 'extends'], `extends goes round in a circle: ${[...chain, name, base].join(' -> ')}`);
    const { depends_on: _d, ...inherited } = resolve(base, [...chain, name]);
    const { extends: _e, ...own } = s;
    const merged = mergeCompose({ services: { [name]: inherited } }, { services: { [name]: own } }) as { services: Record<string, Obj> };
    return (out[name] = merged.services[name]!);
  };
  for (const name of Object.keys(services)) resolve(name, []);
  return out;
}

function parseX<T extends z.ZodTypeAny>(schema: T, value: unknown, path: Path, fail: (p: Path, r: string) => Error): z.infer<T> | undefined {
  if (value === undefined || value === null) return undefined;
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const keys = issue.code === 'unrecognized_keys' ? issue.keys : [];
  const at = [...path, ...(issue.path as Path), ...(keys.length ? [keys[0]!] : [])];
  const reason = keys.length ? `unknown key "${keys.join('", "')}" (x-berth knows migrate, seed, health, port, preview; at the top level preview and workspace)` : issue.message;
  throw fail(at, reason);
}

function assertNoCycle(names: string[], dependsOn: Map<string, Record<string, Condition>>, fail: (p: Path, r: string) => Error): void {
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, chain: string[]) => {
    if (state.get(name) === 'done') return;
    if (state.get(name) === 'visiting') throw fail(['services', name, 'depends_on'], `depends_on goes round in a circle: ${[...chain, name].join(' -> ')}`);
    state.set(name, 'visiting');
    for (const dep of Object.keys(dependsOn.get(name) ?? {})) visit(dep, [...chain, name]);
    state.set(name, 'done');
  };
  for (const name of names) visit(name, []);
}

function translateBuild(
  service: string,
  build: unknown,
  path: Path,
  inRepo: (p: string) => string | undefined,
  fail: (p: Path, r: string) => Error,
  ignored: string[],
): NonNullable<ServiceSpec['build']> {
  const b: Obj = typeof build === 'string' ? { context: build } : (build as Obj);
  const context = String(b.context ?? '.');
  const contextPath = typeof build === 'string' ? path : [...path, 'context'];
  if (/^[a-z][a-z0-9+.-]*:\/\/|^git@/i.test(context)) throw fail(contextPath, `a build context from ${context} is not supported: Berth builds from the repository's own directories`);
  const rel = inRepo(context);
  if (!rel) throw fail(contextPath, `the build context ${context} is outside the repository`);
  if (b.dockerfile_inline !== undefined) throw fail([...path, 'dockerfile_inline'], 'dockerfile_inline is not supported by Berth: commit the Dockerfile and name it in dockerfile:');
  const dockerfile = String(b.dockerfile ?? 'Dockerfile');
  if (posix.isAbsolute(dockerfile)) throw fail([...path, 'dockerfile'], 'dockerfile must be a path inside the build context');
  const args: Record<string, string> = {};
  for (const [k, v] of Object.entries(listToMap(b.args))) if (v !== null && v !== undefined) args[k] = String(v);
  for (const key of Object.keys(b)) {
    if (!['context', 'dockerfile', 'args', 'target', 'dockerfile_inline'].includes(key) && !key.startsWith('x-')) ignored.push(`${service}: build.${key}: not supported by Berth`);
  }
  return { context: rel, dockerfile, args, ...(typeof b.target === 'string' ? { target: b.target } : {}) };
}

function words(v: unknown, path: Path, fail: (p: Path, r: string) => Error): string[] {
  if (Array.isArray(v)) return v.map(String);
  try {
    return shellWords(String(v));
  } catch (err) {
    throw fail(path, (err as Error).message);
  }
}

function envFiles(v: unknown): { path: string; required: boolean }[] {
  const list = v === undefined || v === null ? [] : Array.isArray(v) ? v : [v];
  return list.map((e) => (isObj(e) ? { path: String(e.path), required: e.required !== false } : { path: String(e), required: true }));
}

function translateHealthcheck(h: Obj, path: Path, fail: (p: Path, r: string) => Error): NonNullable<ServiceSpec['healthcheck']> {
  if (h.disable === true) return { test: ['NONE'] };
  let test: string[];
  if (typeof h.test === 'string') test = ['CMD-SHELL', h.test];
  else if (Array.isArray(h.test) && h.test.length) test = h.test.map(String);
  else throw fail([...path, 'test'], 'a healthcheck needs a test, e.g. test: ["CMD", "pg_isready"]');
  if (!['CMD', 'CMD-SHELL', 'NONE'].includes(test[0]!)) throw fail([...path, 'test'], 'a healthcheck test list starts with CMD, CMD-SHELL or NONE');
  const ms = (key: string) => {
    if (h[key] === undefined) return undefined;
    const d = composeDuration(String(h[key]));
    if (d === undefined) throw fail([...path, key], `"${String(h[key])}" is not a duration such as 10s or 1m30s`);
    return d;
  };
  const out: NonNullable<ServiceSpec['healthcheck']> = { test };
  const interval = ms('interval');
  const timeout = ms('timeout');
  const startPeriod = ms('start_period');
  if (interval !== undefined) out.intervalMs = interval;
  if (timeout !== undefined) out.timeoutMs = timeout;
  if (startPeriod !== undefined) out.startPeriodMs = startPeriod;
  if (h.retries !== undefined) out.retries = Number(h.retries);
  return out;
}

/** compose's durations: `1m30s`, `10s`, `500ms`, `1h`, `2.5s` */
export function composeDuration(text: string): number | undefined {
  const units: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(us|ms|s|m|h)/g)];
  if (!parts.length || parts.map((p) => p[0]).join('') !== text.trim()) return undefined;
  return Math.round(parts.reduce((sum, p) => sum + Number(p[1]) * units[p[2]!]!, 0));
}

interface VolumeEntry {
  type: string;
  source?: string;
  target: string;
  readOnly: boolean;
}

function parseVolume(v: unknown): VolumeEntry {
  if (isObj(v)) {
    return { type: String(v.type ?? 'volume'), source: v.source === undefined ? undefined : String(v.source), target: String(v.target ?? ''), readOnly: v.read_only === true };
  }
  const parts = String(v).split(':');
  if (parts.length === 1) return { type: 'volume', target: parts[0]!, readOnly: false };
  const [source, target, mode = ''] = parts as [string, string, string?];
  const bind = source.startsWith('.') || source.startsWith('/') || source.startsWith('~');
  return { type: bind ? 'bind' : 'volume', source, target, readOnly: mode.split(',').includes('ro') };
}

/** the container ports of `ports:` or `expose:` entries ("3000", "8080:3000", "127.0.0.1:80:3000/tcp", {target: 3000}) */
function containerPorts(v: unknown, path: Path, fail: (p: Path, r: string) => Error): { port: number; text: string; published: boolean }[] {
  return (Array.isArray(v) ? v : []).map((entry, i) => {
    if (isObj(entry)) {
      const port = Number(entry.target);
      if (!Number.isInteger(port)) throw fail([...path, i, 'target'], 'a port needs a target (the container port)');
      return { port, text: String(entry.target), published: entry.published !== undefined };
    }
    const text = String(entry);
    const parts = text.replace(/\/(tcp|udp|sctp)$/, '').split(':');
    const container = parts[parts.length - 1]!;
    const port = Number(container.split('-')[0]);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw fail([...path, i], `"${text}" is not a port`);
    return { port, text, published: parts.length > 1 };
  });
}

/** an image of a database, cache or queue: not what to preview */
function looksLikeBackingImage(image: string | undefined): boolean {
  if (!image) return false;
  const name = image.split('@')[0]!.split(':')[0]!.split('/').pop()!;
  return /^(postgres|postgis|mysql|mariadb|redis|valkey|keydb|mongo|memcached|rabbitmq|elasticsearch|opensearch|kafka|zookeeper|nats|cassandra|neo4j|cockroach|clickhouse|minio|localstack)/.test(name);
}
