import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Probot } from 'probot';
import type { AppDeps } from '../deps.js';
import type { Auth, RepoAccess, SessionUser } from '../auth/types.js';
import { sendPage, type Handler } from '../http.js';
import { workspaceLinks } from '../github/links.js';
import { sshLinks } from '../ssh/links.js';
import type { RepoConfig } from '../../lib/repo-config.js';
import type { ContainerReader } from './containers.js';
import { FormTooLargeError, readForm, setFlash, takeFlash } from './forms.js';
import { logPage, streamWholeLog } from './log-pages.js';
import { resumeId, streamBuildLog, type StreamOptions } from './log-stream.js';
import { runDashboardAction, type WorkspaceWithRepo } from './actions.js';
import { withHost } from './host-rows.js';
import {
  STATES,
  buildRow,
  eventRow,
  filtersQuery,
  groupByRepository,
  logIsLive,
  parseFilters,
  safeReturnPath,
  serviceRows,
  serviceUrls,
  shouldAutoRefresh,
  workspaceRow,
  type ActionName,
  type State,
} from './presenters.js';
import { accessOrNull, findWorkspace, listWorkspaces, pendingWorkspaceJobs, readableRepositories, warmPools, workspaceDetails } from './queries.js';

export interface DashboardOptions {
  auth: Auth;
  /** acts as the installation to ask GitHub for a branch's newest commit (Refresh) */
  probot: Probot;
  /** the workspaces' containers as the engine reports them (WorkspaceAccess) */
  containers: ContainerReader;
  now?: () => Date;
  stream?: StreamOptions;
}

const ID = '([A-Za-z0-9_-]{1,64})';
const ROUTES = {
  list: /^\/$/,
  workspace: new RegExp(`^/workspaces/${ID}$`),
  action: new RegExp(`^/workspaces/${ID}/(refresh|stop|start|delete|reset)$`),
  log: new RegExp(`^/builds/${ID}/log$`),
  logText: new RegExp(`^/builds/${ID}/log\\.txt$`),
  logStream: new RegExp(`^/builds/${ID}/log/stream$`),
};
/**
 * Pages with buttons must not be framed by another site (a framed Delete button can be
 * clicked by a user who thinks they click something else), nor leak their URLs to other sites.
 */
const PAGE_HEADERS = {
  'x-frame-options': 'DENY',
  'content-security-policy': "frame-ancestors 'none'",
  'referrer-policy': 'same-origin',
  'x-content-type-options': 'nosniff',
};
/** Seconds between reloads of a page that shows something in progress. */
const AUTO_REFRESH_S = 3;

/**
 * The dashboard on BERTH_URL: the workspaces list, a page per workspace, build logs (paged,
 * and live over Server-Sent Events) and the action forms. Pages are rendered on the server and
 * work without JavaScript; only the live log uses a few lines of it.
 *
 * Everyone must sign in; a user sees the workspaces of repositories they can read, and the
 * buttons only where they can write (forged posts are refused the same way). Workspaces of
 * repositories a user cannot read answer 404, so their existence does not leak.
 */
export function createDashboard(deps: AppDeps, opts: DashboardOptions): Handler {
  const { auth } = opts;
  const containers = opts.containers;
  const now = opts.now ?? (() => new Date());
  const berthUrl = deps.config.berthUrl;

  const page = (req: IncomingMessage, res: ServerResponse, user: SessionUser | null, status: number, view: string, ctx: Record<string, unknown> = {}) =>
    sendPage(res, status, view, { berthUrl, user, csrf: user ? auth.csrfToken(req) : undefined, ...ctx }, PAGE_HEADERS);
  const notFound = (req: IncomingMessage, res: ServerResponse, user: SessionUser | null, message: string) =>
    page(req, res, user, 404, 'pages/not-found.njk', { message });
  const forbidden = (req: IncomingMessage, res: ServerResponse, user: SessionUser | null, message: string) =>
    page(req, res, user, 403, 'pages/forbidden.njk', { message });

  const accessUnknown = (req: IncomingMessage, res: ServerResponse, user: SessionUser, repo: string) =>
    page(req, res, user, 503, 'pages/error.njk', {
      status: 503,
      title: 'GitHub did not answer',
      message: `Berth could not ask GitHub about your access to ${repo}, so it shows nothing of it for now. Try again in a moment.`,
    });

  /**
   * The workspace and the user's access to it; answers 404 itself when the user may not see it
   * (or it does not exist: the two look the same, so names do not leak).
   */
  async function visibleWorkspace(req: IncomingMessage, res: ServerResponse, user: SessionUser, id: string): Promise<{ ws: WorkspaceWithRepo; access: RepoAccess } | null> {
    const ws = await findWorkspace(deps, id);
    const access = ws ? await accessOrNull(auth, user, ws.repository) : 'none';
    if (access === null) {
      accessUnknown(req, res, user, ws!.repository.fullName);
      return null;
    }
    if (!ws || access === 'none') {
      notFound(req, res, user, 'There is no workspace here, or you cannot see it. Sign in with another account if it belongs to a repository you can read.');
      return null;
    }
    return { ws, access };
  }

  async function listPage(req: IncomingMessage, res: ServerResponse, url: URL, user: SessionUser) {
    const filters = parseFilters(url.searchParams);
    const { repos, unchecked } = await readableRepositories(deps, auth, user);
    const [workspaces, pending, unknownVolumes, pools] = await Promise.all([listWorkspaces(deps, repos, filters), pendingWorkspaceJobs(deps.queues), deps.db.unknownVolume.count(), warmPools(deps, repos)]);
    const at = now();
    const accessById = new Map(repos.map((r) => [r.id, r.access]));
    const hosts = await deps.db.host.findMany({ select: { id: true, name: true, lastHeartbeatAt: true } });
    const rows = workspaces.map((ws) => {
      const access = accessById.get(ws.repositoryId) ?? 'read';
      const row = withHost(workspaceRow({ ...ws, state: ws.state as State }, access, workspaceLinks(deps.config, ws), at, pending.get(ws.id)), ws.hostId, hosts, at);
      return { repo: ws.repository, access, row };
    });
    const flash = takeFlash(req, res);
    const anyPending = rows.some((r) => r.row.pending);
    page(req, res, user, 200, 'dashboard/workspaces.njk', {
      groups: groupByRepository(rows).map((g) => ({ ...g, pool: pools.get(g.fullName) ?? null })),
      repos,
      unchecked,
      states: STATES,
      filters,
      filtered: Boolean(filters.repo || filters.q || filters.state !== 'active'),
      returnTo: `/${filtersQuery(filters)}`,
      total: rows.length,
      unknownVolumes,
      flash,
      refresh: shouldAutoRefresh(rows.map((r) => r.row.state), anyPending || Boolean(flash)) ? AUTO_REFRESH_S : undefined,
    });
  }

  async function workspacePage(req: IncomingMessage, res: ServerResponse, user: SessionUser, id: string) {
    const found = await visibleWorkspace(req, res, user, id);
    if (!found) return;
    const { ws, access } = found;
    const at = now();
    const [{ events, builds }, pending, running] = await Promise.all([
      workspaceDetails(deps, ws.id),
      pendingWorkspaceJobs(deps.queues),
      containers.containersOf(ws.id),
    ]);
    const links = workspaceLinks(deps.config, ws);
    const hosts = ws.hostId ? await deps.db.host.findMany({ where: { id: ws.hostId }, select: { id: true, name: true, lastHeartbeatAt: true } }) : [];
    const row = withHost(workspaceRow({ ...ws, state: ws.state as State }, access, links, at, pending.get(ws.id)), ws.hostId, hosts, at);
    // The services the workspace runs are those of its current build (or the newest one that built).
    const configBuild = builds.find((b) => b.id === ws.currentBuildId && b.config) ?? builds.find((b) => b.config);
    const config = configBuild?.config as unknown as RepoConfig | undefined;
    const flash = takeFlash(req, res);
    page(req, res, user, 200, 'dashboard/workspace.njk', {
      ws: row,
      workspace: { slug: ws.slug, ide: ws.ide, headSha: ws.headSha, runningSha: ws.runningSha, forkRepo: ws.forkRepo, createdAt: ws.createdAt.toISOString() },
      repo: { fullName: ws.repository.fullName, htmlUrl: ws.repository.htmlUrl },
      access,
      services: serviceRows(config?.services ?? [], config?.preview.service ?? ws.previewService, running),
      // each service's public URL (issue 16), none for a preview without a port
      serviceUrls: serviceUrls(config?.services ?? [], config?.preview.service ?? ws.previewService, links.preview, deps.config, ws),
      // names and layers the newest start gave the services (worker/variables.ts), never values
      variables: Array.isArray(ws.variableSources) ? ws.variableSources : [],
      variablesUrl: `/repos/${ws.repository.owner}/${ws.repository.name}/variables`,
      dockerReachable: running !== null,
      builds: builds.map((b) => buildRow(b, ws.currentBuildId, at, berthUrl)),
      events: events.map((e) => eventRow({ ...e, fromState: e.fromState as State | null, toState: e.toState as State }, at)),
      links,
      // SSH is a shell in the workspace: shown to those who may open one (write access)
      ssh: access === 'write' ? sshLinks(deps.config, ws.slug) : null,
      returnTo: `/workspaces/${ws.id}`,
      flash,
      refresh: shouldAutoRefresh([row.state], Boolean(row.pending) || Boolean(flash)) ? AUTO_REFRESH_S : undefined,
    });
  }

  async function actionPost(req: IncomingMessage, res: ServerResponse, user: SessionUser, id: string, action: ActionName) {
    let form: Record<string, string>;
    try {
      form = await readForm(req);
    } catch (err) {
      if (err instanceof FormTooLargeError) return page(req, res, user, 413, 'pages/error.njk', { status: 413, title: 'Too large', message: 'That form was larger than any form Berth sends.' });
      throw err;
    }
    if (!auth.verifyCsrf(req, form)) {
      return forbidden(req, res, user, 'This form did not come from this Berth page, or it expired. Go back, reload the page and try again.');
    }
    const found = await visibleWorkspace(req, res, user, id);
    if (!found) return;
    const { ws, access } = found;
    if (access !== 'write') {
      return forbidden(req, res, user, `Only people with write access to ${ws.repository.fullName} can ${action} its workspaces. Nothing was changed.`);
    }
    const returnTo = safeReturnPath(form.return, '/');
    if (action === 'delete' && form.confirm !== 'yes') return confirmDelete(req, res, user, ws, returnTo);
    if (action === 'reset' && form.confirm !== 'yes') return confirmReset(req, res, user, ws, returnTo);
    const result = await runDashboardAction(deps, opts.probot, ws, action, user, { force: form.force === 'yes', beforeMigrate: form.to === 'before-migrate' });
    setFlash(res, result.message);
    res.writeHead(303, { location: returnTo, 'cache-control': 'no-store' });
    res.end();
  }

  function confirmDelete(req: IncomingMessage, res: ServerResponse, user: SessionUser, ws: WorkspaceWithRepo, returnTo: string) {
    // after a deletion the workspace page only shows a deleted record; go back to the list
    const after = returnTo.startsWith(`/workspaces/${ws.id}`) ? '/' : returnTo;
    page(req, res, user, 200, 'dashboard/confirm-delete.njk', {
      ws: { id: ws.id, branch: ws.branch, state: ws.state, repo: ws.repository.fullName },
      returnTo: after,
      cancelTo: returnTo,
    });
  }

  /** `/berth reset` from the dashboard (issue 17): which data to go back to, and that the checkout stays */
  function confirmReset(req: IncomingMessage, res: ServerResponse, user: SessionUser, ws: WorkspaceWithRepo, returnTo: string) {
    page(req, res, user, 200, 'dashboard/confirm-reset.njk', {
      ws: { id: ws.id, branch: ws.branch, state: ws.state, repo: ws.repository.fullName, snapshot: ws.snapshotSha?.slice(0, 7) ?? null },
      returnTo,
      cancelTo: returnTo,
    });
  }

  async function resetPage(req: IncomingMessage, res: ServerResponse, user: SessionUser, id: string) {
    const found = await visibleWorkspace(req, res, user, id);
    if (!found) return;
    if (found.access !== 'write') return forbidden(req, res, user, `Only people with write access to ${found.ws.repository.fullName} can reset its workspaces.`);
    confirmReset(req, res, user, found.ws, `/workspaces/${found.ws.id}`);
  }

  async function deletePage(req: IncomingMessage, res: ServerResponse, user: SessionUser, id: string) {
    const found = await visibleWorkspace(req, res, user, id);
    if (!found) return;
    if (found.access !== 'write') return forbidden(req, res, user, `Only people with write access to ${found.ws.repository.fullName} can delete its workspaces.`);
    confirmDelete(req, res, user, found.ws, '/');
  }

  /** The build, if the user can read its repository; answers 404 itself otherwise. */
  async function visibleBuild(req: IncomingMessage, res: ServerResponse, user: SessionUser, id: string) {
    const build = await deps.db.build.findUnique({
      where: { id },
      include: { repository: true, workspace: { select: { id: true, branch: true, state: true, currentBuildId: true } } },
    });
    const access = build ? await accessOrNull(auth, user, build.repository) : 'none';
    if (access === null) {
      accessUnknown(req, res, user, build!.repository.fullName);
      return null;
    }
    if (!build || access === 'none') {
      notFound(req, res, user, 'There is no build here, or you cannot see it.');
      return null;
    }
    return build;
  }

  async function logPageRoute(req: IncomingMessage, res: ServerResponse, url: URL, user: SessionUser, id: string) {
    const build = await visibleBuild(req, res, user, id);
    if (!build) return;
    const beforeRaw = url.searchParams.get('before');
    const before = beforeRaw && /^\d{1,19}$/.test(beforeRaw) ? BigInt(beforeRaw) : undefined;
    const log = await logPage(deps.db, build.id, { before });
    const live = before === undefined && logIsLive(build, build.workspace);
    page(req, res, user, 200, 'dashboard/build-log.njk', {
      build: buildRow(build, build.workspace?.currentBuildId ?? null, now(), berthUrl),
      sha: build.sha,
      repo: build.repository.fullName,
      workspace: build.workspace ? { id: build.workspace.id, branch: build.workspace.branch, url: `${berthUrl}/workspaces/${build.workspace.id}` } : null,
      text: log.text,
      earlierUrl: log.hasEarlier && log.firstId !== null ? `/builds/${build.id}/log?before=${log.firstId}` : null,
      latestUrl: log.hasLater ? `/builds/${build.id}/log` : null,
      rawUrl: `/builds/${build.id}/log.txt`,
      live,
      streamUrl: `/builds/${build.id}/log/stream?after=${log.lastId ?? 0}`,
    });
  }

  return async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://berth.invalid');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    const isGet = method === 'GET' || method === 'HEAD';
    let m: RegExpExecArray | null;
    const route =
      (isGet && ROUTES.list.test(path) && { name: 'list' as const }) ||
      (isGet && (m = ROUTES.workspace.exec(path)) && { name: 'workspace' as const, id: m[1]! }) ||
      ((m = ROUTES.action.exec(path)) && (method === 'POST' || (isGet && (m[2] === 'delete' || m[2] === 'reset'))) && { name: method === 'POST' ? ('action' as const) : m[2] === 'reset' ? ('reset-page' as const) : ('delete-page' as const), id: m[1]!, action: m[2] as ActionName }) ||
      (isGet && (m = ROUTES.log.exec(path)) && { name: 'log' as const, id: m[1]! }) ||
      (isGet && (m = ROUTES.logText.exec(path)) && { name: 'log-text' as const, id: m[1]! }) ||
      (isGet && (m = ROUTES.logStream.exec(path)) && { name: 'log-stream' as const, id: m[1]! }) ||
      null;
    if (!route) return false;
    const user = await auth.requireUser(req, res);
    if (!user) return true;
    switch (route.name) {
      case 'list':
        await listPage(req, res, url, user);
        break;
      case 'workspace':
        await workspacePage(req, res, user, route.id);
        break;
      case 'action':
        await actionPost(req, res, user, route.id, route.action);
        break;
      case 'delete-page':
        await deletePage(req, res, user, route.id);
        break;
      case 'reset-page':
        await resetPage(req, res, user, route.id);
        break;
      case 'log':
        await logPageRoute(req, res, url, user, route.id);
        break;
      case 'log-text': {
        const build = await visibleBuild(req, res, user, route.id);
        if (build) await streamWholeLog(deps.db, build.id, res);
        break;
      }
      case 'log-stream': {
        const build = await visibleBuild(req, res, user, route.id);
        if (build) await streamBuildLog(deps.db, req, res, build.id, resumeId(req, url.searchParams.get('after')), opts.stream);
        break;
      }
    }
    return true;
  };
}
