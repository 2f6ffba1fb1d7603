import { posix } from 'node:path';
import { LineCounter, parseDocument, isMap, type Node } from 'yaml';
import { z } from 'zod';
import { parseDuration } from './config.js';
import { RepoConfigError } from './errors.js';
import { NAME_PATTERN, SECRET_REFERENCE } from './variables/layers.js';

/** The repository's `.github/berth.yml`, see design.md "Repository config". */
export const CONFIG_PATH = '.github/berth.yml';

export interface ServiceSpec {
  name: string;
  build?: { context: string; dockerfile: string; target?: string; args: Record<string, string> };
  image?: string;
  port?: number;
  /** run with `sh -c` inside the container; undefined = the image's CMD */
  command?: string;
  migrate?: string;
  seed?: string;
  health?: string;
  /**
   * Values may hold `${{ secrets.NAME }}` references (berth.yml's form; the compose reader turns
   * compose's `${NAME}` into it): the start fills them from the repository's variables
   * (lib/variables), never the build, so no value is stored with the build or baked into an image.
   */
  env: Record<string, string>;
  data?: string;

  // ---- what compose and devcontainer.json can say beyond berth.yml (all optional: a berth.yml
  // service leaves them unset and runs as before) ----

  /** exec form, replaces the image's ENTRYPOINT ([] clears it) */
  entrypoint?: string[];
  /** exec form of the command (compose's list form); `command` (sh -c) wins when both are set */
  args?: string[];
  workingDir?: string;
  /** `uid[:gid]` or a user name of the image */
  user?: string;
  /** a container health check (compose `healthcheck`): exec form, durations in ms */
  healthcheck?: { test: string[]; intervalMs?: number; timeoutMs?: number; retries?: number; startPeriodMs?: number };
  /** services to wait for before this one starts, and for what */
  dependsOn?: Record<string, 'service_started' | 'service_healthy' | 'service_completed_successfully'>;
  /** named volumes, kept on the workspace's disk (each its own Docker volume of the workspace) */
  volumes?: { name: string; target: string; readOnly?: boolean }[];
  /**
   * where the repository checkout (the workspace disk's /workspace) is mounted in this service
   * (compose `.:/app`); unset = /workspace for services built from the repository, none for images
   */
  checkoutMount?: string;
  /** runs once to completion before the services that depend on it (a compose migration service) */
  oneShot?: boolean;
  /**
   * the start does not wait for `port` to answer: a devcontainer that runs a keep-alive serves
   * its forwarded port only once something started in it listens (postStartCommand, the IDE)
   */
  portOptional?: boolean;
}

/** A command a devcontainer.json runs at a point of the workspace's life, in a service's container. */
export interface LifecycleCommand {
  service: string;
  /** a shell command (sh -c), or exec form */
  command: string | string[];
}

export interface RepoConfig {
  source: 'berth.yml' | 'Dockerfile' | 'compose' | 'devcontainer';
  /** the file the configuration came from, for messages (e.g. `compose.yaml`) */
  file?: string;
  services: ServiceSpec[];
  /** visibility `default`: private for a private repository, public for a public one (previewIsPrivate) */
  preview: { service: string; visibility: PreviewVisibility; label?: string };
  /** `warm`: how many stopped, prepared workspaces of the default branch to keep for new branches (0–10; lib/warm-pool.ts) */
  workspace: { ide: 'vscode' | 'vim' | 'emacs' | 'terminal'; idleTimeoutMs?: number; warm?: number; hostLabels?: string[] };
  /** variables that must have a value (berth.yml `required:`, compose `${X:?}`); the build fails listing the missing ones */
  required?: string[];
  /** devcontainer.json lifecycle commands */
  lifecycle?: {
    /** first start of a disk (onCreateCommand, then postCreateCommand) */
    create?: LifecycleCommand[];
    /** every new commit checked out (updateContentCommand) */
    update?: LifecycleCommand[];
    /** every start (postStartCommand) */
    start?: LifecycleCommand[];
    /** when someone opens the IDE (postAttachCommand) */
    attach?: LifecycleCommand[];
  };
  /** VS Code extensions and settings for the IDE (devcontainer customizations.vscode) */
  vscode?: {
    extensions: string[];
    settings: Record<string, unknown>;
    /** repository paths of the .vsix files of `extensions` the repository holds (installed from the checkout) */
    vsix?: string[];
  };
  /**
   * what Berth derived from compose or devcontainer.json, one line each, shown in the check run:
   * services, the previewed one and its port, migrate/seed, and what was ignored and why
   */
  plan?: string[];
}

export type PreviewVisibility = 'public' | 'private' | 'default';

/**
 * Whether a preview needs sign-in (read access). A private repository's preview is private
 * unless its berth.yml says `visibility: public`: its code and data are not for everyone just
 * because nobody thought of the setting. A public repository's preview is public by default.
 */
export function previewIsPrivate(preview: { visibility: PreviewVisibility }, repositoryPrivate: boolean): boolean {
  return preview.visibility === 'private' || (preview.visibility === 'default' && repositoryPrivate);
}

const serviceName = z.string().regex(/^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$/, 'service names are lower-case letters, digits and hyphens (they become host names)');
const relPath = z
  .string()
  .min(1)
  .refine((p) => !posix.isAbsolute(p) && !posix.normalize(p).startsWith('..'), 'must be a path inside the repository');
/**
 * An `image:` names an image from a registry (or one the operator provides). Berth's own builds
 * (`berth/<slug>/<service>:<commit>`) hold other workspaces' code, so they are never a service's
 * image, and neither is a bare image ID; the runtime refuses IDs of Berth's builds too.
 */
export const imageRef = z
  .string()
  .min(1)
  .refine((ref) => !/^berth\//i.test(ref), 'berth/… images are the builds of workspaces; name an image from a registry, or use build: for this repository\'s own Dockerfile')
  .refine((ref) => !/^(sha256:)?[0-9a-f]{64}$/i.test(ref), 'an image ID is not an image name; name an image such as postgres:16 (pin it with name@sha256:<digest>)');
const envValue = z.union([z.string(), z.number(), z.boolean()]).transform(String);

const serviceSchema = z
  .object({
    build: z
      .union([
        relPath,
        z
          .object({
            context: relPath.default('.'),
            dockerfile: z.string().min(1).optional(),
            target: z.string().min(1).optional(),
            args: z.record(z.string(), envValue).default({}),
          })
          .strict(),
      ])
      .optional(),
    image: imageRef.optional(),
    port: z.number().int().min(1).max(65535).optional(),
    command: z.string().min(1).optional(),
    migrate: z.string().min(1).optional(),
    seed: z.string().min(1).optional(),
    health: z.string().startsWith('/', 'a health check is a path such as /health').optional(),
    env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'not a valid environment variable name'), envValue).default({}),
    data: z.string().startsWith('/', 'data must be an absolute path inside the container').optional(),
  })
  .strict()
  .refine((s) => Boolean(s.build) !== Boolean(s.image), { message: 'a service needs exactly one of build or image' });

/** a label of BERTH_HOST_LABELS (lib/config.ts) */
export const HOST_LABEL = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

const fileSchema = z
  .object({
    services: z.record(serviceName, serviceSchema).refine((s) => Object.keys(s).length > 0, 'at least one service is needed'),
    preview: z
      .union([
        serviceName,
        z.object({ service: serviceName, visibility: z.enum(['public', 'private']).optional() }).strict(),
      ])
      .optional(),
    workspace: z
      .object({
        ide: z.enum(['vscode', 'vim', 'emacs', 'terminal']).default('vscode'),
        idle_timeout: z
          .union([z.string().regex(/^\d+(ms|s|m|h)?$/, 'expected a duration like 30m'), z.number().int().positive()])
          .optional(),
        // a warm pool's members are whole workspaces (disk, images kept): a handful at most
        warm: z.number({ error: 'expected a number of workspaces from 0 to 10' }).int('expected a whole number of workspaces').min(0, 'warm cannot be negative').max(10, 'at most 10 warm workspaces per repository').optional(),
        // issue 18: only hosts with every one of these labels (BERTH_HOST_LABELS) take the workspace
        host_labels: z.array(z.string({ error: 'a host label is a word such as gpu' }).regex(HOST_LABEL, 'a host label is letters, digits, . _ or - (e.g. gpu)'), { error: 'expected a list of host labels, e.g. [gpu]' }).max(10, 'at most 10 host labels').optional(),
      })
      .strict()
      .default({ ide: 'vscode' }),
    _extends: z.string().optional(),
    /** variables that must have a value for a build (lib/variables): names only, never values */
    required: z.array(z.string().regex(NAME_PATTERN, 'a required variable is a name such as API_KEY')).optional(),
  })
  .strict();

/** Line (1-based) of the deepest node of `path` that exists in the document. */
function lineOf(doc: ReturnType<typeof parseDocument>, counter: LineCounter, path: PropertyKey[]): number | undefined {
  for (let n = path.length; n >= 0; n--) {
    const node = doc.getIn(path.slice(0, n) as unknown[], true) as Node | undefined;
    if (node && typeof node === 'object' && node.range) return counter.linePos(node.range[0]).line;
    // a missing key: point at the map that should hold it
  }
  return undefined;
}

/** Parses berth.yml text; every problem is a RepoConfigError with file, line and reason. */
export function parseRepoConfig(text: string, file = CONFIG_PATH): RepoConfig {
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const line = counter.linePos(e.pos[0]).line;
    throw new RepoConfigError(file, line, `invalid YAML: ${e.message.split('\n')[0]}`);
  }
  if (!isMap(doc.contents)) throw new RepoConfigError(file, 1, 'expected a mapping with a `services` key');
  const parsed = fileSchema.safeParse(doc.toJS());
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const keys = issue.code === 'unrecognized_keys' ? issue.keys : [];
    const path = keys.length ? [...issue.path, keys[0]!] : issue.path;
    const where = path.length ? `${path.join('.')}: ` : '';
    const reason = issue.code === 'unrecognized_keys' ? `unknown key "${keys.join('", "')}"` : issue.message;
    throw new RepoConfigError(file, lineOf(doc, counter, path), `${where}${reason}`);
  }
  return normalise(parsed.data, (path, reason) => new RepoConfigError(file, lineOf(doc, counter, path), reason));
}

function normalise(
  data: z.infer<typeof fileSchema>,
  error: (path: PropertyKey[], reason: string) => RepoConfigError,
): RepoConfig {
  const services: ServiceSpec[] = Object.entries(data.services).map(([name, s]) => {
    const build =
      s.build === undefined
        ? undefined
        : typeof s.build === 'string'
          ? { context: s.build, dockerfile: 'Dockerfile', args: {} }
          : { context: s.build.context, dockerfile: s.build.dockerfile ?? 'Dockerfile', target: s.build.target, args: s.build.args };
    return { name, build, image: s.image, port: s.port, command: s.command, migrate: s.migrate, seed: s.seed, health: s.health, env: s.env, data: s.data };
  });
  const preview =
    data.preview === undefined
      ? { service: services.find((s) => s.port)?.name ?? services[0]!.name, visibility: 'default' as const }
      : typeof data.preview === 'string'
        ? { service: data.preview, visibility: 'default' as const }
        : { service: data.preview.service, visibility: data.preview.visibility ?? ('default' as const) };
  const target = services.find((s) => s.name === preview.service);
  if (!target) throw error(['preview'], `preview: no service named "${preview.service}"`);
  if (!target.port) throw error(['services', target.name], `services.${target.name}: the preview service needs a port`);
  checkReferences(data, error);
  const idle = data.workspace.idle_timeout;
  return {
    source: 'berth.yml',
    services,
    preview,
    ...(data.required?.length ? { required: [...new Set(data.required)] } : {}),
    workspace: {
      ide: data.workspace.ide,
      idleTimeoutMs: idle === undefined ? undefined : typeof idle === 'number' ? idle * 1000 : parseDuration(idle),
      ...(data.workspace.warm !== undefined ? { warm: data.workspace.warm } : {}),
      ...(data.workspace.host_labels?.length ? { hostLabels: [...new Set(data.workspace.host_labels.map((l) => l.toLowerCase()))] } : {}),
    },
  };
}

/**
 * `${{ secrets.NAME }}` is the one expression env values may hold (the start fills it in); any
 * other `${{ … }}` is a typo that would otherwise reach the app as text. Build args never hold
 * one: secrets reach running services only, never `docker build`.
 */
function checkReferences(data: z.infer<typeof fileSchema>, error: (path: PropertyKey[], reason: string) => RepoConfigError) {
  for (const [name, s] of Object.entries(data.services)) {
    for (const [key, value] of Object.entries(s.env)) {
      if (value.replace(SECRET_REFERENCE, '').includes('${{')) {
        throw error(['services', name, 'env', key], `services.${name}.env.${key}: only \`\${{ secrets.NAME }}\` may stand in \`\${{ }}\` (NAME: letters, digits and _)`);
      }
    }
    const args = s.build && typeof s.build === 'object' ? s.build.args : {};
    for (const [key, value] of Object.entries(args)) {
      if (value.includes('${{')) {
        throw error(['services', name, 'build', 'args', key], `services.${name}.build.args.${key}: secrets never reach a build; give the value to the running service in env instead`);
      }
    }
  }
}

/** No berth.yml but a root Dockerfile: one service, port from EXPOSE (else 3000), the image's CMD. */
export function configFromDockerfile(dockerfile: string): RepoConfig {
  const expose = /^\s*EXPOSE\s+(\d+)/im.exec(dockerfile);
  const port = expose ? Number(expose[1]) : 3000;
  return {
    source: 'Dockerfile',
    services: [{ name: 'app', build: { context: '.', dockerfile: 'Dockerfile', args: {} }, port, env: {} }],
    preview: { service: 'app', visibility: 'default' },
    workspace: { ide: 'vscode' },
  };
}
