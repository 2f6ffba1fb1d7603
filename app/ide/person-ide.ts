import http from 'node:http';
import type { AppDeps } from '../deps.js';
import { loggerOf } from '../../lib/log.js';
import type { SessionUser } from '../auth/types.js';
import type { GitCredentials } from './git-credentials.js';
import type { IdeEndpoint } from './containers.js';
import { overConnection } from '../../lib/hosts/agent-client.js';
import { personIdeName, type IdeContainerInfo, type WorkspaceAccess, type WorkspaceShell } from '../../lib/workspace-access.js';
import { DOTFILES_SCRIPT, DOTFILES_TIMEOUT_S } from './dotfiles.js';

/**
 * VS Code as the person who opens it: one code-server container per person and workspace.
 *
 * The worker starts the workspace's IDE container (worker/runtime/docker.ts startIde: the
 * service's image and environment, the disk, the devcontainer's machine settings and .vsix
 * extensions on the IDE volume). Its git would be nobody's, so nobody is sent to it: when a
 * signed-in writer opens VS Code, a copy of it is made for them here (same image, env,
 * mounts, network, limits and labels, so the workspace's stop removes it too), plus their
 * identity and a credential handle (GitCredentials.terminalEnv, minted for their IDE session)
 * and a volume of their own over VS Code's User directory (their settings, keybindings,
 * state, shell HOME and dotfiles), kept until the workspace is deleted.
 *
 * Made in the app, not by a worker job: like a terminal's exec, the container belongs to a
 * browser session (its env carries that session's handle), and it is a copy of what the
 * worker made, so no repository input is read here. The copy itself is the engine's business
 * (WorkspaceAccess.createPersonIde); this module keeps the policy: who, which handle, when
 * it is re-made, the wait and the dotfiles.
 */
export class PersonIdes {
  /** one start at a time per person and workspace: VS Code's page asks for many files at once */
  private starting = new Map<string, Promise<IdeEndpoint | null>>();
  private cache = new Map<string, { at: number; value: IdeEndpoint }>();

  constructor(
    private readonly deps: AppDeps,
    private readonly access: WorkspaceAccess,
    private readonly git: GitCredentials,
  ) {}

  /** where `user`'s code-server of this workspace answers; started (or re-made) when needed */
  async endpoint(ws: { id: string; slug: string }, user: SessionUser, sid: string, berthPort: number): Promise<IdeEndpoint | null> {
    const key = `${ws.id}\n${user.login.toLowerCase()}`;
    const hit = this.cache.get(key);
    if (hit && Date.now() - hit.at < 2_000) return hit.value;
    let pending = this.starting.get(key);
    if (!pending) {
      pending = this.ensure(ws, user, sid, berthPort).finally(() => this.starting.delete(key));
      this.starting.set(key, pending);
    }
    const value = await pending;
    if (value) this.cache.set(key, { at: Date.now(), value });
    else this.cache.delete(key);
    return value;
  }

  forget(workspaceId: string, login: string) {
    this.cache.delete(`${workspaceId}\n${login.toLowerCase()}`);
  }

  private async ensure(ws: { id: string; slug: string }, user: SessionUser, sid: string, berthPort: number): Promise<IdeEndpoint | null> {
    const login = user.login.toLowerCase();
    if (!/^[a-z0-9-]{1,39}$/.test(login)) return null;
    const all = await this.access.ideContainers(ws.id);
    const template = all.find((c) => !c.person && c.running);
    if (!template) return null;
    const mine = all.filter((c) => c.person === login);
    const current = mine.find((c) => c.running && c.template === template.id);
    // a new sign-in (the old session ended) gets a new container: a container's env is fixed
    if (current?.endpoint && current.gitHandle && (await this.git.isLive(current.gitHandle))) return current.endpoint;
    for (const old of mine) await this.remove(old);
    return this.create(ws, user, login, sid, berthPort, template);
  }

  private async create(ws: { id: string; slug: string }, user: SessionUser, login: string, sid: string, berthPort: number, template: IdeContainerInfo): Promise<IdeEndpoint | null> {
    const log = loggerOf(this.deps.db).child({ workspace: ws.id, person: login, step: 'person-ide' });
    // valid while this session lives and this very container runs (GitCredentials asks the engine)
    const handle = await this.git.mintHandle(sid, ws.id, user.login, { container: personIdeName(template.name, login) });
    const personEnv = await this.git.terminalEnv(user, handle, this.access.shell(template.id), berthPort);
    let made: ({ id: string } & IdeEndpoint) | undefined;
    try {
      made = await this.access.createPersonIde({ templateId: template.id, login, env: personEnv });
      await waitForCodeServer(made, this.deps.config.BERTH_IDE_TIMEOUT);
      log.info({ container: made.id.slice(0, 12) }, 'VS Code started for a person');
      const shell = this.access.shell(made.id);
      void this.applyDotfiles(shell, login).catch((err: Error) => log.warn({ err: err.message }, 'dotfiles not applied'));
      // on another host, `connect` goes through its agent (issue 18)
      return { host: made.host, port: made.port, connect: made.connect };
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'VS Code did not start for a person');
      await this.git.revoke(handle);
      if (made) await this.access.removeContainer(made.id);
      return null;
    }
  }

  /**
   * The person's dotfiles repository (Your settings), Coder's personalize: cloned inside their
   * container with their own token (the credential helper in its env), its install script run
   * with a time limit, the output in the IDE container's log. Never blocks VS Code.
   */
  private async applyDotfiles(container: WorkspaceShell, login: string): Promise<void> {
    const user = await this.deps.db.user.findUnique({ where: { login }, select: { dotfilesUrl: true } }).catch(() => null);
    const url = user?.dotfilesUrl;
    if (!url) return;
    // the URL is an argument, never part of the script's text
    await container.exec({ argv: ['sh', '-c', DOTFILES_SCRIPT, 'berth-dotfiles', url, String(DOTFILES_TIMEOUT_S)], detach: true });
  }

  private async remove(old: IdeContainerInfo) {
    if (old.gitHandle) await this.git.revoke(old.gitHandle);
    await this.access.removeContainer(old.id);
  }
}

/** code-server answers /healthz once it listens; gives up at the IDE's time limit */
async function waitForCodeServer({ host, port, connect }: IdeEndpoint, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const req = http.get({ host, port, path: '/healthz', timeout: 2_000, ...(connect ? overConnection(connect) : {}) }, (res) => {
        res.resume();
        resolve((res.statusCode ?? 500) < 400);
      });
      req.on('error', () => resolve(false));
      req.on('timeout', () => req.destroy());
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`code-server did not answer within ${Math.round(timeoutMs / 1000)} s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
