import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AppDeps } from '../deps.js';
import type { Auth, SessionUser } from '../auth/types.js';
import { sendPage, type Handler } from '../http.js';
import { FormTooLargeError, readForm, setFlash, takeFlash } from './forms.js';

export const SETTINGS_PATH = '/settings';
const MAX_URL = 300;
const PAGE_HEADERS = { 'x-frame-options': 'DENY', 'content-security-policy': "frame-ancestors 'none'", 'referrer-policy': 'same-origin', 'x-content-type-options': 'nosniff' };

/**
 * "Your settings": what is a person's own, whatever the workspace. For now their dotfiles
 * repository, applied in their VS Code at its start (app/ide/dotfiles.ts). Stored on their
 * User row, set by them alone (their session, the form's CSRF token).
 */
export function settingsHandler(deps: AppDeps, opts: { auth: Auth }): Handler {
  const { auth } = opts;
  const page = (req: IncomingMessage, res: ServerResponse, user: SessionUser, status: number, ctx: Record<string, unknown>) =>
    sendPage(res, status, 'dashboard/settings.njk', { berthUrl: deps.config.berthUrl, user, csrf: auth.csrfToken(req), ...ctx }, PAGE_HEADERS);

  return async (req, res) => {
    if (new URL(req.url ?? '/', 'http://berth.invalid').pathname !== SETTINGS_PATH) return false;
    const method = req.method ?? 'GET';
    if (!['GET', 'HEAD', 'POST'].includes(method)) return false;
    const user = await auth.requireUser(req, res);
    if (!user) return true;
    const row = await deps.db.user.findUnique({ where: { login: user.login }, select: { dotfilesUrl: true } });
    if (method !== 'POST') {
      page(req, res, user, 200, { dotfilesUrl: row?.dotfilesUrl ?? '', flash: takeFlash(req, res), githubHost: githubWebHost(deps) });
      return true;
    }
    let form: Record<string, string>;
    try {
      form = await readForm(req);
    } catch (err) {
      if (!(err instanceof FormTooLargeError)) throw err;
      form = {};
    }
    if (!auth.verifyCsrf(req, form)) {
      page(req, res, user, 403, { dotfilesUrl: row?.dotfilesUrl ?? '', error: 'This form did not come from this Berth page, or it expired. Reload the page and try again.', githubHost: githubWebHost(deps) });
      return true;
    }
    const value = (form.dotfiles ?? '').trim();
    const problem = value ? dotfilesProblem(value, githubWebHost(deps)) : null;
    if (problem) {
      page(req, res, user, 400, { dotfilesUrl: value, error: problem, githubHost: githubWebHost(deps) });
      return true;
    }
    await deps.db.user.upsert({
      where: { login: user.login },
      update: { dotfilesUrl: value || null },
      create: { id: BigInt(user.id), login: user.login, name: user.name, avatarUrl: user.avatarUrl, dotfilesUrl: value || null },
    });
    setFlash(res, value ? `Saved: your VS Code applies ${value} when it next starts.` : 'Saved: no dotfiles repository.');
    res.writeHead(303, { location: SETTINGS_PATH, 'cache-control': 'no-store' });
    res.end();
    return true;
  };
}

/**
 * Where GitHub's repositories are (github.com, or GHE_HOST): a dotfiles repository must be
 * there, since git in the IDE gets the person's GitHub token for it, and nothing else may.
 */
export function githubWebHost(deps: Pick<AppDeps, 'config'>): { protocol: string; host: string } {
  const url = new URL(deps.config.githubWebUrl);
  return { protocol: url.protocol.replace(':', ''), host: url.host };
}

/** why a dotfiles URL is refused, or null: https://<GitHub>/<owner>/<repo>[.git], nothing else */
export function dotfilesProblem(value: string, github: { protocol: string; host: string }): string | null {
  if (value.length > MAX_URL) return `A repository URL is at most ${MAX_URL} characters.`;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `“${value}” is not a URL: give the repository's address, e.g. ${github.protocol}://${github.host}/you/dotfiles`;
  }
  const expected = `${github.protocol}://${github.host}`;
  if (`${url.protocol}//${url.host}`.toLowerCase() !== expected.toLowerCase()) return `The dotfiles repository must be on ${expected} (Berth gives git your GitHub token for it).`;
  if (url.username || url.password || url.search || url.hash) return 'Give the repository URL without a user name, password, query or fragment.';
  if (!/^\/[A-Za-z0-9-]{1,39}\/[A-Za-z0-9._-]{1,100}$/.test(url.pathname.replace(/\/$/, ''))) return `Give the repository's address, e.g. ${expected}/you/dotfiles`;
  return null;
}
