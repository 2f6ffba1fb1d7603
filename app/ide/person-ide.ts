import http from 'node:http';
import type Docker from 'dockerode';
import type { AppDeps } from '../deps.js';
import { loggerOf } from '../../lib/log.js';
import type { SessionUser } from '../auth/types.js';
import type { GitCredentials } from './git-credentials.js';
import { CODE_SERVER_PORT, IDE_ROLE, LABEL_PERSON, type IdeEndpoint } from './containers.js';
import { DOTFILES_SCRIPT, DOTFILES_TIMEOUT_S } from './dotfiles.js';

const LABEL_WORKSPACE = 'berth.workspace';
const LABEL_ROLE = 'berth.role';
/** the workspace IDE container a person's was made from: a restart of the workspace makes a new one */
const LABEL_TEMPLATE = 'berth.ide-template';
/** the variables of the person this module sets; the template's own (none, normally) are dropped */
const PERSON_ENV = /^(GIT_AUTHOR_|GIT_COMMITTER_|GIT_CONFIG_|BERTH_GIT_|HISTFILE=|HOME=)/;

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
 * worker made, so no repository input is read here.
 */
export class PersonIdes {
  /** one start at a time per person and workspace: VS Code's page asks for many files at once */
  private starting = new Map<string, Promise<IdeEndpoint | null>>();
  private cache = new Map<string, { at: number; value: IdeEndpoint }>();

  constructor(
    private readonly deps: AppDeps,
    private readonly docker: Docker,
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
    const all = await this.docker.listContainers({ all: true, filters: { label: [`${LABEL_WORKSPACE}=${ws.id}`, `${LABEL_ROLE}=${IDE_ROLE}`] } });
    const templateInfo = all.find((c) => !c.Labels?.[LABEL_PERSON] && c.State === 'running');
    if (!templateInfo) return null;
    const mine = all.filter((c) => c.Labels?.[LABEL_PERSON] === login);
    const current = mine.find((c) => c.State === 'running' && c.Labels?.[LABEL_TEMPLATE] === templateInfo.Id);
    if (current) {
      const handle = await this.handleOf(current.Id);
      // a new sign-in (the old session ended) gets a new container: a container's env is fixed
      if (handle && (await this.git.isLive(handle))) return { host: ipOf(current)!, port: CODE_SERVER_PORT };
    }
    for (const old of mine) await this.remove(old.Id);
    return this.create(ws, user, login, sid, berthPort, this.docker.getContainer(templateInfo.Id));
  }

  private async create(ws: { id: string; slug: string }, user: SessionUser, login: string, sid: string, berthPort: number, template: Docker.Container): Promise<IdeEndpoint | null> {
    const log = loggerOf(this.deps.db).child({ workspace: ws.id, person: login, step: 'person-ide' });
    const t = await template.inspect();
    const templateName = t.Name.replace(/^\//, '');
    const name = `${templateName}.${login}`;
    const home = (t.Config.Env ?? []).find((e) => e.startsWith('HOME='))?.slice(5) ?? '/var/lib/berth-ide';
    const userDir = `${home}/data/User`;
    const labels = { ...t.Config.Labels, [LABEL_PERSON]: login, [LABEL_TEMPLATE]: t.Id };
    // the person's own volume, labelled like the workspace's (its delete removes it)
    const volumeName = name;
    let fresh = false;
    if (!(await this.docker.getVolume(volumeName).inspect().catch(() => null))) {
      await this.docker.createVolume({ Name: volumeName, Labels: { ...labels, [LABEL_TEMPLATE]: '' } });
      fresh = true;
    }
    // valid while this session lives and this very container runs (GitCredentials asks Docker)
    const handle = await this.git.mintHandle(sid, ws.id, user.login, { container: name });
    const personEnv = await this.git.terminalEnv(user, handle, template, berthPort);
    const network = Object.keys(t.NetworkSettings.Networks ?? {})[0];
    const container = await this.docker.createContainer({
      name,
      Image: t.Config.Image,
      User: t.Config.User,
      Env: [...(t.Config.Env ?? []).filter((e) => !PERSON_ENV.test(e)), `HOME=${userDir}`, ...personEnv],
      WorkingDir: t.Config.WorkingDir,
      Entrypoint: t.Config.Entrypoint as string[],
      Cmd: t.Config.Cmd,
      Labels: labels,
      HostConfig: {
        ...t.HostConfig,
        Binds: undefined,
        Mounts: [
          ...(t.Mounts ?? []).map((m) =>
            m.Type === 'volume'
              ? { Type: 'volume' as const, Source: m.Name!, Target: m.Destination, ReadOnly: !m.RW }
              : { Type: 'bind' as const, Source: m.Source, Target: m.Destination, ReadOnly: !m.RW },
          ),
          { Type: 'volume' as const, Source: volumeName, Target: userDir },
        ],
      },
      NetworkingConfig: network ? { EndpointsConfig: { [network]: {} } } : undefined,
    });
    try {
      // the workspace's first settings (no walkthrough, no trust prompt) for a person's first start
      if (fresh) {
        const settings = await template.getArchive({ path: `${userDir}/settings.json` }).catch(() => null);
        if (settings) await container.putArchive(settings, { path: userDir });
      }
      await container.start();
      const info = await container.inspect();
      const host = network ? info.NetworkSettings.Networks[network]?.IPAddress : undefined;
      if (!host) throw new Error('the container has no address on the workspace network');
      await waitForCodeServer(host, this.deps.config.BERTH_IDE_TIMEOUT);
      log.info({ container: info.Id.slice(0, 12) }, 'VS Code started for a person');
      void this.applyDotfiles(container, login).catch((err: Error) => log.warn({ err: err.message }, 'dotfiles not applied'));
      return { host, port: CODE_SERVER_PORT };
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'VS Code did not start for a person');
      await this.git.revoke(handle);
      await container.remove({ force: true }).catch(() => {});
      return null;
    }
  }

  /**
   * The person's dotfiles repository (Your settings), Coder's personalize: cloned inside their
   * container with their own token (the credential helper in its env), its install script run
   * with a time limit, the output in the IDE container's log. Never blocks VS Code.
   */
  private async applyDotfiles(container: Docker.Container, login: string): Promise<void> {
    const user = await this.deps.db.user.findUnique({ where: { login }, select: { dotfilesUrl: true } }).catch(() => null);
    const url = user?.dotfilesUrl;
    if (!url) return;
    // the URL is an argument, never part of the script's text
    const exec = await container.exec({ Cmd: ['sh', '-c', DOTFILES_SCRIPT, 'berth-dotfiles', url, String(DOTFILES_TIMEOUT_S)], AttachStdout: false, AttachStderr: false });
    await exec.start({ Detach: true });
  }

  private async handleOf(id: string): Promise<string | undefined> {
    const info = await this.docker.getContainer(id).inspect().catch(() => null);
    return info?.Config.Env?.find((e) => e.startsWith('BERTH_GIT_HANDLE='))?.slice('BERTH_GIT_HANDLE='.length);
  }

  private async remove(id: string) {
    const handle = await this.handleOf(id);
    if (handle) await this.git.revoke(handle);
    await this.docker.getContainer(id).remove({ force: true }).catch(() => {});
  }
}

function ipOf(c: Docker.ContainerInfo): string | undefined {
  return Object.values(c.NetworkSettings?.Networks ?? {}).find((n) => n.IPAddress)?.IPAddress;
}

/** code-server answers /healthz once it listens; gives up at the IDE's time limit */
async function waitForCodeServer(host: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const req = http.get({ host, port: CODE_SERVER_PORT, path: '/healthz', timeout: 2_000 }, (res) => {
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
