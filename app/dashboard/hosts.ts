import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AppDeps } from '../deps.js';
import type { Auth, SessionUser } from '../auth/types.js';
import { sendPage, type Handler } from '../http.js';
import { FormTooLargeError, readForm, setFlash, takeFlash } from './forms.js';
import { hostRows } from './host-rows.js';
import { hostRooms, setDraining } from '../../lib/hosts/registry.js';

export const HOSTS_PATH = '/hosts';
const DRAIN = /^\/hosts\/([a-z0-9-]{1,40})\/(drain|undrain)$/;
const PAGE_HEADERS = { 'x-frame-options': 'DENY', 'content-security-policy': "frame-ancestors 'none'", 'referrer-policy': 'same-origin', 'x-content-type-options': 'nosniff' };

/**
 * The hosts page (issue 18): every host with its capacity, running workspaces, labels, health
 * (last heartbeat) and whether it is draining. Everyone signed in sees it; Berth's administrators
 * (BERTH_ADMINS) get the Drain / Resume buttons (a form with the CSRF token).
 */
export function hostsHandler(deps: AppDeps, opts: { auth: Auth; now?: () => Date }): Handler {
  const { auth } = opts;
  const now = opts.now ?? (() => new Date());
  const isAdmin = (user: SessionUser) => deps.config.BERTH_ADMINS.includes(user.login.toLowerCase());
  const page = async (req: IncomingMessage, res: ServerResponse, user: SessionUser, status: number, ctx: Record<string, unknown> = {}) => {
    const rows = hostRows(await hostRooms(deps.db), await urlsAndTotals(deps), now());
    sendPage(res, status, 'dashboard/hosts.njk', { berthUrl: deps.config.berthUrl, user, csrf: auth.csrfToken(req), hosts: rows, admin: isAdmin(user), flash: takeFlash(req, res), ...ctx }, PAGE_HEADERS);
  };

  return async (req, res) => {
    const path = new URL(req.url ?? '/', 'http://berth.invalid').pathname;
    const method = req.method ?? 'GET';
    const drain = DRAIN.exec(path);
    if (!(path === HOSTS_PATH && (method === 'GET' || method === 'HEAD')) && !(drain && method === 'POST')) return false;
    const user = await auth.requireUser(req, res);
    if (!user) return true;
    if (!drain) {
      await page(req, res, user, 200);
      return true;
    }
    let form: Record<string, string> = {};
    try {
      form = await readForm(req);
    } catch (err) {
      if (!(err instanceof FormTooLargeError)) throw err;
    }
    if (!auth.verifyCsrf(req, form)) {
      await page(req, res, user, 403, { error: 'This form did not come from this Berth page, or it expired. Reload the page and try again. Nothing was changed.' });
      return true;
    }
    if (!isAdmin(user)) {
      await page(req, res, user, 403, { error: 'Only Berth\'s administrators (BERTH_ADMINS) can drain a host. Nothing was changed.' });
      return true;
    }
    const [, name, verb] = drain;
    const draining = verb === 'drain';
    if (!(await setDraining(deps.db, name!, draining))) {
      await page(req, res, user, 404, { error: `There is no host named ${name}.` });
      return true;
    }
    setFlash(res, draining ? `Host ${name} is draining: no new workspace is placed there; the ones it holds stay.` : `Host ${name} takes new workspaces again.`);
    res.writeHead(303, { location: HOSTS_PATH, 'cache-control': 'no-store' });
    res.end();
    return true;
  };
}

async function urlsAndTotals(deps: AppDeps) {
  const hosts = await deps.db.host.findMany({ select: { id: true, url: true, memoryTotal: true, startedAt: true, _count: { select: { workspaces: { where: { state: { not: 'deleted' } } } } } } });
  return new Map(hosts.map((h) => [h.id, { url: h.url, memoryTotal: Number(h.memoryTotal), startedAt: h.startedAt, workspaces: h._count.workspaces }]));
}
