import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Redis } from 'ioredis';
import type { WorkspaceAccess, WorkspaceShell } from '../../lib/workspace-access.js';
import type { AppDeps } from '../deps.js';
import type { BerthAuth } from '../auth/auth.js';
import { sufficient } from '../auth/access.js';
import { loggerOf } from '../../lib/log.js';
import type { SessionUser } from '../auth/types.js';
import { SESSION_TTL_S } from '../auth/store.js';

/** Where git's credential helper in a workspace asks Berth for its person's token. */
export const GIT_CREDENTIAL_PATH = '/__berth/git-credential';
const MAX_BODY = 4096;
const HANDLE = /^[A-Za-z0-9_-]{32,64}$/;

interface HandleRecord {
  /** the sign-in session of a terminal; null for an SSH session (it authenticated by key, and its handle dies with it) */
  sid: string | null;
  workspaceId: string;
  login: string;
  /** a VS Code container's handle (app/ide/person-ide.ts): valid only while that container runs with it */
  container?: string;
}

/**
 * git's credential helper for terminals (`credential.helper` through GIT_CONFIG_* in the
 * exec's environment, so nothing is written to the disk). It posts git's request and the
 * session's handle (BERTH_GIT_HANDLE) to Berth with whichever HTTP client the image has.
 * Nothing secret is on its command line; git runs it only for `get`.
 */
export const CREDENTIAL_HELPER =
  '!f() { test "$1" = get || exit 0; { echo "handle=$BERTH_GIT_HANDLE"; cat; } | ' +
  'if command -v curl >/dev/null 2>&1; then curl -sf --max-time 30 --data-binary @- "$BERTH_GIT_CREDENTIAL_URL"; ' +
  'elif command -v wget >/dev/null 2>&1; then wget -q -O - --post-file=/dev/stdin "$BERTH_GIT_CREDENTIAL_URL"; ' +
  'else echo "berth: git credentials need curl or wget in this image" >&2; fi; }; f';

/**
 * Git in a workspace as the person at the keyboard. Each terminal gets a random handle (not a
 * token) naming its sign-in session; git's credential helper trades it here for the person's
 * GitHub user token (app/auth/person-tokens.ts), and only while the session lives, the person
 * still has write access (asked through the one-minute permission cache each time) and git
 * asks for this workspace's own repository. The handle dies with the terminal, the session or
 * a sign-out; the token is never on the disk or in any environment.
 */
export class GitCredentials {
  constructor(
    private readonly deps: AppDeps,
    private readonly auth: BerthAuth,
    private readonly redis: Redis,
    /** asked whether a VS Code container that holds a handle still runs */
    private readonly access?: Pick<WorkspaceAccess, 'runsWithEnv'>,
  ) {}

  /**
   * A handle for this session's terminal in this workspace, valid while the session is. With
   * `sid` null (an SSH session, which has no sign-in session) it lasts until `revoke` (at most
   * 12 hours): the caller revokes it when the SSH session ends.
   */
  async mintHandle(sid: string | null, workspaceId: string, login: string, opts: { container?: string } = {}): Promise<string> {
    const session = sid ? await this.auth.userOfSession(sid) : null;
    const ttlS = !sid ? SESSION_TTL_S : session ? Math.max(1, Math.ceil((session.expiresAt - Date.now()) / 1000)) : 1;
    const handle = randomBytes(32).toString('base64url');
    await this.redis.set(this.key(handle), JSON.stringify({ sid, workspaceId, login, ...(opts.container ? { container: opts.container } : {}) } satisfies HandleRecord), 'EX', ttlS);
    return handle;
  }

  /** whether a handle still names a live grant (a long-lived VS Code container re-mints when not) */
  async isLive(handle: string): Promise<boolean> {
    if (!HANDLE.test(handle)) return false;
    const raw = await this.redis.get(this.key(handle));
    if (!raw) return false;
    const rec = JSON.parse(raw) as HandleRecord;
    return rec.sid ? Boolean(await this.auth.userOfSession(rec.sid)) : true;
  }

  async revoke(handle: string): Promise<void> {
    await this.redis.del(this.key(handle)).catch(() => {});
  }

  /**
   * The environment a terminal of `user` gets: their git identity (GitHub's noreply address)
   * and the credential helper pointed at Berth as the container reaches it (its network's
   * gateway, on the port this request came in on).
   */
  async terminalEnv(user: SessionUser, handle: string, container: WorkspaceShell, berthPort: number): Promise<string[]> {
    const name = user.name || user.login;
    const email = `${user.id}+${user.login}@users.noreply.github.com`;
    const env = [
      `GIT_AUTHOR_NAME=${name}`,
      `GIT_AUTHOR_EMAIL=${email}`,
      `GIT_COMMITTER_NAME=${name}`,
      `GIT_COMMITTER_EMAIL=${email}`,
      // each person's shell history on the workspace disk, kept through restarts; inside .git so
      // it is never committed and never counts as unsaved work (GitHub logins are [A-Za-z0-9-])
      ...(/^[A-Za-z0-9-]+$/.test(user.login) ? [`HISTFILE=/workspace/.git/berth-history-${user.login.toLowerCase()}`] : []),
    ];
    const base = this.deps.config.BERTH_WORKSPACE_URL ?? (await gatewayUrl(container, berthPort));
    if (!base) return env;
    return [
      ...env,
      `BERTH_GIT_HANDLE=${handle}`,
      `BERTH_GIT_CREDENTIAL_URL=${base.replace(/\/$/, '')}${GIT_CREDENTIAL_PATH}`,
      'GIT_CONFIG_COUNT=3',
      // an empty helper first: any helper from the image or the repository's .git/config is dropped
      'GIT_CONFIG_KEY_0=credential.helper',
      'GIT_CONFIG_VALUE_0=',
      'GIT_CONFIG_KEY_1=credential.helper',
      `GIT_CONFIG_VALUE_1=${CREDENTIAL_HELPER}`,
      // git then says which repository it wants, and Berth answers only for this workspace's
      'GIT_CONFIG_KEY_2=credential.useHttpPath',
      'GIT_CONFIG_VALUE_2=true',
    ];
  }

  /** `POST /__berth/git-credential` from a workspace's git (any Host: containers reach Berth by address) */
  handle = async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    if (new URL(req.url ?? '/', 'http://berth.invalid').pathname !== GIT_CREDENTIAL_PATH) return false;
    if (req.method !== 'POST') return (answer(res, 405, 'POST only\n'), true);
    const fields = await readCredentialRequest(req);
    const refused = (why: string, status = 403) => {
      loggerOf(this.deps.db).info({ reason: why, step: 'git-credential' }, 'git credential request refused');
      answer(res, status, `${why}\n`);
      return true;
    };
    if (!fields || !HANDLE.test(fields.handle ?? '')) return refused('no valid handle', 400);
    const raw = await this.redis.get(this.key(fields.handle!));
    if (!raw) return refused('this terminal’s sign-in ended: open the IDE again');
    const rec = JSON.parse(raw) as HandleRecord;
    if (rec.container && !(await this.heldBy(rec.container, fields.handle!))) {
      await this.revoke(fields.handle!);
      return refused('this VS Code has stopped: open the IDE again');
    }
    const user = rec.sid ? await this.auth.userOfSession(rec.sid) : await this.personOf(rec.login);
    if (!user || user.login !== rec.login) {
      await this.revoke(fields.handle!);
      return refused('the sign-in of this terminal ended: sign in to Berth and open a new terminal');
    }
    const ws = await this.deps.db.workspace.findUnique({ where: { id: rec.workspaceId }, include: { repository: true } });
    if (!ws || ws.state === 'deleted' || !ws.repository.cloneUrl) return refused('the workspace is gone');
    if (!sameRepository(ws.repository.cloneUrl, fields)) {
      // the person's own dotfiles repository (Your settings), on the same GitHub as the
      // workspace's: read with their token, whatever their access to the workspace
      const dotfiles = await this.deps.db.user.findUnique({ where: { login: user.login }, select: { dotfilesUrl: true } });
      if (!dotfiles?.dotfilesUrl || !sameHost(ws.repository.cloneUrl, dotfiles.dotfilesUrl) || !sameRepository(dotfiles.dotfilesUrl, fields)) {
        return refused(`Berth gives credentials for ${ws.repository.fullName} only`);
      }
      const token = await this.auth.personGitHubToken(user.login);
      if (!token) return refused('Berth holds no GitHub token of yours: sign in to Berth again');
      answer(res, 200, `username=x-access-token\npassword=${token}\n`);
      return true;
    }
    const access = await this.auth.access(user, ws.repository).catch(() => null);
    if (access === null) return refused('GitHub could not be asked about your access; try again', 502);
    if (!sufficient(access, 'write')) return refused(`${user.login} no longer has write access to ${ws.repository.fullName}`);
    const token = await this.auth.personGitHubToken(user.login);
    if (!token) return refused('Berth holds no GitHub token of yours: sign in to Berth again');
    answer(res, 200, `username=x-access-token\npassword=${token}\n`);
    return true;
  };

  /** whether the container of this name runs, with this handle (a stopped or re-made one does not) */
  private async heldBy(container: string, handle: string): Promise<boolean> {
    if (!this.access) return false;
    return this.access.runsWithEnv(container, `BERTH_GIT_HANDLE=${handle}`).catch(() => false);
  }

  /** an SSH session's person, as Berth knows them from their last sign-in */
  private async personOf(login: string): Promise<SessionUser | null> {
    const u = await this.deps.db.user.findUnique({ where: { login } });
    return u ? { id: u.id, login: u.login, name: u.name, avatarUrl: u.avatarUrl } : null;
  }

  private key(handle: string): string {
    return `${this.deps.config.BERTH_QUEUE_PREFIX}:auth:git-handle:${handle}`;
  }
}

function answer(res: ServerResponse, status: number, text: string) {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
  res.end(text);
}

/** git's credential request (`key=value` lines) plus the handle line; null when too big */
async function readCredentialRequest(req: IncomingMessage): Promise<Record<string, string> | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) return null;
    chunks.push(chunk as Buffer);
  }
  const fields: Record<string, string> = {};
  for (const line of Buffer.concat(chunks).toString('utf8').split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) fields[line.slice(0, eq)] = line.slice(eq + 1).replace(/\r$/, '');
  }
  return fields;
}

/** git asks for protocol, host (with port) and path (useHttpPath): they must be the repository's */
export function sameRepository(cloneUrl: string, fields: Record<string, string>): boolean {
  const repo = new URL(cloneUrl);
  const strip = (p: string) => p.replace(/^\/+/, '').replace(/\/+$/, '').replace(/\.git$/, '').toLowerCase();
  return fields.protocol === repo.protocol.replace(':', '') && (fields.host ?? '').toLowerCase() === repo.host.toLowerCase() && strip(fields.path ?? '') === strip(repo.pathname);
}

/** a dotfiles repository gets the person's token only when it is on the workspace's GitHub */
export function sameHost(cloneUrl: string, other: string): boolean {
  try {
    const a = new URL(cloneUrl);
    const b = new URL(other);
    return a.protocol === b.protocol && a.host.toLowerCase() === b.host.toLowerCase();
  } catch {
    return false;
  }
}

/** Berth as a container sees it: the gateway of its (first) network, on Berth's port */
async function gatewayUrl(container: WorkspaceShell, port: number): Promise<string | null> {
  const gateway = await container.gateway().catch(() => null);
  return gateway ? `http://${gateway}:${port}` : null;
}
