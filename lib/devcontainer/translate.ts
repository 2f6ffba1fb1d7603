import { posix } from 'node:path';
import { z } from 'zod';
import { imageRef, type LifecycleCommand, type RepoConfig, type ServiceSpec } from '../repo-config.js';
import { parseJsonc, type JsoncDocument } from './jsonc.js';
import { serviceUrlVariable } from '../preview-domain.js';
import { NOT_WEB_PORTS } from '../compose/translate.js';

/** Where Berth looks for a devcontainer.json, in this order (the spec's own order). */
export const DEVCONTAINER_PATHS = ['.devcontainer/devcontainer.json', '.devcontainer.json'] as const;

/** the service a single-container devcontainer.json becomes (a host name on the workspace network) */
export const DEVCONTAINER_SERVICE = 'devcontainer';

/**
 * What devcontainers run unless `overrideCommand: false`: the container idles until someone
 * works in it. `wait` on a background sleep so TERM (from tini) ends it at once.
 */
export const KEEP_ALIVE = 'trap "exit 0" TERM INT; while sleep 3600 & wait $!; do :; done';

const DEFAULT_WORKSPACE_FOLDER = '/workspace';

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'not a valid environment variable name');
const execForm = z.array(z.string()).min(1, 'an empty command');
const command = z.union([z.string().min(1, 'an empty command'), execForm, z.record(z.string(), z.union([z.string().min(1, 'an empty command'), execForm]))]);
const port = z.number().int().min(1, 'a port is 1 to 65535').max(65535, 'a port is 1 to 65535');

const schema = z.looseObject({
  name: z.string().optional(),
  image: imageRef.optional(),
  build: z
    .looseObject({
      dockerfile: z.string().min(1).optional(),
      context: z.string().min(1).optional(),
      args: z.record(z.string(), z.string()).optional(),
      target: z.string().min(1).optional(),
    })
    .optional(),
  // the spec's older spelling of build.dockerfile and build.context
  dockerFile: z.string().min(1).optional(),
  context: z.string().min(1).optional(),
  dockerComposeFile: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
  service: z.string().min(1).optional(),
  runServices: z.array(z.string().min(1)).optional(),
  workspaceFolder: z.string().min(1).optional(),
  forwardPorts: z
    .array(z.union([port, z.string().regex(/^([A-Za-z0-9][A-Za-z0-9_.-]*:)?\d{1,5}$/, 'a forwarded port is a number or "service:port"')]))
    .optional(),
  portsAttributes: z.record(z.string(), z.looseObject({ label: z.string().optional() })).optional(),
  containerEnv: z.record(envName, z.string()).optional(),
  remoteEnv: z.record(envName, z.string().nullable()).optional(),
  overrideCommand: z.boolean().optional(),
  initializeCommand: command.optional(),
  onCreateCommand: command.optional(),
  updateContentCommand: command.optional(),
  postCreateCommand: command.optional(),
  postStartCommand: command.optional(),
  postAttachCommand: command.optional(),
  features: z.record(z.string(), z.unknown()).optional(),
  containerUser: z.string().min(1).optional(),
  customizations: z
    .looseObject({
      vscode: z
        .looseObject({
          extensions: z.array(z.string().min(1)).optional(),
          settings: z.record(z.string(), z.unknown()).optional(),
        })
        .optional(),
    })
    .optional(),
});

export type Devcontainer = z.infer<typeof schema>;

/** A devcontainer.json read and checked; `dockerComposeFile` resolved to repository paths. */
export interface ParsedDevcontainer {
  doc: JsoncDocument;
  data: Devcontainer;
  /** the compose files to read (repository paths), when the devcontainer is compose-based */
  composeFiles?: string[];
}

/** keys Berth reads; everything else is reported in the plan as ignored */
const HANDLED = new Set([
  'name', 'image', 'build', 'dockerFile', 'context', 'dockerComposeFile', 'service', 'runServices', 'workspaceFolder',
  'forwardPorts', 'portsAttributes', 'containerEnv', 'remoteEnv', 'overrideCommand', 'initializeCommand', 'onCreateCommand',
  'updateContentCommand', 'postCreateCommand', 'postStartCommand', 'postAttachCommand', 'features', 'containerUser', 'customizations',
  '$schema',
]);

/** why a key Berth knows is not honoured */
const IGNORED_WHY: Record<string, string> = {
  runArgs: 'Berth creates the containers itself, with its own limits and no extra privileges',
  mounts: 'a workspace has its disk and nothing of the host',
  workspaceMount: 'the checkout is the workspace disk, mounted at workspaceFolder',
  appPort: 'Berth publishes no host ports; use forwardPorts',
  privileged: 'workspaces run without extra privileges',
  capAdd: 'workspaces run without extra capabilities',
  securityOpt: 'workspaces run with Berth\'s security options',
  init: 'Berth always runs an init process',
  remoteUser: 'lifecycle commands and the IDE run as the container\'s user (containerUser)',
  hostRequirements: 'the operator sets a workspace\'s memory and CPU limits',
  shutdownAction: 'Berth stops a workspace when it is idle or stopped',
  waitFor: 'Berth runs the lifecycle commands at the points of the workspace\'s life they name',
  otherPortsAttributes: 'only the preview port is served',
  userEnvProbe: 'environment comes from containerEnv and remoteEnv',
  updateRemoteUserUID: 'the container\'s user is used as it is',
};

/** Reads a devcontainer.json: JSON with comments, every problem a RepoConfigError with its line. */
export function parseDevcontainer(text: string, file: string): ParsedDevcontainer {
  const doc = parseJsonc(text, file);
  if (!doc.value || typeof doc.value !== 'object' || Array.isArray(doc.value)) throw doc.error([], 'expected an object ({ … })');
  const parsed = schema.safeParse(doc.value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const path = issue.path.map((p) => (typeof p === 'number' ? p : String(p)));
    // a bad key of a record (containerEnv): zod says "Invalid key", the key's own check says why
    const message = issue.code === 'invalid_key' ? (issue.issues[0]?.message ?? issue.message) : issue.message;
    throw doc.error(path, `${path.length ? `${path.join('.')}: ` : ''}${message}`);
  }
  const data = parsed.data;
  const dir = posix.dirname(file);
  const sources = [data.image && 'image', (data.build?.dockerfile || data.dockerFile) && 'build', data.dockerComposeFile && 'dockerComposeFile'].filter(Boolean);
  if (sources.length === 0) {
    throw doc.error([], 'a devcontainer.json needs one of "image", "build": { "dockerfile" } or "dockerComposeFile"');
  }
  if (sources.length > 1) {
    throw doc.error([String(sources[1])], `"${sources.join('" and "')}" are both given; a devcontainer.json uses one of them`);
  }
  if (data.dockerComposeFile !== undefined) {
    const list = typeof data.dockerComposeFile === 'string' ? [data.dockerComposeFile] : data.dockerComposeFile;
    const composeFiles = list.map((f, i) => insideRepo(doc, dir, f, typeof data.dockerComposeFile === 'string' ? ['dockerComposeFile'] : ['dockerComposeFile', i]));
    if (!data.service) throw doc.error(['dockerComposeFile'], '"service" is missing: with dockerComposeFile, it names the compose service VS Code (and Berth\'s lifecycle commands) work in');
    return { doc, data, composeFiles };
  }
  return { doc, data };
}

/** a path relative to the devcontainer.json's folder, as a path of the repository */
function insideRepo(doc: JsoncDocument, dir: string, rel: string, path: (string | number)[]): string {
  const full = posix.normalize(posix.join(dir, rel));
  if (posix.isAbsolute(rel) || full === '..' || full.startsWith('../')) {
    throw doc.error(path, `${rel} is outside the repository (paths are relative to the folder of ${doc.file})`);
  }
  return full;
}

export interface TranslateOptions {
  /** the RepoConfig of the devcontainer's compose files (readComposeConfig), for a compose-based one */
  compose?: RepoConfig;
  /** repository paths of .vsix files next to the devcontainer.json, to install extensions from */
  vsixFiles?: string[];
  /** the repository's name: `${localWorkspaceFolderBasename}` */
  repoName?: string;
}

/** Translates a devcontainer.json into Berth's workspace definition; `plan` says what was done and ignored. */
export function devcontainerConfig(parsed: ParsedDevcontainer, opts: TranslateOptions = {}): RepoConfig {
  const { doc, data } = parsed;
  const file = doc.file;
  const dir = posix.dirname(file);
  const plan: string[] = [];
  const vars = new Variables(opts.repoName ?? 'workspace');
  const workspaceFolder = data.workspaceFolder ? vars.apply(data.workspaceFolder) : undefined;
  if (workspaceFolder !== undefined && !workspaceFolder.startsWith('/')) {
    throw doc.error(['workspaceFolder'], `workspaceFolder: ${workspaceFolder} is not an absolute path in the container`);
  }
  vars.setFolder(workspaceFolder ?? DEFAULT_WORKSPACE_FOLDER);

  let services: ServiceSpec[];
  let main: ServiceSpec;
  let composePreview: RepoConfig['preview'] | undefined;
  if (parsed.composeFiles) {
    if (!opts.compose) throw doc.error(['dockerComposeFile'], `no compose file found at ${parsed.composeFiles.join(', ')}`);
    const wanted = data.service!;
    services = opts.compose.services.map((s) => ({ ...s, env: { ...s.env } }));
    const found = services.find((s) => s.name === wanted);
    if (!found) {
      throw doc.error(['service'], `service: no service named "${wanted}" in ${parsed.composeFiles.join(', ')} (it has ${services.map((s) => s.name).join(', ')})`);
    }
    main = found;
    plan.push(...(opts.compose.plan ?? []));
    services = keepRunServices(doc, data, services, main, plan);
    const composeTarget = services.find((s) => s.name === opts.compose!.preview.service);
    if (composeTarget?.port) composePreview = opts.compose.preview;
    // compose's default: the service runs its own command unless the devcontainer says otherwise
    if (data.overrideCommand === true) keepAlive(main);
    main.checkoutMount ??= workspaceFolder ?? DEFAULT_WORKSPACE_FOLDER;
    main.workingDir = workspaceFolder ?? main.workingDir ?? main.checkoutMount;
    plan.unshift(`${label(data, file)}: compose-based (${parsed.composeFiles.join(', ')}), working in service ${main.name}`);
  } else {
    const build = data.build?.dockerfile || data.dockerFile ? buildOf(doc, dir, data, vars) : undefined;
    const checkout = workspaceFolder ?? DEFAULT_WORKSPACE_FOLDER;
    main = {
      name: DEVCONTAINER_SERVICE,
      ...(build ? { build } : { image: data.image! }),
      env: {},
      checkoutMount: checkout,
      workingDir: checkout,
    };
    // image and Dockerfile devcontainers idle unless `overrideCommand: false` (the spec's default)
    if (data.overrideCommand !== false) keepAlive(main);
    services = [main];
    plan.push(
      `${label(data, file)}: one container (service ${main.name}), ${build ? `built from ${posix.join(build.context, build.dockerfile)}${build.target ? ` (target ${build.target})` : ''}` : `image ${data.image}`}`,
    );
  }
  if (data.containerUser) main.user = data.containerUser;
  plan.push(`the checkout is at ${main.checkoutMount} in ${main.name}${main.command === KEEP_ALIVE ? ', which runs a keep-alive (overrideCommand) rather than its own command' : ''}`);

  // ${containerWorkspaceFolder}: where VS Code opens, and where the lifecycle commands run
  vars.setFolder(main.workingDir ?? main.checkoutMount!);
  Object.assign(main.env, environment(doc, data, vars, plan));

  const preview = previewOf(doc, data, services, main, composePreview, plan);
  const lifecycle = lifecycleOf(doc, data, main.name, vars, plan);
  const vscode = vscodeOf(data, opts.vsixFiles ?? [], plan);
  ignoredKeys(doc, data, plan);
  plan.push(...vars.notes());

  return {
    source: 'devcontainer',
    file,
    services,
    preview,
    workspace: opts.compose?.workspace ?? { ide: 'vscode' },
    ...(opts.compose?.required?.length ? { required: opts.compose.required } : {}),
    ...(lifecycle ? { lifecycle } : {}),
    ...(vscode ? { vscode } : {}),
    plan,
  };
}

function label(data: Devcontainer, file: string): string {
  return data.name ? `${file} ("${data.name}")` : file;
}

function keepAlive(service: ServiceSpec): void {
  service.command = KEEP_ALIVE;
  delete service.args;
  // as the devcontainer CLI does: the image's ENTRYPOINT (a server, say) would otherwise get the
  // keep-alive as its arguments; the engine reads [""] as "no entrypoint"
  service.entrypoint = [''];
}

function buildOf(doc: JsoncDocument, dir: string, data: Devcontainer, vars: Variables): NonNullable<ServiceSpec['build']> {
  const legacy = !data.build?.dockerfile;
  const dockerfilePath = legacy ? ['dockerFile'] : ['build', 'dockerfile'];
  const contextPath = data.build?.context ? ['build', 'context'] : ['context'];
  const context = insideRepo(doc, dir, vars.apply(data.build?.context ?? data.context ?? '.'), contextPath);
  const dockerfile = insideRepo(doc, dir, vars.apply((data.build?.dockerfile ?? data.dockerFile)!), dockerfilePath);
  const inContext = posix.relative(context, dockerfile);
  if (inContext.startsWith('../')) {
    throw doc.error(dockerfilePath, `the Dockerfile ${dockerfile} is outside the build context ${context}; set "context" (relative to ${dir === '.' ? 'the repository root' : dir}) to a folder that holds it, e.g. ".."`);
  }
  const args = Object.fromEntries(Object.entries(data.build?.args ?? {}).map(([k, v]) => [k, vars.apply(v)]));
  return { context, dockerfile: inContext, ...(data.build?.target ? { target: data.build.target } : {}), args };
}

/** runServices: the services started besides `service`; those they depend on come along */
function keepRunServices(doc: JsoncDocument, data: Devcontainer, services: ServiceSpec[], main: ServiceSpec, plan: string[]): ServiceSpec[] {
  if (!data.runServices) return services;
  const keep = new Set<string>([main.name]);
  data.runServices.forEach((name, i) => {
    if (!services.some((s) => s.name === name)) throw doc.error(['runServices', i], `runServices: no service named "${name}" in the compose files`);
    keep.add(name);
  });
  for (let grew = true; grew; ) {
    grew = false;
    for (const s of services.filter((x) => keep.has(x.name))) {
      for (const dep of Object.keys(s.dependsOn ?? {})) if (!keep.has(dep)) (keep.add(dep), (grew = true));
    }
  }
  const dropped = services.filter((s) => !keep.has(s.name)).map((s) => s.name);
  if (dropped.length) plan.push(`not started (not in runServices): ${dropped.join(', ')}`);
  return services.filter((s) => keep.has(s.name));
}

function environment(doc: JsoncDocument, data: Devcontainer, vars: Variables, plan: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(data.containerEnv ?? {})) env[k] = vars.apply(v);
  for (const [k, v] of Object.entries(data.remoteEnv ?? {})) {
    if (v === null) {
      delete env[k];
      continue;
    }
    // ${containerEnv:X} is the running container's value: known here only when containerEnv sets it
    const unknown = [...v.matchAll(/\$\{containerEnv:([^}:]+)(?::[^}]*)?\}/g)].map((m) => m[1]!).filter((name) => !(name in env));
    if (unknown.length) {
      plan.push(`ignored: remoteEnv.${k} uses \${containerEnv:${unknown[0]}}, the value inside the running container, which Berth cannot know when it creates the container (line ${doc.lineOf(['remoteEnv', k])})`);
      continue;
    }
    env[k] = vars.apply(v.replace(/\$\{containerEnv:([^}:]+)(?::[^}]*)?\}/g, (_m, name: string) => env[name] ?? ''));
  }
  return env;
}

function previewOf(
  doc: JsoncDocument,
  data: Devcontainer,
  services: ServiceSpec[],
  main: ServiceSpec,
  composePreview: RepoConfig['preview'] | undefined,
  plan: string[],
): RepoConfig['preview'] {
  const ports = data.forwardPorts ?? [];
  if (ports.length === 0) {
    if (composePreview) {
      const s = services.find((x) => x.name === composePreview.service)!;
      plan.push(`preview: port ${s.port} of ${s.name} (from the compose files; forwardPorts is empty)`);
      return composePreview;
    }
    // the port the runtime adds as PORT and waits for: none, so no dead link is shown either
    plan.push('preview: none. forwardPorts is empty, so this workspace has an IDE and no preview; add e.g. "forwardPorts": [3000] for one');
    return { service: main.name, visibility: 'default' };
  }
  const first = ports[0]!;
  const [serviceName, portText] = typeof first === 'number' ? [undefined, String(first)] : first.includes(':') ? first.split(':') : [undefined, first];
  const portNumber = Number(portText);
  if (!(portNumber >= 1 && portNumber <= 65535)) throw doc.error(['forwardPorts', 0], `forwardPorts[0]: ${portText} is not a port (1 to 65535)`);
  let target = main;
  if (serviceName && serviceName !== 'localhost' && serviceName !== main.name) {
    const found = services.find((s) => s.name === serviceName);
    if (!found) {
      const known = services.map((s) => s.name).join(', ');
      throw doc.error(['forwardPorts', 0], `forwardPorts[0]: "${first}" names service ${serviceName}, which ${services.length > 1 ? `is not one of ${known}` : `does not exist (this devcontainer has one container: use the port alone, e.g. ${portNumber})`}`);
    }
    target = found;
  }
  // only one port is previewed: another service's compose port would be waited for and routed to for nothing
  for (const s of services) if (s !== target && s.port) delete s.port;
  target.port = portNumber;
  // a keep-alive serves nothing by itself: the port answers once something started in it listens
  if (target.command === KEEP_ALIVE) target.portOptional = true;
  const attrs = data.portsAttributes ?? {};
  const labelText = (attrs[String(first)] ?? attrs[String(portNumber)] ?? attrs[`${target.name}:${portNumber}`])?.label;
  plan.push(
    `preview: port ${portNumber} of ${target.name}${labelText ? `, labelled "${labelText}"` : ''} (the first of forwardPorts)` +
      (target.portOptional ? '; the start does not wait for it: it answers once something in the container listens on it (a postStartCommand, or you in the IDE)' : ''),
  );
  // "service:port" of another compose service: that service's own public URL (issue 16: BERTH_URL_<SERVICE>)
  const notPreviewed: (string | number)[] = [];
  for (const more of ports.slice(1)) {
    const [name, text] = typeof more === 'string' && more.includes(':') ? more.split(':') : [undefined, String(more)];
    const other = name ? services.find((s) => s.name === name && s !== target && !s.port && !s.oneShot) : undefined;
    // a database's or cache's port (5432, 6379…) is forwarded for a client in the IDE, not for a browser
    if (!other || !(Number(text) >= 1 && Number(text) <= 65535) || NOT_WEB_PORTS.has(Number(text))) {
      notPreviewed.push(more);
      continue;
    }
    other.port = Number(text);
    other.portOptional = true;
    plan.push(`URL: ${other.name} on port ${other.port} at a host of its own (${serviceUrlVariable(other.name)}), from forwardPorts`);
  }
  if (notPreviewed.length) plan.push(`not previewed: ${notPreviewed.join(', ')} (Berth previews one port, the first of forwardPorts, and one per other service named as "service:port"; the others are reachable inside the workspace network)`);
  return { service: target.name, visibility: 'default', ...(labelText ? { label: labelText } : {}) };
}

type CommandValue = NonNullable<Devcontainer['postStartCommand']>;

function commandsOf(value: CommandValue | undefined, service: string, vars: Variables): LifecycleCommand[] {
  if (value === undefined) return [];
  const one = (v: string | string[]): LifecycleCommand => ({ service, command: typeof v === 'string' ? vars.apply(v) : v.map((a) => vars.apply(a)) });
  if (typeof value === 'string' || Array.isArray(value)) return [one(value)];
  // the object form: named commands, each run (one after the other here)
  return Object.values(value).map(one);
}

function lifecycleOf(doc: JsoncDocument, data: Devcontainer, service: string, vars: Variables, plan: string[]): RepoConfig['lifecycle'] | undefined {
  if (data.initializeCommand !== undefined) {
    plan.push(`ignored: initializeCommand (line ${doc.lineOf(['initializeCommand'])}) runs on the machine that starts the container; Berth never runs a repository's commands on its own host`);
  }
  const create = [...commandsOf(data.onCreateCommand, service, vars), ...commandsOf(data.postCreateCommand, service, vars)];
  const update = commandsOf(data.updateContentCommand, service, vars);
  const start = commandsOf(data.postStartCommand, service, vars);
  const attach = commandsOf(data.postAttachCommand, service, vars);
  const said: string[] = [];
  if (create.length) said.push('onCreateCommand/postCreateCommand on the first start of a disk');
  if (update.length) said.push('updateContentCommand after each new commit');
  if (start.length) said.push('postStartCommand on every start');
  if (attach.length) said.push('postAttachCommand when the IDE opens');
  if (!said.length) return undefined;
  plan.push(`runs in ${service}: ${said.join('; ')}`);
  return { ...(create.length ? { create } : {}), ...(update.length ? { update } : {}), ...(start.length ? { start } : {}), ...(attach.length ? { attach } : {}) };
}

function vscodeOf(data: Devcontainer, vsixFiles: string[], plan: string[]): RepoConfig['vscode'] | undefined {
  const v = data.customizations?.vscode;
  if (!v || (!v.extensions?.length && !v.settings)) return undefined;
  const extensions = v.extensions ?? [];
  const vsix: string[] = [];
  const missing: string[] = [];
  for (const id of extensions) {
    // `-publisher.name` in the spec removes an extension a feature added: nothing to do here
    if (id.startsWith('-')) continue;
    const file = vsixFiles.find((f) => {
      const base = posix.basename(f).toLowerCase();
      return base === `${id.toLowerCase()}.vsix` || (base.startsWith(`${id.toLowerCase()}-`) && base.endsWith('.vsix'));
    });
    if (file) vsix.push(file);
    else missing.push(id);
  }
  if (vsix.length) plan.push(`VS Code extensions installed from the repository: ${vsix.join(', ')}`);
  if (missing.length) {
    plan.push(
      `VS Code extensions not installed: ${missing.join(', ')}. The IDE installs extensions from the marketplace, which this Berth cannot reach; commit an extension's .vsix file (named <publisher.name>-<version>.vsix) next to the devcontainer.json to have it installed`,
    );
  }
  if (v.settings && Object.keys(v.settings).length) plan.push(`VS Code settings applied in the IDE: ${Object.keys(v.settings).join(', ')}`);
  return { extensions, settings: v.settings ?? {}, ...(vsix.length ? { vsix } : {}) };
}

function ignoredKeys(doc: JsoncDocument, data: Devcontainer, plan: string[]): void {
  const features = Object.keys(data.features ?? {});
  if (features.length) {
    plan.push(
      `features not installed (line ${doc.lineOf(['features'])}): ${features.join(', ')}. Features are downloaded from a container registry, which this Berth cannot reach; install these tools in the Dockerfile instead. Everything else runs`,
    );
  }
  for (const key of Object.keys(data)) {
    if (HANDLED.has(key)) continue;
    plan.push(`ignored: ${key} (line ${doc.lineOf([key])}): ${IGNORED_WHY[key] ?? 'not something Berth uses'}`);
  }
  for (const key of Object.keys(data.customizations ?? {})) {
    if (key !== 'vscode') plan.push(`ignored: customizations.${key} (line ${doc.lineOf(['customizations', key])}): Berth's IDE is VS Code`);
  }
}

/** devcontainer.json's `${…}` variables, as far as a workspace on a server can give them values */
class Variables {
  private folder = DEFAULT_WORKSPACE_FOLDER;
  private readonly missing = new Set<string>();
  constructor(private readonly repoName: string) {}

  setFolder(folder: string) {
    this.folder = folder;
  }

  apply(text: string): string {
    return text.replace(/\$\{([A-Za-z]+)(?::([^}:]*))?(?::([^}]*))?\}/g, (whole, kind: string, name?: string, fallback?: string) => {
      switch (kind) {
        case 'localEnv':
          // the variables of the machine that opens the container: a server has none to give
          this.missing.add(`\${localEnv:${name ?? ''}}`);
          return fallback ?? '';
        case 'containerWorkspaceFolder':
          return this.folder;
        case 'containerWorkspaceFolderBasename':
          return posix.basename(this.folder);
        case 'localWorkspaceFolder':
          this.missing.add('${localWorkspaceFolder}');
          return this.folder;
        case 'localWorkspaceFolderBasename':
          return this.repoName;
        case 'devcontainerId':
          return this.repoName;
        default:
          return whole;
      }
    });
  }

  notes(): string[] {
    if (!this.missing.size) return [];
    return [
      `not available: ${[...this.missing].join(', ')}. They are the values of the machine that opens the container, which a Berth workspace does not have: ${'${localEnv:…}'} is its default (or empty), ${'${localWorkspaceFolder}'} the workspace folder`,
    ];
  }
}
