import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { ConfigurationError } from './errors.js';

/**
 * Berth's own configuration: the environment, validated once at start by one schema.
 * Probot's variables keep Probot's names so its docs apply unchanged.
 */
const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v));

const duration = z
  .string()
  .regex(/^\d+(ms|s|m|h)?$/, 'expected a duration like 30m, 45s or 2h')
  .transform(parseDuration);

/** a time limit: zero would fail every step at once, so it must be positive */
const limit = z
  .string()
  .regex(/^\d+(ms|s|m|h)?$/, 'expected a duration like 20m, 90s or 1h')
  .transform(parseDuration)
  .refine((ms) => ms > 0, { message: 'must be longer than 0' });

export const envSchema = z.object({
  APP_ID: optionalString,
  PRIVATE_KEY: optionalString,
  PRIVATE_KEY_PATH: optionalString,
  WEBHOOK_SECRET: optionalString,
  GITHUB_CLIENT_ID: optionalString,
  GITHUB_CLIENT_SECRET: optionalString,
  GHE_HOST: optionalString,
  GHE_PROTOCOL: z.enum(['http', 'https']).default('https'),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: optionalString,
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  DATABASE_URL: optionalString.refine((v) => v === undefined || /^postgres(ql)?:\/\//.test(v), {
    message: 'must be a postgresql:// URL',
  }),
  REDIS_URL: optionalString.refine((v) => v === undefined || /^rediss?:\/\//.test(v), {
    message: 'must be a redis:// URL',
  }),
  DOCKER_HOST: optionalString,
  BERTH_URL: optionalString.refine((v) => v === undefined || URL.canParse(v), { message: 'must be a URL' }),
  BERTH_PREVIEW_DOMAIN: z
    .string()
    .regex(/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/i, 'must be a DNS name such as localhost or preview.example.com')
    .default('localhost'),
  BERTH_DATA_DIR: z.string().default('.data'),
  /**
   * as root, where the embedded PostgreSQL keeps what its `postgres` user must reach when
   * BERTH_DATA_DIR or node_modules are in a folder it cannot enter (a clone under /root)
   */
  BERTH_SYSTEM_DIR: z.string().regex(/^\//, 'must be an absolute path').default('/var/lib/berth'),
  /** key prefix of Berth's queues in Redis; lets several Berths (or test runs) share one Redis */
  BERTH_QUEUE_PREFIX: z.string().regex(/^[A-Za-z0-9_-]+$/).default('berth'),
  BERTH_ROLE: z.enum(['all', 'app', 'worker']).default('all'),
  /**
   * this worker's host (issue 18): its name on the hosts page and in `berth hosts drain`; unset =
   * the implicit host `local` of a single-machine install
   */
  BERTH_HOST_NAME: z
    .string()
    .regex(/^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$/, 'must be a short name of lower-case letters, digits and dashes, e.g. host-2')
    .default('local'),
  /** where the web process reaches this host's agent (previews, IDE, terminals of its workspaces) */
  BERTH_HOST_URL: optionalString.refine((v) => v === undefined || /^https?:\/\/[^/]+\/?$/.test(v), { message: 'must be http(s)://host[:port] with no path' }),
  /** labels of this host, comma-separated: berth.yml `workspace: { host_labels: [gpu] }` places a workspace only where all are */
  BERTH_HOST_LABELS: z
    .string()
    .optional()
    .transform((v) => [...new Set((v ?? '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean))])
    .refine((labels) => labels.every((l) => /^[a-z0-9][a-z0-9._-]{0,62}$/.test(l)), { message: 'must be labels (letters, digits, . _ -) separated by commas' }),
  /**
   * the shared secret between the web process and every host's agent (issue 18): each request to
   * an agent is signed with it; required once BERTH_HOST_URL is set, and by the web for such hosts
   */
  BERTH_HOST_SECRET: optionalString.refine((v) => v === undefined || v.length >= 32, { message: 'must be at least 32 characters (openssl rand -hex 32)' }),
  BERTH_WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(2),
  BERTH_IDLE_TIMEOUT: duration.prefault('30m'),
  BERTH_MAX_IDLE_TIMEOUT: duration.prefault('24h'),
  BERTH_MEMORY_LIMIT: z
    .string()
    .regex(/^\d+[kmg]?$/i, 'expected bytes with an optional k/m/g suffix, e.g. 1g')
    .default('2g'),
  BERTH_CPU_LIMIT: z.coerce.number().positive().default(1),
  BERTH_HEALTH_TIMEOUT: limit.prefault('120s'),
  /**
   * Time limits: nothing a repository runs may hold a worker for ever. A step past its limit is
   * killed and fails its build or start with that reason.
   */
  /** one service's `docker build` */
  BERTH_BUILD_TIMEOUT: limit.prefault('20m'),
  /** pulling an `image:` service's image */
  BERTH_PULL_TIMEOUT: limit.prefault('10m'),
  /** one `migrate` or `seed` command */
  BERTH_TASK_TIMEOUT: limit.prefault('10m'),
  /** VS Code (code-server) answering after its container started */
  BERTH_IDE_TIMEOUT: limit.prefault('60s'),
  /** processes (and threads) one workspace container may run at once: a fork bomb stops there */
  BERTH_PIDS_LIMIT: z.coerce.number().int().min(64, 'must be at least 64 (a dev server with a file watcher uses dozens)').default(1024),
  /** running workspaces at once, in total and per repository; the least recently used one is stopped to make room */
  BERTH_MAX_RUNNING: z.coerce.number().int().min(1).default(20),
  BERTH_MAX_RUNNING_PER_REPO: z.coerce.number().int().min(1).default(5),
  /** how often the idle reaper runs (it stops workspaces idle past their timeout) */
  BERTH_REAP_INTERVAL: duration.prefault('15s'),
  BERTH_RECONCILE_INTERVAL: duration.prefault('60s'),
  /**
   * how long a stopping service gets between SIGTERM and SIGKILL; every container of a
   * workspace stops at once, so this is about how long a stop takes at most
   */
  BERTH_STOP_GRACE: duration.prefault('2s'),
  /**
   * how long a request to a stopped or starting workspace's preview is held while it wakes,
   * to be answered by the app; past it, a 503 with Retry-After (a browser: the waiting page)
   */
  /**
   * on: nginx (Debian's nginx-light) in front of Berth's port, serving running workspaces' hosts
   * straight from their containers (app/gateway/native-front.ts); off (the default until its
   * known gaps are closed, see README), or nginx missing: Berth's Node gateway serves them
   */
  BERTH_NATIVE_PROXY: z
    .string()
    .regex(/^(on|off)$/i, 'expected on or off')
    .default('off')
    .transform((v) => v.toLowerCase() === 'on'),
  BERTH_WAKE_HOLD: limit.prefault('30s'),
  /**
   * a browser navigation (Accept: text/html) is held this long at most, then gets the waiting
   * page with the live step (which reloads itself): a blank tab that spins for half a minute looks broken
   */
  BERTH_WAKE_PAGE_AFTER: duration.prefault('5s'),
  /** delete stopped workspaces older than this; unset = keep them */
  BERTH_STOPPED_MAX_AGE: duration.optional(),
  /** how often the reconciler asks GitHub whether a stopped workspace's branch still exists (deleted when not) */
  BERTH_BRANCH_CHECK_INTERVAL: duration.prefault('10m'),
  /**
   * BullMQ job lock: a job whose worker died (no lock renewal) is taken over by another worker
   * after about this long, up to twice as long (BullMQ's lockDuration and stalledInterval)
   */
  BERTH_JOB_LOCK_TIMEOUT: duration.prefault('30s'),
  /**
   * the port of Berth's SSH server (`ssh <slug>@<host> -p <port>`, desktop IDEs); 0 or `off`
   * turns it off
   */
  BERTH_SSH_PORT: z
    .string()
    .regex(/^(\d{1,5}|off)$/i, 'expected a port number, or off')
    .transform((v) => (v.toLowerCase() === 'off' ? 0 : Number(v)))
    .refine((n) => n <= 65535, { message: 'must be at most 65535' })
    .prefault('2222'),
  /**
   * the key that encrypts variables and secrets (lib/variables/crypto.ts): 32 random bytes as 64
   * hex characters or base64 (`openssl rand -base64 32`); unset = a random one kept in
   * BERTH_DATA_DIR/secrets-key. Every process of one Berth needs the same key.
   */
  BERTH_SECRETS_KEY: optionalString.refine((v) => v === undefined || isSecretsKey(v), { message: 'must be 32 bytes as 64 hex characters or base64 (openssl rand -base64 32)' }),
  /** earlier BERTH_SECRETS_KEYs, comma-separated: values written with them stay readable after a rotation */
  BERTH_SECRETS_KEY_OLD: optionalString.refine((v) => v === undefined || v.split(',').every((k) => isSecretsKey(k.trim())), {
    message: 'must be keys like BERTH_SECRETS_KEY, separated by commas',
  }),
  /**
   * Berth's URL as workspace containers reach it (git's credential helper in terminals asks it
   * for the person's token); unset = the gateway address of the workspace's network on the port
   * Berth listens on (Berth and the Docker engine on one host)
   */
  BERTH_WORKSPACE_URL: optionalString.refine((v) => v === undefined || /^https?:\/\/[^/]+\/?$/.test(v), { message: 'must be http(s)://host[:port] with no path' }),
  /** key that signs sign-in cookies; unset = a random one kept in BERTH_DATA_DIR/session-secret */
  BERTH_SESSION_SECRET: optionalString.refine((v) => v === undefined || v.length >= 32, { message: 'must be at least 32 characters' }),
  /** where scripts/install-code-server.sh put code-server (the `vscode` IDE); default BERTH_DATA_DIR/code-server */
  BERTH_CODE_SERVER_DIR: optionalString,
  /** GET /metrics answers a request carrying `Authorization: Bearer <this>`; unset = only signed-in admins */
  BERTH_METRICS_TOKEN: optionalString.refine((v) => v === undefined || v.length >= 16, { message: 'must be at least 16 characters' }),
  /** GitHub logins of Berth's administrators, comma-separated: signed in, they may read /metrics */
  BERTH_ADMINS: z
    .string()
    .optional()
    .transform((v) => (v ?? '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean))
    .refine((logins) => logins.every((l) => /^[a-z0-9](?:[a-z0-9-]{0,38})$/.test(l)), { message: 'must be GitHub logins separated by commas' }),
});

export type Env = z.infer<typeof envSchema>;

/** 32 bytes as 64 hex characters or base64: an AES-256 key (see lib/variables/crypto.ts) */
export function isSecretsKey(text: string): boolean {
  const t = text.trim();
  if (/^[0-9a-f]{64}$/i.test(t)) return true;
  return /^[A-Za-z0-9+/_-]{43}=?$/.test(t) && Buffer.from(t, 'base64').length === 32;
}

export interface BerthConfig extends Env {
  privateKey: string | undefined;
  /** true when the GitHub App is registered (APP_ID and a key present) */
  appConfigured: boolean;
  /** base URL of GitHub's REST API */
  githubApiUrl: string;
  /** base URL of GitHub's web (OAuth, clone URLs) */
  githubWebUrl: string;
  berthUrl: string;
  memoryLimitBytes: number;
  /** absolute path of the code-server install (see BERTH_CODE_SERVER_DIR) */
  codeServerDir: string;
}

export function parseDuration(text: string): number {
  const m = /^(\d+)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new Error(`not a duration: ${text}`);
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  const factor = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[unit]!;
  return n * factor;
}

/** `600000` -> `10m`: the same words the variables are written in, for messages about a limit. */
export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

function parseBytes(text: string): number {
  const m = /^(\d+)([kmg]?)$/i.exec(text)!;
  const factor = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase()]!;
  return Number(m[1]) * factor;
}

/** Loads and validates the environment; throws a ConfigurationError naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): BerthConfig {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigurationError(`Berth's environment is invalid:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  let privateKey = e.PRIVATE_KEY?.replace(/\\n/g, '\n');
  if (!privateKey && e.PRIVATE_KEY_PATH) {
    try {
      privateKey = readFileSync(e.PRIVATE_KEY_PATH, 'utf8');
    } catch (err) {
      throw new ConfigurationError(`PRIVATE_KEY_PATH: cannot read ${e.PRIVATE_KEY_PATH} (${(err as Error).message})`);
    }
  }
  if (privateKey && !/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(privateKey)) {
    // Probot accepts base64-encoded keys; decode before judging.
    const decoded = Buffer.from(privateKey, 'base64').toString('utf8');
    if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(decoded)) privateKey = decoded;
    else throw new ConfigurationError('PRIVATE_KEY: not a PEM private key (expected "-----BEGIN RSA PRIVATE KEY-----")');
  }
  const appConfigured = Boolean(e.APP_ID && privateKey);
  if (appConfigured && !e.WEBHOOK_SECRET) {
    throw new ConfigurationError('WEBHOOK_SECRET: required once APP_ID is set, so webhook signatures can be verified');
  }
  if (e.BERTH_HOST_URL && e.BERTH_ROLE !== 'app' && !e.BERTH_HOST_SECRET) {
    throw new ConfigurationError('BERTH_HOST_SECRET: required once BERTH_HOST_URL is set: the host agent answers only requests signed with it (the same value on the web process; openssl rand -hex 32)');
  }
  const githubWebUrl = e.GHE_HOST ? `${e.GHE_PROTOCOL}://${e.GHE_HOST}` : 'https://github.com';
  const githubApiUrl = e.GHE_HOST ? `${githubWebUrl}/api/v3` : 'https://api.github.com';
  const berthUrl = (e.BERTH_URL ?? `http://localhost:${e.PORT}`).replace(/\/$/, '');
  return {
    ...e,
    privateKey,
    appConfigured,
    githubApiUrl,
    githubWebUrl,
    berthUrl,
    memoryLimitBytes: parseBytes(e.BERTH_MEMORY_LIMIT),
    codeServerDir: resolve(e.BERTH_CODE_SERVER_DIR ?? join(e.BERTH_DATA_DIR, 'code-server')),
  };
}
