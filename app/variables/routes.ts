import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { LRUCache } from 'lru-cache';
import type { Probot } from 'probot';
import type { AppDeps } from '../deps.js';
import type { Auth, SessionUser } from '../auth/types.js';
import { sendJson, sendPage, type Handler } from '../http.js';
import { PermissionCache, type Permission } from '../github/permissions.js';
import { FormTooLargeError, readForm, setFlash, takeFlash } from '../dashboard/forms.js';
import type { Repository } from '../../lib/db/client.js';
import { VariableStore, VariableInputError, MAX_VALUE_BYTES, type VariableEntry } from '../../lib/variables/store.js';
import { VariableDecryptError } from '../../lib/variables/crypto.js';
import { branchesOf } from '../../lib/variables/layers.js';

/**
 * Variables and secrets (issue 16), for people and for scripts:
 *
 * - `GET /api/repos/{owner}/{repo}/variables` (names), `GET|PUT|DELETE …/variables/{name}`
 *   (JSON `{ value, secret, branches, path?, buildTime? }`; `?branches=a,b` picks a branch
 *   entry for GET and DELETE), and `/api/variables[/{name}]` for the global layer;
 * - `/repos/{owner}/{repo}/variables` and `/variables`: the settings pages, with forms.
 *
 * Who: a repository's admins and maintainers manage its layers; people with write access see
 * the names only; others nothing (404, so private repositories' names do not leak). The global
 * layer is BERTH_ADMINS'. The API takes the browser session (writes then need the CSRF token
 * in `x-csrf-token`) or `Authorization: Bearer <the person's GitHub token>`: Berth asks GitHub
 * whose token it is, then, as the installation, that person's permission on the repository.
 * A secret's value is never sent back by anything here.
 */

type Role = 'manage' | 'names' | 'none';
interface Caller {
  login: string;
  /** through the browser session (writes need the CSRF token) */
  session: boolean;
}
interface Target {
  /** null: the global layer */
  repo: Repository | null;
  label: string;
  pagePath: string;
}

const MAX_JSON_BYTES = MAX_VALUE_BYTES * 2 + 8 * 1024;
/** who a token belongs to, remembered briefly (by the token's hash) so a script's calls ask GitHub once */
const TOKEN_TTL_MS = 60_000;

const PAGE_HEADERS = {
  'x-frame-options': 'DENY',
  'content-security-policy': "frame-ancestors 'none'",
  'referrer-policy': 'same-origin',
  'x-content-type-options': 'nosniff',
};

const SEGMENT = '([A-Za-z0-9_.-]{1,100})';
const NAME = '([A-Za-z0-9_]{1,128})';
const API_REPO = new RegExp(`^/api/repos/${SEGMENT}/${SEGMENT}/variables(?:/${NAME})?$`);
const API_GLOBAL = new RegExp(`^/api/variables(?:/${NAME})?$`);
const PAGE_REPO = new RegExp(`^/repos/${SEGMENT}/${SEGMENT}/variables$`);
const PAGE_GLOBAL = /^\/variables$/;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export function variablesHandler(deps: AppDeps, opts: { auth: Auth; probot: Probot }): Handler {
  const { auth, probot } = opts;
  const store = VariableStore.of(deps);
  const permissions = new PermissionCache();
  const tokenOwners = new LRUCache<string, string>({ max: 1000, ttl: TOKEN_TTL_MS });
  const berthUrl = deps.config.berthUrl;
  // after a key rotation: values of an old key are written again with the new one
  void store.rotate().then(
    ({ rotated, unreadable }) => {
      if (rotated) probot.log.info(`variables: ${rotated} value(s) re-encrypted with the current BERTH_SECRETS_KEY`);
      if (unreadable) probot.log.warn(`variables: ${unreadable} value(s) were encrypted with a key Berth does not have (BERTH_SECRETS_KEY changed?); set them again or give Berth the old key in BERTH_SECRETS_KEY_OLD`);
    },
    (err: Error) => probot.log.warn(`variables: re-encrypting values of old keys failed: ${err.message}`),
  );

  /** whose GitHub token this is, asked from GitHub (null: not a valid token) */
  async function tokenLogin(token: string): Promise<string | null> {
    const key = createHash('sha256').update(token).digest('hex');
    const known = tokenOwners.get(key);
    if (known) return known;
    const res = await fetch(`${deps.config.githubApiUrl}/user`, {
      headers: { authorization: `Bearer ${token}`, accept: 'application/vnd.github+json', 'user-agent': 'berth' },
      signal: AbortSignal.timeout(10_000),
    }).catch(() => {
      throw new HttpError(503, 'GitHub did not answer who this token belongs to; try again');
    });
    if (res.status === 401 || res.status === 403) return null;
    if (!res.ok) throw new HttpError(503, `GitHub did not say who this token belongs to (HTTP ${res.status}); try again`);
    const user = (await res.json()) as { login?: unknown };
    if (typeof user.login !== 'string') return null;
    tokenOwners.set(key, user.login);
    return user.login;
  }

  async function caller(req: IncomingMessage): Promise<Caller | null> {
    const header = String(req.headers.authorization ?? '');
    const bearer = /^(?:bearer|token)\s+(\S+)$/i.exec(header);
    if (bearer) {
      const login = await tokenLogin(bearer[1]!);
      return login ? { login, session: false } : null;
    }
    const user = await auth.currentUser(req);
    return user ? { login: user.login, session: true } : null;
  }

  async function roleOf(login: string, target: Target): Promise<Role> {
    if (!target.repo) return deps.config.BERTH_ADMINS.includes(login.toLowerCase()) ? 'manage' : 'none';
    let permission: Permission;
    try {
      const octokit = await probot.auth(Number(target.repo.installationId));
      permission = await permissions.permission(octokit, target.repo.owner, target.repo.name, login);
    } catch {
      throw new HttpError(503, `GitHub could not be asked about your access to ${target.repo.fullName}; try again in a moment`);
    }
    if (permission === 'admin' || permission === 'maintain') return 'manage';
    if (permission === 'write') return 'names';
    return 'none';
  }

  async function findTarget(owner: string | null, name: string | null): Promise<Target | null> {
    if (owner === null || name === null) return { repo: null, label: 'global variables', pagePath: '/variables' };
    const repo = await deps.db.repository.findFirst({ where: { fullName: { equals: `${owner}/${name}`, mode: 'insensitive' }, removed: false } });
    return repo ? { repo, label: repo.fullName, pagePath: `/repos/${repo.owner}/${repo.name}/variables` } : null;
  }

  /** what anyone allowed to see names sees: never a value */
  const names = (e: VariableEntry) => ({ name: e.name, branches: e.branches, secret: e.secret, ...(e.path ? { path: e.path } : {}), layer: e.layer });
  /** what a manager sees: a value only when it is not secret */
  function full(e: VariableEntry) {
    return {
      ...names(e),
      buildTime: e.buildTime,
      value: e.secret ? null : safeValue(e),
      updatedAt: e.updatedAt.toISOString(),
      updatedBy: e.updatedBy,
    };
  }
  function safeValue(e: VariableEntry): string | null {
    try {
      return store.value(e);
    } catch (err) {
      if (err instanceof VariableDecryptError) return null;
      throw err;
    }
  }

  // --- the JSON API -----------------------------------------------------------------------------

  async function api(req: IncomingMessage, res: ServerResponse, url: URL, owner: string | null, repoName: string | null, name: string | null) {
    const method = req.method ?? 'GET';
    const who = await caller(req);
    if (!who) return sendJson(res, 401, { error: 'sign in, or send Authorization: Bearer <your GitHub token>' });
    const target = await findTarget(owner, repoName);
    const role = target ? await roleOf(who.login, target) : 'none';
    if (!target || role === 'none') return sendJson(res, 404, { error: 'no such repository, or you cannot see its variables' });
    const branches = branchesOf(url.searchParams.get('branches') ?? '');
    const repositoryId = target.repo?.id ?? null;
    if (method === 'GET' || method === 'HEAD') {
      if (!name) {
        const list = await store.list(repositoryId);
        return sendJson(res, 200, { variables: list.map((e) => (role === 'manage' ? full(e) : names(e))) });
      }
      if (role !== 'manage') return sendJson(res, 403, { error: `only admins and maintainers of ${target.label} can read variables; you can see their names (GET without a name)` });
      const entry = await store.find(repositoryId, name, branches);
      return entry ? sendJson(res, 200, full(entry)) : sendJson(res, 404, { error: `${name} is not set${branches.length ? ` for branches ${branches.join(', ')}` : ''}` });
    }
    if (!name || (method !== 'PUT' && method !== 'DELETE')) return sendJson(res, 405, { error: 'GET, PUT or DELETE /variables/{name}' });
    if (role !== 'manage') return sendJson(res, 403, { error: `only admins and maintainers of ${target.label} can change its variables` });
    if (who.session && !auth.verifyCsrf(req)) return sendJson(res, 403, { error: 'send the CSRF token in x-csrf-token, or use Authorization: Bearer' });
    if (method === 'DELETE') {
      const removed = await store.remove(repositoryId, name, branches);
      if (!removed) return sendJson(res, 404, { error: `${name} is not set${branches.length ? ` for branches ${branches.join(', ')}` : ''}` });
      res.writeHead(204, { 'cache-control': 'no-store' });
      return res.end();
    }
    const body = await readJson(req);
    const input = {
      repositoryId,
      name,
      value: optional(body, 'value', 'string'),
      secret: optional(body, 'secret', 'boolean'),
      buildTime: optional(body, 'buildTime', 'boolean'),
      path: body.path === null ? null : optional(body, 'path', 'string'),
      branches: body.branches === undefined ? branches : branchList(body.branches),
      by: who.login,
    };
    const { entry, created } = await store.put(input);
    return sendJson(res, created ? 201 : 200, { ...names(entry), buildTime: entry.buildTime, updatedAt: entry.updatedAt.toISOString(), updatedBy: entry.updatedBy, ...changeNote(target) });
  }

  const changeNote = (target: Target) => ({
    note: `running workspaces${target.repo ? ` of ${target.repo.fullName}` : ''} get the change on their next start, or at once with /berth refresh`,
  });

  // --- the settings pages ---------------------------------------------------------------------

  async function settings(req: IncomingMessage, res: ServerResponse, owner: string | null, repoName: string | null) {
    const user = await auth.requireUser(req, res);
    if (!user) return;
    const target = await findTarget(owner, repoName);
    const role = target ? await roleOf(user.login, target) : 'none';
    const page = (status: number, view: string, ctx: Record<string, unknown>) =>
      sendPage(res, status, view, { berthUrl, user, csrf: auth.csrfToken(req), ...ctx }, PAGE_HEADERS);
    if (!target || role === 'none') return page(404, 'pages/not-found.njk', { message: 'There is nothing here, or you cannot see it.' });
    if (req.method === 'POST') return settingsPost(req, res, user, target, role, page);
    const entries = await store.list(target.repo?.id ?? null);
    page(200, 'dashboard/variables.njk', {
      target: { label: target.label, global: !target.repo, path: target.pagePath, htmlUrl: target.repo?.htmlUrl, fullName: target.repo?.fullName },
      manage: role === 'manage',
      entries: entries.map((e) => ({ ...(role === 'manage' ? full(e) : names(e)), branchesText: e.branches.join(', ') })),
      flash: takeFlash(req, res),
      maxKiB: MAX_VALUE_BYTES / 1024,
    });
  }

  async function settingsPost(
    req: IncomingMessage,
    res: ServerResponse,
    user: SessionUser,
    target: Target,
    role: Role,
    page: (status: number, view: string, ctx: Record<string, unknown>) => void,
  ) {
    let form: Record<string, string>;
    try {
      form = await readForm(req);
    } catch (err) {
      if (err instanceof FormTooLargeError) return page(413, 'pages/error.njk', { status: 413, title: 'Too large', message: `A value is at most ${MAX_VALUE_BYTES / 1024} KiB.` });
      throw err;
    }
    if (!auth.verifyCsrf(req, form)) return page(403, 'pages/forbidden.njk', { message: 'This form did not come from this Berth page, or it expired. Go back, reload the page and try again.' });
    if (role !== 'manage') return page(403, 'pages/forbidden.njk', { message: `Only admins and maintainers of ${target.label} can change its variables. Nothing was changed.` });
    const name = (form.name ?? '').trim();
    const branches = branchList(form.branches ?? '');
    const repositoryId = target.repo?.id ?? null;
    let message: string;
    try {
      if (form.action === 'delete') {
        message = (await store.remove(repositoryId, name, branches)) ? `Deleted ${name}.` : `${name} was not set.`;
      } else {
        await store.put({
          repositoryId,
          name,
          // an empty value on an existing entry keeps it: secrets are never shown, so the form cannot hold them
          value: form.value === undefined || (form.value === '' && form.keep === 'yes') ? undefined : form.value.replace(/\r\n/g, '\n'),
          secret: form.secret === 'yes',
          buildTime: form.buildTime === 'yes',
          path: (form.path ?? '').trim() || null,
          branches,
          by: user.login,
        });
        message = `Saved ${name}. Running workspaces get it on their next start, or at once with /berth refresh.`;
      }
    } catch (err) {
      if (!(err instanceof VariableInputError)) throw err;
      message = `Not saved: ${err.message}`;
    }
    setFlash(res, message);
    res.writeHead(303, { location: target.pagePath, 'cache-control': 'no-store' });
    res.end();
  }

  return async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://berth.invalid');
    const path = url.pathname;
    let m: RegExpExecArray | null;
    try {
      if ((m = API_REPO.exec(path))) return (await api(req, res, url, m[1]!, m[2]!, m[3] ?? null), true);
      if ((m = API_GLOBAL.exec(path))) return (await api(req, res, url, null, null, m[1] ?? null), true);
      const isPage = req.method === 'GET' || req.method === 'HEAD' || req.method === 'POST';
      if (isPage && (m = PAGE_REPO.exec(path))) return (await settings(req, res, m[1]!, m[2]!), true);
      if (isPage && PAGE_GLOBAL.test(path)) return (await settings(req, res, null, null), true);
    } catch (err) {
      if (err instanceof HttpError || err instanceof VariableInputError) {
        sendJson(res, err instanceof HttpError ? err.status : 400, { error: err.message });
        return true;
      }
      throw err;
    }
    return false;
  };
}

function branchList(value: unknown): string[] {
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value.map((v: string) => v.trim()).filter(Boolean);
  if (typeof value === 'string') return value.split(/[,\s]+/).map((v) => v.trim()).filter(Boolean);
  throw new VariableInputError('branches is a list of branch patterns, e.g. ["feature/*"]');
}

function optional<T extends 'string' | 'boolean'>(body: Record<string, unknown>, key: string, type: T): (T extends 'string' ? string : boolean) | undefined {
  const v = body[key];
  if (v === undefined) return undefined;
  if (typeof v !== type) throw new VariableInputError(`${key} must be a ${type}`);
  return v as never;
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  let size = 0;
  const parts: Buffer[] = [];
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_JSON_BYTES) throw new HttpError(413, `the body is too large (a value is at most ${MAX_VALUE_BYTES / 1024} KiB)`);
    parts.push(chunk as Buffer);
  }
  if (type !== 'application/json') throw new HttpError(415, 'send JSON (content-type: application/json): { "value", "secret", "branches" }');
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(parts).toString('utf8'));
  } catch {
    throw new HttpError(400, 'the body is not JSON');
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new HttpError(400, 'the body is a JSON object: { "value", "secret", "branches" }');
  return body as Record<string, unknown>;
}
