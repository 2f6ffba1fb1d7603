/**
 * A fake GitHub (Enterprise Server flavoured) for Berth's tests.
 *
 * It is a real HTTP server on 127.0.0.1 (random port). Point Probot at it with
 *   GHE_HOST=<fake.host> GHE_PROTOCOL=http
 * so Octokit's baseUrl becomes `<fake.url>/api/v3`, exactly as on GHES.
 *
 * - REST endpoints Berth uses live under /api/v3 and answer with the shapes of
 *   GitHub's REST docs (@octokit/openapi), including GitHub-style errors.
 * - OAuth web flow lives under /login/oauth (not under /api/v3, as on GHES).
 * - Repositories are real bare git repositories on disk, served read-only over
 *   smart HTTP by `git http-backend` at /<owner>/<repo>.git.
 *
 * Usage notes (permission defaults, OAuth user, fault injection...): test/fakes/README.md
 */
import http from "node:http";
import crypto from "node:crypto";
import { spawn, execFile, execFileSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";

// ---------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------

export type Permission = "admin" | "maintain" | "write" | "triage" | "read" | "none";
export type AccessLevel = "read" | "write" | "admin";

export interface User {
  id: number;
  login: string;
  nodeId: string;
  type: "User" | "Organization" | "Bot";
  name: string | null;
  email: string | null;
  siteAdmin: boolean;
  createdAt: string;
}

export interface Installation {
  id: number;
  account: User;
  /** App permissions granted to this installation, e.g. { checks: 'write' } */
  permissions: Record<string, AccessLevel>;
  events: string[];
  repositorySelection: "all" | "selected";
  createdAt: string;
  suspendedAt: string | null;
}

export interface Repo {
  id: number;
  nodeId: string;
  owner: string;
  name: string;
  fullName: string;
  private: boolean;
  defaultBranch: string;
  /** null when the app is not installed on the repository (e.g. a contributor's fork) */
  installationId: number | null;
  /** http://127.0.0.1:PORT/owner/name.git */
  cloneUrl: string;
  /** http://127.0.0.1:PORT/owner/name */
  htmlUrl: string;
  /** Absolute path of the bare repository on disk */
  gitDir: string;
  fork: boolean;
  /** full name of the parent when fork */
  parent: string | null;
  createdAt: string;
  pushedAt: string | null;
}

/** Stored state of an issue / PR comment (GitHub field names). */
export interface Comment {
  id: number;
  node_id: string;
  owner: string;
  repo: string;
  issue_number: number;
  body: string;
  user: User;
  created_at: string;
  updated_at: string;
  /** true when written with an installation token (then user is `<slug>[bot]`) */
  via_app: boolean;
}

export interface Reaction {
  id: number;
  node_id: string;
  comment_id: number;
  content: ReactionContent;
  user: User;
  created_at: string;
}

export type ReactionContent = "+1" | "-1" | "laugh" | "confused" | "heart" | "hooray" | "rocket" | "eyes";

export interface CheckRunAction {
  label: string;
  description: string;
  identifier: string;
}

/** Stored state of a check run (GitHub field names + `actions`, which GitHub never returns). */
export interface CheckRun {
  id: number;
  node_id: string;
  owner: string;
  repo: string;
  name: string;
  head_sha: string;
  status: "queued" | "in_progress" | "completed" | "waiting" | "requested" | "pending";
  conclusion: string | null;
  details_url: string | null;
  external_id: string | null;
  started_at: string | null;
  completed_at: string | null;
  output: {
    title: string | null;
    summary: string | null;
    text: string | null;
    annotations: Array<Record<string, unknown>>;
    images: Array<Record<string, unknown>>;
  };
  actions: CheckRunAction[];
  check_suite: { id: number };
  created_at: string;
  updated_at: string;
  /** every body that created/updated this run, in order (handy for asserting transitions) */
  history: Array<Record<string, unknown>>;
}

export interface PullRequest {
  id: number;
  node_id: string;
  number: number;
  owner: string;
  repo: string;
  title: string;
  body: string | null;
  state: "open" | "closed";
  draft: boolean;
  merged: boolean;
  user: User;
  /** repo: full name of the head repository (differs from the base repo for forks) */
  head: { ref: string; sha: string; repo: string };
  base: { ref: string; sha: string };
  created_at: string;
  updated_at: string;
  closed_at: string | null;
  merged_at: string | null;
}

export interface RecordedRequest {
  method: string;
  /** raw (still percent-encoded) path without the query string, e.g. /api/v3/repos/o/r/branches/feat%2Fx */
  path: string;
  query: Record<string, string>;
  /** lower-cased header names */
  headers: Record<string, string>;
  /** parsed JSON (or form) body; undefined when there was none (and for git traffic) */
  body: unknown;
  /** response status (0 while the response has not started) */
  status: number;
  /** matched route in openapi form, e.g. "GET /repos/{owner}/{repo}/pulls/{pull_number}"; undefined when unknown */
  route?: string;
  /** parsed JSON response body (when JSON) */
  responseBody?: unknown;
  at: string;
}

export interface PullRequestInit {
  number?: number;
  /** head branch name */
  head: string;
  /** head sha; defaults to the tip of `head` in the head repository */
  headSha?: string;
  /** "owner/name" of the head repository for PRs from forks (must exist in the fake) */
  headRepo?: string;
  /** base branch, default: the repository's default branch */
  base?: string;
  /** author login (created if unknown); default: head repo owner */
  user?: string;
  title?: string;
  body?: string | null;
  draft?: boolean;
  state?: "open" | "closed";
}

export interface FakeGitHubOptions {
  appId?: number;
  appSlug?: string;
  appName?: string;
  /** permissions of the app (and default for installations) */
  permissions?: Record<string, AccessLevel>;
  events?: string[];
  /** installation token lifetime, default 1 h */
  tokenTtlMs?: number;
  /** When true (default), POST check-runs with a head_sha that is not a commit of the repo answers 422 like GitHub. */
  validateCheckRunSha?: boolean;
  /** Log each request to stderr */
  verbose?: boolean;
  /**
   * The address to listen on, default 127.0.0.1. Workspaces that must reach the fake (a
   * `git push` from a workspace's terminal) need one their containers can reach: the host's
   * address on a Docker bridge (`dockerBridgeAddress()` in test/helpers/docker-bridge.ts).
   * `url`, `host` and clone URLs use it; the fake answers on 127.0.0.1 (same port) as well.
   */
  listenHost?: string;
  /**
   * Lifetime of OAuth user tokens. Unset: they never expire (an App with expiring user tokens
   * turned off). Set: the token response carries `expires_in`, a `refresh_token` and
   * `refresh_token_expires_in`, and `grant_type=refresh_token` trades a refresh token (once) for
   * a new pair, as GitHub does for Apps with expiring user tokens.
   */
  userTokenTtlMs?: number;
}

/** One `git push` the fake accepted (git-receive-pack over HTTP with a user's token). */
export interface RecordedPush {
  owner: string;
  repo: string;
  /** the user whose token pushed */
  login: string;
  /** refs that moved: `before` is the zero sha for a new ref, `after` for a deleted one */
  updates: Array<{ ref: string; before: string; after: string }>;
  at: string;
}

export interface FakeGitHub {
  url: string;
  host: string;
  apiUrl: string;
  appId: number;
  appSlug: string;
  appName: string;
  /** PKCS#1 PEM ("BEGIN RSA PRIVATE KEY"), like the keys GitHub hands out */
  privateKey: string;
  publicKey: string;
  webhookSecret: string;
  clientId: string;
  clientSecret: string;
  /** the app's bot user, `<slug>[bot]` */
  botUser: User;
  requests: RecordedRequest[];
  clearRequests(): void;
  /** Absolute path of the directory that holds the bare repositories (GIT_PROJECT_ROOT) */
  reposRoot: string;

  addUser(login: string, opts?: { id?: number; type?: "User" | "Organization"; name?: string; email?: string; siteAdmin?: boolean }): User;
  getUser(login: string): User | undefined;
  addInstallation(
    account: { login: string; id?: number; type?: "User" | "Organization" },
    opts?: { id?: number; permissions?: Record<string, AccessLevel>; events?: string[]; repositorySelection?: "all" | "selected" },
  ): Installation;
  getInstallation(id: number): Installation | undefined;
  suspendInstallation(id: number, suspended?: boolean): void;
  removeInstallation(id: number): void;
  createRepo(
    owner: string,
    name: string,
    opts?: { installationId?: number | null; private?: boolean; defaultBranch?: string; forkOf?: string; id?: number },
  ): Repo;
  getRepo(owner: string, name: string): Repo | undefined;
  listRepos(): Repo[];
  listUsers(): User[];
  /** move a repository into / out of an installation */
  setRepoInstallation(owner: string, name: string, installationId: number | null): void;
  pushFiles(
    owner: string,
    name: string,
    branch: string,
    /** `{ symlink: target }` commits a symbolic link (mode 120000) */
    files: Record<string, string | Uint8Array | { symlink: string } | null>,
    message?: string,
    opts?: { from?: string; author?: { name: string; email: string } },
  ): Promise<string>;
  deleteBranch(owner: string, name: string, branch: string): Promise<void>;
  /** sha of a branch tip (or any rev), null when unknown */
  resolveRef(owner: string, name: string, ref: string): Promise<string | null>;
  commitInfo(owner: string, name: string, sha: string): CommitInfo | null;
  setPermission(owner: string, repo: string, login: string, permission: Permission): void;
  /** effective permission as the permission endpoint reports it (role name) */
  getPermission(owner: string, repo: string, login: string): Permission;

  issueComments(owner: string, repo: string, issueNumber: number): Comment[];
  /** add a comment as a human user (e.g. a slash command) */
  addComment(owner: string, repo: string, issueNumber: number, login: string, body: string): Comment;
  checkRuns(owner: string, repo: string, sha?: string): CheckRun[];
  getCheckRun(id: number): CheckRun | undefined;
  reactions(owner: string, repo: string, commentId: number): Reaction[];
  createPullRequest(owner: string, repo: string, init: PullRequestInit): PullRequest;
  updatePullRequest(
    owner: string,
    repo: string,
    number: number,
    patch: Partial<{ state: "open" | "closed"; merged: boolean; title: string; body: string | null; draft: boolean; headSha: string; base: string }>,
  ): PullRequest;
  getPullRequest(owner: string, repo: string, number: number): PullRequest | undefined;
  pullRequests(owner: string, repo: string): PullRequest[];

  /** a public SSH key on a user's account (`ssh-ed25519 AAAA… comment`), listed by GET /users/{u}/keys */
  addSshKey(login: string, publicKey: string): void;
  /** OAuth: who "signs in" at /login/oauth/authorize. null = the user denies access. */
  setOAuthUser(login: string | null): void;
  /** Mint a user-to-server token directly (skips the web flow) */
  mintUserToken(login: string): string;
  /** Expire every user token minted so far (their refresh tokens stay valid) */
  expireUserTokens(): void;
  /** Refresh tokens traded so far (`grant_type=refresh_token`), in order: who refreshed */
  refreshes: string[];
  /** Pushes accepted over git smart HTTP, oldest first (all repositories, or one) */
  pushes(owner?: string, repo?: string): RecordedPush[];
  /** Mint an installation token directly (what POST /app/installations/{id}/access_tokens does) */
  mintInstallationToken(installationId: number, opts?: { repositoryIds?: number[]; permissions?: Record<string, AccessLevel> }): { token: string; expiresAt: string };
  /** Expire every installation token minted so far (simulates the 1 h expiry) */
  expireInstallationTokens(): void;
  /** Sign an app JWT with the fake app's key (for tests calling /app endpoints by hand) */
  appJwt(opts?: { iat?: number; exp?: number; iss?: string | number }): string;

  /**
   * Fault injection: the next `times` (default 1) requests whose method matches (or '*')
   * and whose raw path (incl. /api/v3) matches `pathPattern` answer `status` with a GitHub-style body.
   */
  failNext(method: string, pathPattern: RegExp, status: number, times?: number, opts?: { body?: unknown; headers?: Record<string, string> }): void;

  /** GitHub-shaped JSON of the fake's objects (used by the webhook payload builders) */
  json: {
    user(login: string): Record<string, any>;
    repository(owner: string, name: string): Record<string, any>;
    installation(id: number): Record<string, any>;
    app(): Record<string, any>;
    checkRun(id: number): Record<string, any>;
    comment(id: number): Record<string, any>;
    pullRequest(owner: string, repo: string, number: number): Record<string, any>;
  };

  close(): Promise<void>;
}

export interface CommitInfo {
  sha: string;
  tree: string;
  parents: string[];
  message: string;
  author: { name: string; email: string; date: string };
  committer: { name: string; email: string; date: string };
  added: string[];
  removed: string[];
  modified: string[];
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

const GHES_VERSION = "3.19";
const DOCS = `https://docs.github.com/enterprise-server@${GHES_VERSION}/rest`;
const ZERO_SHA = "0000000000000000000000000000000000000000";
const REACTIONS: ReactionContent[] = ["+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"];
const LEVEL_RANK: Record<string, number> = { none: 0, read: 1, write: 2, admin: 3 };
const ROLE_RANK: Record<Permission, number> = { none: 0, read: 1, triage: 2, write: 3, maintain: 4, admin: 5 };

const DEFAULT_PERMISSIONS: Record<string, AccessLevel> = {
  metadata: "read",
  contents: "read",
  checks: "write",
  issues: "write",
  pull_requests: "write",
  statuses: "write",
  members: "read",
};
const DEFAULT_EVENTS = ["push", "pull_request", "issue_comment", "check_run", "check_suite", "create", "delete"];

function isoNow(ms = Date.now()): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

function toIso(date: string): string {
  const d = new Date(date);
  return Number.isNaN(d.getTime()) ? date : isoNow(d.getTime());
}

function nodeId(kind: string, id: number | string): string {
  return Buffer.from(`0${kind.length}:${kind}${id}`).toString("base64");
}

function randomToken(prefix: string): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  const bytes = crypto.randomBytes(36);
  let s = prefix;
  for (const b of bytes) s += alphabet[b % alphabet.length];
  return s;
}

function cleanGitEnv(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith("GIT_")) env[k] = v;
  }
  env.HOME = home;
  env.GIT_CONFIG_NOSYSTEM = "1";
  env.GIT_CONFIG_GLOBAL = "/dev/null";
  env.GIT_TERMINAL_PROMPT = "0";
  env.LC_ALL = "C";
  return env;
}

class HttpError extends Error {
  constructor(
    public status: number,
    message: string,
    public extra: Record<string, unknown> = {},
    public headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

function validationFailed(resource: string, field: string, code = "invalid", message?: string): HttpError {
  const err: Record<string, unknown> = { resource, code, field };
  if (message) err.message = message;
  return new HttpError(422, "Validation Failed", { errors: [err] });
}

function invalidRequest(detail: string): HttpError {
  return new HttpError(422, `Invalid request.\n\n${detail}`);
}

function assertString(v: unknown, name: string, opts: { required?: boolean; max?: number } = {}): void {
  if (v === undefined || v === null) {
    if (opts.required) throw invalidRequest(`"${name}" wasn't supplied.`);
    return;
  }
  if (typeof v !== "string") throw invalidRequest(`For '${name}', ${JSON.stringify(v)} is not a string.`);
  if (opts.max !== undefined && v.length > opts.max) {
    throw invalidRequest(`For '${name}', ${JSON.stringify(v.length > 80 ? v.slice(0, 80) + "..." : v)} is too long (maximum is ${opts.max} characters).`);
  }
}

function assertEnum(v: unknown, name: string, values: readonly string[]): void {
  if (v === undefined) return;
  if (typeof v !== "string" || !values.includes(v)) {
    throw invalidRequest(`For '${name}', ${JSON.stringify(v)} is not a member of ${JSON.stringify(values)}.`);
  }
}

function assertDate(v: unknown, name: string): void {
  if (v === undefined || v === null) return;
  if (typeof v !== "string" || Number.isNaN(new Date(v).getTime())) {
    throw invalidRequest(`For '${name}', ${JSON.stringify(v)} is not a valid date-time.`);
  }
}

interface TokenRecord {
  token: string;
  kind: "installation" | "user";
  installationId?: number;
  login?: string;
  expiresAt: number | null;
  permissions?: Record<string, AccessLevel>;
  repositoryIds?: number[] | null;
}

type Principal =
  | { kind: "app" }
  | { kind: "installation"; token: TokenRecord; installation: Installation }
  | { kind: "user"; token: TokenRecord; user: User };

interface Ctx {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  rec: RecordedRequest;
  method: string;
  path: string; // raw path, without /api/v3
  query: Record<string, string>;
  params: Record<string, string>;
  body: any;
  principal: Principal | null;
}

interface Reply {
  status?: number;
  body?: unknown;
  raw?: string | Buffer;
  contentType?: string;
  headers?: Record<string, string>;
}

type AuthKind = "app" | "installation" | "repo" | "user";

interface Route {
  method: string;
  template: string;
  regex: RegExp;
  names: string[];
  auth: AuthKind;
  handler: (ctx: Ctx) => Reply | Promise<Reply>;
}

function compileRoute(template: string): { regex: RegExp; names: string[] } {
  const names: string[] = [];
  const re = template.replace(/[.]/g, "\\.").replace(/\{(\w+)(\+?)\}/g, (_m, name: string, plus: string) => {
    names.push(name);
    return plus ? "(.+)" : "([^/]+)";
  });
  return { regex: new RegExp(`^${re}$`), names };
}

// ---------------------------------------------------------------------------
// startFakeGitHub
// ---------------------------------------------------------------------------

export async function startFakeGitHub(opts: FakeGitHubOptions = {}): Promise<FakeGitHub> {
  const appId = opts.appId ?? 4242;
  const appSlug = opts.appSlug ?? "berth-test";
  const appName = opts.appName ?? "Berth Test";
  const appPermissions: Record<string, AccessLevel> = { ...(opts.permissions ?? DEFAULT_PERMISSIONS) };
  const appEvents = [...(opts.events ?? DEFAULT_EVENTS)];
  const tokenTtlMs = opts.tokenTtlMs ?? 60 * 60 * 1000;
  const userTokenTtlMs = opts.userTokenTtlMs;
  const refreshTokens = new Map<string, { login: string; expiresAt: number; used: boolean }>();
  const refreshes: string[] = [];
  const pushLog: RecordedPush[] = [];
  const validateCheckRunSha = opts.validateCheckRunSha ?? true;

  const { privateKey, publicKey } = crypto.generateKeyPairSync("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs1", format: "pem" },
  });
  const publicKeyObject = crypto.createPublicKey(publicKey);
  const webhookSecret = crypto.randomBytes(20).toString("hex");
  const clientId = `Iv1.${crypto.randomBytes(8).toString("hex")}`;
  const clientSecret = crypto.randomBytes(20).toString("hex");

  const root = await fsp.mkdtemp(path.join(os.tmpdir(), "fake-github-"));
  const reposRoot = path.join(root, "repos");
  const homeDir = path.join(root, "home");
  const workRoot = path.join(root, "work");
  await Promise.all([fsp.mkdir(reposRoot), fsp.mkdir(homeDir), fsp.mkdir(workRoot)]);
  const gitEnv = cleanGitEnv(homeDir);
  const appCreatedAt = isoNow();

  // ---- state ----
  const counters = { user: 1000, repo: 500000, installation: 70000, comment: 900000, checkRun: 3000000, checkSuite: 4000000, reaction: 20000, pull: 80000000 };
  const users = new Map<string, User>(); // lower login -> user
  const installations = new Map<number, Installation>();
  const repos = new Map<string, Repo>(); // lower full name -> repo
  const perms = new Map<string, Map<string, Permission>>(); // repo key -> lower login -> permission
  const tokens = new Map<string, TokenRecord>();
  const sshKeys = new Map<string, Array<{ id: number; key: string; created_at: string }>>(); // lower login -> keys
  const comments = new Map<number, Comment>();
  const reactionsById = new Map<number, Reaction>();
  const checkRunsById = new Map<number, CheckRun>();
  const checkSuites = new Map<string, number>();
  const pulls = new Map<string, Map<number, PullRequest>>();
  const issueCounters = new Map<string, number>();
  const oauthCodes = new Map<string, { login: string; redirectUri: string | null; expiresAt: number; used: boolean }>();
  let oauthUser: string | null | undefined = undefined;
  const faults: Array<{ method: string; pattern: RegExp; status: number; remaining: number; body?: unknown; headers?: Record<string, string> }> = [];
  const requests: RecordedRequest[] = [];
  const children = new Set<ChildProcess>();
  const repoLocks = new Map<string, Promise<unknown>>();
  let closed = false;

  let url = ""; // filled after listen
  let apiUrl = "";

  const keyOf = (owner: string, name: string) => `${owner}/${name}`.toLowerCase();

  // ---- users ----
  function addUser(login: string, o: { id?: number; type?: "User" | "Organization" | "Bot"; name?: string; email?: string; siteAdmin?: boolean } = {}): User {
    const existing = users.get(login.toLowerCase());
    if (existing) return existing;
    const id = o.id ?? ++counters.user;
    const type = o.type ?? "User";
    const user: User = {
      id,
      login,
      nodeId: nodeId(type === "Organization" ? "Organization" : type === "Bot" ? "Bot" : "User", id),
      type,
      name: o.name ?? null,
      email: o.email ?? null,
      siteAdmin: o.siteAdmin ?? false,
      createdAt: isoNow(),
    };
    users.set(login.toLowerCase(), user);
    return user;
  }
  const botUser = addUser(`${appSlug}[bot]`, { id: 9_000_000 + appId, type: "Bot" });
  const appOwner = addUser("berth-admin", { name: "Berth Admin" });

  // ---- git helpers ----
  function runGit(args: string[], o: { cwd?: string; input?: Buffer | string; env?: NodeJS.ProcessEnv } = {}): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const child = execFile(
        "git",
        args,
        { cwd: o.cwd, env: { ...gitEnv, ...o.env }, encoding: "buffer", maxBuffer: 512 * 1024 * 1024 },
        (err, stdout, stderr) => {
          children.delete(child);
          if (err) {
            reject(new Error(`git ${args.join(" ")} failed: ${err.message}\n${stderr.toString()}`));
          } else resolve(stdout);
        },
      );
      children.add(child);
      if (o.input !== undefined) child.stdin!.end(o.input);
    });
  }
  function gitSync(args: string[], cwd?: string): string {
    return execFileSync("git", args, { cwd, env: gitEnv, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  }
  function safeRev(rev: string): boolean {
    return rev.length > 0 && !rev.startsWith("-") && !/[\0\s]/.test(rev);
  }
  async function resolveCommit(repo: Repo, rev: string): Promise<string | null> {
    if (!safeRev(rev)) return null;
    try {
      return (await runGit(["--git-dir", repo.gitDir, "rev-parse", "--verify", "--quiet", "--end-of-options", `${rev}^{commit}`])).toString().trim() || null;
    } catch {
      return null;
    }
  }
  function resolveCommitSync(repo: Repo, rev: string): string | null {
    if (!safeRev(rev)) return null;
    try {
      return gitSync(["--git-dir", repo.gitDir, "rev-parse", "--verify", "--quiet", "--end-of-options", `${rev}^{commit}`]).trim() || null;
    } catch {
      return null;
    }
  }
  /** Resolve a ref the way the REST API does: sha, branch, tag, heads/x, refs/heads/x */
  async function resolveApiRef(repo: Repo, ref: string): Promise<string | null> {
    if (!safeRev(ref)) return null;
    if (ref.startsWith("refs/")) return resolveCommit(repo, ref);
    for (const candidate of [`refs/heads/${ref}`, `refs/tags/${ref}`, `refs/${ref}`]) {
      const sha = await resolveCommit(repo, candidate);
      if (sha) return sha;
    }
    if (/^[0-9a-f]{7,40}$/i.test(ref)) return resolveCommit(repo, ref);
    return null;
  }

  function parseCommit(repo: Repo, out: string, sha: string): CommitInfo {
    const [full, tree, parents, an, ae, ad, cn, ce, cd, ...msg] = out.split("\0");
    const info: CommitInfo = {
      sha: full || sha,
      tree,
      parents: parents ? parents.split(" ").filter(Boolean) : [],
      author: { name: an, email: ae, date: toIso(ad) },
      committer: { name: cn, email: ce, date: toIso(cd) },
      message: msg.join("\0").replace(/\n+$/, ""),
      added: [],
      removed: [],
      modified: [],
    };
    void repo;
    return info;
  }
  const COMMIT_FORMAT = "--format=%H%x00%T%x00%P%x00%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI%x00%B";
  function addChanges(info: CommitInfo, diff: string): void {
    const parts = diff.split("\0").filter((s) => s !== "");
    for (let i = 0; i + 1 < parts.length; i += 2) {
      const status = parts[i][0];
      const file = parts[i + 1];
      if (status === "A") info.added.push(file);
      else if (status === "D") info.removed.push(file);
      else info.modified.push(file);
    }
  }
  function commitInfoSync(repo: Repo, sha: string): CommitInfo | null {
    const resolved = resolveCommitSync(repo, sha);
    if (!resolved) return null;
    const info = parseCommit(repo, gitSync(["--git-dir", repo.gitDir, "show", "-s", COMMIT_FORMAT, resolved]), resolved);
    addChanges(info, gitSync(["--git-dir", repo.gitDir, "diff-tree", "--no-commit-id", "-r", "--root", "--name-status", "-z", resolved]));
    return info;
  }
  async function commitInfo(repo: Repo, sha: string): Promise<CommitInfo | null> {
    const resolved = await resolveCommit(repo, sha);
    if (!resolved) return null;
    const out = (await runGit(["--git-dir", repo.gitDir, "show", "-s", COMMIT_FORMAT, resolved])).toString();
    const info = parseCommit(repo, out, resolved);
    addChanges(info, (await runGit(["--git-dir", repo.gitDir, "diff-tree", "--no-commit-id", "-r", "--root", "--name-status", "-z", resolved])).toString());
    return info;
  }

  function withRepoLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = repoLocks.get(key) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    repoLocks.set(
      key,
      next.catch(() => undefined),
    );
    return next;
  }

  // ---- lookups ----
  function findRepo(owner: string, name: string): Repo | undefined {
    return repos.get(keyOf(owner, name));
  }
  function repoUser(repo: Repo): User {
    return users.get(repo.owner.toLowerCase()) ?? addUser(repo.owner);
  }
  function userPermission(repo: Repo, login: string): Permission {
    const explicit = perms.get(keyOf(repo.owner, repo.name))?.get(login.toLowerCase());
    if (explicit) return explicit;
    const owner = users.get(repo.owner.toLowerCase());
    if (owner && owner.type === "User" && owner.login.toLowerCase() === login.toLowerCase()) return "admin";
    return repo.private ? "none" : "read";
  }
  function hasExplicitAccess(repo: Repo, login: string): boolean {
    const p = perms.get(keyOf(repo.owner, repo.name))?.get(login.toLowerCase());
    return !!p && p !== "none";
  }
  function authorAssociation(repo: Repo, user: User): string {
    if (user.type === "Bot") return "NONE";
    if (user.login.toLowerCase() === repo.owner.toLowerCase()) return "OWNER";
    if (hasExplicitAccess(repo, user.login)) return "COLLABORATOR";
    return "NONE";
  }

  // ---- JSON builders ----
  function userJson(u: User): Record<string, any> {
    const base = `${apiUrl}/users/${encodeURIComponent(u.login)}`;
    const orgBase = `${apiUrl}/orgs/${encodeURIComponent(u.login)}`;
    return {
      login: u.login,
      id: u.id,
      node_id: u.nodeId,
      avatar_url: `${url}/avatars/u/${u.id}?v=4`,
      gravatar_id: "",
      url: u.type === "Organization" ? orgBase : base,
      html_url: u.type === "Bot" ? `${url}/apps/${appSlug}` : `${url}/${u.login}`,
      followers_url: `${base}/followers`,
      following_url: `${base}/following{/other_user}`,
      gists_url: `${base}/gists{/gist_id}`,
      starred_url: `${base}/starred{/owner}{/repo}`,
      subscriptions_url: `${base}/subscriptions`,
      organizations_url: `${base}/orgs`,
      repos_url: u.type === "Organization" ? `${orgBase}/repos` : `${base}/repos`,
      events_url: u.type === "Organization" ? `${orgBase}/events` : `${base}/events{/privacy}`,
      received_events_url: `${base}/received_events`,
      type: u.type,
      user_view_type: "public",
      site_admin: u.siteAdmin,
    };
  }
  function privateUserJson(u: User): Record<string, any> {
    return {
      ...userJson(u),
      name: u.name,
      company: null,
      blog: "",
      location: null,
      email: u.email,
      hireable: null,
      bio: null,
      twitter_username: null,
      public_repos: [...repos.values()].filter((r) => r.owner.toLowerCase() === u.login.toLowerCase() && !r.private).length,
      public_gists: 0,
      followers: 0,
      following: 0,
      created_at: u.createdAt,
      updated_at: u.createdAt,
      private_gists: 0,
      total_private_repos: 0,
      owned_private_repos: 0,
      disk_usage: 0,
      collaborators: 0,
      two_factor_authentication: false,
      plan: { name: "enterprise", space: 976562499, collaborators: 0, private_repos: 9999 },
    };
  }
  function repoPermissionsFor(repo: Repo, principal: Principal | null): Record<string, boolean> | undefined {
    if (!principal) return undefined;
    if (principal.kind === "user") {
      const rank = ROLE_RANK[userPermission(repo, principal.user.login)];
      return { admin: rank >= 5, maintain: rank >= 4, push: rank >= 3, triage: rank >= 2, pull: rank >= 1 };
    }
    return undefined;
  }
  function repoJson(repo: Repo, principal: Principal | null = null): Record<string, any> {
    const a = `${apiUrl}/repos/${repo.owner}/${repo.name}`;
    const h = `${url}/${repo.owner}/${repo.name}`;
    const ts = repo.createdAt;
    const openIssues = [...(pulls.get(keyOf(repo.owner, repo.name))?.values() ?? [])].filter((p) => p.state === "open").length;
    const json: Record<string, any> = {
      id: repo.id,
      node_id: repo.nodeId,
      name: repo.name,
      full_name: repo.fullName,
      private: repo.private,
      owner: userJson(repoUser(repo)),
      html_url: h,
      description: null,
      fork: repo.fork,
      url: a,
      archive_url: `${a}/{archive_format}{/ref}`,
      assignees_url: `${a}/assignees{/user}`,
      blobs_url: `${a}/git/blobs{/sha}`,
      branches_url: `${a}/branches{/branch}`,
      collaborators_url: `${a}/collaborators{/collaborator}`,
      comments_url: `${a}/comments{/number}`,
      commits_url: `${a}/commits{/sha}`,
      compare_url: `${a}/compare/{base}...{head}`,
      contents_url: `${a}/contents/{+path}`,
      contributors_url: `${a}/contributors`,
      deployments_url: `${a}/deployments`,
      downloads_url: `${a}/downloads`,
      events_url: `${a}/events`,
      forks_url: `${a}/forks`,
      git_commits_url: `${a}/git/commits{/sha}`,
      git_refs_url: `${a}/git/refs{/sha}`,
      git_tags_url: `${a}/git/tags{/sha}`,
      git_url: `git://${host}/${repo.owner}/${repo.name}.git`,
      issue_comment_url: `${a}/issues/comments{/number}`,
      issue_events_url: `${a}/issues/events{/number}`,
      issues_url: `${a}/issues{/number}`,
      keys_url: `${a}/keys{/key_id}`,
      labels_url: `${a}/labels{/name}`,
      languages_url: `${a}/languages`,
      merges_url: `${a}/merges`,
      milestones_url: `${a}/milestones{/number}`,
      notifications_url: `${a}/notifications{?since,all,participating}`,
      pulls_url: `${a}/pulls{/number}`,
      releases_url: `${a}/releases{/id}`,
      ssh_url: `git@${host.split(":")[0]}:${repo.owner}/${repo.name}.git`,
      stargazers_url: `${a}/stargazers`,
      statuses_url: `${a}/statuses/{sha}`,
      subscribers_url: `${a}/subscribers`,
      subscription_url: `${a}/subscription`,
      tags_url: `${a}/tags`,
      teams_url: `${a}/teams`,
      trees_url: `${a}/git/trees{/sha}`,
      clone_url: repo.cloneUrl,
      mirror_url: null,
      hooks_url: `${a}/hooks`,
      svn_url: h,
      homepage: null,
      language: null,
      forks_count: 0,
      stargazers_count: 0,
      watchers_count: 0,
      size: 0,
      default_branch: repo.defaultBranch,
      open_issues_count: openIssues,
      is_template: false,
      topics: [],
      has_issues: true,
      has_projects: true,
      has_wiki: true,
      has_pages: false,
      has_downloads: true,
      has_discussions: false,
      archived: false,
      disabled: false,
      visibility: repo.private ? "private" : "public",
      pushed_at: repo.pushedAt ?? ts,
      created_at: ts,
      updated_at: repo.pushedAt ?? ts,
      allow_rebase_merge: true,
      allow_squash_merge: true,
      allow_merge_commit: true,
      allow_auto_merge: false,
      delete_branch_on_merge: false,
      allow_forking: true,
      web_commit_signoff_required: false,
      license: null,
      forks: 0,
      open_issues: openIssues,
      watchers: 0,
      network_count: 0,
      subscribers_count: 0,
    };
    const p = repoPermissionsFor(repo, principal);
    if (p) json.permissions = p;
    if (repo.fork && repo.parent) {
      const parent = repos.get(repo.parent.toLowerCase());
      if (parent) {
        const pj = repoJson(parent);
        json.parent = pj;
        json.source = pj;
      }
    }
    return json;
  }
  function appJson(): Record<string, any> {
    return {
      id: appId,
      slug: appSlug,
      node_id: nodeId("Integration", appId),
      client_id: clientId,
      owner: userJson(appOwner),
      name: appName,
      description: "Berth test app (fake GitHub)",
      external_url: `${url}/berth`,
      html_url: `${url}/apps/${appSlug}`,
      created_at: appCreatedAt,
      updated_at: appCreatedAt,
      permissions: { ...appPermissions },
      events: [...appEvents],
      installations_count: installations.size,
    };
  }
  function installationJson(inst: Installation): Record<string, any> {
    return {
      id: inst.id,
      client_id: clientId,
      account: userJson(inst.account),
      repository_selection: inst.repositorySelection,
      access_tokens_url: `${apiUrl}/app/installations/${inst.id}/access_tokens`,
      repositories_url: `${apiUrl}/installation/repositories`,
      html_url: inst.account.type === "Organization" ? `${url}/organizations/${inst.account.login}/settings/installations/${inst.id}` : `${url}/settings/installations/${inst.id}`,
      app_id: appId,
      app_slug: appSlug,
      target_id: inst.account.id,
      target_type: inst.account.type,
      permissions: { ...inst.permissions },
      events: [...inst.events],
      created_at: inst.createdAt,
      updated_at: inst.createdAt,
      single_file_name: null,
      has_multiple_single_files: false,
      single_file_paths: [],
      suspended_by: inst.suspendedAt ? userJson(appOwner) : null,
      suspended_at: inst.suspendedAt,
    };
  }
  function reactionRollup(subjectUrl: string, commentId: number): Record<string, any> {
    const list = [...reactionsById.values()].filter((r) => r.comment_id === commentId);
    const rollup: Record<string, any> = { url: `${subjectUrl}/reactions`, total_count: list.length };
    for (const c of REACTIONS) rollup[c] = list.filter((r) => r.content === c).length;
    return rollup;
  }
  function isPullNumber(owner: string, repo: string, n: number): boolean {
    return pulls.get(keyOf(owner, repo))?.has(n) ?? false;
  }
  function commentJson(c: Comment): Record<string, any> {
    const repo = findRepo(c.owner, c.repo)!;
    const a = `${apiUrl}/repos/${repo.owner}/${repo.name}`;
    const selfUrl = `${a}/issues/comments/${c.id}`;
    const kind = isPullNumber(c.owner, c.repo, c.issue_number) ? "pull" : "issues";
    return {
      id: c.id,
      node_id: c.node_id,
      url: selfUrl,
      html_url: `${url}/${repo.owner}/${repo.name}/${kind}/${c.issue_number}#issuecomment-${c.id}`,
      body: c.body,
      user: userJson(c.user),
      created_at: c.created_at,
      updated_at: c.updated_at,
      issue_url: `${a}/issues/${c.issue_number}`,
      author_association: authorAssociation(repo, c.user),
      performed_via_github_app: c.via_app ? appJson() : null,
      reactions: reactionRollup(selfUrl, c.id),
    };
  }
  function reactionJson(r: Reaction): Record<string, any> {
    return { id: r.id, node_id: r.node_id, user: userJson(r.user), content: r.content, created_at: r.created_at };
  }
  function prMini(pr: PullRequest): Record<string, any> {
    const base = findRepo(pr.owner, pr.repo)!;
    const head = repos.get(pr.head.repo.toLowerCase());
    const mini = (r: Repo | undefined) => (r ? { id: r.id, url: `${apiUrl}/repos/${r.owner}/${r.name}`, name: r.name } : null);
    return {
      url: `${apiUrl}/repos/${base.owner}/${base.name}/pulls/${pr.number}`,
      id: pr.id,
      number: pr.number,
      head: { ref: pr.head.ref, sha: pr.head.sha, repo: mini(head) },
      base: { ref: pr.base.ref, sha: pr.base.sha, repo: mini(base) },
    };
  }
  function checkRunJson(cr: CheckRun): Record<string, any> {
    const a = `${apiUrl}/repos/${cr.owner}/${cr.repo}`;
    const prs = [...(pulls.get(keyOf(cr.owner, cr.repo))?.values() ?? [])].filter(
      (p) => p.state === "open" && p.head.sha === cr.head_sha && p.head.repo.toLowerCase() === keyOf(cr.owner, cr.repo),
    );
    return {
      id: cr.id,
      head_sha: cr.head_sha,
      node_id: cr.node_id,
      external_id: cr.external_id ?? "",
      url: `${a}/check-runs/${cr.id}`,
      html_url: `${url}/${cr.owner}/${cr.repo}/runs/${cr.id}`,
      details_url: cr.details_url ?? appJson().external_url,
      status: cr.status,
      conclusion: cr.conclusion,
      started_at: cr.started_at,
      completed_at: cr.completed_at,
      output: {
        title: cr.output.title,
        summary: cr.output.summary,
        text: cr.output.text,
        annotations_count: cr.output.annotations.length,
        annotations_url: `${a}/check-runs/${cr.id}/annotations`,
      },
      name: cr.name,
      check_suite: { id: cr.check_suite.id },
      app: appJson(),
      pull_requests: prs.map(prMini),
    };
  }
  function pullJson(pr: PullRequest): Record<string, any> {
    const baseRepo = findRepo(pr.owner, pr.repo)!;
    const headRepo = repos.get(pr.head.repo.toLowerCase()) ?? null;
    const a = `${apiUrl}/repos/${baseRepo.owner}/${baseRepo.name}`;
    const h = `${url}/${baseRepo.owner}/${baseRepo.name}`;
    const selfUrl = `${a}/pulls/${pr.number}`;
    const headOwner = headRepo ? repoUser(headRepo) : pr.user;
    const nComments = [...comments.values()].filter((c) => keyOf(c.owner, c.repo) === keyOf(pr.owner, pr.repo) && c.issue_number === pr.number).length;
    return {
      url: selfUrl,
      id: pr.id,
      node_id: pr.node_id,
      html_url: `${h}/pull/${pr.number}`,
      diff_url: `${h}/pull/${pr.number}.diff`,
      patch_url: `${h}/pull/${pr.number}.patch`,
      issue_url: `${a}/issues/${pr.number}`,
      commits_url: `${selfUrl}/commits`,
      review_comments_url: `${selfUrl}/comments`,
      review_comment_url: `${a}/pulls/comments{/number}`,
      comments_url: `${a}/issues/${pr.number}/comments`,
      statuses_url: `${a}/statuses/${pr.head.sha}`,
      number: pr.number,
      state: pr.state,
      locked: false,
      title: pr.title,
      user: userJson(pr.user),
      body: pr.body,
      labels: [],
      milestone: null,
      active_lock_reason: null,
      created_at: pr.created_at,
      updated_at: pr.updated_at,
      closed_at: pr.closed_at,
      merged_at: pr.merged_at,
      merge_commit_sha: null,
      assignee: null,
      assignees: [],
      requested_reviewers: [],
      requested_teams: [],
      head: {
        label: `${headOwner.login}:${pr.head.ref}`,
        ref: pr.head.ref,
        sha: pr.head.sha,
        user: userJson(headOwner),
        repo: headRepo ? repoJson(headRepo) : null,
      },
      base: {
        label: `${baseRepo.owner}:${pr.base.ref}`,
        ref: pr.base.ref,
        sha: pr.base.sha,
        user: userJson(repoUser(baseRepo)),
        repo: repoJson(baseRepo),
      },
      _links: {
        self: { href: selfUrl },
        html: { href: `${h}/pull/${pr.number}` },
        issue: { href: `${a}/issues/${pr.number}` },
        comments: { href: `${a}/issues/${pr.number}/comments` },
        review_comments: { href: `${selfUrl}/comments` },
        review_comment: { href: `${a}/pulls/comments{/number}` },
        commits: { href: `${selfUrl}/commits` },
        statuses: { href: `${a}/statuses/${pr.head.sha}` },
      },
      author_association: authorAssociation(baseRepo, pr.user),
      auto_merge: null,
      draft: pr.draft,
      merged: pr.merged,
      mergeable: pr.state === "open" ? true : null,
      rebaseable: pr.state === "open" ? true : null,
      mergeable_state: pr.state === "open" ? "clean" : "unknown",
      merged_by: null,
      comments: nComments,
      review_comments: 0,
      maintainer_can_modify: false,
      commits: 1,
      additions: 0,
      deletions: 0,
      changed_files: 0,
    };
  }
  function commitJson(repo: Repo, info: CommitInfo): Record<string, any> {
    const a = `${apiUrl}/repos/${repo.owner}/${repo.name}`;
    const h = `${url}/${repo.owner}/${repo.name}`;
    const byEmail = (email: string) => [...users.values()].find((u) => u.email && u.email.toLowerCase() === email.toLowerCase());
    const au = byEmail(info.author.email);
    const cu = byEmail(info.committer.email);
    return {
      sha: info.sha,
      node_id: nodeId("Commit", `${repo.id}:${info.sha}`),
      url: `${a}/commits/${info.sha}`,
      html_url: `${h}/commit/${info.sha}`,
      comments_url: `${a}/commits/${info.sha}/comments`,
      commit: {
        author: info.author,
        committer: info.committer,
        message: info.message,
        tree: { sha: info.tree, url: `${a}/git/trees/${info.tree}` },
        url: `${a}/git/commits/${info.sha}`,
        comment_count: 0,
        verification: { verified: false, reason: "unsigned", signature: null, payload: null, verified_at: null },
      },
      author: au ? userJson(au) : null,
      committer: cu ? userJson(cu) : null,
      parents: info.parents.map((p) => ({ sha: p, url: `${a}/commits/${p}`, html_url: `${h}/commit/${p}` })),
    };
  }

  // ---- tokens & auth ----
  function mintInstallationToken(installationId: number, o: { repositoryIds?: number[]; permissions?: Record<string, AccessLevel> } = {}) {
    const inst = installations.get(installationId);
    if (!inst) throw new Error(`fake github: no installation ${installationId}`);
    const token = randomToken("ghs_");
    const expiresAt = Date.now() + tokenTtlMs;
    tokens.set(token, {
      token,
      kind: "installation",
      installationId,
      expiresAt,
      permissions: { ...(o.permissions ?? inst.permissions) },
      repositoryIds: o.repositoryIds ?? null,
    });
    return { token, expiresAt: isoNow(expiresAt) };
  }
  function mintUserToken(login: string): string {
    const user = users.get(login.toLowerCase()) ?? addUser(login);
    const token = randomToken("ghu_");
    tokens.set(token, { token, kind: "user", login: user.login, expiresAt: userTokenTtlMs === undefined ? null : Date.now() + userTokenTtlMs });
    return token;
  }
  /** the token response of the OAuth code and refresh grants */
  function userTokenResponse(login: string): Record<string, string> {
    const token = mintUserToken(login);
    if (userTokenTtlMs === undefined) return { access_token: token, token_type: "bearer", scope: "" };
    const refresh = randomToken("ghr_");
    const refreshTtlS = 15_811_200; // GitHub's six months
    refreshTokens.set(refresh, { login, expiresAt: Date.now() + refreshTtlS * 1000, used: false });
    return {
      access_token: token,
      expires_in: String(Math.floor(userTokenTtlMs / 1000)),
      refresh_token: refresh,
      refresh_token_expires_in: String(refreshTtlS),
      token_type: "bearer",
      scope: "",
    };
  }
  function signJwt(payload: Record<string, unknown>): string {
    const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
    const data = `${enc({ alg: "RS256", typ: "JWT" })}.${enc(payload)}`;
    const sig = crypto.sign("sha256", Buffer.from(data), privateKey).toString("base64url");
    return `${data}.${sig}`;
  }
  function verifyJwt(jwt: string): void {
    const fail = (msg = "A JSON web token could not be decoded") => new HttpError(401, msg);
    const parts = jwt.split(".");
    if (parts.length !== 3) throw fail();
    let header: any;
    let payload: any;
    try {
      header = JSON.parse(Buffer.from(parts[0], "base64url").toString("utf8"));
      payload = JSON.parse(Buffer.from(parts[1], "base64url").toString("utf8"));
    } catch {
      throw fail();
    }
    if (!header || header.alg !== "RS256") throw fail();
    const ok = crypto.verify("sha256", Buffer.from(`${parts[0]}.${parts[1]}`), publicKeyObject, Buffer.from(parts[2], "base64url"));
    if (!ok) throw fail();
    if (payload.iss === undefined || (String(payload.iss) !== String(appId) && payload.iss !== clientId)) {
      throw fail("'Issuer' claim ('iss') must be an Integer");
    }
    const now = Math.floor(Date.now() / 1000);
    if (typeof payload.exp !== "number" || payload.exp <= now) {
      throw fail("'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires");
    }
    if (payload.exp > now + 600 + 60) throw fail("'Expiration time' claim ('exp') is too far in the future");
    if (typeof payload.iat !== "number" || !Number.isInteger(payload.iat) || payload.iat > now + 60) {
      throw fail("'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued");
    }
  }
  function lookupToken(t: string): Principal {
    const rec = tokens.get(t);
    if (!rec) throw new HttpError(401, "Bad credentials");
    if (rec.expiresAt !== null && rec.expiresAt <= Date.now()) throw new HttpError(401, "Bad credentials");
    if (rec.kind === "installation") {
      const installation = installations.get(rec.installationId!);
      if (!installation) throw new HttpError(401, "Bad credentials");
      if (installation.suspendedAt) throw new HttpError(403, "This installation has been suspended");
      return { kind: "installation", token: rec, installation };
    }
    return { kind: "user", token: rec, user: users.get(rec.login!.toLowerCase())! };
  }
  function authenticate(req: http.IncomingMessage): Principal | null {
    const header = req.headers.authorization;
    if (!header) return null;
    const m = /^(bearer|token|basic)\s+(\S+)\s*$/i.exec(header);
    if (!m) throw new HttpError(401, "Bad credentials");
    const scheme = m[1].toLowerCase();
    let cred = m[2];
    if (scheme === "basic") {
      const decoded = Buffer.from(cred, "base64").toString("utf8");
      cred = decoded.slice(decoded.indexOf(":") + 1);
      return lookupToken(cred);
    }
    if (cred.split(".").length === 3 && cred.startsWith("ey")) {
      verifyJwt(cred);
      return { kind: "app" };
    }
    return lookupToken(cred);
  }

  function levelOk(have: string | undefined, need: "read" | "write"): boolean {
    return LEVEL_RANK[have ?? "none"] >= LEVEL_RANK[need];
  }

  interface Need {
    /** installation permission names, any of them suffices */
    perms: string[];
    level: "read" | "write";
    /** minimum role for a user token (default: read for GET, write otherwise) */
    userRole?: Permission;
    /** user tokens are refused with this message (e.g. check runs need an app) */
    userForbidden?: string;
  }
  function repoFor(ctx: Ctx, need: Need): Repo {
    const repo = findRepo(ctx.params.owner, ctx.params.repo);
    if (!repo) throw new HttpError(404, "Not Found");
    const p = ctx.principal!;
    if (p.kind === "installation") {
      const covered = repo.installationId === p.installation.id && (!p.token.repositoryIds || p.token.repositoryIds.includes(repo.id));
      if (!covered) {
        if (repo.private) throw new HttpError(404, "Not Found");
        if (need.level !== "read") throw new HttpError(403, "Resource not accessible by integration");
        return repo;
      }
      const granted = p.token.permissions ?? {};
      const ok = need.perms.length === 0 || need.perms.some((perm) => levelOk(perm === "metadata" ? "read" : granted[perm], need.level));
      if (!ok) throw new HttpError(403, "Resource not accessible by integration");
      return repo;
    }
    if (p.kind === "user") {
      const role = userPermission(repo, p.user.login);
      if (role === "none" || (repo.private && repo.installationId === null)) throw new HttpError(404, "Not Found");
      if (need.userForbidden) throw new HttpError(403, need.userForbidden);
      const min = need.userRole ?? (need.level === "read" ? "read" : "write");
      if (ROLE_RANK[role] < ROLE_RANK[min]) throw new HttpError(403, "Must have admin rights to Repository.");
      return repo;
    }
    throw new HttpError(403, "Resource not accessible by integration");
  }
  function actor(ctx: Ctx): { user: User; viaApp: boolean } {
    const p = ctx.principal!;
    if (p.kind === "user") return { user: p.user, viaApp: false };
    return { user: botUser, viaApp: true };
  }

  // ---- pagination ----
  function paginate<T>(ctx: Ctx, items: T[]): { page: T[]; headers: Record<string, string> } {
    let perPage = parseInt(ctx.query.per_page ?? "30", 10);
    if (!Number.isFinite(perPage) || perPage < 1) perPage = 30;
    perPage = Math.min(perPage, 100);
    let page = parseInt(ctx.query.page ?? "1", 10);
    if (!Number.isFinite(page) || page < 1) page = 1;
    const last = Math.max(1, Math.ceil(items.length / perPage));
    const slice = items.slice((page - 1) * perPage, page * perPage);
    const link = (p: number) => {
      const q = new URLSearchParams({ ...ctx.query, per_page: String(perPage), page: String(p) });
      return `<${apiUrl}${ctx.path}?${q.toString()}>`;
    };
    const rels: string[] = [];
    if (page > 1) rels.push(`${link(page - 1)}; rel="prev"`);
    if (page < last) rels.push(`${link(page + 1)}; rel="next"`);
    if (page < last) rels.push(`${link(last)}; rel="last"`);
    if (page > 1) rels.push(`${link(1)}; rel="first"`);
    return { page: slice, headers: rels.length ? { link: rels.join(", ") } : {} };
  }
  function intParam(v: string): number {
    if (!/^\d+$/.test(v)) throw new HttpError(404, "Not Found");
    return parseInt(v, 10);
  }

  // ---- check runs ----
  const CHECK_STATUSES = ["queued", "in_progress", "completed", "waiting", "requested", "pending"] as const;
  const CHECK_CONCLUSIONS = ["action_required", "cancelled", "failure", "neutral", "success", "skipped", "stale", "timed_out"] as const;
  function validateCheckRunBody(b: any, creating: boolean): void {
    if (b === null || typeof b !== "object" || Array.isArray(b)) throw new HttpError(400, "Problems parsing JSON");
    assertString(b.name, "name", { required: creating });
    if (creating) assertString(b.head_sha, "head_sha", { required: true });
    assertString(b.details_url, "details_url");
    assertString(b.external_id, "external_id");
    assertEnum(b.status, "status", ["queued", "in_progress", "completed", ...(creating ? [] : ["waiting", "requested", "pending"])]);
    if (b.conclusion !== undefined && b.conclusion !== null) {
      assertEnum(b.conclusion, "conclusion", CHECK_CONCLUSIONS);
      if (b.conclusion === "stale") throw invalidRequest("For 'conclusion', \"stale\" can only be set by GitHub.");
    }
    assertDate(b.started_at, "started_at");
    assertDate(b.completed_at, "completed_at");
    if (b.output !== undefined && b.output !== null) {
      const o = b.output;
      if (typeof o !== "object" || Array.isArray(o)) throw invalidRequest(`For 'properties/output', ${JSON.stringify(o)} is not an object.`);
      if (creating) assertString(o.title, "output.title", { required: true });
      else assertString(o.title, "output.title");
      assertString(o.summary, "output.summary", { required: true, max: 65535 });
      assertString(o.text, "output.text", { max: 65535 });
      if (o.annotations !== undefined) {
        if (!Array.isArray(o.annotations)) throw invalidRequest("For 'output.annotations', value is not an array.");
        if (o.annotations.length > 50) throw invalidRequest("For 'output.annotations', is too long (maximum is 50 elements).");
        for (const an of o.annotations) {
          for (const f of ["path", "annotation_level", "message"]) assertString(an?.[f], `annotations.${f}`, { required: true });
          if (typeof an.start_line !== "number" || typeof an.end_line !== "number") throw invalidRequest(`"start_line" and "end_line" are required for annotations.`);
          assertEnum(an.annotation_level, "annotation_level", ["notice", "warning", "failure"]);
        }
      }
    }
    if (b.actions !== undefined) {
      if (!Array.isArray(b.actions)) throw invalidRequest("For 'actions', value is not an array.");
      if (b.actions.length > 3) throw invalidRequest(`For 'actions', ${JSON.stringify(b.actions).slice(0, 80)}... is too long (maximum is 3 elements).`);
      for (const act of b.actions) {
        if (!act || typeof act !== "object") throw invalidRequest("For 'actions', items must be objects.");
        assertString(act.label, "label", { required: true, max: 20 });
        assertString(act.description, "description", { required: true, max: 40 });
        assertString(act.identifier, "identifier", { required: true, max: 20 });
      }
    }
    const status = b.status;
    if (creating && status === "completed" && (b.conclusion === undefined || b.conclusion === null)) {
      throw invalidRequest(`"conclusion" wasn't supplied.`);
    }
    if (creating && b.completed_at && (b.conclusion === undefined || b.conclusion === null)) {
      throw invalidRequest(`"conclusion" wasn't supplied.`);
    }
    if (b.conclusion === "action_required" && !b.details_url && creating) {
      throw invalidRequest(`"details_url" wasn't supplied. It is required when conclusion is "action_required".`);
    }
  }
  function applyCheckRunBody(cr: CheckRun, b: any, creating: boolean): void {
    const now = isoNow();
    if (b.name !== undefined) cr.name = b.name;
    if (b.details_url !== undefined) cr.details_url = b.details_url;
    if (b.external_id !== undefined) cr.external_id = b.external_id;
    if (b.started_at !== undefined) cr.started_at = b.started_at === null ? null : toIso(b.started_at);
    if (b.actions !== undefined) cr.actions = b.actions.map((x: any) => ({ label: x.label, description: x.description, identifier: x.identifier }));
    if (b.output) {
      if (b.output.title !== undefined) cr.output.title = b.output.title;
      if (b.output.summary !== undefined) cr.output.summary = b.output.summary;
      if (b.output.text !== undefined) cr.output.text = b.output.text;
      if (Array.isArray(b.output.annotations)) cr.output.annotations.push(...b.output.annotations);
      if (Array.isArray(b.output.images)) cr.output.images = b.output.images;
    }
    const hasConclusion = b.conclusion !== undefined && b.conclusion !== null;
    if (hasConclusion) {
      cr.conclusion = b.conclusion;
      cr.status = "completed";
      cr.completed_at = b.completed_at ? toIso(b.completed_at) : cr.completed_at ?? now;
    } else if (b.status !== undefined) {
      if (b.status === "completed") {
        if (!cr.conclusion) throw invalidRequest(`"conclusion" wasn't supplied.`);
        cr.status = "completed";
        cr.completed_at = b.completed_at ? toIso(b.completed_at) : cr.completed_at ?? now;
      } else {
        cr.status = b.status;
        cr.conclusion = null;
        cr.completed_at = null;
      }
    } else if (b.completed_at) {
      if (!cr.conclusion) throw invalidRequest(`"conclusion" wasn't supplied.`);
      cr.completed_at = toIso(b.completed_at);
    }
    if (cr.status === "in_progress" && !cr.started_at) cr.started_at = now;
    if (creating && !cr.started_at) cr.started_at = now;
    if (cr.conclusion === "action_required" && !cr.details_url) throw invalidRequest(`"details_url" is required when conclusion is "action_required".`);
    cr.updated_at = now;
    cr.history.push(structuredClone(b));
  }

  // ---- routes ----
  const routes: Route[] = [];
  function route(method: string, template: string, auth: AuthKind, handler: Route["handler"]): void {
    routes.push({ method, template, auth, handler, ...compileRoute(template) });
  }

  // App (JWT)
  route("GET", "/app", "app", () => ({ body: appJson() }));
  route("GET", "/app/installations", "app", (ctx) => {
    const { page, headers } = paginate(ctx, [...installations.values()].sort((a, b) => a.id - b.id));
    return { body: page.map(installationJson), headers };
  });
  route("GET", "/app/installations/{installation_id}", "app", (ctx) => {
    const inst = installations.get(intParam(ctx.params.installation_id));
    if (!inst) throw new HttpError(404, "Not Found");
    return { body: installationJson(inst) };
  });
  route("POST", "/app/installations/{installation_id}/access_tokens", "app", (ctx) => {
    const inst = installations.get(intParam(ctx.params.installation_id));
    if (!inst) throw new HttpError(404, "Not Found");
    if (inst.suspendedAt) throw new HttpError(403, "This installation has been suspended");
    const b = ctx.body ?? {};
    if (typeof b !== "object" || Array.isArray(b)) throw new HttpError(400, "Problems parsing JSON");
    const instRepos = [...repos.values()].filter((r) => r.installationId === inst.id);
    let selected: Repo[] | null = null;
    const notAccessible = () =>
      new HttpError(422, "There is at least one repository that does not exist or is not accessible to the parent installation.");
    if (b.repositories !== undefined) {
      if (!Array.isArray(b.repositories)) throw invalidRequest("For 'repositories', value is not an array.");
      selected = b.repositories.map((n: string) => {
        const r = instRepos.find((x) => x.name.toLowerCase() === String(n).toLowerCase() || x.fullName.toLowerCase() === String(n).toLowerCase());
        if (!r) throw notAccessible();
        return r;
      });
    }
    if (b.repository_ids !== undefined) {
      if (!Array.isArray(b.repository_ids)) throw invalidRequest("For 'repository_ids', value is not an array.");
      const byId = b.repository_ids.map((id: number) => {
        const r = instRepos.find((x) => x.id === id);
        if (!r) throw notAccessible();
        return r;
      });
      selected = [...(selected ?? []), ...byId];
    }
    let permissions = { ...inst.permissions };
    if (b.permissions !== undefined) {
      if (typeof b.permissions !== "object" || b.permissions === null) throw invalidRequest("For 'permissions', value is not an object.");
      permissions = {};
      for (const [perm, level] of Object.entries(b.permissions as Record<string, string>)) {
        if (!["read", "write", "admin"].includes(level) || LEVEL_RANK[inst.permissions[perm] ?? "none"] < LEVEL_RANK[level]) {
          throw new HttpError(422, "The permissions requested are not granted to this installation.");
        }
        permissions[perm] = level as AccessLevel;
      }
    }
    const minted = mintInstallationToken(inst.id, {
      repositoryIds: selected ? [...new Set(selected.map((r) => r.id))] : undefined,
      permissions,
    });
    const body: Record<string, unknown> = {
      token: minted.token,
      expires_at: minted.expiresAt,
      permissions,
      repository_selection: selected ? "selected" : inst.repositorySelection,
    };
    if (selected) body.repositories = selected.map((r) => repoJson(r));
    return { status: 201, body };
  });
  route("GET", "/repos/{owner}/{repo}/installation", "app", (ctx) => {
    const repo = findRepo(ctx.params.owner, ctx.params.repo);
    const inst = repo?.installationId != null ? installations.get(repo.installationId) : undefined;
    if (!inst) throw new HttpError(404, "Not Found");
    return { body: installationJson(inst) };
  });
  route("GET", "/orgs/{org}/installation", "app", (ctx) => {
    const inst = [...installations.values()].find((i) => i.account.login.toLowerCase() === ctx.params.org.toLowerCase() && i.account.type === "Organization");
    if (!inst) throw new HttpError(404, "Not Found");
    return { body: installationJson(inst) };
  });
  route("GET", "/users/{username}/installation", "app", (ctx) => {
    const inst = [...installations.values()].find((i) => i.account.login.toLowerCase() === ctx.params.username.toLowerCase());
    if (!inst) throw new HttpError(404, "Not Found");
    return { body: installationJson(inst) };
  });

  // Installation token
  route("GET", "/installation/repositories", "installation", (ctx) => {
    const p = ctx.principal as Extract<Principal, { kind: "installation" }>;
    const list = [...repos.values()]
      .filter((r) => r.installationId === p.installation.id && (!p.token.repositoryIds || p.token.repositoryIds.includes(r.id)))
      .sort((a, b) => a.id - b.id);
    const { page, headers } = paginate(ctx, list);
    return {
      body: {
        total_count: list.length,
        repository_selection: p.token.repositoryIds ? "selected" : p.installation.repositorySelection,
        repositories: page.map((r) => repoJson(r)),
      },
      headers,
    };
  });

  // User token
  route("GET", "/user", "user", (ctx) => ({ body: privateUserJson((ctx.principal as Extract<Principal, { kind: "user" }>).user) }));
  function userInstallations(user: User): Installation[] {
    return [...installations.values()].filter(
      (inst) =>
        inst.account.login.toLowerCase() === user.login.toLowerCase() ||
        [...repos.values()].some((r) => r.installationId === inst.id && ROLE_RANK[userPermission(r, user.login)] >= 1),
    );
  }
  route("GET", "/user/installations", "user", (ctx) => {
    const user = (ctx.principal as Extract<Principal, { kind: "user" }>).user;
    const list = userInstallations(user);
    const { page, headers } = paginate(ctx, list);
    return { body: { total_count: list.length, installations: page.map(installationJson) }, headers };
  });
  route("GET", "/user/installations/{installation_id}/repositories", "user", (ctx) => {
    const user = (ctx.principal as Extract<Principal, { kind: "user" }>).user;
    const id = intParam(ctx.params.installation_id);
    if (!userInstallations(user).some((i) => i.id === id)) throw new HttpError(404, "Not Found");
    const list = [...repos.values()].filter((r) => r.installationId === id && ROLE_RANK[userPermission(r, user.login)] >= 1);
    const { page, headers } = paginate(ctx, list);
    return { body: { total_count: list.length, repository_selection: installations.get(id)!.repositorySelection, repositories: page.map((r) => repoJson(r, ctx.principal)) }, headers };
  });

  // Users' public SSH keys: GitHub lists them to anyone; like every endpoint here, not anonymously (GHES private mode)
  route("GET", "/users/{username}/keys", "repo", (ctx) => {
    const user = users.get(ctx.params.username.toLowerCase());
    if (!user) throw new HttpError(404, "Not Found");
    // GitHub lists the key without its comment
    const list = (sshKeys.get(user.login.toLowerCase()) ?? []).map((k) => ({ ...k, key: k.key.split(/\s+/).slice(0, 2).join(" ") }));
    const { page, headers } = paginate(ctx, list);
    return { body: page, headers };
  });

  // Repositories
  route("GET", "/repos/{owner}/{repo}", "repo", (ctx) => {
    const repo = repoFor(ctx, { perms: ["metadata"], level: "read" });
    return { body: repoJson(repo, ctx.principal) };
  });
  route("GET", "/repos/{owner}/{repo}/branches/{branch+}", "repo", async (ctx) => {
    const repo = repoFor(ctx, { perms: ["contents"], level: "read" });
    const branch = ctx.params.branch;
    const sha = safeRev(branch) ? await resolveCommit(repo, `refs/heads/${branch}`) : null;
    if (!sha) throw new HttpError(404, "Branch not found");
    const info = (await commitInfo(repo, sha))!;
    const a = `${apiUrl}/repos/${repo.owner}/${repo.name}`;
    return {
      body: {
        name: branch,
        commit: commitJson(repo, info),
        _links: { self: `${a}/branches/${encodeURIComponent(branch)}`, html: `${url}/${repo.owner}/${repo.name}/tree/${branch}` },
        protected: false,
        protection: { enabled: false, required_status_checks: { enforcement_level: "off", contexts: [], checks: [] } },
        protection_url: `${a}/branches/${encodeURIComponent(branch)}/protection`,
      },
    };
  });
  route("GET", "/repos/{owner}/{repo}/git/ref/{ref+}", "repo", async (ctx) => {
    const repo = repoFor(ctx, { perms: ["contents"], level: "read" });
    const ref = ctx.params.ref;
    if (!/^(heads|tags|pull)\//.test(ref)) throw new HttpError(404, "Not Found");
    const sha = await resolveCommit(repo, `refs/${ref}`);
    if (!sha) throw new HttpError(404, "Not Found");
    const a = `${apiUrl}/repos/${repo.owner}/${repo.name}`;
    return {
      body: {
        ref: `refs/${ref}`,
        node_id: nodeId("Ref", `${repo.id}:${ref}`),
        url: `${a}/git/refs/${ref}`,
        object: { type: "commit", sha, url: `${a}/git/commits/${sha}` },
      },
    };
  });
  function checkRunsForSha(repo: Repo, sha: string): CheckRun[] {
    return [...checkRunsById.values()].filter((c) => keyOf(c.owner, c.repo) === keyOf(repo.owner, repo.name) && c.head_sha === sha);
  }
  route("GET", "/repos/{owner}/{repo}/commits/{ref}/check-runs", "repo", async (ctx) => {
    const repo = repoFor(ctx, { perms: ["checks"], level: "read" });
    const sha = await resolveApiRef(repo, ctx.params.ref);
    if (!sha) throw new HttpError(422, `No commit found for SHA: ${ctx.params.ref}`);
    let list = checkRunsForSha(repo, sha).sort((a, b) => b.id - a.id);
    if (ctx.query.check_name) list = list.filter((c) => c.name === ctx.query.check_name);
    if (ctx.query.status) list = list.filter((c) => c.status === ctx.query.status);
    if (ctx.query.app_id) list = list.filter(() => String(appId) === ctx.query.app_id);
    if ((ctx.query.filter ?? "latest") === "latest") {
      const seen = new Set<string>();
      list = list.filter((c) => (seen.has(c.name) ? false : (seen.add(c.name), true)));
    }
    const { page, headers } = paginate(ctx, list);
    return { body: { total_count: list.length, check_runs: page.map(checkRunJson) }, headers };
  });
  route("GET", "/repos/{owner}/{repo}/commits/{ref+}", "repo", async (ctx) => {
    const repo = repoFor(ctx, { perms: ["contents"], level: "read" });
    const sha = await resolveApiRef(repo, ctx.params.ref);
    if (!sha) throw new HttpError(422, `No commit found for SHA: ${ctx.params.ref}`);
    const info = (await commitInfo(repo, sha))!;
    const json = commitJson(repo, info);
    const a = `${apiUrl}/repos/${repo.owner}/${repo.name}`;
    json.stats = { total: 0, additions: 0, deletions: 0 };
    json.files = [
      ...info.added.map((f) => ({ f, status: "added" })),
      ...info.removed.map((f) => ({ f, status: "removed" })),
      ...info.modified.map((f) => ({ f, status: "modified" })),
    ].map(({ f, status }) => ({
      sha: null,
      filename: f,
      status,
      additions: 0,
      deletions: 0,
      changes: 0,
      blob_url: `${url}/${repo.owner}/${repo.name}/blob/${sha}/${f}`,
      raw_url: `${url}/${repo.owner}/${repo.name}/raw/${sha}/${f}`,
      contents_url: `${a}/contents/${f}?ref=${sha}`,
    }));
    return { body: json };
  });
  async function contents(ctx: Ctx): Promise<Reply> {
    const repo = repoFor(ctx, { perms: ["contents"], level: "read" });
    const filePath = (ctx.params.path ?? "").replace(/^\/+|\/+$/g, "");
    const refName = ctx.query.ref || repo.defaultBranch;
    const sha = await resolveApiRef(repo, refName);
    if (!sha) {
      const empty = !(await resolveCommit(repo, `refs/heads/${repo.defaultBranch}`));
      if (empty && !ctx.query.ref) throw new HttpError(404, "This repository is empty.");
      throw new HttpError(404, `No commit found for the ref ${refName}`);
    }
    const a = `${apiUrl}/repos/${repo.owner}/${repo.name}`;
    const h = `${url}/${repo.owner}/${repo.name}`;
    const accept = String(ctx.req.headers.accept ?? "");
    const raw = /application\/vnd\.github(\.v3)?\.raw/i.test(accept);
    type Entry = { mode: string; type: string; sha: string; size: number; path: string };
    const parseLsTree = (out: string, prefix: string): Entry[] =>
      out
        .split("\0")
        .filter(Boolean)
        .map((line) => {
          const tab = line.indexOf("\t");
          const [mode, type, objSha, size] = line.slice(0, tab).split(/\s+/);
          const name = line.slice(tab + 1);
          return { mode, type, sha: objSha, size: size === "-" ? 0 : parseInt(size, 10), path: prefix ? `${prefix}/${name}` : name };
        });
    const entryJson = (e: Entry) => {
      const type = e.type === "tree" ? "dir" : e.type === "commit" ? "submodule" : e.mode === "120000" ? "symlink" : "file";
      const selfUrl = `${a}/contents/${e.path}?ref=${encodeURIComponent(refName)}`;
      const gitUrl = e.type === "tree" ? `${a}/git/trees/${e.sha}` : `${a}/git/blobs/${e.sha}`;
      const htmlUrl = `${h}/${type === "dir" ? "tree" : "blob"}/${refName}/${e.path}`;
      return {
        type,
        size: e.size,
        name: path.posix.basename(e.path),
        path: e.path,
        sha: e.sha,
        url: selfUrl,
        git_url: gitUrl,
        html_url: htmlUrl,
        download_url: type === "file" ? `${h}/raw/${refName}/${e.path}` : null,
        _links: { self: selfUrl, git: gitUrl, html: htmlUrl },
      };
    };
    let entry: Entry | null = null;
    if (filePath) {
      if (filePath.split("/").some((s) => s === ".." || s === ".")) throw new HttpError(404, "Not Found");
      const out = (await runGit(["--git-dir", repo.gitDir, "ls-tree", "-z", "-l", sha, "--", filePath])).toString();
      entry = parseLsTree(out, "").find((e) => e.path === filePath) ?? null;
      if (!entry) throw new HttpError(404, "Not Found");
    }
    if (!entry || entry.type === "tree") {
      const treeish = filePath ? `${sha}:${filePath}` : sha;
      const out = (await runGit(["--git-dir", repo.gitDir, "ls-tree", "-z", "-l", treeish])).toString();
      return { body: parseLsTree(out, filePath).map(entryJson) };
    }
    if (entry.type === "commit") return { body: { ...entryJson(entry), submodule_git_url: null } };
    const blob = await runGit(["--git-dir", repo.gitDir, "cat-file", "blob", entry.sha]);
    if (raw) return { raw: blob, contentType: "text/plain; charset=utf-8" };
    if (entry.mode === "120000") return { body: { ...entryJson(entry), target: blob.toString("utf8") } };
    const b64 = blob.toString("base64").replace(/(.{60})/g, "$1\n");
    return { body: { ...entryJson(entry), content: b64.endsWith("\n") ? b64 : `${b64}\n`, encoding: "base64" } };
  }
  route("GET", "/repos/{owner}/{repo}/contents", "repo", contents);
  route("GET", "/repos/{owner}/{repo}/contents/{path+}", "repo", contents);
  route("GET", "/repos/{owner}/{repo}/collaborators/{username}/permission", "repo", (ctx) => {
    const repo = repoFor(ctx, { perms: ["metadata"], level: "read" });
    const user = users.get(ctx.params.username.toLowerCase());
    if (!user || user.type === "Organization") throw new HttpError(404, "Not Found");
    const role = userPermission(repo, user.login);
    const legacy = role === "maintain" ? "write" : role === "triage" ? "read" : role;
    const rank = ROLE_RANK[role];
    return {
      body: {
        permission: legacy,
        role_name: role,
        user: {
          ...userJson(user),
          permissions: { admin: rank >= 5, maintain: rank >= 4, push: rank >= 3, triage: rank >= 2, pull: rank >= 1 },
          role_name: role,
        },
      },
    };
  });

  // Check runs
  route("POST", "/repos/{owner}/{repo}/check-runs", "repo", async (ctx) => {
    const repo = repoFor(ctx, { perms: ["checks"], level: "write", userForbidden: "You must authenticate via a GitHub App." });
    const b = ctx.body;
    validateCheckRunBody(b, true);
    if (!/^[0-9a-f]{40}$/i.test(b.head_sha) || (validateCheckRunSha && !(await resolveCommit(repo, b.head_sha)))) {
      throw new HttpError(422, `No commit found for SHA: ${b.head_sha}`, {
        errors: [{ resource: "CheckRun", code: "invalid", field: "head_sha" }],
      });
    }
    const headSha = String(b.head_sha).toLowerCase();
    const suiteKey = `${keyOf(repo.owner, repo.name)}@${headSha}`;
    if (!checkSuites.has(suiteKey)) checkSuites.set(suiteKey, ++counters.checkSuite);
    const id = ++counters.checkRun;
    const now = isoNow();
    const cr: CheckRun = {
      id,
      node_id: nodeId("CheckRun", id),
      owner: repo.owner,
      repo: repo.name,
      name: b.name,
      head_sha: headSha,
      status: "queued",
      conclusion: null,
      details_url: null,
      external_id: null,
      started_at: null,
      completed_at: null,
      output: { title: null, summary: null, text: null, annotations: [], images: [] },
      actions: [],
      check_suite: { id: checkSuites.get(suiteKey)! },
      created_at: now,
      updated_at: now,
      history: [],
    };
    if (b.status !== undefined) cr.status = b.status;
    applyCheckRunBody(cr, b, true);
    checkRunsById.set(id, cr);
    return { status: 201, body: checkRunJson(cr) };
  });
  function findCheckRun(ctx: Ctx, repo: Repo): CheckRun {
    const cr = checkRunsById.get(intParam(ctx.params.check_run_id));
    if (!cr || keyOf(cr.owner, cr.repo) !== keyOf(repo.owner, repo.name)) throw new HttpError(404, "Not Found");
    return cr;
  }
  route("GET", "/repos/{owner}/{repo}/check-runs/{check_run_id}", "repo", (ctx) => {
    const repo = repoFor(ctx, { perms: ["checks"], level: "read" });
    return { body: checkRunJson(findCheckRun(ctx, repo)) };
  });
  route("PATCH", "/repos/{owner}/{repo}/check-runs/{check_run_id}", "repo", (ctx) => {
    const repo = repoFor(ctx, { perms: ["checks"], level: "write", userForbidden: "You must authenticate via a GitHub App." });
    const cr = findCheckRun(ctx, repo);
    validateCheckRunBody(ctx.body, false);
    const copy = structuredClone(cr);
    applyCheckRunBody(copy, ctx.body, false); // validate transitions before mutating state
    Object.assign(cr, copy);
    return { body: checkRunJson(cr) };
  });

  // Issue comments (comment routes first: /issues/comments/{id} vs /issues/{n}/comments)
  function findComment(ctx: Ctx, repo: Repo): Comment {
    const c = comments.get(intParam(ctx.params.comment_id));
    if (!c || keyOf(c.owner, c.repo) !== keyOf(repo.owner, repo.name)) throw new HttpError(404, "Not Found");
    return c;
  }
  const commentNeed = (level: "read" | "write"): Need => ({ perms: ["issues", "pull_requests"], level, userRole: "read" });
  route("GET", "/repos/{owner}/{repo}/issues/comments/{comment_id}", "repo", (ctx) => {
    const repo = repoFor(ctx, commentNeed("read"));
    return { body: commentJson(findComment(ctx, repo)) };
  });
  function assertCommentBody(body: any): string {
    if (body === null || typeof body !== "object") throw new HttpError(400, "Problems parsing JSON");
    if (body.body === undefined || body.body === null) throw validationFailed("IssueComment", "body", "missing_field");
    if (typeof body.body !== "string") throw invalidRequest(`For 'properties/body', ${JSON.stringify(body.body)} is not a string.`);
    if (body.body.length > 65536) throw validationFailed("IssueComment", "body", "custom", "body is too long (maximum is 65536 characters)");
    return body.body;
  }
  route("PATCH", "/repos/{owner}/{repo}/issues/comments/{comment_id}", "repo", (ctx) => {
    const repo = repoFor(ctx, commentNeed("write"));
    const c = findComment(ctx, repo);
    const { user } = actor(ctx);
    if (ctx.principal!.kind === "user" && c.user.id !== user.id && ROLE_RANK[userPermission(repo, user.login)] < ROLE_RANK.write) {
      throw new HttpError(403, "Must have write access to edit other users' comments.");
    }
    c.body = assertCommentBody(ctx.body);
    c.updated_at = isoNow();
    return { body: commentJson(c) };
  });
  route("DELETE", "/repos/{owner}/{repo}/issues/comments/{comment_id}", "repo", (ctx) => {
    const repo = repoFor(ctx, commentNeed("write"));
    const c = findComment(ctx, repo);
    comments.delete(c.id);
    for (const r of [...reactionsById.values()]) if (r.comment_id === c.id) reactionsById.delete(r.id);
    return { status: 204 };
  });
  route("GET", "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions", "repo", (ctx) => {
    const repo = repoFor(ctx, commentNeed("read"));
    const c = findComment(ctx, repo);
    let list = [...reactionsById.values()].filter((r) => r.comment_id === c.id).sort((a, b) => a.id - b.id);
    if (ctx.query.content) {
      assertEnum(ctx.query.content, "content", REACTIONS);
      list = list.filter((r) => r.content === ctx.query.content);
    }
    const { page, headers } = paginate(ctx, list);
    return { body: page.map(reactionJson), headers };
  });
  route("POST", "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions", "repo", (ctx) => {
    const repo = repoFor(ctx, commentNeed("write"));
    const c = findComment(ctx, repo);
    const content = ctx.body?.content;
    if (content === undefined) throw validationFailed("Reaction", "content", "missing_field");
    if (!REACTIONS.includes(content)) throw validationFailed("Reaction", "content", "invalid");
    const { user } = actor(ctx);
    const existing = [...reactionsById.values()].find((r) => r.comment_id === c.id && r.user.id === user.id && r.content === content);
    if (existing) return { status: 200, body: reactionJson(existing) };
    const id = ++counters.reaction;
    const r: Reaction = { id, node_id: nodeId("Reaction", id), comment_id: c.id, content, user, created_at: isoNow() };
    reactionsById.set(id, r);
    return { status: 201, body: reactionJson(r) };
  });
  route("DELETE", "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions/{reaction_id}", "repo", (ctx) => {
    const repo = repoFor(ctx, commentNeed("write"));
    const c = findComment(ctx, repo);
    const r = reactionsById.get(intParam(ctx.params.reaction_id));
    if (!r || r.comment_id !== c.id) throw new HttpError(404, "Not Found");
    reactionsById.delete(r.id);
    return { status: 204 };
  });
  route("GET", "/repos/{owner}/{repo}/issues/{issue_number}/comments", "repo", (ctx) => {
    const repo = repoFor(ctx, commentNeed("read"));
    const n = intParam(ctx.params.issue_number);
    let list = [...comments.values()]
      .filter((c) => keyOf(c.owner, c.repo) === keyOf(repo.owner, repo.name) && c.issue_number === n)
      .sort((a, b) => a.id - b.id);
    if (ctx.query.since) {
      const since = new Date(ctx.query.since).getTime();
      list = list.filter((c) => new Date(c.updated_at).getTime() >= since);
    }
    const { page, headers } = paginate(ctx, list);
    return { body: page.map(commentJson), headers };
  });
  route("POST", "/repos/{owner}/{repo}/issues/{issue_number}/comments", "repo", (ctx) => {
    const repo = repoFor(ctx, commentNeed("write"));
    const n = intParam(ctx.params.issue_number);
    const body = assertCommentBody(ctx.body);
    const { user, viaApp } = actor(ctx);
    const c = storeComment(repo, n, user, body, viaApp);
    return { status: 201, body: commentJson(c), headers: { location: commentJson(c).url } };
  });

  // Pulls
  route("GET", "/repos/{owner}/{repo}/pulls", "repo", (ctx) => {
    const repo = repoFor(ctx, { perms: ["pull_requests"], level: "read" });
    const state = ctx.query.state ?? "open";
    assertEnum(state, "state", ["open", "closed", "all"]);
    let list = [...(pulls.get(keyOf(repo.owner, repo.name))?.values() ?? [])];
    if (state !== "all") list = list.filter((p) => p.state === state);
    if (ctx.query.head) {
      const [hOwner, ...rest] = ctx.query.head.split(":");
      const ref = rest.join(":");
      list = list.filter((p) => {
        const headRepo = repos.get(p.head.repo.toLowerCase());
        const headOwner = headRepo ? headRepo.owner : p.user.login;
        if (!ref) return headOwner.toLowerCase() === hOwner.toLowerCase();
        return headOwner.toLowerCase() === hOwner.toLowerCase() && p.head.ref === ref;
      });
    }
    if (ctx.query.base) list = list.filter((p) => p.base.ref === ctx.query.base);
    const direction = ctx.query.direction ?? (ctx.query.sort === undefined || ctx.query.sort === "created" ? "desc" : "asc");
    const sortKey = ctx.query.sort === "updated" ? "updated_at" : "created_at";
    list.sort((a, b) => (a[sortKey] === b[sortKey] ? a.number - b.number : a[sortKey] < b[sortKey] ? -1 : 1));
    if (direction === "desc") list.reverse();
    const { page, headers } = paginate(ctx, list);
    return { body: page.map(pullJson), headers };
  });
  route("GET", "/repos/{owner}/{repo}/pulls/{pull_number}", "repo", (ctx) => {
    const repo = repoFor(ctx, { perms: ["pull_requests"], level: "read" });
    const pr = pulls.get(keyOf(repo.owner, repo.name))?.get(intParam(ctx.params.pull_number));
    if (!pr) throw new HttpError(404, "Not Found");
    return { body: pullJson(pr) };
  });

  function storeComment(repo: Repo, issueNumber: number, user: User, body: string, viaApp: boolean): Comment {
    const id = ++counters.comment;
    const now = isoNow();
    const c: Comment = {
      id,
      node_id: nodeId("IssueComment", id),
      owner: repo.owner,
      repo: repo.name,
      issue_number: issueNumber,
      body,
      user,
      created_at: now,
      updated_at: now,
      via_app: viaApp,
    };
    comments.set(id, c);
    const k = keyOf(repo.owner, repo.name);
    issueCounters.set(k, Math.max(issueCounters.get(k) ?? 0, issueNumber));
    return c;
  }

  // ---- OAuth ----
  function handleOAuthAuthorize(ctx: Ctx): Reply {
    const q = ctx.query;
    if (q.client_id !== clientId) return { status: 404, raw: "Not Found (unknown client_id)", contentType: "text/plain; charset=utf-8" };
    const redirectUri = q.redirect_uri ?? null;
    if (!redirectUri) return { status: 400, raw: "fake GitHub: redirect_uri is required (no callback URL configured)", contentType: "text/plain; charset=utf-8" };
    let target: URL;
    try {
      target = new URL(redirectUri);
    } catch {
      return { status: 400, raw: "The redirect_uri MUST match the registered callback URL for this application.", contentType: "text/plain; charset=utf-8" };
    }
    const suggested = q.login ? users.get(q.login.toLowerCase()) : undefined;
    const login = suggested?.login ?? oauthUser;
    if (login === undefined) {
      return {
        status: 403,
        raw: "fake GitHub: no OAuth user selected; call fake.setOAuthUser(login) in the test",
        contentType: "text/plain; charset=utf-8",
      };
    }
    if (login === null) {
      target.searchParams.set("error", "access_denied");
      target.searchParams.set("error_description", "The user has denied your application access.");
      target.searchParams.set("error_uri", "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/#access-denied");
    } else {
      const code = crypto.randomBytes(10).toString("hex");
      oauthCodes.set(code, { login, redirectUri, expiresAt: Date.now() + 10 * 60 * 1000, used: false });
      target.searchParams.set("code", code);
    }
    if (q.state !== undefined) target.searchParams.set("state", q.state);
    return { status: 302, headers: { location: target.toString() }, raw: "", contentType: "text/html; charset=utf-8" };
  }
  function handleOAuthToken(ctx: Ctx): Reply {
    const params: Record<string, string> = { ...ctx.query, ...(ctx.body && typeof ctx.body === "object" ? ctx.body : {}) };
    const wantsJson = /application\/json/i.test(String(ctx.req.headers.accept ?? ""));
    const reply = (obj: Record<string, string>): Reply =>
      wantsJson
        ? { status: 200, body: obj }
        : { status: 200, raw: new URLSearchParams(obj).toString(), contentType: "application/x-www-form-urlencoded; charset=utf-8" };
    const error = (code: string, description: string, uri: string) => reply({ error: code, error_description: description, error_uri: uri });
    if (params.client_id !== clientId || params.client_secret !== clientSecret) {
      return error(
        "incorrect_client_credentials",
        "The client_id and/or client_secret passed are incorrect.",
        "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#incorrect-client-credentials",
      );
    }
    if (params.grant_type === "refresh_token") {
      const r = params.refresh_token ? refreshTokens.get(params.refresh_token) : undefined;
      if (!r || r.used || r.expiresAt < Date.now()) {
        return error(
          "bad_refresh_token",
          "The refresh token passed is incorrect or expired.",
          "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#bad-refresh-token",
        );
      }
      r.used = true; // single use, like GitHub's
      refreshes.push(r.login);
      return reply(userTokenResponse(r.login));
    }
    const rec = params.code ? oauthCodes.get(params.code) : undefined;
    if (!rec || rec.used || rec.expiresAt < Date.now()) {
      return error(
        "bad_verification_code",
        "The code passed is incorrect or expired.",
        "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#bad-verification-code",
      );
    }
    if (params.redirect_uri && rec.redirectUri && params.redirect_uri !== rec.redirectUri) {
      return error(
        "redirect_uri_mismatch",
        "The redirect_uri MUST match the registered callback URL for this application.",
        "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/#redirect-uri-mismatch2",
      );
    }
    rec.used = true;
    return reply(userTokenResponse(rec.login));
  }

  // ---- git smart HTTP ----
  const GIT_PATH = /^\/([^/]+)\/([^/]+?)(?:\.git)?\/(info\/refs|git-upload-pack|git-receive-pack|HEAD|objects\/.+)$/;
  function gitDeny(res: http.ServerResponse, rec: RecordedRequest, status: number, message: string): void {
    rec.status = status;
    const headers: Record<string, string> = { "content-type": "text/plain; charset=utf-8" };
    if (status === 401) headers["www-authenticate"] = 'Basic realm="GitHub"';
    res.writeHead(status, headers);
    res.end(message + "\n");
  }
  function handleGit(req: http.IncomingMessage, res: http.ServerResponse, rec: RecordedRequest, m: RegExpExecArray, rawQuery: string): void {
    let owner: string;
    let name: string;
    try {
      owner = decodeURIComponent(m[1]);
      name = decodeURIComponent(m[2]);
    } catch {
      return gitDeny(res, rec, 400, "Bad Request");
    }
    const rest = m[3];
    const repo = findRepo(owner, name);
    if (!repo) return gitDeny(res, rec, 404, "Repository not found.");
    const receive = rest === "git-receive-pack" || rec.query.service === "git-receive-pack";
    const header = req.headers.authorization;
    let remoteUser = "";
    let pusher: string | null = null;
    if (header) {
      const mm = /^basic\s+(\S+)$/i.exec(header);
      const decoded = mm ? Buffer.from(mm[1], "base64").toString("utf8") : "";
      const colon = decoded.indexOf(":");
      const user = colon >= 0 ? decoded.slice(0, colon) : "";
      const pass = colon >= 0 ? decoded.slice(colon + 1) : "";
      const t = tokens.get(pass);
      if (t?.kind === "user") {
        // A person's user-to-server token (any user name, as on GitHub): their own access counts.
        if (t.expiresAt !== null && t.expiresAt <= Date.now()) return gitDeny(res, rec, 401, "Invalid username or token. Password authentication is not supported for Git operations.");
        const role = userPermission(repo, t.login!);
        if (ROLE_RANK[role] < ROLE_RANK.read) return gitDeny(res, rec, 404, "Repository not found.");
        if (receive && ROLE_RANK[role] < ROLE_RANK.write) return gitDeny(res, rec, 403, `Permission to ${repo.fullName}.git denied to ${t.login}.`);
        remoteUser = t.login!;
        pusher = t.login!;
      }
    } else if (receive) {
      // git asks for credentials only after a 401
      return gitDeny(res, rec, 401, "Authentication required.");
    }
    if (receive && !pusher) return gitDeny(res, rec, 403, "Write access to repository not granted.");
    if (header && !pusher) {
      const mm = /^basic\s+(\S+)$/i.exec(header);
      const decoded = mm ? Buffer.from(mm[1], "base64").toString("utf8") : "";
      const colon = decoded.indexOf(":");
      const user = colon >= 0 ? decoded.slice(0, colon) : "";
      const pass = colon >= 0 ? decoded.slice(colon + 1) : "";
      const t = tokens.get(pass);
      const valid =
        user === "x-access-token" &&
        t !== undefined &&
        t.kind === "installation" &&
        t.expiresAt !== null &&
        t.expiresAt > Date.now() &&
        !installations.get(t.installationId!)?.suspendedAt &&
        (!repo.private ||
          (repo.installationId === t.installationId &&
            (!t.repositoryIds || t.repositoryIds.includes(repo.id)) &&
            levelOk(t.permissions?.contents, "read")));
      if (!valid) return gitDeny(res, rec, 401, "Invalid username or token. Password authentication is not supported for Git operations.");
      remoteUser = user;
    } else if (!header && repo.private) {
      return gitDeny(res, rec, 401, "Authentication required.");
    }
    const diskRel = path.relative(reposRoot, repo.gitDir).split(path.sep).join("/");
    const env: NodeJS.ProcessEnv = {
      ...gitEnv,
      GIT_PROJECT_ROOT: reposRoot,
      GIT_HTTP_EXPORT_ALL: "1",
      PATH_INFO: `/${diskRel}/${rest}`,
      QUERY_STRING: rawQuery,
      REQUEST_METHOD: req.method ?? "GET",
      CONTENT_TYPE: String(req.headers["content-type"] ?? ""),
      REMOTE_USER: remoteUser,
      REMOTE_ADDR: req.socket.remoteAddress ?? "127.0.0.1",
      SERVER_PROTOCOL: `HTTP/${req.httpVersion}`,
      GATEWAY_INTERFACE: "CGI/1.1",
      SERVER_SOFTWARE: "fake-github",
    };
    // http-backend serves receive-pack to an authenticated REMOTE_USER; say so explicitly
    if (pusher) Object.assign(env, { GIT_CONFIG_COUNT: "1", GIT_CONFIG_KEY_0: "http.receivepack", GIT_CONFIG_VALUE_0: "true" });
    const refsBefore = pusher && rest === "git-receive-pack" ? listRefs(repo) : null;
    if (req.headers["content-length"]) env.CONTENT_LENGTH = String(req.headers["content-length"]);
    for (const [k, v] of Object.entries(req.headers)) {
      if (k === "authorization" || k === "content-type" || k === "content-length") continue;
      env[`HTTP_${k.toUpperCase().replace(/-/g, "_")}`] = Array.isArray(v) ? v.join(", ") : String(v);
    }
    const child = spawn("git", ["http-backend"], { env, stdio: ["pipe", "pipe", "pipe"] });
    children.add(child);
    let stderr = "";
    child.stderr!.on("data", (d) => (stderr += d.toString()));
    child.stdin!.on("error", () => undefined);
    req.pipe(child.stdin!);
    let headBuf = Buffer.alloc(0);
    let headersSent = false;
    const onData = (chunk: Buffer) => {
      headBuf = Buffer.concat([headBuf, chunk]);
      let idx = headBuf.indexOf("\r\n\r\n");
      let sepLen = 4;
      const idx2 = headBuf.indexOf("\n\n");
      if (idx2 !== -1 && (idx === -1 || idx2 < idx)) {
        idx = idx2;
        sepLen = 2;
      }
      if (idx === -1) return;
      child.stdout!.off("data", onData);
      const headerText = headBuf.subarray(0, idx).toString("latin1");
      const bodyStart = headBuf.subarray(idx + sepLen);
      let status = 200;
      const headers: Record<string, string> = {};
      for (const line of headerText.split(/\r?\n/)) {
        const c = line.indexOf(":");
        if (c <= 0) continue;
        const k = line.slice(0, c).trim();
        const v = line.slice(c + 1).trim();
        if (k.toLowerCase() === "status") status = parseInt(v, 10) || 500;
        else headers[k] = v;
      }
      rec.status = status;
      headersSent = true;
      res.writeHead(status, headers);
      if (bodyStart.length) res.write(bodyStart);
      child.stdout!.pipe(res);
    };
    child.stdout!.on("data", onData);
    child.on("error", (err) => {
      children.delete(child);
      if (!headersSent) gitDeny(res, rec, 500, `git http-backend failed: ${err.message}`);
    });
    child.on("close", (code) => {
      children.delete(child);
      if (refsBefore && code === 0) recordPush(repo, pusher!, refsBefore);
      if (!headersSent) {
        gitDeny(res, rec, 500, `git http-backend exited with ${code}: ${stderr}`);
      }
    });
    res.on("close", () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    });
  }

  function listRefs(repo: Repo): Map<string, string> {
    const out = gitSync(["--git-dir", repo.gitDir, "for-each-ref", "--format=%(refname) %(objectname)"]);
    return new Map(out.split("\n").filter(Boolean).map((l) => l.split(" ") as [string, string]));
  }
  function recordPush(repo: Repo, login: string, before: Map<string, string>): void {
    const after = listRefs(repo);
    const updates: RecordedPush["updates"] = [];
    for (const ref of new Set([...before.keys(), ...after.keys()])) {
      const b = before.get(ref) ?? ZERO_SHA;
      const a = after.get(ref) ?? ZERO_SHA;
      if (a !== b) updates.push({ ref, before: b, after: a });
    }
    if (updates.length) {
      pushLog.push({ owner: repo.owner, repo: repo.name, login, updates, at: isoNow() });
      repo.pushedAt = isoNow();
    }
  }

  // ---- request handling ----
  function readBody(req: http.IncomingMessage): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on("data", (c: Buffer) => {
        size += c.length;
        if (size > 100 * 1024 * 1024) {
          reject(new HttpError(413, "Payload too large"));
          req.destroy();
          return;
        }
        chunks.push(c);
      });
      req.on("end", () => resolve(Buffer.concat(chunks)));
      req.on("error", reject);
    });
  }
  function parseBody(buf: Buffer, contentType: string): unknown {
    if (buf.length === 0) return undefined;
    const text = buf.toString("utf8");
    if (/application\/x-www-form-urlencoded/i.test(contentType)) return Object.fromEntries(new URLSearchParams(text));
    try {
      return JSON.parse(text);
    } catch {
      throw new HttpError(400, "Problems parsing JSON");
    }
  }
  function send(ctx: { res: http.ServerResponse; rec: RecordedRequest }, reply: Reply): void {
    const { res, rec } = ctx;
    const status = reply.status ?? 200;
    rec.status = status;
    const headers: Record<string, string> = {
      "x-github-request-id": crypto.randomBytes(8).toString("hex").toUpperCase(),
      "x-github-media-type": "github.v3; format=json",
      "x-github-api-version-selected": "2022-11-28",
      "x-github-enterprise-version": `${GHES_VERSION}.0`,
      ...reply.headers,
    };
    if (status === 204 || (reply.body === undefined && reply.raw === undefined)) {
      res.writeHead(status, headers);
      res.end();
      return;
    }
    if (reply.raw !== undefined) {
      headers["content-type"] = reply.contentType ?? "text/plain; charset=utf-8";
      res.writeHead(status, headers);
      res.end(reply.raw);
      return;
    }
    rec.responseBody = reply.body;
    const text = JSON.stringify(reply.body);
    headers["content-type"] = "application/json; charset=utf-8";
    headers["content-length"] = String(Buffer.byteLength(text));
    res.writeHead(status, headers);
    res.end(text);
  }
  function errorBody(status: number, message: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
    return { message, ...extra, documentation_url: DOCS, status: String(status) };
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const u = new URL(req.url ?? "/", "http://fake.invalid");
    let rawPath = u.pathname;
    const query: Record<string, string> = {};
    for (const [k, v] of u.searchParams) query[k] = v;
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(", ") : String(v ?? "");
    const method = (req.method ?? "GET").toUpperCase();
    const rec: RecordedRequest = { method, path: rawPath, query, headers, body: undefined, status: 0, at: isoNow() };
    requests.push(rec);
    if (opts.verbose) res.on("finish", () => process.stderr.write(`[fake-github] ${method} ${req.url} -> ${rec.status}\n`));

    const takeFault = () => {
      const fault = faults.find((f) => (f.method === "*" || f.method.toUpperCase() === method) && f.pattern.test(rawPath) && f.remaining > 0);
      if (!fault) return null;
      fault.remaining--;
      if (fault.remaining <= 0) faults.splice(faults.indexOf(fault), 1);
      return fault;
    };

    const gm = GIT_PATH.exec(rawPath);
    if (gm && !rawPath.startsWith("/api/")) {
      const fault = takeFault();
      if (fault) {
        req.resume();
        return gitDeny(res, rec, fault.status, http.STATUS_CODES[fault.status] ?? "Error");
      }
      handleGit(req, res, rec, gm, u.search.replace(/^\?/, ""));
      return;
    }

    const ctx: Ctx = { req, res, rec, method, path: rawPath, query, params: {}, body: undefined, principal: null };
    try {
      const buf = await readBody(req);
      ctx.body = parseBody(buf, String(req.headers["content-type"] ?? ""));
      rec.body = ctx.body;
      const fault = takeFault();
      if (fault) {
        const msg = http.STATUS_CODES[fault.status] ?? "Error";
        return send(ctx, { status: fault.status, body: fault.body ?? errorBody(fault.status, msg), headers: fault.headers });
      }

      if (rawPath === "/login/oauth/authorize" && method === "GET") return send(ctx, handleOAuthAuthorize(ctx));
      if (rawPath === "/login/oauth/access_token" && method === "POST") return send(ctx, handleOAuthToken(ctx));

      if (!rawPath.startsWith("/api/v3/") && rawPath !== "/api/v3") throw new HttpError(404, "Not Found");
      let apiPath = rawPath.slice("/api/v3".length) || "/";
      if (apiPath.length > 1) apiPath = apiPath.replace(/\/+$/, "");
      ctx.path = apiPath;
      rawPath = apiPath;
      let matched: Route | undefined;
      let match: RegExpExecArray | null = null;
      for (const r of routes) {
        if (r.method !== method) continue;
        match = r.regex.exec(apiPath);
        if (match) {
          matched = r;
          break;
        }
      }
      if (!matched || !match) throw new HttpError(404, "Not Found");
      rec.route = `${matched.method} ${matched.template.replace(/\+\}/g, "}")}`;
      for (let i = 0; i < matched.names.length; i++) {
        try {
          ctx.params[matched.names[i]] = decodeURIComponent(match[i + 1]);
        } catch {
          throw new HttpError(404, "Not Found");
        }
      }
      const principal = authenticate(req);
      switch (matched.auth) {
        case "app":
          if (!principal) throw new HttpError(401, "A JSON web token could not be decoded");
          if (principal.kind !== "app") throw new HttpError(401, "A JSON web token could not be decoded");
          break;
        case "installation":
          if (!principal) throw new HttpError(401, "Requires authentication");
          if (principal.kind !== "installation") {
            throw new HttpError(403, "You must authenticate with an installation access token in order to list repositories for an installation.");
          }
          break;
        case "user":
          if (!principal) throw new HttpError(401, "Requires authentication");
          if (principal.kind !== "user") throw new HttpError(403, "Resource not accessible by integration");
          break;
        case "repo":
          if (!principal) throw new HttpError(401, "Requires authentication");
          if (principal.kind === "app") throw new HttpError(403, "Resource not accessible by integration");
          break;
      }
      ctx.principal = principal;
      const reply = await matched.handler(ctx);
      send(ctx, reply);
    } catch (err) {
      if (err instanceof HttpError) {
        send(ctx, { status: err.status, body: errorBody(err.status, err.message, err.extra), headers: err.headers });
      } else {
        process.stderr.write(`[fake-github] internal error on ${method} ${req.url}: ${(err as Error)?.stack ?? err}\n`);
        if (!res.headersSent) send(ctx, { status: 500, body: errorBody(500, `fake github internal error: ${(err as Error)?.message ?? err}`) });
        else res.destroy();
      }
    }
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err) => {
      process.stderr.write(`[fake-github] unhandled: ${err?.stack ?? err}\n`);
      if (!res.headersSent) {
        res.writeHead(500);
        res.end();
      }
    });
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, opts.listenHost ?? "127.0.0.1", () => resolve());
  });
  const port = (server.address() as import("node:net").AddressInfo).port;
  // Tests' own clients (CookieClient, fetch helpers) dial 127.0.0.1 whatever the host name:
  // with another listen address, the same fake answers on loopback's same port too.
  const loopback = opts.listenHost && opts.listenHost !== "127.0.0.1" ? http.createServer(server.listeners("request")[0] as http.RequestListener) : null;
  if (loopback) {
    loopback.keepAliveTimeout = 1000;
    await new Promise<void>((resolve, reject) => {
      loopback.once("error", reject);
      loopback.listen(port, "127.0.0.1", () => resolve());
    });
  }
  const host = `${opts.listenHost ?? "127.0.0.1"}:${port}`;
  url = `http://${host}`;
  apiUrl = `${url}/api/v3`;

  // ---- helpers exposed to tests ----
  function addInstallation(
    account: { login: string; id?: number; type?: "User" | "Organization" },
    o: { id?: number; permissions?: Record<string, AccessLevel>; events?: string[]; repositorySelection?: "all" | "selected" } = {},
  ): Installation {
    const user = addUser(account.login, { id: account.id, type: account.type ?? "User" });
    const id = o.id ?? ++counters.installation;
    if (installations.has(id)) throw new Error(`fake github: installation ${id} exists`);
    const inst: Installation = {
      id,
      account: user,
      permissions: { ...(o.permissions ?? appPermissions) },
      events: [...(o.events ?? appEvents)],
      repositorySelection: o.repositorySelection ?? "all",
      createdAt: isoNow(),
      suspendedAt: null,
    };
    installations.set(id, inst);
    return inst;
  }

  function createRepo(
    owner: string,
    name: string,
    o: { installationId?: number | null; private?: boolean; defaultBranch?: string; forkOf?: string; id?: number } = {},
  ): Repo {
    if (!/^[A-Za-z0-9_.-]+$/.test(owner) || !/^[A-Za-z0-9_.-]+$/.test(name) || name === "." || name === "..") {
      throw new Error(`fake github: invalid repository name ${owner}/${name}`);
    }
    const key = keyOf(owner, name);
    if (repos.has(key)) throw new Error(`fake github: repository ${owner}/${name} exists`);
    if (o.installationId != null && !installations.has(o.installationId)) throw new Error(`fake github: no installation ${o.installationId}`);
    if (o.forkOf && !repos.has(o.forkOf.toLowerCase())) throw new Error(`fake github: fork parent ${o.forkOf} does not exist`);
    const ownerUser = users.get(owner.toLowerCase()) ?? addUser(owner);
    const id = o.id ?? ++counters.repo;
    const gitDir = path.join(reposRoot, owner.toLowerCase(), `${name.toLowerCase()}.git`);
    fs.mkdirSync(path.dirname(gitDir), { recursive: true });
    const defaultBranch = o.defaultBranch ?? "main";
    gitSync(["init", "--bare", "--quiet", `--initial-branch=${defaultBranch}`, gitDir]);
    gitSync(["--git-dir", gitDir, "config", "uploadpack.allowAnySHA1InWant", "true"]);
    gitSync(["--git-dir", gitDir, "config", "uploadpack.allowFilter", "true"]);
    gitSync(["--git-dir", gitDir, "config", "http.receivepack", "false"]);
    const repo: Repo = {
      id,
      nodeId: nodeId("Repository", id),
      owner: ownerUser.login,
      name,
      fullName: `${ownerUser.login}/${name}`,
      private: o.private ?? true,
      defaultBranch,
      installationId: o.installationId ?? null,
      cloneUrl: `${url}/${ownerUser.login}/${name}.git`,
      htmlUrl: `${url}/${ownerUser.login}/${name}`,
      gitDir,
      fork: !!o.forkOf,
      parent: o.forkOf ? repos.get(o.forkOf.toLowerCase())!.fullName : null,
      createdAt: isoNow(),
      pushedAt: null,
    };
    if (o.forkOf) {
      const parent = repos.get(o.forkOf.toLowerCase())!;
      gitSync(["--git-dir", gitDir, "fetch", "--quiet", parent.gitDir, "+refs/heads/*:refs/heads/*"]);
      gitSync(["--git-dir", gitDir, "symbolic-ref", "HEAD", `refs/heads/${parent.defaultBranch}`]);
      repo.defaultBranch = o.defaultBranch ?? parent.defaultBranch;
    }
    repos.set(key, repo);
    return repo;
  }

  function requireRepo(owner: string, name: string): Repo {
    const repo = findRepo(owner, name);
    if (!repo) throw new Error(`fake github: no repository ${owner}/${name}`);
    return repo;
  }

  function syncPullRef(pr: PullRequest): void {
    const base = requireRepo(pr.owner, pr.repo);
    const head = repos.get(pr.head.repo.toLowerCase());
    if (!head || !/^[0-9a-f]{40}$/.test(pr.head.sha)) return;
    try {
      if (head !== base) gitSync(["--git-dir", base.gitDir, "fetch", "--quiet", "--no-tags", head.gitDir, `+${pr.head.sha}:refs/pull/${pr.number}/head`]);
      else gitSync(["--git-dir", base.gitDir, "update-ref", `refs/pull/${pr.number}/head`, pr.head.sha]);
    } catch {
      // sha not present (made-up sha in a test): leave refs/pull alone
    }
  }

  async function pushFiles(
    owner: string,
    name: string,
    branch: string,
    files: Record<string, string | Uint8Array | { symlink: string } | null>,
    message = "Update files",
    o: { from?: string; author?: { name: string; email: string } } = {},
  ): Promise<string> {
    const repo = requireRepo(owner, name);
    if (!safeRev(branch) || branch.includes("..")) throw new Error(`fake github: invalid branch ${branch}`);
    return withRepoLock(keyOf(owner, name), async () => {
      const work = await fsp.mkdtemp(path.join(workRoot, "push-"));
      try {
        await runGit(["init", "--quiet", `--initial-branch=${branch}`, work]);
        const existing = await resolveCommit(repo, `refs/heads/${branch}`);
        const baseRef = existing ? `refs/heads/${branch}` : await (async () => {
          const from = o.from ?? repo.defaultBranch;
          return (await resolveCommit(repo, `refs/heads/${from}`)) ? `refs/heads/${from}` : null;
        })();
        if (baseRef) {
          await runGit(["fetch", "--quiet", "--no-tags", repo.gitDir, baseRef], { cwd: work });
          await runGit(["checkout", "--quiet", "-B", branch, "FETCH_HEAD"], { cwd: work });
        }
        for (const [rel, content] of Object.entries(files)) {
          const normalized = path.posix.normalize(rel.replace(/^\/+/, ""));
          if (!normalized || normalized.startsWith("..") || normalized === "." || normalized.split("/").includes(".git")) {
            throw new Error(`fake github: invalid file path ${rel}`);
          }
          const abs = path.join(work, normalized);
          if (content === null) {
            await fsp.rm(abs, { recursive: true, force: true });
          } else if (typeof content === "object" && "symlink" in content) {
            await fsp.mkdir(path.dirname(abs), { recursive: true });
            await fsp.rm(abs, { recursive: true, force: true });
            await fsp.symlink(content.symlink, abs);
          } else {
            await fsp.mkdir(path.dirname(abs), { recursive: true });
            await fsp.writeFile(abs, content);
          }
        }
        const author = o.author ?? { name: "Fake Developer", email: "developer@example.com" };
        const env = {
          GIT_AUTHOR_NAME: author.name,
          GIT_AUTHOR_EMAIL: author.email,
          GIT_COMMITTER_NAME: author.name,
          GIT_COMMITTER_EMAIL: author.email,
        };
        await runGit(["add", "--all"], { cwd: work });
        await runGit(["commit", "--quiet", "--allow-empty", "--no-verify", "-m", message], { cwd: work, env });
        await runGit(["push", "--quiet", repo.gitDir, `HEAD:refs/heads/${branch}`], { cwd: work });
        const sha = (await runGit(["rev-parse", "HEAD"], { cwd: work })).toString().trim();
        repo.pushedAt = isoNow();
        // keep pull requests in sync, like GitHub does
        for (const prs of pulls.values()) {
          for (const pr of prs.values()) {
            if (pr.state !== "open") continue;
            if (pr.head.repo.toLowerCase() === keyOf(repo.owner, repo.name) && pr.head.ref === branch) {
              pr.head.sha = sha;
              pr.updated_at = isoNow();
              syncPullRef(pr);
            }
            if (keyOf(pr.owner, pr.repo) === keyOf(repo.owner, repo.name) && pr.base.ref === branch) pr.base.sha = sha;
          }
        }
        return sha;
      } finally {
        await fsp.rm(work, { recursive: true, force: true });
      }
    });
  }

  async function deleteBranch(owner: string, name: string, branch: string): Promise<void> {
    const repo = requireRepo(owner, name);
    if (branch === repo.defaultBranch) throw new Error(`fake github: refusing to delete the default branch ${branch}`);
    await withRepoLock(keyOf(owner, name), async () => {
      if (!(await resolveCommit(repo, `refs/heads/${branch}`))) throw new Error(`fake github: no branch ${branch} in ${owner}/${name}`);
      await runGit(["--git-dir", repo.gitDir, "update-ref", "-d", `refs/heads/${branch}`]);
    });
  }

  function setPermission(owner: string, repo: string, login: string, permission: Permission): void {
    const r = requireRepo(owner, repo);
    if (!(permission in ROLE_RANK)) throw new Error(`fake github: bad permission ${permission}`);
    addUser(login);
    const k = keyOf(r.owner, r.name);
    if (!perms.has(k)) perms.set(k, new Map());
    perms.get(k)!.set(login.toLowerCase(), permission);
  }

  function createPullRequest(owner: string, repo: string, init: PullRequestInit): PullRequest {
    const base = requireRepo(owner, repo);
    const headRepo = init.headRepo ? requireRepo(init.headRepo.split("/")[0], init.headRepo.split("/")[1] ?? "") : base;
    const k = keyOf(base.owner, base.name);
    const number = init.number ?? (issueCounters.get(k) ?? 0) + 1;
    if (!pulls.has(k)) pulls.set(k, new Map());
    if (pulls.get(k)!.has(number)) throw new Error(`fake github: PR #${number} exists in ${owner}/${repo}`);
    issueCounters.set(k, Math.max(issueCounters.get(k) ?? 0, number));
    const headSha = init.headSha ?? resolveCommitSync(headRepo, `refs/heads/${init.head}`);
    if (!headSha) throw new Error(`fake github: head branch ${init.head} not found in ${headRepo.fullName}; push it first or pass headSha`);
    const baseRef = init.base ?? base.defaultBranch;
    const baseSha = resolveCommitSync(base, `refs/heads/${baseRef}`) ?? ZERO_SHA;
    const author = addUser(init.user ?? headRepo.owner);
    const id = ++counters.pull;
    const now = isoNow();
    const state = init.state ?? "open";
    const pr: PullRequest = {
      id,
      node_id: nodeId("PullRequest", id),
      number,
      owner: base.owner,
      repo: base.name,
      title: init.title ?? `Update ${init.head}`,
      body: init.body ?? null,
      state,
      draft: init.draft ?? false,
      merged: false,
      user: author,
      head: { ref: init.head, sha: headSha, repo: headRepo.fullName },
      base: { ref: baseRef, sha: baseSha },
      created_at: now,
      updated_at: now,
      closed_at: state === "closed" ? now : null,
      merged_at: null,
    };
    pulls.get(k)!.set(number, pr);
    syncPullRef(pr);
    return structuredClone(pr);
  }

  function updatePullRequest(
    owner: string,
    repo: string,
    number: number,
    patch: Partial<{ state: "open" | "closed"; merged: boolean; title: string; body: string | null; draft: boolean; headSha: string; base: string }>,
  ): PullRequest {
    const pr = pulls.get(keyOf(owner, repo))?.get(number);
    if (!pr) throw new Error(`fake github: no PR #${number} in ${owner}/${repo}`);
    const now = isoNow();
    if (patch.title !== undefined) pr.title = patch.title;
    if (patch.body !== undefined) pr.body = patch.body;
    if (patch.draft !== undefined) pr.draft = patch.draft;
    if (patch.base !== undefined) {
      pr.base.ref = patch.base;
      pr.base.sha = resolveCommitSync(requireRepo(owner, repo), `refs/heads/${patch.base}`) ?? pr.base.sha;
    }
    if (patch.headSha !== undefined) {
      pr.head.sha = patch.headSha;
      syncPullRef(pr);
    }
    if (patch.merged) {
      pr.merged = true;
      pr.merged_at = now;
      pr.state = "closed";
      pr.closed_at = now;
    }
    if (patch.state !== undefined) {
      pr.state = patch.state;
      pr.closed_at = patch.state === "closed" ? now : null;
    }
    pr.updated_at = now;
    return structuredClone(pr);
  }

  const fake: FakeGitHub = {
    url,
    host,
    apiUrl,
    appId,
    appSlug,
    appName,
    privateKey,
    publicKey,
    webhookSecret,
    clientId,
    clientSecret,
    botUser,
    requests,
    reposRoot,
    clearRequests: () => {
      requests.length = 0;
    },
    addUser: (login, o) => addUser(login, o),
    getUser: (login) => users.get(login.toLowerCase()),
    addInstallation,
    getInstallation: (id) => installations.get(id),
    suspendInstallation: (id, suspended = true) => {
      const inst = installations.get(id);
      if (!inst) throw new Error(`fake github: no installation ${id}`);
      inst.suspendedAt = suspended ? isoNow() : null;
    },
    removeInstallation: (id) => {
      installations.delete(id);
      for (const r of repos.values()) if (r.installationId === id) r.installationId = null;
      for (const [t, rec] of tokens) if (rec.installationId === id) tokens.delete(t);
    },
    createRepo,
    getRepo: (owner, name) => findRepo(owner, name),
    listRepos: () => [...repos.values()].sort((a, b) => a.id - b.id),
    listUsers: () => [...users.values()],
    setRepoInstallation: (owner, name, installationId) => {
      const repo = requireRepo(owner, name);
      if (installationId !== null && !installations.has(installationId)) throw new Error(`fake github: no installation ${installationId}`);
      repo.installationId = installationId;
    },
    pushFiles,
    deleteBranch,
    resolveRef: async (owner, name, ref) => {
      const repo = requireRepo(owner, name);
      return resolveApiRef(repo, ref);
    },
    commitInfo: (owner, name, sha) => {
      const repo = findRepo(owner, name);
      if (!repo || !safeRev(sha)) return null;
      try {
        return commitInfoSync(repo, sha);
      } catch {
        return null;
      }
    },
    setPermission,
    addSshKey(login: string, publicKey: string) {
      const user = users.get(login.toLowerCase()) ?? addUser(login);
      const list = sshKeys.get(user.login.toLowerCase()) ?? [];
      list.push({ id: 100000 + sshKeys.size * 100 + list.length, key: publicKey.trim(), created_at: isoNow() });
      sshKeys.set(user.login.toLowerCase(), list);
    },
    getPermission: (owner, repo, login) => userPermission(requireRepo(owner, repo), login),
    issueComments: (owner, repo, issueNumber) =>
      [...comments.values()]
        .filter((c) => keyOf(c.owner, c.repo) === keyOf(owner, repo) && c.issue_number === issueNumber)
        .sort((a, b) => a.id - b.id)
        .map((c) => structuredClone(c)),
    addComment: (owner, repo, issueNumber, login, body) => {
      const r = requireRepo(owner, repo);
      const user = login.toLowerCase() === botUser.login.toLowerCase() ? botUser : addUser(login);
      return structuredClone(storeComment(r, issueNumber, user, body, user === botUser));
    },
    checkRuns: (owner, repo, sha) =>
      [...checkRunsById.values()]
        .filter((c) => keyOf(c.owner, c.repo) === keyOf(owner, repo) && (!sha || c.head_sha === sha.toLowerCase()))
        .sort((a, b) => a.id - b.id)
        .map((c) => structuredClone(c)),
    getCheckRun: (id) => {
      const c = checkRunsById.get(id);
      return c ? structuredClone(c) : undefined;
    },
    reactions: (owner, repo, commentId) =>
      [...reactionsById.values()]
        .filter((r) => r.comment_id === commentId && comments.has(commentId) && keyOf(comments.get(commentId)!.owner, comments.get(commentId)!.repo) === keyOf(owner, repo))
        .sort((a, b) => a.id - b.id)
        .map((r) => structuredClone(r)),
    createPullRequest,
    updatePullRequest,
    getPullRequest: (owner, repo, number) => {
      const pr = pulls.get(keyOf(owner, repo))?.get(number);
      return pr ? structuredClone(pr) : undefined;
    },
    pullRequests: (owner, repo) =>
      [...(pulls.get(keyOf(owner, repo))?.values() ?? [])].sort((a, b) => a.number - b.number).map((p) => structuredClone(p)),
    setOAuthUser: (login) => {
      if (login !== null) addUser(login);
      oauthUser = login === null ? null : users.get(login.toLowerCase())!.login;
    },
    mintUserToken,
    expireUserTokens: () => {
      for (const rec of tokens.values()) if (rec.kind === "user") rec.expiresAt = Date.now() - 1000;
    },
    refreshes,
    pushes: (owner, repo) => pushLog.filter((p) => owner === undefined || (keyOf(p.owner, p.repo) === keyOf(owner, repo ?? p.repo))).map((p) => structuredClone(p)),
    mintInstallationToken: (id, o) => mintInstallationToken(id, o),
    expireInstallationTokens: () => {
      for (const rec of tokens.values()) if (rec.kind === "installation") rec.expiresAt = Date.now() - 1000;
    },
    appJwt: (o = {}) => {
      const now = Math.floor(Date.now() / 1000);
      return signJwt({ iat: o.iat ?? now - 30, exp: o.exp ?? now + 540, iss: o.iss ?? appId });
    },
    failNext: (method, pathPattern, status, times = 1, o = {}) => {
      faults.push({ method, pattern: pathPattern, status, remaining: times, body: o.body, headers: o.headers });
    },
    json: {
      user: (login) => {
        const u = users.get(login.toLowerCase()) ?? addUser(login);
        return userJson(u);
      },
      repository: (owner, name) => repoJson(requireRepo(owner, name)),
      installation: (id) => {
        const inst = installations.get(id);
        if (!inst) throw new Error(`fake github: no installation ${id}`);
        return installationJson(inst);
      },
      app: () => appJson(),
      checkRun: (id) => {
        const cr = checkRunsById.get(id);
        if (!cr) throw new Error(`fake github: no check run ${id}`);
        return checkRunJson(cr);
      },
      comment: (id) => {
        const c = comments.get(id);
        if (!c) throw new Error(`fake github: no comment ${id}`);
        return commentJson(c);
      },
      pullRequest: (owner, repo, number) => {
        const pr = pulls.get(keyOf(owner, repo))?.get(number);
        if (!pr) throw new Error(`fake github: no PR #${number} in ${owner}/${repo}`);
        return pullJson(pr);
      },
    },
    close: async () => {
      if (closed) return;
      closed = true;
      for (const child of children) {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      }
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      if (loopback) {
        await new Promise<void>((resolve) => {
          loopback.close(() => resolve());
          loopback.closeAllConnections();
        });
      }
      await Promise.allSettled([...repoLocks.values()]);
      await fsp.rm(root, { recursive: true, force: true });
    },
  };
  return fake;
}
